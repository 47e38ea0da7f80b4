"""OpenAI-compatible HTTP back end for both roles (a `vllm serve` judge, any hosted API).

Requests run concurrently (bounded by a semaphore) and each one is retried with
exponential backoff on what a retry can fix: HTTP 429 (honouring Retry-After),
408 and 5xx, timeouts, dropped connections and malformed JSON. A request that
still fails, or fails in a way a retry cannot fix (400, 401, 404...), raises
EngineError for its batch; nothing is ever dropped or answered twice, because
each item's result is written into its own slot once. `retry_report()` says what
was retried, per cause.

Exact scores need the judge's tokens. Against a vLLM server (it has /tokenize)
the judge sends token-id prompts built like every other engine's (judge_inputs),
reads letter log-probabilities with `logprob_token_ids` and option
log-likelihoods from prompt log-probabilities (echo). Against other servers it
falls back to text prompts and the top-k log-probabilities they return.

The API key comes from the environment only (OPENAI_API_KEY or
PRISM_EVAL_API_KEY) and is never logged or put in an error message.
"""
from __future__ import annotations

import asyncio
import base64
import io
import math
import os
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from prism_eval.core.chat import render_literal
from prism_eval.core.records import JudgeRequest, Sampling
from prism_eval.core.resilience import FatalError, redact_secrets
from prism_eval.engines import judge_inputs as ji
from prism_eval.engines.base import EngineError

T = TypeVar("T")

API_KEY_VARS = ("PRISM_EVAL_API_KEY", "OPENAI_API_KEY")
CAUSES = ("429", "5xx", "timeout", "connection", "malformed")


def api_key() -> str | None:
    for var in API_KEY_VARS:
        if os.environ.get(var):
            return os.environ[var]
    return None


class AuthError(EngineError, FatalError):
    """HTTP 401/403: no retry and no other item will fare better, so the run stops at once."""


class _Retryable(Exception):
    def __init__(self, cause: str, detail: str, wait: float | None = None) -> None:
        super().__init__(detail)
        self.cause, self.wait = cause, wait


class _Malformed(Exception):
    """The server answered 200 but the body is not the JSON we need."""


@dataclass
class RetryReport:
    """What the engine retried, per cause, and how many requests it sent."""

    requests: int = 0  # logical requests (one per item and HTTP call kind)
    attempts: int = 0  # HTTP attempts, retries included
    retries: Counter = field(default_factory=Counter)
    failed: int = 0  # requests that ran out of retries or hit a non-retryable error
    waited_s: float = 0.0
    notes: Counter = field(default_factory=Counter)  # e.g. letters outside the top-k

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "attempts": self.attempts,
                "retries": {c: self.retries.get(c, 0) for c in CAUSES}, "failed": self.failed,
                "waited_s": round(self.waited_s, 3), "notes": dict(self.notes)}


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, also when a loop is already running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(factory())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    th = threading.Thread(target=target, name="prism-eval-openai")
    th.start()
    th.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from datetime import datetime, timezone
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class HTTPEngine:
    """Shared transport: bounded concurrency, per-request timeout, retries with backoff."""

    def __init__(self, model: str, base_url: str, *, concurrency: int = 16, timeout: float = 120.0,
                 max_retries: int = 8, backoff: float = 0.5, max_backoff: float = 30.0, seed: int = 0,
                 extra_body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self.model, self.base_url = model, base_url.rstrip("/")
        self.concurrency, self.timeout = concurrency, float(timeout)
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self.extra_body = dict(extra_body or {})
        self._headers = dict(headers or {})
        self._jitter = random.Random(seed)
        self.report = RetryReport()

    @property
    def server_root(self) -> str:
        """The URL without its /v1 suffix: vLLM's /tokenize lives there."""
        url = self.base_url
        return url[:-3] if url.endswith("/v1") else url

    def retry_report(self) -> dict[str, Any]:
        return self.report.to_dict()

    def _auth_headers(self) -> dict[str, str]:
        key = api_key()
        h = {"Content-Type": "application/json", **self._headers}
        if key:
            h["Authorization"] = f"Bearer {key}"
        return h

    def _client(self) -> Any:
        import httpx

        # The semaphore bounds concurrency; the pool is left unbounded so a connection still
        # closing after a cancelled (timed-out) request never makes the next request wait for a slot.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=self.concurrency)
        return httpx.AsyncClient(headers=self._auth_headers(), timeout=httpx.Timeout(self.timeout),
                                 limits=limits)

    def _delay(self, attempt: int, wait: float | None) -> float:
        if wait is not None:
            return min(wait, self.max_backoff)
        base = min(self.max_backoff, self.backoff * (2 ** attempt))
        return base * (0.5 + 0.5 * self._jitter.random())

    async def _attempt(self, client: Any, url: str, payload: dict[str, Any],
                       parse: Callable[[Any], T]) -> T:
        import httpx

        try:
            resp = await asyncio.wait_for(client.post(url, json=payload), timeout=self.timeout)
        except (asyncio.TimeoutError, httpx.TimeoutException) as exc:
            raise _Retryable("timeout", f"no answer within {self.timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise _Retryable("connection", f"{type(exc).__name__}: {exc}") from exc
        status = resp.status_code
        if status == 429:
            raise _Retryable("429", "429 Too Many Requests", _retry_after(resp.headers.get("retry-after")))
        if status == 408:
            raise _Retryable("timeout", "408 Request Timeout")
        if status >= 500:
            raise _Retryable("5xx", f"HTTP {status}")
        if status in (401, 403):
            raise AuthError(f"{redact_secrets(url)}: HTTP {status}: {_error_text(resp)} (the server refuses these "
                            f"credentials; set {' or '.join(API_KEY_VARS)})")
        if status >= 400:
            raise EngineError(f"{url}: HTTP {status}: {_error_text(resp)}")
        try:
            return parse(resp.json())
        except (ValueError, KeyError, IndexError, TypeError, _Malformed) as exc:
            raise _Retryable("malformed", f"malformed response: {type(exc).__name__}: {exc}"[:300]) from exc

    async def post(self, client: Any, sem: asyncio.Semaphore, path: str, payload: dict[str, Any],
                   parse: Callable[[Any], T], root: bool = False) -> T:
        """POST with retries; `parse` turns the JSON into the result or raises to mark it malformed."""
        url = (self.server_root if root else self.base_url) + path
        self.report.requests += 1
        last = ""
        for attempt in range(self.max_retries + 1):
            async with sem:
                self.report.attempts += 1
                try:
                    return await self._attempt(client, url, payload, parse)
                except _Retryable as exc:
                    last = f"{exc.cause}: {exc}"
                    if attempt == self.max_retries:
                        break
                    self.report.retries[exc.cause] += 1
                    delay = self._delay(attempt, exc.wait)
                except EngineError:
                    self.report.failed += 1
                    raise
            self.report.waited_s += delay
            await asyncio.sleep(delay)
        self.report.failed += 1
        raise EngineError(f"{url}: gave up after {self.max_retries + 1} attempts (last: {last})")

    def gather(self, make: Callable[[Any, asyncio.Semaphore], Sequence[Awaitable[T]]]) -> list[T]:
        """Run the coroutines `make(client, sem)` builds; results in order, first error raised."""
        async def main() -> list[T]:
            sem = asyncio.Semaphore(self.concurrency)
            async with self._client() as client:
                tasks = [asyncio.ensure_future(c) for c in make(client, sem)]
                try:
                    return list(await asyncio.gather(*tasks))
                finally:
                    for t in tasks:
                        t.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
        return run_sync(main)


def _error_text(resp: Any) -> str:
    try:
        body = resp.json()
        msg = body.get("error", body) if isinstance(body, dict) else body
        if isinstance(msg, dict):
            msg = msg.get("message", msg)
        return str(msg)[:300]
    except ValueError:
        return resp.text[:300]


# -- response readers (raise to mark a body malformed) -------------------------------------------

def _choice(body: dict[str, Any]) -> dict[str, Any]:
    choices = body["choices"]
    if not isinstance(choices, list) or not choices:
        raise _Malformed("no choices")
    return choices[0]


def _completion_text(body: Any) -> str:
    text = _choice(body)["text"]
    if not isinstance(text, str):
        raise _Malformed("text is not a string")
    return text


def _chat_text(body: Any) -> str:
    content = _choice(body)["message"]["content"]
    return content if isinstance(content, str) else ""


def _tokens(body: Any) -> list[int]:
    toks = body["tokens"]
    if not isinstance(toks, list) or not all(isinstance(t, int) for t in toks):
        raise _Malformed("tokens is not a list of ints")
    return toks


def _sampling_body(sampling: Sampling) -> dict[str, Any]:
    greedy = sampling.temperature <= 0
    body: dict[str, Any] = {"temperature": 0.0 if greedy else sampling.temperature,
                            "max_tokens": sampling.max_new_tokens}
    if not greedy:
        body["top_p"] = sampling.top_p
        body["seed"] = sampling.seed
    return body


class OpenAIJudge(HTTPEngine):
    """Judge behind an OpenAI-compatible server.

    `tokenizer`: "auto" (use the server's /tokenize when it has one, as vLLM
    does), "server" (require it), "none" (text prompts only), or a local
    Hugging Face tokenizer folder to build token-id prompts client-side.
    `top_logprobs` is how many alternatives to ask for in text mode's letter scoring.
    """

    def __init__(self, model: str, base_url: str, *, tokenizer: str = "auto", top_logprobs: int = 20,
                 concurrency: int = 16, timeout: float = 120.0, max_retries: int = 8, backoff: float = 0.5,
                 max_backoff: float = 30.0, seed: int = 0, extra_body: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(model, base_url, concurrency=concurrency, timeout=timeout, max_retries=max_retries,
                         backoff=backoff, max_backoff=max_backoff, seed=seed, extra_body=extra_body,
                         headers=headers)
        self.spec = f"openai:{model}@{self.base_url}"
        self.tokenizer_mode = tokenizer
        self.top_logprobs = top_logprobs
        self._mode: str | None = None  # "server", "local" or "text", decided on first use
        self._local_tok: Any = None
        self._tok_cache: dict[str, list[int]] = {}

    def fingerprint(self) -> dict[str, Any]:
        return {"spec": self.spec, "engine": "openai", "model": self.model, "base_url": self.base_url,
                "tokenizer": self.tokenizer_mode}

    # -- tokenization ---------------------------------------------------------------------------

    def mode(self) -> str:
        """How prompts are built: from server tokens, a local tokenizer, or plain text."""
        if self._mode is None:
            m = self.tokenizer_mode
            if m not in ("auto", "server", "none"):
                from transformers import AutoTokenizer

                self._local_tok = AutoTokenizer.from_pretrained(m)
                self._mode = "local"
            elif m == "none":
                self._mode = "text"
            else:
                has = self._server_tokenizes()
                if m == "server" and not has:
                    raise EngineError(f"{self.server_root}/tokenize is not available; this server cannot "
                                      "give token-exact scores (use tokenizer='none' or a local tokenizer)")
                self._mode = "server" if has else "text"
        return self._mode

    def _server_tokenizes(self) -> bool:
        def probe(client: Any, sem: asyncio.Semaphore) -> list[Awaitable[bool]]:
            async def one() -> bool:
                try:
                    await self.post(client, sem, "/tokenize", {"model": self.model, "prompt": "A",
                                                                "add_special_tokens": False}, _tokens, root=True)
                    return True
                except EngineError:
                    self.report.failed -= 1  # an absent endpoint is an answer, not a failure
                    return False
            return [one()]
        return self.gather(probe)[0]

    async def _encode(self, client: Any, sem: asyncio.Semaphore, text: str, special: bool = False) -> list[int]:
        if self._mode == "local":
            return ji.encode(self._local_tok, text, special)
        key = f"{int(special)}:{text}"
        if key not in self._tok_cache:
            self._tok_cache[key] = await self.post(
                client, sem, "/tokenize", {"model": self.model, "prompt": text, "add_special_tokens": special},
                _tokens, root=True)
        return self._tok_cache[key]

    async def _prompt_ids(self, client: Any, sem: asyncio.Semaphore, req: JudgeRequest) -> list[int]:
        """The same ids judge_inputs.prompt_ids builds, with the server's tokenizer where needed."""
        if self._mode == "local":
            return ji.prompt_ids(self._local_tok, req)
        if req.literal:
            return await self._encode(client, sem, render_literal(req), special=True)
        if req.chat_format != "model":
            raise ValueError(f"chat_format {req.chat_format!r}: expected 'chatml', 'raw' or 'model'")
        body = {"model": self.model, "messages": ji.chat_messages(req), "add_special_tokens": False,
                **ji.template_flags(req)}
        return await self.post(client, sem, "/tokenize", body, _tokens, root=True)

    async def _letter_ids(self, client: Any, sem: asyncio.Semaphore, letter: str) -> list[int]:
        ids: list[int] = []
        for spelling in (letter, " " + letter):
            enc = await self._encode(client, sem, spelling)
            if len(enc) == 1 and enc[0] not in ids:
                ids.append(enc[0])
        if not ids:
            raise ValueError(f"option letter {letter!r} is not a single token for {self.model}")
        return ids

    # -- generate -------------------------------------------------------------------------------

    def generate(self, requests: Sequence[JudgeRequest], sampling: Sampling) -> list[str]:
        mode = self.mode()

        def make(client: Any, sem: asyncio.Semaphore) -> list[Awaitable[str]]:
            async def one(req: JudgeRequest) -> str:
                params = {**_sampling_body(sampling), **self.extra_body}
                if mode != "text":
                    ids = await self._prompt_ids(client, sem, req)
                    return await self.post(client, sem, "/completions",
                                           {"model": self.model, "prompt": ids, **params}, _completion_text)
                if req.literal:
                    return await self.post(client, sem, "/completions",
                                           {"model": self.model, "prompt": render_literal(req), **params},
                                           _completion_text)
                body = {"model": self.model, "messages": ji.chat_messages(req), **params}
                if req.prefill:
                    body.update(ji.template_flags(req))
                return await self.post(client, sem, "/chat/completions", body, _chat_text)
            return [one(r) for r in requests]
        return self.gather(make)

    # -- letter log-probabilities ---------------------------------------------------------------

    def letter_logprobs(self, requests: Sequence[JudgeRequest],
                        letters: Sequence[Sequence[str]]) -> list[list[float]]:
        if len(letters) != len(requests):
            raise ValueError(f"letter_logprobs: {len(requests)} requests but {len(letters)} letter lists")
        one = self._letters_by_text if self.mode() == "text" else self._letters_by_ids
        return self.gather(lambda client, sem: [one(client, sem, r, lets) for r, lets in zip(requests, letters)])

    async def _letters_by_ids(self, client: Any, sem: asyncio.Semaphore, req: JudgeRequest,
                              lets: Sequence[str]) -> list[float]:
        """Exact: the prompt's ids, and the log-probability of every spelling of every letter by id."""
        per_letter = [await self._letter_ids(client, sem, L) for L in lets]
        wanted = sorted({i for ids in per_letter for i in ids})
        body = {"model": self.model, "prompt": await self._prompt_ids(client, sem, req), "max_tokens": 1,
                "temperature": 0.0, "logprobs": len(wanted), "logprob_token_ids": wanted,
                "return_tokens_as_token_ids": True, **self.extra_body}

        def parse(resp: Any) -> list[float]:
            top = _choice(resp)["logprobs"]["top_logprobs"][0]
            by_id = {int(k.split(":", 1)[1]): float(v) for k, v in top.items()}
            return [ji.logsumexp([by_id[i] for i in ids_]) for ids_ in per_letter]
        return await self.post(client, sem, "/completions", body, parse)

    async def _letters_by_text(self, client: Any, sem: asyncio.Semaphore, req: JudgeRequest,
                               lets: Sequence[str]) -> list[float]:
        """Approximate: the top-k next tokens the server returns; a letter outside them gets the floor."""
        common = {"model": self.model, "max_tokens": 1, "temperature": 0.0, **self.extra_body}
        if req.literal:
            path, top_of = "/completions", _top_of_completion
            body = {**common, "prompt": render_literal(req), "logprobs": self.top_logprobs}
        else:
            path, top_of = "/chat/completions", _top_of_chat
            body = {**common, "messages": ji.chat_messages(req), "logprobs": True, "top_logprobs": self.top_logprobs}
            if req.prefill:
                body.update(ji.template_flags(req))

        def parse(resp: Any) -> list[float]:
            top = top_of(resp)
            if not top:
                raise _Malformed("empty top_logprobs")
            values, missing = _letter_values(top, lets)
            if missing:
                self.report.notes["letters_outside_top_k"] += missing
            return values
        return await self.post(client, sem, path, body, parse)

    # -- option log-likelihoods -----------------------------------------------------------------

    def option_logliks(self, requests: Sequence[JudgeRequest],
                       continuations: Sequence[Sequence[str]]) -> list[list[tuple[float, int]]]:
        if len(continuations) != len(requests):
            raise ValueError(f"option_logliks: {len(requests)} requests but {len(continuations)} option lists")
        mode = self.mode()
        if mode == "text" and any(not r.literal for r in requests):
            raise EngineError(f"{self.spec}: option-loglik with the model's chat template needs the server's "
                              "tokenizer (a vLLM server's /tokenize) or tokenizer=<local folder>")
        one = self._option_by_text if mode == "text" else self._option_by_ids
        flat = self.gather(lambda client, sem: [one(client, sem, r, c)
                                                for r, conts in zip(requests, continuations) for c in conts])
        out, k = [], 0
        for conts in continuations:
            out.append(flat[k:k + len(conts)])
            k += len(conts)
        return out

    async def _option_by_ids(self, client: Any, sem: asyncio.Semaphore, req: JudgeRequest,
                             cont: str) -> tuple[float, int]:
        """The echoed prompt log-probabilities of the continuation's own token ids."""
        ctx = await self._prompt_ids(client, sem, req)
        tail = await self._encode(client, sem, cont)
        if not tail:
            raise ValueError(f"option_logliks: continuation {cont!r} has no tokens")
        body = {"model": self.model, "prompt": ctx + tail, "max_tokens": 1, "temperature": 0.0,
                "echo": True, "logprobs": 0, **self.extra_body}

        def parse(resp: Any) -> tuple[float, int]:
            vals = _choice(resp)["logprobs"]["token_logprobs"][len(ctx):len(ctx) + len(tail)]
            if len(vals) != len(tail) or any(v is None for v in vals):
                raise _Malformed("prompt log-probabilities missing")
            return float(sum(vals)), len(tail)
        return await self.post(client, sem, "/completions", body, parse)

    async def _option_by_text(self, client: Any, sem: asyncio.Semaphore, req: JudgeRequest,
                              cont: str) -> tuple[float, int]:
        """Without the server's tokenizer: the echoed tokens whose text offsets fall in the continuation."""
        ctx_text = render_literal(req)
        body = {"model": self.model, "prompt": ctx_text + cont, "max_tokens": 1, "temperature": 0.0,
                "echo": True, "logprobs": 0, **self.extra_body}
        return await self.post(client, sem, "/completions", body,
                               lambda resp: _span_loglik(_choice(resp)["logprobs"], len(ctx_text),
                                                         len(ctx_text) + len(cont)))


def _top_of_completion(resp: Any) -> dict[str, float]:
    return {str(t): float(v) for t, v in _choice(resp)["logprobs"]["top_logprobs"][0].items()}


def _top_of_chat(resp: Any) -> dict[str, float]:
    first = _choice(resp)["logprobs"]["content"][0]["top_logprobs"]
    return {str(e["token"]): float(e["logprob"]) for e in first}


def _letter_values(top: dict[str, float], letters: Sequence[str]) -> tuple[list[float], int]:
    """Each letter's log-probability ("A" and " A" summed) from a top-k table, the table's floor when absent;
    and how many were absent."""
    floor = min(top.values())
    out, missing = [], 0
    for letter in letters:
        found = [top[s] for s in (letter, " " + letter) if s in top]
        missing += not found
        out.append(ji.logsumexp(found) if found else floor)
    return out, missing


def _span_loglik(logprobs: dict[str, Any], start: int, end: int) -> tuple[float, int]:
    """Sum and count of the echoed token log-probabilities whose text offset lies in [start, end)."""
    total, count = 0.0, 0
    for off, v in zip(logprobs["text_offset"], logprobs["token_logprobs"]):
        if start <= off < end:
            if v is None:
                raise _Malformed("prompt log-probability missing")
            total += float(v)
            count += 1
    if count == 0:
        raise _Malformed("no continuation tokens in the echoed prompt")
    return total, count


def encode_image(image: Any, fmt: str = "png", max_pixels: int | None = None) -> str:
    """A PIL image as a data URL, downscaled (aspect kept) when it exceeds max_pixels."""
    img = image.convert("RGB")
    if max_pixels is not None and img.width * img.height > max_pixels:
        scale = math.sqrt(max_pixels / (img.width * img.height))
        img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))))
    buf = io.BytesIO()
    fmt = fmt.lower()
    img.save(buf, format="JPEG" if fmt in ("jpg", "jpeg") else fmt.upper())
    mime = "jpeg" if fmt in ("jpg", "jpeg") else fmt
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class OpenAICaptioner(HTTPEngine):
    """Captioner behind an OpenAI-compatible chat endpoint; images travel as base64 data URLs.

    `n` samples are asked for with the `n` parameter; a server that returns
    fewer choices is topped up with single requests (seeds seed+1, seed+2...).
    """

    def __init__(self, model: str, base_url: str, *, image_format: str = "png", max_pixels: int | None = None,
                 concurrency: int = 16, timeout: float = 120.0, max_retries: int = 8, backoff: float = 0.5,
                 max_backoff: float = 30.0, seed: int = 0, extra_body: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(model, base_url, concurrency=concurrency, timeout=timeout, max_retries=max_retries,
                         backoff=backoff, max_backoff=max_backoff, seed=seed, extra_body=extra_body,
                         headers=headers)
        self.spec = f"openai:{model}@{self.base_url}"
        self.image_format, self.max_pixels = image_format, max_pixels

    def fingerprint(self) -> dict[str, Any]:
        return {"spec": self.spec, "engine": "openai", "model": self.model, "base_url": self.base_url,
                "image_format": self.image_format, "max_pixels": self.max_pixels}

    def messages(self, images: Sequence[Any], prompt: str) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": encode_image(im, self.image_format, self.max_pixels)}}
            for im in images]
        parts.append({"type": "text", "text": prompt})
        return [{"role": "user", "content": parts}]

    def caption(self, images: Sequence[Sequence[Any]], prompts: Sequence[str], n: int,
                sampling: Sampling) -> list[list[str]]:
        if len(images) != len(prompts):
            raise ValueError(f"caption: {len(images)} image lists but {len(prompts)} prompts")
        if n < 1:
            raise ValueError(f"caption: n must be >= 1, got {n}")

        def texts(resp: Any) -> list[str]:
            choices = resp["choices"]
            if not isinstance(choices, list) or not choices:
                raise _Malformed("no choices")
            out = []
            for c in sorted(choices, key=lambda c: c.get("index", 0)):
                content = c["message"]["content"]
                out.append(content if isinstance(content, str) else "")
            return out

        def make(client: Any, sem: asyncio.Semaphore) -> list[Awaitable[list[str]]]:
            async def one(imgs: Sequence[Any], prompt: str) -> list[str]:
                msgs = self.messages(list(imgs), prompt)
                body = {"model": self.model, "messages": msgs, "n": n, **_sampling_body(sampling),
                        **self.extra_body}
                got = await self.post(client, sem, "/chat/completions", body, texts)
                extra = 0
                while len(got) < n:
                    extra += 1
                    self.report.notes["n_topped_up"] += 1
                    single = {**body, "n": 1}
                    if sampling.temperature > 0:
                        single["seed"] = sampling.seed + extra
                    got += await self.post(client, sem, "/chat/completions", single, texts)
                return got[:n]
            return [one(imgs, p) for imgs, p in zip(images, prompts)]
        return self.gather(make)


PROBE_TIMEOUT_S = 10.0


def probe_server(model: str, base_url: str, what: str = "", timeout: float = PROBE_TIMEOUT_S) -> None:
    """One cheap request (GET <base>/models) before any work: a server that is not there, refuses the
    credentials or does not serve `model` stops the run at once with one line, instead of every
    request retrying with backoff for minutes. Any other answer counts as a server that is up.
    """
    import httpx

    url = f"{base_url.rstrip('/')}/models"
    shown = redact_secrets(url)
    headers = {"Authorization": f"Bearer {api_key()}"} if api_key() else {}
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        raise EngineError(f"{what}{shown}: no answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        detail = str(exc).splitlines()[0][:160] if str(exc).strip() else ""
        raise EngineError(f"{what}{shown}: no server answers ({type(exc).__name__}"
                          f"{': ' + redact_secrets(detail) if detail else ''})") from None
    if resp.status_code in (401, 403):
        raise AuthError(f"{what}{shown}: HTTP {resp.status_code}: {redact_secrets(_error_text(resp))} (the server "
                        f"refuses these credentials; set {' or '.join(API_KEY_VARS)})")
    if resp.status_code != 200:
        return
    try:
        served = [str(m["id"]) for m in resp.json()["data"]]
    except (ValueError, KeyError, TypeError):
        return
    if served and model not in served:
        shown_models = ", ".join(served[:8]) + (" ..." if len(served) > 8 else "")
        raise EngineError(f"{what}{shown}: does not serve model {model!r} (it serves {shown_models})")
