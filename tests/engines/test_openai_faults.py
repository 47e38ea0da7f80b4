"""The OpenAI-compatible engine against a local fault-injecting server.

The server (http.server on 127.0.0.1) follows a fixed fault schedule per item:
429 with Retry-After, 500/503, a response that never comes (the client's
timeout must fire), a dropped connection, malformed JSON. It counts requests and
successful answers per item id, so the test can check that every item was
answered exactly once and that the client's retry report matches what was
injected, cause by cause.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import select
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from prism_eval.core.records import JudgeRequest, Sampling
from prism_eval.engines.base import EngineError
from prism_eval.engines.openai import OpenAICaptioner, OpenAIJudge
from prism_eval.engines.registry import parse_model_spec

# attempt k of item i gets SCHEDULE[i % 8][k] (then success)
SCHEDULE = {0: [], 1: ["429"], 2: ["500"], 3: ["slow"], 4: ["drop"], 5: ["badjson"],
            6: ["503", "429", "drop"], 7: ["badshape", "500"]}
CAUSE = {"429": "429", "500": "5xx", "503": "5xx", "slow": "timeout", "drop": "connection",
         "badjson": "malformed", "badshape": "malformed"}
ITEM = re.compile(r"item-(\d+)")


class FaultState:
    def __init__(self, schedule: dict[int, list[str]] | None = None, always: str | None = None) -> None:
        self.lock = threading.Lock()
        self.attempts: Counter = Counter()
        self.ok: Counter = Counter()
        self.injected: Counter = Counter()
        self.schedule = SCHEDULE if schedule is None else schedule
        self.always = always
        self.auth: set[str] = set()
        self.paths: Counter = Counter()

    def next_fault(self, item: int) -> str | None:
        with self.lock:
            k = self.attempts[item]
            self.attempts[item] += 1
            if self.always:
                fault = self.always
            else:
                plan = self.schedule.get(item % len(self.schedule), [])
                fault = plan[k] if k < len(plan) else None
            if fault:
                self.injected[CAUSE.get(fault, fault)] += 1
            return fault


def _text_of(body: dict) -> str:
    if "prompt" in body:
        return body["prompt"] if isinstance(body["prompt"], str) else ""
    parts = []
    for m in body.get("messages", []):
        c = m["content"]
        parts.extend([c] if isinstance(c, str) else [p.get("text", "") for p in c if p.get("type") == "text"])
    return "\n".join(parts)


def _image_digest(url: str) -> str:
    data = base64.b64decode(url.split(",", 1)[1])
    img = Image.open(io.BytesIO(data)).convert("RGB")
    return hashlib.sha256(img.tobytes()).hexdigest()[:10]


def make_handler(state: FaultState):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep pytest output clean
            pass

        def _send(self, code: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self):  # noqa: N802 - http.server API
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            with state.lock:
                state.paths[self.path] += 1
                state.auth.add(self.headers.get("Authorization", ""))
            if self.path == "/tokenize":
                return self._send(404, b'{"error": {"message": "not found"}}')
            m = ITEM.search(_text_of(body))
            if not m:
                return self._send(400, b'{"error": {"message": "no item id in the prompt"}}')
            item = int(m.group(1))
            fault = state.next_fault(item)
            if fault == "429":
                return self._send(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "1"})
            if fault in ("500", "503"):
                return self._send(int(fault), b'{"error": {"message": "server error"}}')
            if fault == "bad-request":
                return self._send(400, b'{"error": {"message": "bad request"}}')
            if fault == "slow":
                # Never answer: wait until the client gives up and closes the connection (30 s cap).
                select.select([self.connection], [], [], 30)
                self.close_connection = True
                return None
            if fault == "drop":
                self.close_connection = True
                return None
            if fault == "badjson":
                return self._send(200, b'{"choices": [{"text": "trunc')
            if fault == "badshape":
                return self._send(200, b'{"object": "text_completion"}')
            with state.lock:
                state.ok[item] += 1
            return self._send(200, json.dumps(self._answer(item, body)).encode())

        def _answer(self, item: int, body: dict) -> dict:
            if self.path == "/v1/completions":
                return {"choices": [{"index": 0, "text": f" answer to item-{item}"}]}
            if body.get("logprobs"):
                top = [{"token": " A", "logprob": -0.25 - item / 100}, {"token": "B", "logprob": -1.5},
                       {"token": " the", "logprob": -3.0}]
                return {"choices": [{"index": 0, "message": {"role": "assistant", "content": " A"},
                                     "logprobs": {"content": [{"token": " A", "logprob": top[0]["logprob"],
                                                               "top_logprobs": top}]}}]}
            urls = [p["image_url"]["url"] for m in body["messages"] if isinstance(m["content"], list)
                    for p in m["content"] if p.get("type") == "image_url"]
            if urls:
                digests = ",".join(_image_digest(u) for u in urls)
                return {"choices": [{"index": k, "message": {"role": "assistant",
                                                             "content": f"item-{item} img {digests} #{k}"}}
                                    for k in range(body.get("n", 1))]}
            return {"choices": [{"index": 0, "message": {"role": "assistant", "content": f"chat item-{item}"}}]}

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog (5) drops SYNs under 8 concurrent connects


@pytest.fixture
def fault_server():
    servers = []

    def start(**kw) -> tuple[str, FaultState]:
        state = FaultState(**kw)
        srv = _Server(("127.0.0.1", 0), make_handler(state))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/v1", state

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _requests(n: int, fmt: str) -> list[JudgeRequest]:
    return [JudgeRequest(messages=(("user", f"Caption: item-{i}. Question?"),), prefill="The answer is",
                         chat_format=fmt) for i in range(n)]


FAST = dict(timeout=2.0, backoff=0.01, max_backoff=2.0, concurrency=8, max_retries=5)


def _expected_injected(n: int) -> Counter:
    c: Counter = Counter()
    for i in range(n):
        for f in SCHEDULE[i % 8]:
            c[CAUSE[f]] += 1
    return c


@pytest.mark.parametrize("fmt", ["chatml", "model"])
def test_generate_survives_every_fault_without_losing_or_duplicating(fault_server, fmt, monkeypatch):
    monkeypatch.setenv("PRISM_EVAL_API_KEY", "sk-test-secret")
    url, state = fault_server()
    judge = OpenAIJudge("judge-model", url, tokenizer="auto", **FAST)  # no /tokenize here: text mode
    n = 24
    out = judge.generate(_requests(n, fmt), Sampling(max_new_tokens=8))
    want = [f" answer to item-{i}" if fmt == "chatml" else f"chat item-{i}" for i in range(n)]
    assert out == want  # every item answered, in order, by its own response
    assert dict(state.ok) == {i: 1 for i in range(n)}  # the server answered each item exactly once
    report = judge.retry_report()
    assert state.injected == _expected_injected(n)
    assert report["retries"] == {c: state.injected.get(c, 0) for c in ("429", "5xx", "timeout", "connection",
                                                                        "malformed")}
    assert report["failed"] == 0
    assert report["attempts"] == sum(state.attempts.values()) + 1  # + the /tokenize probe
    assert report["waited_s"] >= 1.0  # Retry-After: 1 was honoured
    assert state.auth == {"Bearer sk-test-secret"}
    assert "sk-test-secret" not in json.dumps(report)


def test_letter_logprobs_from_top_logprobs_with_faults(fault_server):
    url, state = fault_server()
    judge = OpenAIJudge("judge-model", url, tokenizer="none", **FAST)
    n = 16
    out = judge.letter_logprobs(_requests(n, "model"), [["A", "B", "C"]] * n)
    for i, row in enumerate(out):
        assert row[0] == pytest.approx(-0.25 - i / 100)  # " A" spelling found
        assert row[1] == pytest.approx(-1.5)  # "B" spelling found
        assert row[2] == pytest.approx(-3.0)  # outside the top-k: the k-th value, an upper bound
    assert dict(state.ok) == {i: 1 for i in range(n)}
    rep = judge.retry_report()
    assert rep["notes"]["letters_outside_top_k"] == n
    assert sum(rep["retries"].values()) == sum(_expected_injected(n).values())


def test_captioner_sends_each_image_and_survives_faults(fault_server):
    url, state = fault_server()
    cap = OpenAICaptioner("vlm", url, **FAST)
    imgs = [[Image.new("RGB", (20 + i, 10), (10 * i, 100, 200))] for i in range(16)]
    prompts = [f"Describe item-{i}." for i in range(16)]
    out = cap.caption(imgs, prompts, n=2, sampling=Sampling(temperature=0.7, max_new_tokens=16))
    for i, caps in enumerate(out):
        digest = hashlib.sha256(imgs[i][0].convert("RGB").tobytes()).hexdigest()[:10]
        assert caps == [f"item-{i} img {digest} #0", f"item-{i} img {digest} #1"]
    assert dict(state.ok) == {i: 1 for i in range(16)}
    assert cap.retry_report()["retries"] == {c: _expected_injected(16).get(c, 0)
                                             for c in ("429", "5xx", "timeout", "connection", "malformed")}


def test_gives_up_with_a_clear_error_and_counts_the_failure(fault_server):
    url, state = fault_server(always="500")
    judge = OpenAIJudge("judge-model", url, tokenizer="none", timeout=1.0, backoff=0.01, max_retries=2)
    with pytest.raises(EngineError, match=r"gave up after 3 attempts \(last: 5xx"):
        judge.generate(_requests(1, "chatml"), Sampling(max_new_tokens=4))
    assert state.attempts[0] == 3
    assert judge.retry_report()["failed"] == 1


def test_client_errors_are_not_retried(fault_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-shown")
    monkeypatch.delenv("PRISM_EVAL_API_KEY", raising=False)
    url, state = fault_server(always="bad-request")
    judge = OpenAIJudge("judge-model", url, tokenizer="none", **FAST)
    with pytest.raises(EngineError, match="HTTP 400: bad request") as err:
        judge.generate(_requests(1, "chatml"), Sampling(max_new_tokens=4))
    assert state.attempts[0] == 1
    assert "sk-never-shown" not in str(err.value)
    assert state.auth == {"Bearer sk-never-shown"}


def test_spec_parsing():
    spec = parse_model_spec("openai:Qwen/Qwen2.5-3B@http://127.0.0.1:8000/v1/", "judge")
    assert (spec.target, spec.base_url) == ("Qwen/Qwen2.5-3B", "http://127.0.0.1:8000/v1")
    spec = parse_model_spec("openai:user@corp/model@https://api.example.com/v1", "captioner")
    assert (spec.target, spec.base_url) == ("user@corp/model", "https://api.example.com/v1")
    for bad in ("openai:model", "openai:@http://x", "openai:m@ftp://x"):
        with pytest.raises(ValueError, match="expected openai:<model>@<http"):
            parse_model_spec(bad, "judge")


def test_option_loglik_in_text_mode_needs_chatml(fault_server):
    url, _ = fault_server()
    judge = OpenAIJudge("judge-model", url, tokenizer="none", **FAST)
    with pytest.raises(EngineError, match="needs the server's tokenizer"):
        judge.option_logliks(_requests(1, "model"), [[" red", " blue"]])
