"""Who wins at a glance: average CIs, rank ranges, the margin over the blind baseline, categories with n and CI,
columns that only repeat others, metadata shown once, and verdicts under probabilistic estimators."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from prism_eval.report import write_report
from prism_eval.report.board import build_board
from prism_eval.report.columns import board_columns
from prism_eval.report.model import Cell
from prism_eval.report.ranking import Z95, average_ci
from prism_eval.report.runs import load_runs
from prism_eval.report.samples import build_payload, top_choice

from .demo_runs import build_demo_like_runs
from .test_fixture import build_runs


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("board")
    build_demo_like_runs(root, estimator="expected")
    return root


@pytest.fixture(scope="module")
def board(demo):
    return build_board(load_runs([demo / "runs"]), n_resamples=1000)


def test_average_ci_combines_benchmark_cis_as_independent_errors():
    a = Cell(score=60.0, ci95=(50.0, 70.0), n=100, best_of_n=None, unanswered=0, failed=0)
    b = Cell(score=40.0, ci95=(36.0, 44.0), n=100, best_of_n=None, unanswered=0, failed=0)
    lo, hi = average_ci([a, b])
    half = Z95 * math.sqrt((20 / (2 * Z95)) ** 2 + (8 / (2 * Z95)) ** 2) / 2
    assert (lo, hi) == pytest.approx((50.0 - half, 50.0 + half))
    assert average_ci([a]) == (50.0, 70.0)
    assert average_ci([a, None]) is None


def test_rank_ranges_share_a_range_exactly_where_cis_overlap(board):
    rows = [r for r in board.rows if r.rank_range is not None]
    assert len(rows) == 5
    for r in rows:
        lo, hi = r.average_ci
        above = sum(o.average_ci[0] > hi for o in rows if o is not r)
        below = sum(o.average_ci[1] < lo for o in rows if o is not r)
        assert r.rank_range == (1 + above, len(rows) - below)
    ranks = {r.run.label: r.rank_range for r in rows}
    assert ranks["reference"] == (1, 1)  # clear of every other interval
    assert ranks["none"] == ranks["tiny-llava-demo"] and ranks["none"][0] < ranks["none"][1]


def test_margin_over_blind_comes_from_the_paired_test_and_flags_rows_below(board):
    blind = next(r for r in board.rows if r.run.blind)
    assert board.blind_label == blind.run.label and blind.vs_blind is None
    matrix = board.matrices[0]  # one benchmark: its matrix is the average's
    assert [m.bench for m in board.matrices] == ["demo"]
    for r in board.rows:
        if r is blind:
            continue
        test = matrix.cells[matrix.labels.index(r.run.label)][matrix.labels.index(blind.run.label)]
        assert r.vs_blind.diff == pytest.approx(100 * test.diff)
        assert r.vs_blind.p_value == test.p_value and r.vs_blind.n == test.n
        assert r.vs_blind.below == (test.diff < 0)
    wrong = next(r for r in board.rows if r.run.label == "wrong")
    assert wrong.vs_blind.below and wrong.vs_blind.significant


def test_columns_that_repeat_others_are_hidden(board, tmp_path):
    keys = [c.key for c, _ in board_columns(board)]
    assert keys == ["bench:demo", "rank", "vs_blind", "length"]  # one benchmark: no Average, no Avg rank
    two = build_board(load_runs(build_runs(tmp_path / "two", captioners=(("hf:x/a", 1, 0.6, 20),
                                                                           ("hf:x/b", 1, 0.4, 20)))))
    assert [c.key for c, _ in board_columns(two)] == ["bench:MMStar", "bench:ChartQA", "average", "rank",
                                                      "avg_rank", "length"]  # no baseline, no vs blind


def test_category_tables_have_n_and_a_ci_and_bold_only_a_clear_best(board):
    (t,) = board.categories
    assert t.categories == ["chart", "scene", "shapes", "table", "text"]
    ref = t.cells["reference"]["chart"]
    assert ref.n == 24 and ref.ci95[0] <= ref.score <= ref.ci95[1]
    assert t.n["chart"] == 24 and t.n["scene"] is None  # one run lost a scene question to a failed judge call
    for cat, label in t.clear_best.items():
        if label is not None:
            top = t.cells[label][cat]
            assert all(top.ci95[0] > c[cat].ci95[1] for other, c in t.cells.items() if other != label)


def test_length_unit_is_the_one_the_runs_record(board, tmp_path):
    assert board.length.unit == "words"
    dirs = build_runs(tmp_path / "tok", captioners=(("hf:x/a", 1, 0.6, 20), ("hf:x/b", 1, 0.5, 30)))
    # Written before runs recorded a unit: the counts are read as words, whatever they hold.
    assert build_board(load_runs(dirs)).length.unit == "words"
    for d in dirs:
        res = json.loads((d / "results.json").read_text())
        for b in res["benchmarks"].values():
            b["length_unit"] = "judge tokens"
        (d / "results.json").write_text(json.dumps(res))
    assert build_board(load_runs(dirs)).length.unit == "judge tokens"
    # One run in words: every caption is measured in words, never two units on one axis.
    res = json.loads((dirs[1] / "results.json").read_text())
    for b in res["benchmarks"].values():
        b["length_unit"] = "words"
    (dirs[1] / "results.json").write_text(json.dumps(res))
    assert build_board(load_runs(dirs)).length.unit == "words"


def test_expected_estimator_samples_are_judged_by_the_top_choice(demo):
    runs = load_runs([demo / "runs"])
    payload = build_payload([runs])
    ref = next(i for i, r in enumerate(payload["runs"]) if r["label"] == "reference")
    mine = [s for s in payload["samples"] if s["r"] == ref]
    assert payload["estimators"] == ["expected"] and payload["runs"][ref]["estimator"] == "expected"
    for s in mine:
        probs = json.loads(payload["text"][s["raw"]])
        top = max(probs, key=probs.get)
        assert (s["top"], s["pt"]) == (top, pytest.approx(probs[top], abs=1e-4))
        assert s["ok"] == (top == s["g"])
        assert s["s"] == pytest.approx(probs[s["g"]], abs=1e-4)
    assert sum(s["ok"] for s in mine) > 0.7 * len(mine)
    assert top_choice('{"A": 0.2, "B": 0.7}') == ("B", 0.7)
    assert top_choice("The answer is B.") is None and top_choice('{"A": NaN}') is None


def test_metadata_lists_shared_settings_once_and_only_differences_per_run(demo, tmp_path):
    html = write_report([demo / "runs"], tmp_path / "b.html").read_text(encoding="utf-8")
    meta = html[html.index('id="metadata"'):]
    assert meta.count("<th scope=\"row\">Judge identity</th>") == 1
    assert meta.count("Full configuration") == 1
    cards = re.findall(r'<div class="run-card"><h3>(.*?)</h3>(.*?)</div>', meta, re.S)
    assert len(cards) == 5
    for _, body in cards:
        keys = re.findall(r"<dt>(.*?)</dt>", body)
        assert "Captioner spec" in keys and "Judge" not in keys and "Seed" not in keys
        assert 'class="diff' in body


def test_html_has_row_headers_captions_and_no_p_equals_less_than(demo, tmp_path):
    html = write_report([demo / "runs"], tmp_path / "b.html").read_text(encoding="utf-8")
    assert "p = &lt;" not in html and "p = <" not in html
    assert html.count("<caption") >= 3
    body = html[html.index('<tbody class="runs">'):]
    assert body.index('<th scope="row" class="name"') < body.index("<td")
    assert "MMStar: coarse perception" not in html  # the category text names no benchmark's own categories
