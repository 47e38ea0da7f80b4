"""Inputs that are valid but easy to get wrong: each run completes with the result its inputs mean.

Real `prism-eval run` processes on small local benchmarks, with a tiny local
judge (random weights: the scores mean nothing, what is checked is which items
were scored, failed, named and written where).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.fake_openai import FakeOpenAI
from tests.cli.test_bad_input import CLI, _noise, _png, mcq, run_cli, write_jsonl


def _bench(folder: Path, rows: list | None = None, images: int = 3, name: str = "bench.jsonl") -> Path:
    (folder / "img").mkdir(parents=True, exist_ok=True)
    for i in range(images):
        (folder / "img" / f"{i}.png").write_bytes(_png(_noise((40 + i, 32))))
    return write_jsonl(folder / name, rows or [mcq(i, f"img/{i}.png") for i in range(images)])


def _caps(path: Path, keys: list[str], n: int = 1) -> Path:
    return write_jsonl(path, [{"image": k, "captions": [f"A grey noisy picture, number {j}." for j in range(n)]}
                              for k in keys])


def _run(args: list[str], tmp_path: Path, judge: Path, **kw) -> subprocess.CompletedProcess:
    proc = run_cli(["run", *args, "-j", f"hf:{judge}", "--store", str(tmp_path / "store.sqlite")], cwd=tmp_path,
                   **kw)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    return proc


def _samples(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]


def test_two_captions_files_with_one_name_get_two_folders(tmp_path, tiny_lm_dir):
    bench = _bench(tmp_path / "b")
    keys = [f"img/{i}.png" for i in range(3)]
    v1 = _caps((tmp_path / "v1").mkdir() or tmp_path / "v1" / "caps.jsonl", keys)
    v2 = _caps((tmp_path / "v2").mkdir() or tmp_path / "v2" / "caps.jsonl", keys[:2])
    out = tmp_path / "out"
    proc = _run(["-b", str(bench), "-c", f"file:{v1}", "-c", f"file:{v2}", "-o", str(out)], tmp_path, tiny_lm_dir)
    assert proc.returncode == 3, proc.stderr[-2000:]  # v2 lacks one image: its questions are failed items
    folders = sorted(p.name for p in out.iterdir() if (p / "results.json").is_file())
    assert len(folders) == 2, folders
    records = {json.loads((out / f / "results.json").read_text())["captioner"]: out / f for f in folders}
    assert set(records) == {f"file:{v1}", f"file:{v2}"}
    assert json.loads((records[f"file:{v1}"] / "results.json").read_text())["benchmarks"]["bench"]["failed"] == 0
    assert json.loads((records[f"file:{v2}"] / "results.json").read_text())["benchmarks"]["bench"]["failed"] == 1


def test_two_benchmark_files_named_alike_stay_two_benchmarks(tmp_path, tiny_lm_dir):
    a = _bench(tmp_path / "v1", [mcq(i, f"img/{i}.png") for i in range(3)])
    b = _bench(tmp_path / "v2", [mcq(i, f"img/{i}.png") for i in range(2)], images=2)
    out = tmp_path / "out"
    proc = _run(["-b", str(a), "-b", str(b), "-b", f"{tmp_path}/v1/../v1/bench.jsonl", "-c", "none",
                 "-o", str(out)], tmp_path, tiny_lm_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())["benchmarks"]
    assert {k: v["n"] for k, v in results.items()} == {"v1/bench": 3, "v2/bench": 2}  # the repeat is one benchmark
    by_bench: dict[str, set] = {}
    for s in _samples(out):
        by_bench.setdefault(s["benchmark"], set()).add(s["question_id"])
    assert by_bench == {"v1/bench": {"q0", "q1", "q2"}, "v2/bench": {"q0", "q1"}}


def test_a_local_file_named_like_a_shipped_benchmark_gets_no_published_rows(tmp_path, tiny_lm_dir):
    bench = _bench(tmp_path / "mine", name="mmstar.jsonl")
    out = tmp_path / "out"
    assert _run(["-b", str(bench), "-c", "none", "-o", str(out)], tmp_path, tiny_lm_dir).returncode == 0
    report = tmp_path / "board.json"
    proc = run_cli(["report", str(out), "-o", str(report)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = report.read_text()
    assert "mmstar" in text
    assert "CapRL-3B" not in text and "Qwen2.5-VL" not in text, "published rows attached to a local file"


@pytest.mark.parametrize("answer", ["red", "(A)"])
def test_answer_as_option_text_or_parenthesised_letter(tmp_path, tiny_lm_dir, answer):
    rows = [mcq(0, "img/0.png", options=["red", "green", "blue"], answer=answer)]
    bench = _bench(tmp_path / "b", rows, images=1)
    out = tmp_path / "out"
    proc = _run(["-b", str(bench), "-c", "none", "-o", str(out), "--scoring", "generate"], tmp_path, tiny_lm_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (sample,) = _samples(out)
    assert sample["options"][sample["options"].index("red")] == "red"
    assert sample["options"][ord(sample["gold"]) - 65] == "red"  # the gold letter, after shuffling, is red's


def test_data_parallel_with_a_captions_file_needs_no_replicas(tmp_path, tiny_lm_dir):
    bench = _bench(tmp_path / "b")
    caps = _caps(tmp_path / "caps.jsonl", [f"img/{i}.png" for i in range(3)])
    out = tmp_path / "out"
    proc = _run(["-b", str(bench), "-c", f"file:{caps}", "--data-parallel", "2", "-o", str(out),
                 "--scoring", "option-loglik"], tmp_path, tiny_lm_dir, env={"CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(s["status"] != "failed" for s in _samples(out))


def test_captions_folder_and_other_spellings_of_image_keys(tmp_path, tiny_lm_dir):
    bench = _bench(tmp_path / "b")
    folder = tmp_path / "captioned"
    folder.mkdir()
    # ./img/0.png, an absolute path, and a doubled slash: all name the benchmark's images
    _caps(folder / "captions.jsonl", ["./img/0.png", str(tmp_path / "b" / "img" / "1.png"), "img//2.png"])
    out = tmp_path / "out"
    proc = _run(["-b", str(bench), "-c", f"file:{folder}", "-o", str(out)], tmp_path, tiny_lm_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    samples = _samples(out)
    assert len(samples) == 3 and all(s["status"] != "failed" for s in samples)


def test_partial_captions_are_stated_up_front_whatever_the_store_holds(tmp_path, tiny_lm_dir):
    bench = _bench(tmp_path / "b", images=4, rows=[mcq(i, f"img/{i}.png") for i in range(4)])
    caps = tmp_path / "caps.jsonl"
    _caps(caps, [f"img/{i}.png" for i in range(4)])
    warm = _run(["-b", str(bench), "-c", f"file:{caps}", "-o", str(tmp_path / "full")], tmp_path, tiny_lm_dir)
    assert warm.returncode == 0, warm.stderr[-2000:]
    _caps(caps, [f"img/{i}.png" for i in (0, 2)])  # the same file, now lacking two images
    outcomes = []
    for store in ("store.sqlite", "fresh.sqlite"):  # the warm store, then an empty one
        out = tmp_path / f"partial-{store}"
        proc = run_cli(["run", "-b", str(bench), "-c", f"file:{caps}", "-j", f"hf:{tiny_lm_dir}", "--store",
                        str(tmp_path / store), "-o", str(out)], cwd=tmp_path)
        assert proc.returncode == 3, proc.stderr[-2000:]
        assert re.search(r"warning: file:\S+caps\.jsonl: no captions for 2 of 4 images of 'bench' "
                         r"\(first: 'img/1\.png'\); their questions will be failed items", proc.stderr), proc.stderr
        result = json.loads((out / "results.json").read_text())["benchmarks"]["bench"]
        outcomes.append((result["failed"], result["n"], result["score"]))
    assert outcomes[0] == outcomes[1] and outcomes[0][:2] == (2, 2)


def test_results_files_get_the_umask_permissions(tmp_path, tiny_lm_dir):
    bench = _bench(tmp_path / "b", images=1, rows=[mcq(0, "img/0.png")])
    out = tmp_path / "out"
    code = ("import os, sys; os.umask(0o022); from prism_eval.cli import main; sys.exit(main())")
    proc = subprocess.run([sys.executable, "-c", code, "run", "-b", str(bench), "-c", "none", "-j",
                           f"hf:{tiny_lm_dir}", "--store", str(tmp_path / "s.sqlite"), "-o", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("results.json", "samples.jsonl"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name


def test_a_server_that_refuses_every_model_call_stops_the_run_at_once(tmp_path, tiny_lm_dir):
    bench = _bench(tmp_path / "b", images=4, rows=[mcq(i, f"img/{i}.png") for i in range(4)])
    with FakeOpenAI(model_status=401) as server:  # /models answers, every caption request gets 401
        proc = _run(["-b", str(bench), "-c", f"openai:m@{server.url()}", "--caption-batch", "1",
                     "-o", str(tmp_path / "out")], tmp_path, tiny_lm_dir)
        calls = server.requests["POST /v1/chat/completions"]
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "HTTP 401" in errors[0] and "refuses these credentials" in errors[0], errors
    assert calls == 1, f"{calls} caption requests after the first 401"


def test_a_second_run_on_the_same_out_stops_while_the_first_runs(tmp_path, tiny_lm_dir):
    """Two real processes: the first holds the folder (its captioner is kept busy by the server), the second
    must stop with one line; the first then finishes and its results are whole."""
    bench = _bench(tmp_path / "b", images=2, rows=[mcq(i, f"img/{i}.png") for i in range(2)])
    out = tmp_path / "out"
    env = dict(os.environ, COLUMNS="200", PYTHONWARNINGS="ignore")
    with FakeOpenAI(hold=True) as server:
        first = subprocess.Popen(CLI + ["run", "-b", str(bench), "-c", f"openai:m@{server.url()}", "-j",
                                        f"hf:{tiny_lm_dir}", "--store", str(tmp_path / "s1.sqlite"), "-o", str(out)],
                                 cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert server.first_caption.wait(300), "the first run never started captioning"
            try:
                second = subprocess.run(CLI + ["run", "-b", str(bench), "-c", "none", "-j", f"hf:{tiny_lm_dir}",
                                               "--store", str(tmp_path / "s2.sqlite"), "-o", str(out)],
                                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            finally:
                server.release.set()
            _, first_err = first.communicate(timeout=600)
        finally:
            if first.poll() is None:
                first.kill()
    assert second.returncode == 1, second.stderr[-2000:]
    errors = [line for line in second.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and re.search(rf"--out {re.escape(str(out))}: another prism-eval run \(pid "
                                          rf"{first.pid}\) is writing there", errors[0]), second.stderr
    assert first.returncode == 0, first_err[-2000:]
    record = json.loads((out / "results.json").read_text())
    assert record["captioner"].startswith("openai:m@") and record["complete"]
    assert not (out / ".prism-eval.lock").exists()
