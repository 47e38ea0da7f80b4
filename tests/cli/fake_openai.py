"""A small OpenAI-compatible server on 127.0.0.1 for command-line tests (http.server, real sockets).

It lists its models at GET /v1/models, captions at POST /v1/chat/completions and
answers judge prompts at POST /v1/completions; /tokenize is absent (text mode).
What it does is set per instance: refuse every request with one status (401,
403), refuse only the model calls (`model_status`), hold every caption request
until `release` is set (to keep a run busy), or fail judge prompts that contain
FAILME with a 400 whose message echoes the request's Authorization header and
the text `leak` (a careless server).
It also serves as a stand-in Hugging Face hub (GET /api/models/<id> -> 404).
"""
from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAI:
    def __init__(self, *, status: int | None = None, model_status: int | None = None, models: tuple[str, ...] = ("m",),
                 caption: str = "A grey picture with a red square.", answer: str = " A", hold: bool = False,
                 leak: str = "") -> None:
        self.status, self.model_status, self.models, self.leak = status, model_status, models, leak
        self.caption, self.answer = caption, answer
        self.requests: Counter = Counter()
        self.auth: set[str] = set()
        self.lock = threading.Lock()
        self.first_caption = threading.Event()  # set when the first caption request arrives
        self.release = threading.Event()  # caption requests wait for it when hold=True
        if not hold:
            self.release.set()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, credentials: str = "") -> str:
        return f"http://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        state = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _count(self) -> None:
                with state.lock:
                    state.requests[f"{self.command} {self.path}"] += 1
                    state.auth.add(self.headers.get("Authorization", ""))

            def do_GET(self):  # noqa: N802 - http.server API
                self._count()
                if state.status is not None:
                    return self._send(state.status, {"error": {"message": "refused"}})
                if self.path == "/v1/models":
                    return self._send(200, {"object": "list", "data": [{"id": m} for m in state.models]})
                return self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):  # noqa: N802 - http.server API
                self._count()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                status = state.status or state.model_status
                if status is not None:
                    return self._send(status, {"error": {"message": "refused"}})
                if self.path == "/v1/chat/completions":
                    state.first_caption.set()
                    state.release.wait(120)
                    n = int(body.get("n", 1))
                    return self._send(200, {"choices": [{"index": i, "message": {"role": "assistant",
                                                                                  "content": state.caption}}
                                                        for i in range(n)]})
                if self.path == "/v1/completions":
                    prompt = body.get("prompt", "")
                    if isinstance(prompt, str) and "FAILME" in prompt:
                        leak = f"rejected {self.headers.get('Authorization', '')} ({state.leak})"
                        return self._send(400, {"error": {"message": leak}})
                    return self._send(200, {"choices": [{"index": 0, "text": state.answer}]})
                return self._send(404, {"error": {"message": "not found"}})

        return Handler


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
