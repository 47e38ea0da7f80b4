"""Runs that differ in any setting that changes a score are never ranked in one leaderboard."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from prism_eval.api import evaluate
from prism_eval.report import ReportError, write_report
from prism_eval.report.runs import load_run
from prism_eval.runner.options import RunOptions
from prism_eval.runner.results import RunRecord

COLOURS = ["red", "blue", "green", "yellow"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cmp")
    rows, caps = [], []
    for i, colour in enumerate(COLOURS):
        Image.new("RGB", (24, 24), colour).save(root / f"{i}.png")
        rows.append({"id": f"q{i}", "image": f"{i}.png", "question": "What colour is the square?",
                     "options": COLOURS, "answer": "ABCD"[i]})
        caps.append({"image": f"{i}.png", "caption": f"A {colour} square."})
    (root / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "c.jsonl").write_text("".join(json.dumps(c) + "\n" for c in caps))
    return root


def _run(bench: Path, out: Path, judge: str, captioner: str = "none", **settings) -> Path:
    options = RunOptions(judge=judge, protocol="caprl", store=str(out.parent / "store.sqlite"), **settings)
    evaluate(captioner, [str(bench / "b.jsonl")], options=options, out=out)
    return out


@pytest.fixture(scope="module")
def baseline(bench, tmp_path_factory, builtin_judge_spec) -> Path:
    return _run(bench, tmp_path_factory.mktemp("base") / "run", builtin_judge_spec)


@pytest.mark.parametrize("setting, value, named", [
    ("option_norm", "pmi", "option_norm"),
    ("compat", "caprl", "compat"),
    ("limit", 2, "limit"),
    ("seed", 3, "seed"),
    ("num_captions", 2, "num_captions"),
])
def test_runs_differing_in_one_setting_are_refused(bench, baseline, tmp_path, builtin_judge_spec, setting, value,
                                                   named):
    other = _run(bench, tmp_path / "other", builtin_judge_spec, captioner=f"file:{bench / 'c.jsonl'}",
                 **{setting: value})
    with pytest.raises(ReportError) as err:
        write_report([baseline, other], tmp_path / "board.md")
    message = str(err.value)
    assert named in message and "\n" not in message and "--group" in message
    # with --group each setting gets its own leaderboard
    text = write_report([baseline, other], tmp_path / "board.md", group=True).read_text()
    assert text.count("## Setting") == 2


def test_limit_also_changes_the_question_set(bench, baseline, tmp_path, builtin_judge_spec):
    other = _run(bench, tmp_path / "lim", builtin_judge_spec, limit=2)
    diff = dict((name, (a, b)) for name, a, b in load_run(other).settings.differences(load_run(baseline).settings))
    assert diff["limit"] == (2, None) and "question set of b" in diff


def test_same_settings_share_a_leaderboard(bench, baseline, tmp_path, builtin_judge_spec):
    other = _run(bench, tmp_path / "same", builtin_judge_spec, captioner=f"file:{bench / 'c.jsonl'}")
    text = write_report([baseline, other], tmp_path / "board.md").read_text()
    assert "## Setting" not in text and "none" in text


def test_a_version_1_results_file_still_loads(baseline, tmp_path):
    """A results.json written before the run record (no version, no settings block) loads with its settings."""
    old = tmp_path / "old"
    old.mkdir()
    raw = json.loads((baseline / "results.json").read_text())
    v1 = {k: raw[k] for k in ("captioner", "judge", "protocol", "scoring", "estimator", "benchmarks", "average",
                              "config", "versions", "created", "complete")}
    for b in v1["benchmarks"].values():
        b.pop("question_set"), b.pop("shipped")
    (old / "results.json").write_text(json.dumps(v1))
    record = RunRecord.read(old)
    assert record.version == 1 and record.settings.option_norm == raw["config"]["option_norm"]
    assert record.settings.question_sets == {"b": None}
    # settings an old file did not record never pass for known ones: it is not ranked beside a new run
    with pytest.raises(ReportError, match="not recorded"):
        write_report([baseline, old], tmp_path / "mixed.json")
    assert "question set of b" in {name for name, _, _ in record.settings.differences(load_run(baseline).settings)}


def test_a_newer_results_version_is_refused(baseline, tmp_path):
    new = tmp_path / "new"
    new.mkdir()
    raw = json.loads((baseline / "results.json").read_text())
    raw["version"] = 99
    (new / "results.json").write_text(json.dumps(raw))
    with pytest.raises(ReportError, match="results version 99 is newer"):
        write_report([new], tmp_path / "x.json")
