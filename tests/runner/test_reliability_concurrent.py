"""Two runs sharing one store at the same time: both finish, neither corrupts the other's results.

Clusters run several evaluations against one cache; SQLite in WAL mode with a
long busy timeout lets them take turns writing.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from PIL import Image

N = 12


def test_two_runs_on_one_store_at_once(tmp_path, tiny_llava_dir, tiny_lm_dir):
    root = tmp_path / "b"
    (root / "img").mkdir(parents=True)
    rows = []
    for i in range(N):
        Image.effect_noise((40 + i, 40), 30 + 5 * i).convert("RGB").save(root / "img" / f"{i}.png")
        rows.append({"id": f"q{i}", "image": f"img/{i}.png", "question": "Is the picture noisy?",
                     "options": ["yes", "no", "a little"], "answer": "A"})
    bench = root / "bench.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = tmp_path / "shared.sqlite"

    def start(out: Path) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "prism_eval.cli", "run", "-b", str(bench), "-c", f"hf:{tiny_llava_dir}",
               "-j", f"hf:{tiny_lm_dir}", "--caption-max-tokens", "8", "--caption-batch", "1", "--judge-batch", "1",
               "--store", str(store), "-o", str(out)]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, COLUMNS="200"), stdin=subprocess.DEVNULL)

    procs = [start(tmp_path / "a"), start(tmp_path / "b-out")]
    outputs = [p.communicate(timeout=900) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0 and "Traceback" not in err, err[-3000:]
        assert "locked" not in err
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b-out" / "results.json").read_text())
    assert a["benchmarks"] == b["benchmarks"] and a["benchmarks"]["bench"]["n"] == N
    assert (tmp_path / "a" / "samples.jsonl").read_text() == (tmp_path / "b-out" / "samples.jsonl").read_text()
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # one row per distinct call: whichever run computed an item first, the other reused or replaced it
    assert db.execute("SELECT COUNT(*) FROM cache WHERE kind = 'caption'").fetchone()[0] == N
    assert db.execute("SELECT COUNT(*) FROM cache WHERE kind = 'judge'").fetchone()[0] == N
    db.close()
