"""CapRL training on trl's GRPOTrainer: the policy captions, the shared utility reward scores.

Nothing here is an RL loop: `build_trainer` assembles a `trl.GRPOTrainer` from
a policy VLM, the QA data (caprl_train.data), the caption-utility reward
(caprl_train.reward, a thin adapter over prism_eval.core.utility) and optional
evaluation during training (caprl_train.callbacks). Every GRPO setting is a
field of `GRPOSettings`; anything else GRPOConfig takes goes through `extra`.

Defaults follow CapRL-3B's released recipe (caprl_train.config has the list);
README.md has the full mapping.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

from caprl_train.callbacks import GradModeGuard, PrismEvalCallback
from caprl_train.config import (
    DEFAULT_POLICY,
    TRAIN_PARTS,
    DataConfig,
    EvalSettings,
    GRPOSettings,
    LoraSettings,
    RewardConfig,
    TrainConfig,
)
from caprl_train.data import load_training_data
from caprl_train.parts import freeze_parts
from caprl_train.reward import CaptionUtilityReward

_GRPO_PASSTHROUGH = ("num_generations", "temperature", "top_p", "max_completion_length", "learning_rate", "beta",
                     "loss_type", "scale_rewards", "epsilon", "epsilon_high", "num_iterations",
                     "per_device_train_batch_size", "gradient_accumulation_steps", "steps_per_generation",
                     "num_train_epochs", "max_steps", "warmup_steps", "lr_scheduler_type", "weight_decay",
                     "max_grad_norm", "mask_truncated_completions", "gradient_checkpointing", "seed",
                     "logging_steps", "save_steps", "save_total_limit", "log_completions", "use_vllm", "vllm_mode",
                     "vllm_server_base_url", "vllm_gpu_memory_utilization", "vllm_tensor_parallel_size",
                     "vllm_enable_sleep_mode")


def _on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def build_grpo_config(cfg: TrainConfig):
    """trl's GRPOConfig from our settings; on a machine without a GPU, CPU training in fp32."""
    import torch
    from trl import GRPOConfig

    g = cfg.grpo
    kw: dict[str, Any] = {name: getattr(g, name) for name in _GRPO_PASSTHROUGH}
    kw["gradient_accumulation_steps"] = accumulation_steps(g, int(os.environ.get("WORLD_SIZE", "1")))
    if kw["steps_per_generation"] is None:
        kw.pop("steps_per_generation")
    if kw["vllm_server_base_url"] is None:
        kw.pop("vllm_server_base_url")
    gpu = _on_gpu()
    bf16 = g.bf16 if g.bf16 is not None else (gpu and torch.cuda.is_bf16_supported())
    kw.update(output_dir=cfg.output_dir, bf16=bool(bf16), use_cpu=not gpu, remove_unused_columns=False,
              report_to=[] if g.report_to in ("", "none") else [r.strip() for r in g.report_to.split(",")],
              save_strategy="steps" if g.save_steps else "no", dataloader_num_workers=0)
    if not kw["save_steps"]:
        kw.pop("save_steps")
    unknown = set(g.extra) - {f.name for f in fields(GRPOConfig)}
    if unknown:
        raise ValueError(f"--grpo-arg: {', '.join(sorted(unknown))} is not a GRPOConfig field")
    kw.update(g.extra)
    return GRPOConfig(**kw)


def accumulation_steps(g: GRPOSettings, world_size: int) -> int:
    """Micro-steps per optimizer step: as given, else what makes --captions-per-step over all processes."""
    if g.gradient_accumulation_steps is not None:
        return g.gradient_accumulation_steps
    if not g.captions_per_step:
        return 1
    per_micro_step = g.per_device_train_batch_size * world_size
    if g.captions_per_step % per_micro_step:
        raise ValueError(f"--captions-per-step {g.captions_per_step}: not a multiple of --per-device-train-batch-"
                         f"size {g.per_device_train_batch_size} x {world_size} process(es); set "
                         "--gradient-accumulation-steps instead")
    return g.captions_per_step // per_micro_step


def peft_config(lora: LoraSettings):
    if not lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=list(lora.target_modules), task_type="CAUSAL_LM")


def policy_dtype(cfg: TrainConfig) -> str:
    """The dtype the policy's weights are loaded in; 'auto' keeps full fine-tuning's weights in float32.

    The optimizer updates the weights themselves: at lr 1e-6 an Adam step moves
    a weight by about 1e-6, far below bf16's resolution (a weight of 0.02 is
    stored in steps of 1.2e-4), so bf16 weights would almost never change.
    With float32 weights, GRPOConfig's bf16 flag still runs the matrix products
    in bf16 (autocast), as mixed-precision trainers with fp32 master weights do.
    With LoRA the base is frozen and peft keeps the adapters in float32, so the
    base stays in the half dtype ('auto').
    """
    if cfg.dtype != "auto":
        return cfg.dtype
    return "auto" if cfg.lora.enabled else "float32"


def load_judge_keeping_grad(spec: str):
    """Load the judge without letting its engine switch autograd off for the whole process.

    (Engines that disable grad globally at load would otherwise break the policy's backward pass.)
    """
    import torch

    from prism_eval.engines.registry import load_judge

    grad = torch.is_grad_enabled()
    try:
        return load_judge(spec)
    finally:
        torch.set_grad_enabled(grad)


def _eos_ids(model, tokenizer) -> tuple[int, ...]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return tuple(int(i) for i in ids)


@dataclass
class Built:
    """What build_trainer made: the trl trainer and the parts a caller may want to inspect."""

    trainer: Any
    reward: CaptionUtilityReward
    processor: Any
    dataset: Any
    eval_callback: PrismEvalCallback | None = None


def build_trainer(cfg: TrainConfig, judge: Any = None, callbacks: Sequence[Any] = (),
                  policy: tuple[Any, Any] | None = None) -> Built:
    """A ready GRPOTrainer for `cfg`; `judge` may be an already loaded Judge (else cfg.reward.judge is loaded),
    `policy` an already built (model, processor) pair (else cfg.model is loaded)."""
    from trl import GRPOTrainer

    from caprl_train.policy import load_policy

    args = build_grpo_config(cfg)
    dataset = load_training_data(cfg.data)
    if policy is None:
        model, processor = load_policy(cfg.model, dtype=policy_dtype(cfg), trust_remote_code=cfg.trust_remote_code,
                                       attn_implementation=cfg.attn_implementation)
    else:
        model, processor = policy
    if cfg.lora.enabled and set(cfg.train_parts) != set(TRAIN_PARTS):
        raise ValueError("--train-parts does not apply with --lora; choose the adapted modules with "
                         "--lora-target-modules")
    if not cfg.lora.enabled:
        freeze_parts(model, cfg.train_parts)
    cfg.reward.max_completion_length = cfg.grpo.max_completion_length
    cfg.reward.eos_token_ids = _eos_ids(model, processor.tokenizer)
    if judge is None:
        judge = load_judge_keeping_grad(cfg.reward.judge)
    reward = CaptionUtilityReward(cfg.reward, judge=judge)
    eval_cb = None
    all_callbacks = [GradModeGuard(), *callbacks]
    if cfg.eval.steps or (cfg.eval.at_start and cfg.eval.benchmarks):
        settings = cfg.eval
        if settings.max_new_tokens is None:
            settings.max_new_tokens = cfg.grpo.max_completion_length
        eval_cb = PrismEvalCallback(settings, processor, cfg.output_dir, judge=judge, judge_spec=cfg.reward.judge)
        all_callbacks.append(eval_cb)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=dataset,
                          processing_class=processor, callbacks=all_callbacks or None,
                          peft_config=peft_config(cfg.lora))
    if eval_cb is not None:
        eval_cb.trainer = trainer
    return Built(trainer, reward, processor, dataset, eval_cb)


@dataclass
class TrainResult:
    output_dir: Path
    steps: int
    seconds: float
    log_history: list[dict[str, Any]]
    eval_history: list[dict[str, Any]] = field(default_factory=list)


def save_final(built: Built, cfg: TrainConfig) -> Path:
    """The final policy where `hf:<output_dir>` finds it (LoRA: adapter in adapter/, merged model at the top)."""
    from caprl_train.policy import save_for_evaluator

    trainer = built.trainer
    out = Path(cfg.output_dir)
    if cfg.lora.enabled:
        trainer.save_model(str(out / "adapter"))
        if cfg.lora.merge_on_save and trainer.is_world_process_zero():
            model = trainer.accelerator.unwrap_model(trainer.model)
            merged = model.merge_and_unload()
            save_for_evaluator(merged, built.processor, out)
    else:
        trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        (out / "caprl_train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str) + "\n")
    return out


def train(cfg: TrainConfig, judge: Any = None) -> TrainResult:
    """Train, save the final policy, and return what happened."""
    built = build_trainer(cfg, judge=judge)
    start = time.perf_counter()
    built.trainer.train(resume_from_checkpoint=cfg.resume_from_checkpoint)
    seconds = time.perf_counter() - start
    out = save_final(built, cfg)
    evals = [asdict(r) for r in built.eval_callback.history] if built.eval_callback else []
    return TrainResult(out, built.trainer.state.global_step, seconds, list(built.trainer.state.log_history), evals)


__all__ = ["TrainConfig", "GRPOSettings", "LoraSettings", "EvalSettings", "DataConfig", "RewardConfig",
           "build_grpo_config", "build_trainer", "policy_dtype", "train", "save_final", "TrainResult", "Built",
           "DEFAULT_POLICY"]
