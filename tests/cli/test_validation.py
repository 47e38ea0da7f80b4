"""Inputs checked before any model call: each mistake of a new, careless or hostile user ends in one line.

Every case is a real `prism-eval run` (in this process through click's runner, or
as its own process where the environment matters) on inputs built here. Each
must end with exit status 1 (2 for click's usage errors), exactly one
`Error: <input>: <problem>` line naming what to fix, no traceback, and no
results written. The judge and captioners are real local models, so a case that
slipped past the checks would run them and show it.
"""
from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from tests.cli.fake_openai import FakeOpenAI, closed_port
from tests.cli.test_bad_input import _noise, _png, invoke_cli, mcq, run_cli, write_jsonl


@dataclass
class Case:
    args: list[str]  # after `run`
    expect: str  # regular expression for the one error line (after "Error: ")
    code: int = 1
    env: dict[str, str] = field(default_factory=dict)  # set: the case runs as its own process
    server: FakeOpenAI | None = None


def _bench(root: Path, name: str, rows: list, images: int = 2) -> Path:
    folder = root / name
    (folder / "img").mkdir(parents=True)
    for i in range(images):
        (folder / "img" / f"{i}.png").write_bytes(_png(_noise((40 + i, 32))))
    return write_jsonl(folder / "bench.jsonl", rows)


def _two(root: Path, name: str, **over) -> Path:
    """A benchmark of two questions about two images; `over` changes the first question."""
    return _bench(root, name, [mcq(1, "img/0.png", **over), mcq(2, "img/1.png")])


CaseMaker = Callable[[Path, dict], Case]
CASES: dict[str, CaseMaker] = {}


def case(fn: CaseMaker) -> CaseMaker:
    CASES[fn.__name__] = fn
    return fn


# ---- benchmark rows ------------------------------------------------------------------------
@case
def options_with_duplicate_texts(root, ctx):
    b = _two(root, "dup_opts", options=["red", "red", "blue", "green"], answer="B")
    return Case(["-b", str(b)], re.escape(str(b)) + r":1: options A and B have the same text 'red'")


@case
def option_is_the_reserved_cannot_answer_text(root, ctx):
    b = _two(root, "reserved", options=["red", "Can not answer based on the caption", "blue"], answer="A")
    return Case(["-b", str(b)], re.escape(str(b)) + r":1: option B is 'Can not answer based on the caption', "
                                                    r"which the protocols add themselves")


@case
def unknown_key_answr(root, ctx):
    row = {k: v for k, v in mcq(1, "img/0.png").items() if k != "answer"}
    b = _bench(root, "answr", [dict(row, answr="D")])
    return Case(["-b", str(b)], re.escape(str(b)) + r":1: unknown key 'answr' \(did you mean 'answer'\?\)")


@case
def unknown_key_metirc(root, ctx):
    b = _bench(root, "metirc", [{"id": "o1", "image": "img/0.png", "question": "Colour?", "answer": "grey",
                                 "metirc": "relaxed_accuracy"}])
    return Case(["-b", str(b)], re.escape(str(b)) + r":1: unknown key 'metirc' \(did you mean 'metric'\?\)")


@case
def options_null(root, ctx):
    b = _two(root, "null_opts", options=None, answer="A")
    return Case(["-b", str(b)], re.escape(str(b)) + r":1: 'options' is null")


@case
def question_over_the_length_limit(root, ctx):
    b = _two(root, "long_q", question="Which colour? " * 2000)
    return Case(["-b", str(b)], re.escape(str(b)) + r":1: 'question' has 28,000 characters, over the 20,000")


@case
def line_over_a_million_characters(root, ctx):
    b = _two(root, "huge_line", hint="x" * 1_100_000)
    return Case(["-b", str(b)], re.escape(str(b)) + r":1: line of 1,100,\d+ characters, over the 1,000,000")


@case
def malformed_benchmark_yaml(root, ctx):
    spec = root / "broken.yaml"
    spec.write_text("name: broken\ndataset: {path: x, split: test\nfields: [\n")
    return Case(["-b", str(spec)], re.escape(str(spec)) + r": .*line \d+, column \d+")


@case
def mistyped_benchmark_name(root, ctx):
    return Case(["-b", "mmstr"], r"mmstr: no such benchmark file or spec name \(did you mean 'mmstar'\?\)")


@case
def benchmarks_env_names_a_file(root, ctx):
    f = root / "specs.yaml"
    f.write_text("name: x\n")
    return Case(["-b", "mmstar"], r"PRISM_EVAL_BENCHMARKS: .*specs\.yaml' is a file",
                env={"PRISM_EVAL_BENCHMARKS": str(f)})


@case
def lmms_task_without_lmms_eval(root, ctx):
    import importlib.util

    if importlib.util.find_spec("lmms_eval") is not None:
        pytest.skip("lmms-eval is importable here")
    makefile = Path(__file__).resolve().parents[2] / "Makefile"
    assert re.search(r"^setup-lmms:", makefile.read_text(), re.M), "the target the message names exists"
    return Case(["-b", "lmms:mmstar"], r"use the \.venv-lmms environment \(`make setup-lmms`\)")


# ---- sampling values -------------------------------------------------------------------------
@case
def caption_temperature_nan(root, ctx):
    return Case(["-b", str(ctx["ok"]), "--caption-temperature", "nan"],
                r"--caption-temperature nan: must be a number from 0 to 10")


@case
def caption_temperature_negative(root, ctx):
    return Case(["-b", str(ctx["ok"]), "--caption-temperature", "-0.5"],
                r"Invalid value for '--caption-temperature': -0\.5 is not in the range", code=2)


# ---- captions files ---------------------------------------------------------------------------
def _caps(root: Path, name: str, rows: list) -> str:
    return "file:" + str(write_jsonl(root / f"{name}.jsonl", rows))


@case
def fewer_captions_per_image_than_asked(root, ctx):
    caps = _caps(root, "one_each", [{"image": f"img/{i}.png", "caption": "grey"} for i in range(2)])
    return Case(["-b", str(ctx["ok"]), "-c", caps, "-n", "3"],
                re.escape(caps) + r": has only 1 caption\(s\) for some images of 'ok', but this run asks for 3 "
                                  r"per image; pass --num-captions 1")


@case
def duplicate_caption_keys(root, ctx):
    caps = _caps(root, "dup_keys", [{"image": "img/0.png", "caption": "grey"}, {"image": "img/1.png",
                                                                                 "caption": "grey"},
                                    {"image": "img/0.png", "caption": "red"}])
    return Case(["-b", str(ctx["ok"]), "-c", caps],
                re.escape(caps[5:]) + r":3: image 'img/0\.png' already has captions on line 1")


@case
def duplicate_caption_keys_spelled_differently(root, ctx):
    caps = _caps(root, "dup_norm", [{"image": "img/0.png", "caption": "grey"}, {"image": "./img/0.png",
                                                                                 "caption": "red"}])
    return Case(["-b", str(ctx["ok"]), "-c", caps],
                re.escape(caps[5:]) + r":2: image '\./img/0\.png' already has captions on line 1")


@case
def captions_match_no_image(root, ctx):
    caps = _caps(root, "elsewhere", [{"image": "pics/0.png", "caption": "grey"}])
    return Case(["-b", str(ctx["ok"]), "-c", caps],
                re.escape(caps) + r": no caption matches any image of benchmark 'ok' \(it asks about 'img/0\.png'; "
                                  r"the file's first key is 'pics/0\.png'\)")


@case
def captions_folder_without_captions_file(root, ctx):
    (root / "empty_dir").mkdir()
    return Case(["-b", str(ctx["ok"]), "-c", f"file:{root / 'empty_dir'}"],
                re.escape(str(root / "empty_dir")) + r": a folder without captions\.jsonl")


# ---- model specs ----------------------------------------------------------------------------
@case
def judge_folder_mistyped(root, ctx):
    return Case(["-b", str(ctx["ok"]), "-c", f"hf:{ctx['vlm']}", "-j", "hf:./judges/smollm-typo"],
                r"hf:\./judges/smollm-typo: no such model folder '\./judges/smollm-typo'")


@case
def captioner_folder_mistyped(root, ctx):
    return Case(["-b", str(ctx["ok"]), "-c", "hf:/no/such/captioner"],
                r"hf:/no/such/captioner: no such model folder '/no/such/captioner'")


@case
def hub_id_with_no_network(root, ctx):
    port = closed_port()
    return Case(["-b", str(ctx["ok"]), "-c", "hf:someorg/some-captioner"],
                rf"hf:someorg/some-captioner: not in the local Hugging Face cache, and the hub "
                rf"\(http://127\.0\.0\.1:{port}\) cannot be reached \(ConnectError",
                env={"HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HUB_CACHE": str(root / "empty-hub")})


@case
def hub_id_that_does_not_exist(root, ctx):
    hub = FakeOpenAI()  # stands in for the hub: GET /api/models/<id> answers 404
    return Case(["-b", str(ctx["ok"]), "-c", f"hf:{ctx['vlm']}", "-j", "hf:someorg/judge-typo"],
                r"hf:someorg/judge-typo: no local folder of that name, and no such model on the hub \(HTTP 404",
                env={"HF_ENDPOINT": f"http://127.0.0.1:{hub.port}", "HF_HUB_CACHE": str(root / "empty-hub")},
                server=hub)


@case
def judge_server_refuses_connections(root, ctx):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    return Case(["-b", str(ctx["ok"]), "-c", f"hf:{ctx['vlm']}", "-j", f"openai:m@{url}"],
                rf"--judge {re.escape(url)}/models: no server answers \(ConnectError")


@case
def judge_server_answers_401(root, ctx):
    server = FakeOpenAI(status=401)
    return Case(["-b", str(ctx["ok"]), "-c", f"hf:{ctx['vlm']}", "-j", f"openai:m@{server.url()}"],
                rf"--judge {re.escape(server.url())}/models: HTTP 401: refused \(the server refuses these "
                r"credentials; set PRISM_EVAL_API_KEY or OPENAI_API_KEY\)", server=server)


@case
def captioner_server_answers_403(root, ctx):
    server = FakeOpenAI(status=403)
    return Case(["-b", str(ctx["ok"]), "-c", f"openai:m@{server.url()}"],
                rf"--captioner {re.escape(server.url())}/models: HTTP 403", server=server)


@case
def judge_server_lacks_the_model(root, ctx):
    server = FakeOpenAI(models=("Qwen/Qwen2.5-7B-Instruct",))
    return Case(["-b", str(ctx["ok"]), "-c", f"hf:{ctx['vlm']}", "-j", f"openai:qwen-7b@{server.url()}"],
                rf"--judge {re.escape(server.url())}/models: does not serve model 'qwen-7b' \(it serves "
                r"Qwen/Qwen2\.5-7B-Instruct\)", server=server)


# ---- outputs -------------------------------------------------------------------------------
@case
def out_under_a_regular_file(root, ctx):
    (root / "a-file").write_text("x")
    out = root / "a-file" / "run"
    return Case(["-b", str(ctx["ok"]), "--out", str(out)],
                rf"--out {re.escape(str(out))}: {re.escape(str(root / 'a-file'))} is a file, so no folder can be "
                r"made under it")


@case
def out_on_a_read_only_mount(root, ctx):
    if os.access("/sys", os.W_OK) and os.geteuid() != 0:  # pragma: no cover - an unusual machine
        pytest.skip("/sys is writable here")
    return Case(["-b", str(ctx["ok"]), "--out", "/sys/prism-eval-run"],
                r"--out /sys/prism-eval-run: cannot write in /sys \(Permission denied\)")


@case
def store_under_a_regular_file(root, ctx):
    (root / "b-file").write_text("x")
    store = root / "b-file" / "store.sqlite"
    return Case(["-b", str(ctx["ok"]), "--store", str(store)],
                re.escape(str(store)) + r": cannot open the cache database \(.*\); pass another --store$")


# ---- the corpus --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tiny_lm_dir, tiny_llava_dir):
    root = tmp_path_factory.mktemp("validation")
    ok = _bench(root, "ok", [mcq(1, "img/0.png"), mcq(2, "img/1.png")])
    ok = ok.rename(ok.with_name("ok.jsonl"))
    return root, {"ok": ok, "judge": tiny_lm_dir, "vlm": tiny_llava_dir}


@pytest.mark.parametrize("name", list(CASES))
def test_each_mistake_gets_one_line_before_any_model_call(name, corpus, tmp_path):
    root, ctx = corpus
    folder = root / name
    folder.mkdir()
    c = CASES[name](folder, ctx)
    args = ["run", *c.args]
    if "-c" not in args:
        args += ["-c", "none"]
    if "-j" not in args:
        args += ["-j", f"hf:{ctx['judge']}"]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    if "--store" not in args:
        args += ["--store", str(tmp_path / "store.sqlite")]
    started = time.monotonic()
    with c.server or contextlib.nullcontext():
        proc = run_cli(args, cwd=tmp_path, env=c.env) if c.env else invoke_cli(args)
    seconds = time.monotonic() - started
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, text[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert proc.returncode == c.code, text[-2000:]
    assert len(errors) == 1 and proc.stderr.strip().endswith(errors[0]), proc.stderr[-2000:]
    assert re.search(c.expect, errors[0][len("Error: "):]), errors[0]
    assert not (tmp_path / "out" / "results.json").exists()
    assert not (tmp_path / "store.sqlite").exists(), "the store is opened only after every check passed"
    assert seconds < 60, f"found after {seconds:.0f} s"
