"""The diagnostics in the report, from hand-built runs: columns only when a run has the data, values that are
the records', the length budget, old runs unchanged, and runs that differ only in the judge."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from prism_eval.report import ReportError, write_report
from prism_eval.report.board import build_board
from prism_eval.report.columns import board_columns
from prism_eval.report.runs import group_runs, load_runs
from prism_eval.runner.naming import display_names

from .diag_runs import OUTCOMES, add_diagnostics
from .test_fixture import build_runs

CURVES = {"none": (8, 16, 32), "hf-example-captioner-small": (8, 16), "hf-example-captioner-large": (8, 16, 32)}
SMALL = {"hostile": False, "n_mmstar": 24, "n_chart": 8}
OPTIONAL = {"at_budget", "vision", "omission", "hallucination"}


def _results(dirs: list[Path]) -> dict[str, dict]:
    """Each run's results.json by the name the report shows."""
    raw = [json.loads((d / "results.json").read_text()) for d in dirs]
    names = display_names([r["captioner"] for r in raw])
    return {names[r["captioner"]]: r for r in raw}


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> list[Path]:
    return build_runs(tmp_path_factory.mktemp("plain") / "runs", **SMALL)


@pytest.fixture(scope="module")
def diag(tmp_path_factory) -> list[Path]:
    dirs = build_runs(tmp_path_factory.mktemp("diag") / "runs", **SMALL)
    add_diagnostics(dirs, curves=CURVES)
    return dirs


def test_old_runs_show_no_diagnostic(plain, tmp_path):
    board = build_board(load_runs(plain), n_resamples=200)
    assert not {c.key for c, _ in board_columns(board)} & OPTIONAL and board.budget is None
    page = write_report(plain, tmp_path / "r.html", n_resamples=200).read_text(encoding="utf-8")
    for marker in ('id="outcomes-1"', 'id="curve-1"', 'id="agreement"', 'id="sb-outcome"', "Vision-required"):
        assert marker not in page
    md = write_report(plain, tmp_path / "r.md", n_resamples=200).read_text(encoding="utf-8")
    assert "Outcomes" not in md and "Length curve" not in md and "Judge agreement" not in md
    doc = json.loads(write_report(plain, tmp_path / "r.json", n_resamples=200).read_text())
    assert doc["judge_agreement"] == [] and doc["groups"][0]["length_budget"] is None
    for row in doc["groups"][0]["rows"]:
        assert row["diagnostics"]["outcomes"] is None and row["diagnostics"]["score_at_budget"] is None
        for cell in row["scores"].values():
            assert cell["omission"] is None and cell["by_length"] == {} and cell["length_unit"] == "words"


def test_row_diagnostics_are_the_records_means(diag):
    board = build_board(load_runs(diag), n_resamples=200)
    assert OPTIONAL <= {c.key for c, _ in board_columns(board)}
    assert board.budget == 16  # the largest budget every run with a curve has (one has 8 and 16 only)
    results = _results(diag)
    for row in board.rows:
        benches = results[row.run.label]["benchmarks"]
        d = row.diag
        assert d.omission == pytest.approx(_mean([b["omission"] for b in benches.values() if b["omission"] is not None]))
        assert d.hallucination == pytest.approx(
            _mean([b["hallucination"] for b in benches.values() if b["hallucination"] is not None]))
        with_outcomes = [b["outcomes"] for b in benches.values() if b["outcomes"]]
        for k in OUTCOMES:
            assert d.outcomes[k] == pytest.approx(_mean([o[k] for o in with_outcomes]))
        assert d.vision == pytest.approx(_mean([b["vision_required"]["score"] for b in benches.values()]))
        assert d.vision_n == sum(b["vision_required"]["n"] for b in benches.values())
        assert d.vision_of == sum(b["n"] for b in benches.values())
        curve = CURVES.get(row.run.path.name)
        if curve is None:
            assert d.curve == {} and d.budget_score is None
            continue
        assert sorted(d.curve) == list(curve)
        assert d.budget_score == pytest.approx(_mean([b["by_length"]["16"] for b in benches.values()]))
        assert d.full_length == pytest.approx(_mean([b["mean_caption_tokens"] for b in benches.values()]))


def test_html_markdown_and_json_carry_the_same_numbers(diag, tmp_path):
    results = _results(diag)
    doc = json.loads(write_report(diag, tmp_path / "r.json", n_resamples=200).read_text())
    group = doc["groups"][0]
    assert group["length_budget"] == 16 and group["length_unit"] == "judge tokens"
    md = write_report(diag, tmp_path / "r.md", n_resamples=200).read_text(encoding="utf-8")
    page = write_report(diag, tmp_path / "r.html", n_resamples=200).read_text(encoding="utf-8")
    assert "Score @ 16 tokens" in md and "Score @ 16 tokens" in page
    md_rows: dict[str, str] = {}  # the leaderboard table's rows (the first table naming each run)
    for line in md.splitlines():
        if line.startswith("| "):
            md_rows.setdefault(line.split(" | ")[0].lstrip("| ").replace(" (blind baseline)", "").replace("\\", ""),
                               line)
    for row in group["rows"]:
        rec = results[row["label"]]["benchmarks"]
        for bench, cell in row["scores"].items():
            for key in ("omission", "hallucination", "outcomes", "by_length", "vision_required", "length_unit"):
                assert cell[key] == rec[bench][key], (row["label"], bench, key)
        d = row["diagnostics"]
        line = md_rows[row["label"]]
        for v in (d["omission"], d["hallucination"]):
            assert f" {v:.1f} " in line
        vision = f"{d['vision_required']['score']:.1f}"
        vision = f"*{vision}*" if row["blind_baseline"] else vision  # the blind row's own value set apart
        assert f" {vision} (n={d['vision_required']['n']}/{d['vision_required']['of']}) " in line
        at = d["score_at_budget"]
        assert (f" {at:.1f} " in line) if at is not None else " — " in line
    # The length curve as a table: one row per run with a curve, one column per budget, then whole captions.
    assert "| Captioner | 8 | 16 | 32 | full |" in md
    assert page.count('class="series curve"') == len(CURVES)
    # One stacked bar per run: only MMStar's questions offer "cannot answer" (ChartQA's are open).
    bars = page.split('<svg class="obar"')[1:]
    assert len(bars) == 4
    for row, bar in zip(sorted(results, key=lambda c: -results[c]["average"]), bars):
        shares = results[row]["benchmarks"]["MMStar"]["outcomes"]
        for k in OUTCOMES:
            assert f'data-outcome="{k}" data-pct="{shares[k]}"' in bar


def test_length_budget_picks_the_column_and_runs_without_it_show_a_dash(diag, tmp_path):
    from prism_eval.cli import main

    out = tmp_path / "k.json"
    result = CliRunner().invoke(main, ["report", *map(str, diag), "-o", str(out), "--length-budget", "32"])
    assert result.exit_code == 0, result.output
    group = json.loads(out.read_text())["groups"][0]
    assert group["length_budget"] == 32
    results = _results(diag)
    for row in group["rows"]:
        benches = results[row["label"]]["benchmarks"].values()
        if 32 in CURVES.get(_folder(diag, row["label"]), ()):
            assert row["diagnostics"]["score_at_budget"] == pytest.approx(_mean([b["by_length"]["32"] for b in benches]))
        else:
            assert row["diagnostics"]["score_at_budget"] is None
    md = write_report(diag, tmp_path / "k.md", n_resamples=200, length_budget=32).read_text(encoding="utf-8")
    assert "Score @ 32 tokens" in md
    small = next(line for line in md.splitlines() if line.startswith("| example/captioner-small |"))
    assert small.count(" — ") >= 1
    # A budget no run was scored at: no column, and the board says why.
    board = build_board(load_runs(diag), n_resamples=200, length_budget=64)
    assert "at_budget" not in {c.key for c, _ in board_columns(board)}
    assert any("--length-budget 64" in w and "8, 16, 32" in w for w in board.warnings)
    bad = CliRunner().invoke(main, ["report", *map(str, diag), "-o", str(out), "--length-budget", "0"])
    assert bad.exit_code != 0


def _folder(dirs: list[Path], label: str) -> str:
    raw = {d.name: json.loads((d / "results.json").read_text())["captioner"] for d in dirs}
    names = display_names(list(raw.values()))
    return next(f for f, c in raw.items() if names[c] == label)


def test_blind_rows_vision_required_value_is_greyed(diag, tmp_path):
    page = write_report(diag, tmp_path / "v.html", n_resamples=200).read_text(encoding="utf-8")
    cells = [c for c in page.split("<td ")[1:] if 'class="vision' in c.split(">")[0]]
    assert len(cells) == 4 and sum("blind-value" in c.split(">")[0] for c in cells) == 1
    assert all("the blind baseline does not answer above chance" in c for c in cells)


def test_runs_differing_only_in_the_judge_give_a_board_per_judge_and_their_agreement(diag, tmp_path):
    other = build_runs(tmp_path / "other", judge="hf:example/other-judge", seed=5, **SMALL)
    runs = load_runs([*diag, *other])
    groups = group_runs(runs)
    assert [{r.settings.judge for r in g} for g in groups] == [{"builtin:smollm2-135m"}, {"hf:example/other-judge"}]
    doc = json.loads(write_report([*diag, *other], tmp_path / "a.json", n_resamples=300).read_text())
    [entry] = doc["judge_agreement"]
    assert entry["judges"] == ["builtin:smollm2-135m", "hf:example/other-judge"] and entry["n_captioners"] == 4
    assert entry["ci95"][0] <= entry["kendall_tau"] <= entry["ci95"][1]
    md = write_report([*diag, *other], tmp_path / "a.md", n_resamples=300).read_text(encoding="utf-8")
    assert "## Judge: builtin:smollm2-135m" in md and "## Judge: hf:example/other-judge" in md
    assert "## Judge agreement" in md and f"| {entry['kendall_tau']:.2f} | {entry['ci95'][0]:.2f} to " in md
    page = write_report([*diag, *other], tmp_path / "a.html", n_resamples=300).read_text(encoding="utf-8")
    assert 'id="agreement"' in page and "Leaderboard · judge hf:example/other-judge" in page
    assert f'data-v="{entry["kendall_tau"]}"' in page
    # Another difference besides the judge: refused as before, grouped on request (no agreement then).
    third = build_runs(tmp_path / "third", judge="hf:example/other-judge", protocol="caprl", **SMALL)
    with pytest.raises(ReportError, match="--group"):
        write_report([*diag, *third], tmp_path / "b.json")
    doc = json.loads(write_report([*diag, *third], tmp_path / "b.json", group=True, n_resamples=200).read_text())
    assert len(doc["groups"]) == 2 and doc["judge_agreement"] == []


def test_outcome_filter_payload_and_old_runs_without_it(diag, plain):
    from prism_eval.report.samples import build_payload

    payload = build_payload([load_runs(diag)])
    recorded = [json.loads(line)["outcome"] for d in diag
                for line in (d / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(s["oc"] or "" for s in payload["samples"]) == sorted(o or "" for o in recorded)
    assert payload["outcomes"] == [k for k in OUTCOMES if k in recorded]
    old = build_payload([load_runs(plain)])
    assert old["outcomes"] == [] and {s["oc"] for s in old["samples"]} == {None}
