"""Credentials never leave the process: a password in a server URL and an API key in the environment are
searched for in everything a run, a report and a captioning job print or write.

The server (127.0.0.1) is careless on purpose: one judge request gets a 400 whose
message echoes the Authorization header it received and a URL with the password,
as some servers do; that error ends up in samples.jsonl, where it must arrive redacted.
"""
from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

from tests.cli.fake_openai import FakeOpenAI
from tests.cli.test_bad_input import _noise, _png, mcq, run_cli, write_jsonl

PASSWORD = "s3cret-PASSWORD-42"
API_KEY = "sk-test-APIKEY-0123456789abcdef"
SECRETS = (PASSWORD, API_KEY, base64.b64encode(f"alice:{PASSWORD}".encode()).decode())


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _readable(path: Path) -> str:
    """A file's text as a reader would see it: parquet and SQLite decoded, anything else as bytes."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return str(pq.read_table(path).to_pylist()) + str(pq.read_schema(path).metadata)
    if path.suffix == ".sqlite":
        with sqlite3.connect(path) as db:
            return str(db.execute("SELECT * FROM cache").fetchall())
    return path.read_bytes().decode("utf-8", errors="replace")


def test_no_password_or_api_key_in_any_output(tmp_path, tiny_llava_dir):
    (tmp_path / "b" / "img").mkdir(parents=True)
    for i in range(2):
        (tmp_path / "b" / "img" / f"{i}.png").write_bytes(_png(_noise((40 + i, 32))))
    bench = write_jsonl(tmp_path / "b" / "bench.jsonl",
                        [mcq(0, "img/0.png"), mcq(1, "img/1.png", question="FAILME: which colour?")])
    env = {"PRISM_EVAL_API_KEY": API_KEY}
    outputs = tmp_path / "outputs"
    with FakeOpenAI(leak=f"tried http://alice:{PASSWORD}@127.0.0.1/v1 with {API_KEY}") as server:
        spec = f"openai:m@{server.url(f'alice:{PASSWORD}')}"  # sent as basic auth
        judge = f"openai:m@{server.url()}"  # the key from the environment, sent as a bearer token
        run = run_cli(["run", "-b", str(bench), "-c", spec, "-j", judge, "--scoring", "generate",
                       "--store", str(outputs / "store.sqlite"), "-o", str(outputs / "run")], cwd=tmp_path, env=env)
        caption = run_cli(["caption", "--captioner", spec, "--images", str(tmp_path / "b" / "img"),
                           "--out", str(outputs / "captioned")], cwd=tmp_path, env=env)
        single = run_cli(["caption", "--captioner", spec, "--images", str(tmp_path / "b" / "img"),
                          "--out", str(outputs / "captions.parquet")], cwd=tmp_path, env=env)
        refused = run_cli(["run", "-b", str(bench), "-c", spec, "-j", f"openai:other@{server.url(f'alice:{PASSWORD}')}",
                           "--store", str(outputs / "store2.sqlite"), "-o", str(outputs / "run2")],
                          cwd=tmp_path, env=env)
        assert {a.split()[0] for a in server.auth} == {"Basic", "Bearer"}, "both credentials were sent"
    reports = [run_cli(["report", str(outputs / "run"), "-o", str(outputs / f"board.{suffix}")], cwd=tmp_path,
                       env=env) for suffix in ("html", "md", "json")]
    found = {}
    for name, proc in [("run", run), ("caption", caption), ("caption parquet", single), ("refused", refused),
                       *[(f"report {i}", p) for i, p in enumerate(reports)]]:
        if _leaks(proc.stdout + proc.stderr):
            found[f"terminal of {name}"] = _leaks(proc.stdout + proc.stderr)
    written = _files(outputs)
    assert {p.name for p in written} >= {"results.json", "samples.jsonl", "store.sqlite", "manifest.json",
                                         "captions.jsonl", "captions.parquet", "board.html", "board.md",
                                         "board.json"}
    for path in written:
        if _leaks(_readable(path)) or _leaks(path.read_bytes().decode("latin-1")):
            found[str(path.relative_to(outputs))] = _leaks(_readable(path)) or ["(raw bytes)"]
    assert not found, found
    assert run.returncode == 3, run.stderr[-3000:]  # the FAILME question failed, with the server's message
    assert caption.returncode == 0 and single.returncode == 0, caption.stderr[-2000:] + single.stderr[-2000:]
    assert refused.returncode == 1 and "does not serve model 'other'" in refused.stderr
    assert all(p.returncode == 0 for p in reports), [p.stderr[-1000:] for p in reports]
    samples = (outputs / "run" / "samples.jsonl").read_text()
    assert "rejected Bearer *** (tried http://***@127.0.0.1/v1 with ***)" in samples, "the failed item keeps " \
        "its (redacted) error"
    assert "openai:m@http://***@127.0.0.1" in (outputs / "run" / "results.json").read_text()
