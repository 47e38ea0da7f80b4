"""Crash and resume: SIGKILL a real `prism-eval run` while it captions and again while it judges.

The run is a subprocess with a real captioner (the tiny random LLaVA, sampled
captions seeded per image) and the built-in SmolLM2 judge. The phase is read
from the store itself (committed caption and judge rows), never from a clock.
After the kills the same command finishes, and its results must equal an
uninterrupted run's with the same seed, with every finished model call kept
(SQLite rowids of committed rows are unchanged: nothing was recomputed or
rewritten) and the remaining calls counted exactly once.
"""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

N_IMAGES = 8  # four captioner calls and four judge calls: the kill lands in a window of three of each
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]
POLL_S = 0.02  # how often the store is looked at; the condition, not this interval, decides when to kill


def build_bench(root: Path) -> Path:
    (root / "img").mkdir(parents=True)
    rows = []
    for i, colour in enumerate(COLOURS[:N_IMAGES]):
        Image.new("RGB", (40 + 4 * i, 32), colour).save(root / "img" / f"{i}.png")
        options = [colour] + [c for c in COLOURS if c != colour][:3]
        rows.append({"id": f"q{i}", "image": f"img/{i}.png", "question": "What colour is the picture?",
                     "options": options, "answer": "A"})
    path = root / "bench.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def command(bench: Path, captioner: Path, judge: str, store: Path, out: Path) -> list[str]:
    # two images per captioner call and two requests per judge call: each commits to the store on its own
    return [sys.executable, "-m", "prism_eval.cli", "run", "--benchmark", str(bench), "--captioner", f"hf:{captioner}",
            "--judge", judge, "--caption-max-tokens", "48", "--caption-batch", "2", "--judge-batch", "2",
            "--seed", "7", "--store", str(store), "--out", str(out)]


def rows(store: Path, kind: str) -> dict[str, int]:
    """key -> rowid of the committed rows of one kind (a rewritten row gets a new rowid)."""
    if not store.exists():
        return {}
    db = sqlite3.connect(store, timeout=30)
    try:
        return dict(db.execute("SELECT key, rowid FROM cache WHERE kind = ?", (kind,)).fetchall())
    except sqlite3.OperationalError:  # the table is not created yet
        return {}
    finally:
        db.close()


def integrity(store: Path) -> str:
    db = sqlite3.connect(store)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)


def kill_when(proc: subprocess.Popen, condition, what: str, log: Path, deadline_s: float = 900) -> None:
    """SIGKILL `proc` as soon as `condition()` holds; fail if it exits first."""
    end = time.monotonic() + deadline_s
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(POLL_S)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def calls(output: str) -> tuple[int, int]:
    m = re.search(r"\((\d+) captioner calls, (\d+) judge calls\)", output)
    assert m, output[-2000:]
    return int(m.group(1)), int(m.group(2))


def comparable(out: Path) -> tuple[dict, list[str]]:
    results = json.loads((out / "results.json").read_text())
    for volatile in ("created",):
        results.pop(volatile)
    return results, (out / "samples.jsonl").read_text().splitlines()


def test_sigkill_while_captioning_and_while_judging_then_resume(tmp_path, tiny_llava_dir, builtin_judge_spec):
    bench = build_bench(tmp_path / "bench")

    # the reference: one uninterrupted run
    ref_store, ref_out = tmp_path / "ref.sqlite", tmp_path / "ref"
    ref = subprocess.run(command(bench, tiny_llava_dir, builtin_judge_spec, ref_store, ref_out),
                         capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"), timeout=900)
    assert ref.returncode == 0, ref.stderr[-3000:]
    assert calls(ref.stderr) == (N_IMAGES, N_IMAGES)

    store, out = tmp_path / "store.sqlite", tmp_path / "out"
    cmd = command(bench, tiny_llava_dir, builtin_judge_spec, store, out)

    # 1. killed while captioning: some captions are committed, not all, no judge answer yet
    log1 = tmp_path / "run1.log"
    kill_when(start(cmd, log1), lambda: 0 < len(rows(store, "caption")) < N_IMAGES, "captioning", log1)
    assert integrity(store) == "ok"
    captions_1 = rows(store, "caption")
    assert 0 < len(captions_1) < N_IMAGES and not rows(store, "judge")

    # 2. the same command, killed while judging
    log2 = tmp_path / "run2.log"
    kill_when(start(cmd, log2), lambda: 0 < len(rows(store, "judge")) < N_IMAGES, "judging", log2)
    assert integrity(store) == "ok"
    captions_2, judged_2 = rows(store, "caption"), rows(store, "judge")
    assert len(captions_2) == N_IMAGES and 0 < len(judged_2) < N_IMAGES
    # the captions of run 1 were not made again (a rewrite would have given them new rowids)
    assert {k: captions_2[k] for k in captions_1} == captions_1
    assert not (out / "results.json").exists()  # nothing half-written in the results folder

    # 3. the same command runs to the end and makes only the missing calls
    final = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"), timeout=900)
    assert final.returncode == 0, final.stderr[-3000:]
    assert calls(final.stderr) == (0, N_IMAGES - len(judged_2))
    judged_3 = rows(store, "judge")
    assert {k: judged_3[k] for k in judged_2} == judged_2 and len(judged_3) == N_IMAGES
    assert rows(store, "caption") == captions_2

    # identical to the uninterrupted run: same numbers, every item once
    got, ref_results = comparable(out), comparable(ref_out)
    assert got[0]["benchmarks"] == ref_results[0]["benchmarks"]
    assert got[0]["config"] == ref_results[0]["config"]
    assert got[1] == ref_results[1]
    lines = [json.loads(line) for line in got[1]]
    assert sorted(line["question_id"] for line in lines) == [f"q{i}" for i in range(N_IMAGES)]
    assert got[0]["benchmarks"]["bench"]["n"] == N_IMAGES and got[0]["benchmarks"]["bench"]["failed"] == 0
    # the captions were sampled (temperature 1, seeded per image), so the comparison is not trivial
    assert len({line["caption"] for line in lines}) > 1
