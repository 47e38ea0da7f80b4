"""A suite's declared average: Table 3's 11 benchmarks, VisuLogic shown beside them but not averaged."""
from __future__ import annotations

import json

import pytest

from prism_eval.benchmarks import suite_of
from prism_eval.report import write_report
from prism_eval.report.reference import CAPRL_TABLE3
from prism_eval.runner.results import BenchmarkResult, RunRecord, RunSettings


def _record(name: str, scores: dict[str, float], average_over: list[str]) -> RunRecord:
    settings = RunSettings(judge="internlm/CapRL-Eval-3B", protocol="caprl-eval", scoring="generate",
                           estimator="sampled", compat="caprl", num_captions=4, seed=0)
    benches = {b: BenchmarkResult(score=v, n=100, shipped=True, kind="mcq") for b, v in scores.items()}
    over = [b for b in average_over if b in benches]
    return RunRecord(captioner=f"hf:{name}", settings=settings, benchmarks=benches, name=name,
                     average=sum(scores[b] for b in over) / len(over), average_over=average_over)


def test_the_caprl_suite_averages_table_3s_eleven_in_every_format(tmp_path):
    members = suite_of("caprl")
    assert members.average_over and len(members.average_over) == 11 and "visulogic" not in members.average_over
    ids = list(members.members)
    assert "visulogic" in ids
    for name, offset in (("mine", 0.0), ("other", 5.0)):
        scores = {b: 30.0 + i + offset for i, b in enumerate(ids)}
        scores["visulogic"] = 99.0  # would move the average by ~5 points if it were counted
        (tmp_path / name).mkdir()
        _record(name, scores, list(members.average_over)).write(tmp_path / name)

    board = json.loads(write_report([tmp_path], tmp_path / "board.json").read_text())["groups"][0]
    assert board["averaged"] == list(members.average_over)
    mine = next(r for r in board["rows"] if r["label"] == "mine")
    expected = sum(30.0 + i for i, b in enumerate(ids) if b != "visulogic") / 11
    assert mine["average"] == pytest.approx(expected)
    caprl3b = next(r for r in board["reference"] if r["name"] == "CapRL-3B")
    paper = next(r for r in CAPRL_TABLE3 if r.name == "CapRL-3B")
    # the reference row's average is over the same 11 columns, the paper's own 48.3 up to its rounding
    assert caprl3b["average"] == pytest.approx(sum(paper.scores.values()) / 11)
    assert abs(caprl3b["average"] - paper.average) < 0.1

    md = write_report([tmp_path], tmp_path / "board.md").read_text()
    assert "Average over 11 benchmarks, as the suite declares; visulogic shown but not averaged." in md
    html = write_report([tmp_path], tmp_path / "board.html").read_text()
    assert "visulogic is shown but not averaged" in html
