"""A judge on 127.0.0.1 that answers from a script: an OpenAI-compatible text endpoint for engine tests.

`serve(reply)` starts it; `reply(prompt_text)` decides each answer. It speaks
/v1/completions and /v1/chat/completions, refuses /tokenize (as a plain OpenAI
server does, so the client takes its text path) and keeps every request body.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class ScriptedJudge:
    spec: str  # openai:<model>@<url>, ready for --judge
    bodies: list[dict] = field(default_factory=list)

    @property
    def prompts(self) -> list[str]:
        return [prompt_text(b) for b in self.bodies]


def prompt_text(body: dict) -> str:
    """The text a request asks about: a completion prompt, or the chat messages joined."""
    if "prompt" in body:
        return str(body["prompt"])
    return "\n".join(str(m["content"]) for m in body.get("messages", []))


@contextmanager
def serve(reply: Callable[[str], str], model: str = "judge") -> Iterator[ScriptedJudge]:
    lock = threading.Lock()
    judge: ScriptedJudge

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802 - http.server API
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if self.path.endswith("/tokenize"):
                return self._send(404, {"error": {"message": "not found"}})
            with lock:
                judge.bodies.append(body)
            text = reply(prompt_text(body))
            if self.path.endswith("/chat/completions"):
                choice = {"index": 0, "message": {"role": "assistant", "content": text}}
            else:
                choice = {"index": 0, "text": text}
            return self._send(200, {"choices": [choice]})

        def _send(self, code: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    judge = ScriptedJudge(f"openai:{model}@http://127.0.0.1:{server.server_address[1]}/v1")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield judge
    finally:
        server.shutdown()
        server.server_close()
