"""The other commands under the same rule: a mistake ends in one `Error:` line within seconds, and
nothing it leaves behind blocks the corrected command.

`caption`, `report`, `demo`, `bench` and `benchmarks` of prism-eval, and `caprl-train` with its
subcommands, each run as a real process on inputs built here.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.fake_openai import closed_port
from tests.cli.test_bad_input import _noise, _png, mcq, run_cli, write_jsonl

TRAIN_CLI = [sys.executable, "-m", "caprl_train.cli"]


def one_error(proc: subprocess.CompletedProcess, pattern: str, code: int = 1) -> str:
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text[-3000:]
    assert proc.returncode == code, text[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and proc.stderr.strip().endswith(errors[0]), proc.stderr[-2000:]
    assert re.search(pattern, errors[0][len("Error: "):]), errors[0]
    return errors[0]


def run_train_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(TRAIN_CLI + args, cwd=cwd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, COLUMNS="200", PYTHONWARNINGS="ignore", **(env or {})),
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        (folder / f"{i}.png").write_bytes(_png(_noise((36 + i, 30))))
    return folder


def _offline(tmp_path: Path) -> dict[str, str]:
    return {"HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}", "HF_HUB_CACHE": str(tmp_path / "empty-hub")}


# ---- prism-eval caption ---------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["file:caps.jsonl", "none"])
def test_caption_refuses_captioners_that_compute_nothing_and_leaves_nothing(tmp_path, images, tiny_llava_dir, spec):
    write_jsonl(tmp_path / "caps.jsonl", [{"image": "0.png", "caption": "grey"}])
    out = tmp_path / "captioned"
    proc = run_cli(["caption", "--captioner", spec, "--images", str(images), "--out", str(out)], cwd=tmp_path)
    one_error(proc, rf"--captioner {re.escape(spec)}: .* computes no captions; give a model")
    assert not out.exists()
    fixed = run_cli(["caption", "--captioner", f"hf:{tiny_llava_dir}", "--images", str(images), "--out", str(out),
                     "--max-new-tokens", "4"], cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert len((out / "captions.jsonl").read_text().splitlines()) == 2


def test_caption_rerun_after_a_start_that_wrote_no_shard(tmp_path, images, tiny_llava_dir):
    """A manifest from a run that never captioned anything (another captioner, which failed to start) holds
    nothing to keep: the corrected command proceeds instead of asking for --overwrite."""
    out = tmp_path / "captioned"
    (out / "data").mkdir(parents=True)
    (out / "manifest.json").write_text(json.dumps({"captioner": "hf:some-other-model", "version": 1}))
    proc = run_cli(["caption", "--captioner", f"hf:{tiny_llava_dir}", "--images", str(images), "--out", str(out),
                    "--max-new-tokens", "4"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((out / "manifest.json").read_text())["captioner"] == f"hf:{tiny_llava_dir}"


@pytest.mark.parametrize("case", ["images_hub_id", "captioner_hub_id"])
def test_caption_with_no_network_fails_in_seconds(tmp_path, images, tiny_llava_dir, case):
    args = (["--images", "photos/2024", "--captioner", f"hf:{tiny_llava_dir}"] if case == "images_hub_id"
            else ["--images", str(images), "--captioner", "hf:someorg/captioner"])
    started = time.monotonic()
    proc = run_cli(["caption", *args, "--out", str(tmp_path / "o")], cwd=tmp_path, env=_offline(tmp_path))
    seconds = time.monotonic() - started
    what = r"--images photos/2024" if case == "images_hub_id" else r"hf:someorg/captioner"
    one_error(proc, rf"{what}: not in the local Hugging Face cache, and the hub \(http://127\.0\.0\.1:\d+\) cannot "
                    r"be reached \(ConnectError")
    assert seconds < 60, f"{seconds:.0f} s"


@pytest.mark.parametrize("flag,value,expect", [("--temperature", "nan", r"--temperature nan: must be a number"),
                                               ("--top-p", "nan", r"--top-p nan: must be a number in \(0, 1\]")])
def test_caption_refuses_non_numbers(tmp_path, images, tiny_llava_dir, flag, value, expect):
    proc = run_cli(["caption", "--captioner", f"hf:{tiny_llava_dir}", "--images", str(images), "--out",
                    str(tmp_path / "o"), flag, value], cwd=tmp_path)
    one_error(proc, expect)


def test_caption_out_under_a_regular_file(tmp_path, images, tiny_llava_dir):
    (tmp_path / "f").write_text("x")
    proc = run_cli(["caption", "--captioner", f"hf:{tiny_llava_dir}", "--images", str(images), "--out",
                    str(tmp_path / "f" / "o")], cwd=tmp_path)
    one_error(proc, r"--out .*/f/o: .*/f is a file, so no folder can be made under it")


# ---- prism-eval report --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_lm_dir) -> Path:
    root = tmp_path_factory.mktemp("report-run")
    (root / "img").mkdir()
    (root / "img" / "0.png").write_bytes(_png(_noise()))
    bench = write_jsonl(root / "bench.jsonl", [mcq(0, "img/0.png")])
    proc = run_cli(["run", "-b", str(bench), "-c", "none", "-j", f"hf:{tiny_lm_dir}", "--store",
                    str(root / "s.sqlite"), "-o", str(root / "run")], cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root / "run"


def test_report_out_under_a_regular_file(tmp_path, run_dir):
    (tmp_path / "f").write_text("x")
    proc = run_cli(["report", str(run_dir), "-o", str(tmp_path / "f" / "board.html")], cwd=tmp_path)
    one_error(proc, r"-o .*/f/board\.html: .*/f is a file, so no folder can be made under it")


def test_report_out_in_a_folder_nobody_may_write(tmp_path, run_dir):
    proc = run_cli(["report", str(run_dir), "-o", "/sys/board.html"], cwd=tmp_path)
    one_error(proc, r"-o /sys/board\.html: cannot write in /sys \(Permission denied\)")


# ---- prism-eval demo, bench, benchmarks ---------------------------------------------------------
def test_demo_out_under_a_regular_file(tmp_path):
    (tmp_path / "f").write_text("x")
    proc = run_cli(["demo", "--out", str(tmp_path / "f" / "demo")], cwd=tmp_path)
    one_error(proc, r"--out .*/f/demo: .*/f is a file, so no folder can be made under it")


def test_bench_judge_with_a_mistyped_spec(tmp_path):
    proc = run_cli(["bench", "judge", "--judge", "hf:/no/such/judge", "--out", str(tmp_path / "b")], cwd=tmp_path)
    one_error(proc, r"--judge hf:/no/such/judge: ")


def test_benchmarks_listing_with_a_malformed_user_spec(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "mine.yaml").write_text("name: mine\nfields: [unclosed\n")
    proc = run_cli(["benchmarks"], cwd=tmp_path, env={"PRISM_EVAL_BENCHMARKS": str(tmp_path / "specs")})
    one_error(proc, r"mine\.yaml: .*line \d+, column \d+")


# ---- caprl-train ----------------------------------------------------------------------------------
def test_curate_generate_from_saved_outputs_lacking_an_image(tmp_path, images):
    saved = write_jsonl(tmp_path / "outputs.jsonl", [{"image": "0.png", "caption": "#### 1. **Q?**\n"}])
    proc = run_train_cli(["curate", "generate", str(images), "--vlm", f"file:{saved}", "--out",
                          str(tmp_path / "qa.jsonl")], cwd=tmp_path)
    one_error(proc, rf"--vlm file:{re.escape(str(saved))}: no saved output for image '1\.png'")
    assert not (tmp_path / "qa.jsonl").exists()


def test_curate_generate_that_reads_no_question_fails(tmp_path, images):
    saved = write_jsonl(tmp_path / "outputs.jsonl", [{"image": f"{i}.png", "caption": "I cannot see the image."}
                                                     for i in range(2)])
    proc = run_train_cli(["curate", "generate", str(images), "--vlm", f"file:{saved}", "--out",
                          str(tmp_path / "qa.jsonl")], cwd=tmp_path)
    one_error(proc, r"no question could be read from any image's output")


@pytest.mark.parametrize("command", ["generate", "filter"])
def test_curate_with_a_server_that_is_not_there(tmp_path, images, command):
    qa = write_jsonl(tmp_path / "qa.jsonl", [])
    source = str(images) if command == "generate" else str(qa)
    url = f"http://127.0.0.1:{closed_port()}/v1"
    started = time.monotonic()
    proc = run_train_cli(["curate", command, source, "--vlm", f"openai:m@{url}", "--out",
                          str(tmp_path / "out.jsonl")], cwd=tmp_path)
    one_error(proc, rf"--captioner {re.escape(url)}/models: no server answers \(ConnectError")
    assert time.monotonic() - started < 60


def test_train_with_a_judge_folder_that_does_not_exist(tmp_path):
    data = write_jsonl(tmp_path / "qa.jsonl", [])
    proc = run_train_cli(["train", "--data", str(data), "--model", str(tmp_path), "--judge", "hf:./no-judge",
                          "--output-dir", str(tmp_path / "out")], cwd=tmp_path)
    one_error(proc, r"hf:\./no-judge: no such model folder")


def test_train_with_no_network_for_the_policy(tmp_path):
    data = write_jsonl(tmp_path / "qa.jsonl", [])
    proc = run_train_cli(["train", "--data", str(data), "--model", "someorg/policy", "--output-dir",
                          str(tmp_path / "out")], cwd=tmp_path, env=_offline(tmp_path))
    one_error(proc, r"--model someorg/policy: not in the local Hugging Face cache, and the hub")


def test_curate_filter_with_a_captions_file_for_a_vlm(tmp_path, images):
    """Filtering asks a model about each image; a captions file cannot answer (before: an AttributeError
    traceback from inside the engine)."""
    qa = write_jsonl(tmp_path / "qa.jsonl", [mcq(0, "images/0.png")])
    caps = write_jsonl(tmp_path / "caps.jsonl", [{"image": "images/0.png", "caption": "grey"}])
    proc = run_train_cli(["curate", "filter", str(qa), "--vlm", f"file:{caps}", "--out", str(tmp_path / "kept.jsonl")],
                         cwd=tmp_path)
    one_error(proc, rf"--vlm file:{re.escape(str(caps))}: filtering asks a model that sees the images")


@pytest.mark.parametrize("args,expect", [
    (["curate", "generate", "images", "--out", "qa.jsonl", "--temperature", "nan"], r"--temperature nan: must be a "
                                                                                     r"finite number"),
    (["train", "--data", "qa.jsonl", "--judge-temperature", "-1", "--print-config"],
     r"--judge-temperature -1\.0: a temperature must be 0 or more"),
    (["train", "--data", "qa.jsonl", "--learning-rate", "inf", "--print-config"], r"--learning-rate inf: must be a "
                                                                                   r"finite number")])
def test_caprl_train_refuses_numbers_that_are_not_numbers(tmp_path, args, expect):
    one_error(run_train_cli(args, cwd=tmp_path), expect, code=2)
