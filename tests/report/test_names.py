"""Names a report shows: short defaults, `run --name`, `report --label`, and no absolute local path anywhere."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from prism_eval.cli import main
from prism_eval.cli.common import UserError
from prism_eval.cli.run import display_name_map
from prism_eval.engines.cache_dir import cache_root
from prism_eval.report import ReportError, write_report
from prism_eval.report.paths import PathScrubber
from prism_eval.report.runs import load_runs, parse_labels

from .demo_runs import build_demo_like_runs


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("names")
    build_demo_like_runs(root, n_images=10)
    return root


def _local_paths(root: Path) -> list[str]:
    out = [str(root.resolve()), str(cache_root().resolve()), str(Path.cwd().resolve())]
    return out + ([str(Path.home()) + "/"] if str(Path.home()) != "/" else [])


def test_default_names_are_the_part_of_the_spec_that_differs(demo):
    runs = load_runs([demo / "runs"])
    assert sorted(r.label for r in runs) == ["none", "partial", "reference", "tiny-llava-demo", "wrong"]
    spec = {r.label: r.spec for r in runs}
    assert spec["reference"] == "file:../../data/captions/reference.jsonl"  # relative to the run folder
    assert spec["tiny-llava-demo"] == "hf:$PRISM_EVAL_CACHE/models/tiny-llava-demo"
    assert {r.folder for r in runs} == {f"runs/{x}" for x in spec}


@pytest.mark.parametrize("fmt", ["html", "md", "json"])
def test_no_report_format_shows_an_absolute_local_path(demo, tmp_path, fmt):
    text = write_report([demo / "runs"], tmp_path / f"board.{fmt}").read_text(encoding="utf-8")
    text = re.sub(r"data:image/[^\"']+", "", text)
    for local in _local_paths(demo):
        assert local not in text, local
    if fmt == "json":
        rows = json.loads(text)["groups"][0]["rows"]
        assert {r["captioner"] for r in rows} >= {"file:../../data/captions/reference.jsonl", "none"}
        assert {r["run_dir"] for r in rows} >= {"runs/reference", "runs/none"}


def test_scrubber_rewrites_paths_in_free_text_and_leaves_urls_alone(tmp_path):
    run = tmp_path / "sweep" / "runs" / "a"
    s = PathScrubber([run])
    assert s.text(f"cannot read {tmp_path}/sweep/data/x.png: truncated", run) == \
        "cannot read ../../data/x.png: truncated"
    assert s.text("openai:m@http://127.0.0.1:9/v1 and https://host/a/b", run) == \
        "openai:m@http://127.0.0.1:9/v1 and https://host/a/b"
    assert s.text(f"hf:{cache_root()}/models/m", run) == "hf:$PRISM_EVAL_CACHE/models/m"
    assert s.text("file:captions/c.jsonl 3/4", run) == "file:captions/c.jsonl 3/4"
    far = s.text("/opt/data/corpora/big/file.jsonl", run)
    assert not far.startswith("/") and far.endswith("big/file.jsonl")


def test_labels_override_names_and_an_unknown_run_is_an_error(demo, tmp_path):
    doc = json.loads(write_report([demo / "runs"], tmp_path / "b.json",
                                  labels={"reference": "Gold captions", str(demo / "runs" / "none"): "Blind",
                                          "hf:" + str(cache_root() / "models" / "tiny-llava-demo"): "Tiny VLM"}
                                  ).read_text())
    labels = {r["label"] for r in doc["groups"][0]["rows"]}
    assert labels == {"Gold captions", "Blind", "Tiny VLM", "partial", "wrong"}
    assert doc["groups"][0]["blind_baseline"] == "Blind"
    with pytest.raises(ReportError, match=r"--label nope=X: 'nope' names no run .*reference"):
        write_report([demo / "runs"], tmp_path / "c.json", labels={"nope": "X"})
    assert parse_labels(["a=b=c", " x = y "]) == {"a=b": "c", "x": "y"}
    with pytest.raises(ReportError, match="expected RUN=NAME"):
        parse_labels(["reference"])


def test_the_same_name_twice_is_told_apart_by_folder(demo, tmp_path):
    doc = json.loads(write_report([demo / "runs"], tmp_path / "b.json",
                                  labels={"reference": "X", "partial": "X"}).read_text())
    labels = sorted(r["label"] for r in doc["groups"][0]["rows"])
    assert "X [partial]" in labels and "X [reference]" in labels


def test_name_option_maps_specs_to_names():
    assert display_name_map(["A"], ["file:a.jsonl"]) == {"file:a.jsonl": "A"}
    assert display_name_map(["file:a.jsonl=A", "none=Blind"], ["file:a.jsonl", "none"]) == \
        {"file:a.jsonl": "A", "none": "Blind"}
    assert display_name_map(["openai:m@http://h/v1?k=v=Remote"], ["openai:m@http://h/v1?k=v"]) == \
        {"openai:m@http://h/v1?k=v": "Remote"}
    with pytest.raises(UserError, match="SPEC=NAME"):
        display_name_map(["A"], ["x", "y"])
    with pytest.raises(UserError, match="empty"):
        display_name_map(["x="], ["x", "y"])


def test_run_name_is_stored_and_report_label_overrides_it(tmp_path, builtin_judge_spec):
    colours = ["red", "blue", "green", "yellow"]
    rows, caps = [], []
    for i, colour in enumerate(colours):
        Image.new("RGB", (24, 24), colour).save(tmp_path / f"{i}.png")
        rows.append({"id": f"q{i}", "image": f"{i}.png", "question": "What colour is the square?",
                     "options": colours, "answer": "ABCD"[i]})
        caps.append({"image": f"{i}.png", "caption": f"A {colour} square."})
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(c) + "\n" for c in caps))
    spec = f"file:{tmp_path / 'c.jsonl'}"
    out = tmp_path / "runs"
    cli = CliRunner()
    result = cli.invoke(main, ["run", "-c", spec, "--blind", "-b", str(tmp_path / "b.jsonl"), "-j", builtin_judge_spec,
                               "--protocol", "caprl", "--store", str(tmp_path / "store.sqlite"), "--out", str(out),
                               "--name", f"{spec}=Colour captions", "--name", "none=No caption"])
    assert result.exit_code == 0, result.output
    names = {json.loads(p.read_text())["name"] for p in out.glob("*/results.json")}
    assert names == {"Colour captions", "No caption"}
    result = cli.invoke(main, ["report", str(out), "-o", str(tmp_path / "r.json"), "--label", "none=Blind"])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "r.json").read_text())
    assert {r["label"] for r in doc["groups"][0]["rows"]} == {"Colour captions", "Blind"}
    bad = cli.invoke(main, ["run", "-c", spec, "-c", "none", "-b", str(tmp_path / "b.jsonl"), "--name", "X",
                            "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 1 and "--name 'X': give SPEC=NAME" in bad.output
    assert not (tmp_path / "bad").exists()  # refused before anything ran
