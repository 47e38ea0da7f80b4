"""The output-folder lock within one process (two processes: tests/cli/test_validation_runs.py)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from prism_eval.runner.lock import LOCK_NAME, acquire, output_lock, release


def test_reentrant_in_one_process_and_removed_when_released(tmp_path):
    out = tmp_path / "out"
    with output_lock(out):
        with output_lock(out):  # the CLI locks --out, evaluate locks the same folder again
            assert (out / LOCK_NAME).is_file()
        assert (out / LOCK_NAME).is_file()
    assert not (out / LOCK_NAME).exists()


def test_another_process_is_refused_until_release(tmp_path):
    token = acquire(tmp_path)
    code = ("import sys; from prism_eval.runner.lock import acquire, LockError\n"
            "try:\n    acquire(sys.argv[1])\nexcept LockError as e:\n    print(e); sys.exit(9)\n")
    try:
        held = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                              timeout=120)
    finally:
        release(token)
    assert held.returncode == 9 and "another prism-eval run" in held.stdout
    free = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert free.returncode == 0, free.stdout + free.stderr


def test_lock_error_names_the_folder(tmp_path):
    token = acquire(tmp_path)
    try:
        code = "import sys; from prism_eval.runner.lock import acquire; acquire(sys.argv[1])"
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    finally:
        release(token)
    assert "LockError" in proc.stderr and str(tmp_path) in proc.stderr
    with pytest.raises(KeyError):
        release(token)  # released once only
