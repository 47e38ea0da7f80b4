"""The training section: time and peak memory of a few caprl-train GRPO steps on the random-weight models.

The trainer is caprl-train's own (`build_trainer`: trl's GRPOTrainer, the
caption-utility reward, GradModeGuard) with the captioner as the policy and
the judge section's model as the in-process judge. Each step generates a
group of captions for one demo image, scores them with the judge, and takes
one optimizer step. Generation and reward time are measured by wrapping the
policy's `generate` and the reward's `score`; the rest of a step is the
policy's forward/backward and the optimizer. The fraction of weights that
changed tells whether the optimizer's updates survive the weights' dtype.
"""
from __future__ import annotations

import functools
import importlib.util
import time
from pathlib import Path
from typing import Any, Callable

from prism_eval.tools.gpu_bench.measure import sync
from prism_eval.tools.gpu_bench.models import cast_parameters

SAMPLE_PER_TENSOR = 4096


def _weight_sample(model: Any) -> dict[str, Any]:
    """Up to SAMPLE_PER_TENSOR evenly spaced elements of every trainable tensor, copied to the CPU."""
    out = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            flat = p.detach().reshape(-1)
            stride = max(1, flat.numel() // SAMPLE_PER_TENSOR)
            out[name] = flat[::stride][:SAMPLE_PER_TENSOR].to("cpu", copy=True)
    return out


def _changed(before: dict[str, Any], model: Any) -> dict[str, float]:
    after = _weight_sample(model)
    elements = changed = tensors = 0
    for name, old in before.items():
        diff = (after[name] != old)
        elements += diff.numel()
        changed += int(diff.sum())
        tensors += bool(diff.any())
    return {"sampled_weights": elements, "fraction_changed": round(changed / max(elements, 1), 6),
            "tensors_changed": tensors, "tensors": len(before)}


def _timed(fn: Callable, device: str, bucket: list[float]) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        sync(device)
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            sync(device)
            bucket.append(time.perf_counter() - t0)
    return wrapper


def _train_config(built: Any, judge: Any, work_dir: Path, demo_benchmark: Path, *, group: int, steps: int,
                  new_tokens: int, image_size: int, scoring: str, questions_per_caption: int, learning_rate: float,
                  dtype: str):
    """caprl-train's settings for the bench: one demo image per step, one optimizer step per group."""
    from caprl_train.config import DataConfig, GRPOSettings, RewardConfig, TrainConfig

    return TrainConfig(
        model=built.name, output_dir=str(Path(work_dir) / "grpo"), dtype=dtype,
        data=DataConfig(source=str(demo_benchmark), limit=steps, image_size=image_size),
        grpo=GRPOSettings(num_generations=group, per_device_train_batch_size=group, gradient_accumulation_steps=1,
                          max_completion_length=new_tokens, max_steps=steps, warmup_steps=0, save_steps=0,
                          logging_steps=1, learning_rate=learning_rate),
        reward=RewardConfig(judge=judge.spec, scoring=scoring, questions_per_caption=questions_per_caption))


def _step_timer(device: str, times: list[float], peaks: list[float]):
    """A trainer callback that appends each step's wall time (and, on CUDA, the allocator's peak so far)."""
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            sync(device)
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            sync(device)
            times.append(time.perf_counter() - self.t0)
            if device.startswith("cuda"):
                peaks.append(torch.cuda.max_memory_allocated() / 2**20)

    return StepTimer()


def _train(built_trainer: Any, model: Any, device: str, memory: Callable[[], Any]) -> dict[str, Any]:
    """Run the trainer with `generate` and the reward's `score` timed; the weights sampled before and after."""
    gen_times: list[float] = []
    reward_times: list[float] = []
    model.generate = _timed(model.generate, device, gen_times)
    built_trainer.reward.score = _timed(built_trainer.reward.score, device, reward_times)
    before = _weight_sample(model)
    try:
        with memory() as mem:
            t0 = time.perf_counter()
            built_trainer.trainer.train()
            seconds = time.perf_counter() - t0
    finally:
        del model.generate  # the instance attribute; the class's generate is back
    return {"train_seconds": round(seconds, 3), "generate_seconds": [round(t, 3) for t in gen_times],
            "reward_seconds": [round(t, 3) for t in reward_times], "peak_memory_mb": round(mem.peak_mb, 1),
            "memory_before_mb": round(mem.start_mb, 1), "weights": _changed(before, model)}


def run_training_section(built: Any, processor: Any, judge: Any, *, device: str, group: int, steps: int,
                         new_tokens: int, image_size: int, scoring: str, questions_per_caption: int,
                         learning_rate: float, dtype: str, work_dir: Path, memory: Callable[[], Any],
                         log: Callable[[str], None]) -> dict[str, Any]:
    """`steps` GRPO steps of caprl-train on the captioner, rewarded by the in-process judge."""
    if importlib.util.find_spec("trl") is None:
        return {"error": "trl is not installed: the GRPO steps run on trl's GRPOTrainer (pip install trl)"}
    from caprl_train.policy import make_saveable, resolve_dtype
    from caprl_train.train import build_trainer, policy_dtype
    from prism_eval.demo.build import build_demo

    model = built.model
    demo = build_demo(Path(work_dir) / "demo")
    cfg = _train_config(built, judge, work_dir, demo.benchmark, group=group, steps=steps, new_tokens=new_tokens,
                        image_size=image_size, scoring=scoring, questions_per_caption=questions_per_caption,
                        learning_rate=learning_rate, dtype=dtype)
    cast_parameters(model, resolve_dtype(policy_dtype(cfg), device.split(":")[0]))  # as caprl-train loads it
    step_times: list[float] = []
    step_peaks: list[float] = []
    log("training: building the GRPO trainer")
    t_build = time.perf_counter()
    built_trainer = build_trainer(cfg, judge=judge, callbacks=[_step_timer(device, step_times, step_peaks)],
                                  policy=(model, make_saveable(processor)))
    build_seconds = time.perf_counter() - t_build
    log(f"training: {steps} GRPO steps, group {group}, {new_tokens} new tokens")
    measured = _train(built_trainer, model, device, memory)
    state, args = built_trainer.trainer.state, built_trainer.trainer.args
    history = [{k: v for k, v in row.items() if isinstance(v, (int, float))}
               for row in state.log_history if "loss" in row or "reward" in row]
    return {
        "steps": state.global_step, "group": group, "images_per_step": 1,
        "max_completion_length": new_tokens, "image_size": image_size, "reward_scoring": scoring,
        "questions_per_caption": questions_per_caption, "learning_rate": learning_rate,
        "policy_dtype": str(model.dtype).replace("torch.", ""),
        "bf16_autocast": bool(args.bf16), "gradient_checkpointing": bool(args.gradient_checkpointing),
        "trainer_build_seconds": round(build_seconds, 3), "step_seconds": [round(t, 3) for t in step_times],
        "step_peak_memory_mb": [round(m, 1) for m in step_peaks], **measured, "log": history,
    }
