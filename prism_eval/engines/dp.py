"""`--data-parallel N`: N engine replicas, one process per GPU group, as vLLM's own docs advise.

`vllm.LLM(data_parallel_size>1)` is refused for single-process use (vLLM 0.32),
so offline data parallelism is N independent engines, each started in its own
process with CUDA_VISIBLE_DEVICES set to its GPU group (tensor parallelism
inside a group). A call's items are split into N contiguous, near-equal chunks
(contiguous keeps one caption's questions together for the prefix cache), run
concurrently, and concatenated in the original order, so the result is the
same as one engine's whatever N is (for engines whose output does not depend on
batch composition: greedy, or per-request seeds as vLLM and our HF engines use).
"""
from __future__ import annotations

import functools
import multiprocessing as mp
import os
import shutil
import subprocess
import traceback
from typing import Any, Callable, Sequence

from prism_eval.engines.base import EngineError

# Captioners that read captions instead of computing them: one instance serves any --data-parallel.
NO_REPLICAS = ("file", "none")


def visible_gpus() -> list[str]:
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES, else what nvidia-smi lists, else none."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip()]
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        return [str(i) for i in range(sum(1 for line in out.splitlines() if line.startswith("GPU ")))]
    return []


def gpu_groups(replicas: int, gpus_per_replica: int = 1, devices: Sequence[str] | None = None
               ) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES for each replica; None for every replica when no GPU is visible (CPU)."""
    if replicas < 1:
        raise ValueError(f"--data-parallel must be >= 1, got {replicas}")
    if gpus_per_replica < 1:
        raise ValueError(f"GPUs per replica must be >= 1, got {gpus_per_replica}")
    devs = list(devices) if devices is not None else visible_gpus()
    if not devs:
        return [None] * replicas
    need = replicas * gpus_per_replica
    if need > len(devs):
        raise ValueError(f"--data-parallel {replicas} x {gpus_per_replica} GPU(s) per replica needs {need} GPUs; "
                         f"{len(devs)} visible ({','.join(devs)})")
    return [",".join(devs[r * gpus_per_replica:(r + 1) * gpus_per_replica]) for r in range(replicas)]


def split_even(n: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) ranges of near-equal size (the first n % parts one longer)."""
    base, extra = divmod(n, parts)
    out, start = [], 0
    for p in range(parts):
        end = start + base + (1 if p < extra else 0)
        out.append((start, end))
        start = end
    return out


def _worker(conn: Any, factory: Callable[[], Any], cuda: str | None) -> None:
    if cuda is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = cuda
    try:
        engine = factory()
        conn.send(("ok", {"spec": getattr(engine, "spec", ""), "fingerprint": engine.fingerprint()}))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        conn.send(("err", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-2000:]}"))
        return
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        method, args = msg
        try:
            if method == "worker_info":
                result: Any = {"pid": os.getpid(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
            else:
                result = getattr(engine, method)(*args)
            conn.send(("ok", result))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            conn.send(("err", f"{type(exc).__name__}: {exc}"))


class DataParallel:
    """A Captioner or Judge made of N replicas; the same interface as the engine it wraps.

    `factory` builds one engine in a worker (it must pickle: a module-level
    function or functools.partial of one, e.g. partial(load_judge, spec, **opts)).
    """

    def __init__(self, factory: Callable[[], Any], replicas: int, *, gpus_per_replica: int = 1,
                 devices: Sequence[str] | None = None) -> None:
        self.groups = gpu_groups(replicas, gpus_per_replica, devices)
        ctx = mp.get_context("spawn")  # CUDA and vLLM do not survive fork
        self._conns, self._procs = [], []
        for cuda in self.groups:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, factory, cuda), daemon=False)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        infos, errors = [], []
        for r in range(len(self._procs)):  # hear from every replica before deciding
            try:
                infos.append(self._recv(r))
            except EngineError as exc:
                errors.append(exc)
        if errors:
            self.close()
            raise errors[0]
        self.spec = infos[0]["spec"]
        self._fingerprint = infos[0]["fingerprint"]

    @property
    def replicas(self) -> int:
        return len(self._procs)

    def _recv(self, r: int) -> Any:
        try:
            status, value = self._conns[r].recv()
        except (EOFError, OSError) as exc:
            raise EngineError(f"data-parallel replica {r} died (exit code {self._procs[r].exitcode})") from exc
        if status == "err":
            raise EngineError(f"data-parallel replica {r}: {value}")
        return value

    def _scatter(self, method: str, columns: Sequence[Sequence[Any]], extra: tuple = ()) -> list[Any]:
        n = len(columns[0])
        if any(len(c) != n for c in columns):
            raise ValueError(f"{method}: argument lists differ in length")
        ranges = [(r, a, b) for r, (a, b) in enumerate(split_even(n, self.replicas)) if b > a]
        for r, a, b in ranges:
            self._conns[r].send((method, tuple(list(c[a:b]) for c in columns) + extra))
        out: list[Any] = []
        errors = []
        for r, _, _ in ranges:  # collect every reply before raising, so no pipe is left mid-message
            try:
                out.extend(self._recv(r))
            except EngineError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        return out

    # -- the engine interfaces ------------------------------------------------------------------

    def fingerprint(self) -> dict[str, Any]:
        return dict(self._fingerprint)

    def caption(self, images, prompts, n, sampling) -> list[list[str]]:
        return self._scatter("caption", [images, prompts], (n, sampling))

    def generate(self, requests, sampling) -> list[str]:
        return self._scatter("generate", [requests], (sampling,))

    def letter_logprobs(self, requests, letters) -> list[list[float]]:
        return self._scatter("letter_logprobs", [requests, letters])

    def option_logliks(self, requests, continuations) -> list[list[tuple[float, int]]]:
        return self._scatter("option_logliks", [requests, continuations])

    def token_ends(self, texts) -> list[list[int]] | None:
        """The replicas' tokenizer (the same model in each): asked of the first replica only."""
        self._conns[0].send(("token_ends", (list(texts),)))
        return self._recv(0)

    def worker_info(self) -> list[dict[str, Any]]:
        """Each replica's pid and CUDA_VISIBLE_DEVICES (what it was started with)."""
        for conn in self._conns:
            conn.send(("worker_info", ()))
        return [self._recv(r) for r in range(self.replicas)]

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        for proc in self._procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=10)
        self._conns, self._procs = [], []

    def __enter__(self) -> "DataParallel":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # best effort: do not leave replicas behind
        if getattr(self, "_procs", None):
            self.close()


def data_parallel_judge(spec: str, replicas: int, **opts: Any) -> Any:
    """A judge for `spec` on `replicas` processes (plain engine when replicas == 1)."""
    from prism_eval.engines.registry import load_judge

    if replicas == 1:
        return load_judge(spec, **opts)
    tp = int(opts.get("tensor_parallel_size", 1))
    return DataParallel(functools.partial(load_judge, spec, **opts), replicas, gpus_per_replica=tp)


def data_parallel_captioner(spec: str, replicas: int, **opts: Any) -> Any:
    """A captioner for `spec` on `replicas` processes (plain engine when replicas == 1)."""
    from prism_eval.engines.registry import load_captioner, parse_model_spec

    if replicas == 1 or parse_model_spec(spec, "captioner").kind in NO_REPLICAS:
        return load_captioner(spec, **opts)
    tp = int(opts.get("tensor_parallel_size", 1))
    return DataParallel(functools.partial(load_captioner, spec, **opts), replicas, gpus_per_replica=tp)
