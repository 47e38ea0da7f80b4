"""Safe defaults: no remote code without the flag, API keys never written out, no pickle from user data.

- A model folder whose config points at its own Python code: that code must not
  run unless `--trust-remote-code` is given (a marker file tells whether it ran),
  and it does run with the flag (so the check can fail).
- A fake API key in the environment reaches a local OpenAI-compatible server (it
  is used) but appears in no output: results, samples, store, reports, terminal,
  not even when the server echoes it back in an error.
- The package deserialises no pickles: a scan of its source for pickle, unsafe
  torch.load, unsafe YAML and friends, and every trust_remote_code default is False.
"""
from __future__ import annotations

import ast
import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
PACKAGES = [REPO / "prism_eval", REPO / "caprl_train"]
FAKE_KEY = "sk-prism-eval-FAKE-KEY-4f1c9a7e2b6d0853"


def cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, COLUMNS="200", **env)
    return subprocess.run([sys.executable, "-m", "prism_eval.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def one_question(root: Path, n_images: int = 1) -> Path:
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_images):
        Image.new("RGB", (32 + i, 32), "red").save(root / "img" / f"{i}.png")
        rows.append({"id": f"q{i}", "image": f"img/{i}.png", "question": "What colour is it?",
                     "options": ["red", "blue"], "answer": "A"})
    path = root / "bench.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ---- trust_remote_code ----------------------------------------------------------------------
REMOTE_CODE = '''
from pathlib import Path
Path({marker!r}).write_text("the model folder's own code ran")
from transformers import {base_config}, {base_model}


class EvilConfig({base_config}):
    model_type = "prism-evil"


class EvilModel({base_model}):
    config_class = EvilConfig
'''


def evil_model(src: Path, dst: Path, marker: Path, base_config: str, base_model: str, auto: str) -> Path:
    """A copy of a working model folder whose config now names code inside the folder."""
    shutil.copytree(src, dst)
    (dst / "evil.py").write_text(REMOTE_CODE.format(marker=str(marker), base_config=base_config,
                                                    base_model=base_model))
    config = json.loads((dst / "config.json").read_text())
    config["model_type"] = "prism-evil"
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", auto: "evil.EvilModel"}
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_remote_code_runs_only_with_the_flag(tmp_path, tiny_llava_dir, tiny_lm_dir):
    bench = one_question(tmp_path / "b")
    marker = tmp_path / "REMOTE_CODE_RAN"
    captioner = evil_model(tiny_llava_dir, tmp_path / "evil-vlm", marker, "LlavaConfig",
                           "LlavaForConditionalGeneration", "AutoModelForImageTextToText")
    judge = evil_model(tiny_lm_dir, tmp_path / "evil-lm", marker, "LlamaConfig", "LlamaForCausalLM",
                       "AutoModelForCausalLM")
    env = {"HF_MODULES_CACHE": str(tmp_path / "hf-modules"), "HF_HUB_OFFLINE": "1"}
    common = ["run", "-b", str(bench), "--store", str(tmp_path / "s.sqlite"), "-o", str(tmp_path / "out")]

    as_captioner = cli([*common, "-c", f"hf:{captioner}", "-j", f"hf:{tiny_lm_dir}"], tmp_path, **env)
    as_judge = cli([*common, "-c", "none", "-j", f"hf:{judge}"], tmp_path, **env)
    for proc in (as_captioner, as_judge):
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert re.search(r"Error: .*custom code.*pass --trust-remote-code only if you trust it", proc.stderr), proc.stderr[-1000:]
    assert not marker.exists(), "a model folder's code ran without --trust-remote-code"

    # the explicit flag is what lets it run (whatever the folder's code does next)
    cli([*common, "-c", f"hf:{captioner}", "-j", f"hf:{tiny_lm_dir}", "--trust-remote-code"], tmp_path, **env)
    assert marker.exists()


def _functions(tree: ast.AST):
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_every_trust_remote_code_default_is_false():
    problems = []
    for path in sorted(p for pkg in PACKAGES for p in pkg.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for fn in _functions(tree):
            args = fn.args.args + fn.args.kwonlyargs
            defaults = [None] * (len(fn.args.args) - len(fn.args.defaults)) + fn.args.defaults + fn.args.kw_defaults
            for arg, default in zip(args, defaults):
                if arg.arg == "trust_remote_code" and default is not None:
                    if not (isinstance(default, ast.Constant) and default.value in (False, None)):
                        problems.append(f"{path.relative_to(REPO)}:{fn.lineno} {fn.name}: default {ast.unparse(default)}")
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "trust_remote_code" and \
                    isinstance(node.value, ast.Constant) and node.value.value is True:
                problems.append(f"{path.relative_to(REPO)}:{node.value.lineno}: trust_remote_code=True")
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and \
                    node.target.id == "trust_remote_code" and isinstance(node.value, ast.Constant) and node.value.value:
                problems.append(f"{path.relative_to(REPO)}:{node.lineno}: field default True")
    assert not problems, problems
    from prism_eval.cli.run import run_command

    ctx = run_command.make_context("run", ["--captioner", "none"])
    assert ctx.params["trust_remote_code"] is False  # what `prism-eval run` passes when the flag is absent


# ---- API keys ---------------------------------------------------------------------------------
class _FakeServer(BaseHTTPRequestHandler):
    """An OpenAI-compatible captioner that rejects one image with a message echoing the key, as some do."""

    seen_auth: list[str] = []

    def log_message(self, *args):  # keep the test output quiet
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        auth = self.headers.get("Authorization", "")
        self.seen_auth.append(auth)
        url = next(part["image_url"]["url"] for part in body["messages"][0]["content"] if part["type"] == "image_url")
        width = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size[0]
        if width == 33:
            reply, status = {"error": {"message": f"Incorrect API key provided: {auth}. You can find your API key "
                                                  f"at https://example.invalid/keys."}}, 400
        else:
            reply, status = {"id": "x", "object": "chat.completion", "model": body["model"],
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": "A red square."},
                                          "finish_reason": "stop"}]}, 200
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake_openai_server():
    _FakeServer.seen_auth = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_api_key_is_used_but_never_written(tmp_path, fake_openai_server, tiny_lm_dir):
    bench = one_question(tmp_path / "b", n_images=3)
    out, store = tmp_path / "out", tmp_path / "s.sqlite"
    run = cli(["run", "-b", str(bench), "-c", f"openai:tiny-captioner@{fake_openai_server}", "-j", f"hf:{tiny_lm_dir}",
               "--store", str(store), "-o", str(out)], tmp_path, OPENAI_API_KEY=FAKE_KEY)
    assert run.returncode == 3, run.stderr[-2000:]  # the rejected image is a failed item
    assert f"Bearer {FAKE_KEY}" in _FakeServer.seen_auth  # the key came from the environment and was used
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    rejected = next(s for s in samples if s["image"] == "img/1.png")
    assert rejected["status"] == "failed" and "Incorrect API key provided: Bearer ***" in rejected["error"]
    reports = [cli(["report", str(out), "-o", str(tmp_path / f"board.{ext}")], tmp_path, OPENAI_API_KEY=FAKE_KEY)
               for ext in ("html", "md", "json")]
    assert all(r.returncode == 0 for r in reports), [r.stderr[-500:] for r in reports]

    leaks = [f"terminal ({name})" for name, text in (("run", run.stdout + run.stderr),
                                                     *(("report", r.stdout + r.stderr) for r in reports))
             if FAKE_KEY in text]
    secret = FAKE_KEY.encode()
    for path in tmp_path.rglob("*"):
        if path.is_file() and secret in path.read_bytes():
            leaks.append(str(path.relative_to(tmp_path)))
    assert not leaks, f"the API key was written to {leaks}"
    assert store.exists() and (tmp_path / "board.html").exists()


# ---- no pickle from user data ------------------------------------------------------------------
UNSAFE = [
    (re.compile(r"^\s*(import|from)\s+(pickle|cPickle|_pickle|dill|shelve|marshal|joblib|cloudpickle)\b", re.M),
     "imports a pickle-family module"),
    (re.compile(r"\b(pickle|dill|joblib|cloudpickle|marshal)\.loads?\("), "deserialises a pickle"),
    (re.compile(r"\bread_pickle\("), "pandas.read_pickle"),
    (re.compile(r"allow_pickle\s*=\s*True"), "numpy load with allow_pickle=True"),
    (re.compile(r"\byaml\.(load|unsafe_load|full_load)\("), "unsafe YAML loader (use yaml.safe_load)"),
    (re.compile(r"weights_only\s*=\s*False"), "torch.load with weights_only=False"),
]


def test_no_pickle_or_unsafe_deserialisation_in_the_package():
    problems = []
    for path in sorted(p for pkg in PACKAGES for p in pkg.rglob("*.py")):
        text = path.read_text()
        for pattern, what in UNSAFE:
            for m in pattern.finditer(text):
                problems.append(f"{path.relative_to(REPO)}:{text[:m.start()].count(chr(10)) + 1}: {what}")
        tree = ast.parse(text, filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name == "torch.load":
                safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                           for k in node.keywords)
                if not safe:
                    problems.append(f"{path.relative_to(REPO)}:{node.lineno}: torch.load without weights_only=True")
            if name in ("eval", "exec"):
                problems.append(f"{path.relative_to(REPO)}:{node.lineno}: {name}() on a string")
    assert not problems, problems
