"""Evaluation during training: the evaluator's score on a small benchmark subset every K steps.

The reward is the judge's accuracy on the *training* questions; this callback
runs the leaderboard's own entry point (`prism_eval.evaluate`, as `prism-eval
run` does) on held-out benchmark questions with the live policy weights, and logs the score in the same log row as that
step's reward (`eval/score`, `eval/<benchmark>`). Each evaluation also writes
results.json and samples.jsonl under <output_dir>/eval/step-<N>/.

Only the main process evaluates (the others wait at a barrier); the policy
must be whole on that process (DDP or ZeRO-2, not ZeRO-3 sharding).
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from transformers import TrainerCallback

from caprl_train.config import EvalSettings


@dataclass
class EvalRecord:
    step: int
    score: float | None
    benchmarks: dict[str, float | None]
    seconds: float
    reward: float | None = None
    out_dir: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class PrismEvalCallback(TrainerCallback):
    """Runs the evaluator every `settings.steps` optimizer steps (and at step 0 if at_start)."""

    def __init__(self, settings: EvalSettings, processor, output_dir: str | Path, judge: Any = None,
                 judge_spec: str = "builtin:smollm2-135m", trainer: Any = None) -> None:
        from prism_eval.benchmarks import load_benchmark
        from prism_eval.runner.options import RunOptions

        if not settings.benchmarks:
            raise ValueError("evaluation during training needs at least one benchmark (--eval-benchmark)")
        self.settings = settings
        self.processor = processor
        self.out = Path(output_dir) / "eval"
        self.judge = judge if settings.judge is None else None
        self.judge_spec = settings.judge or judge_spec
        self.trainer = trainer
        self.run_id = uuid.uuid4().hex[:12]
        # Load (and validate) the benchmarks now, so a bad path fails before training starts.
        self.benchmarks = [load_benchmark(b, limit=settings.limit) for b in settings.benchmarks]
        self.options = RunOptions(judge=self.judge_spec, protocol=settings.protocol, scoring=settings.scoring,
                                  estimator=settings.estimator, num_captions=settings.num_captions,
                                  seed=settings.seed, caption_temperature=settings.temperature,
                                  caption_max_tokens=settings.max_new_tokens, caption_batch=settings.batch_size,
                                  store=str(self.out / "store.sqlite"))
        self._session = None
        self.history: list[EvalRecord] = []

    def session(self):
        """The evaluator session: one store, and the reward's judge shared instead of loaded again."""
        if self._session is None:
            from prism_eval.runner.evaluator import Evaluator

            self.out.mkdir(parents=True, exist_ok=True)
            self._session = Evaluator(self.options, judge=self.judge)
        return self._session

    def evaluate(self, model, step: int) -> EvalRecord:
        """Caption the benchmark subset with `model` as it is now and score it like `prism-eval run`."""
        import torch

        from prism_eval.api import evaluate
        from prism_eval.engines.hf import HFCaptioner

        start = time.perf_counter()
        spec = f"live:step-{step}"
        captioner = HFCaptioner.from_loaded(model, self.processor, spec=spec, batch_size=self.settings.batch_size,
                                            identity={"spec": spec, "run": self.run_id, "step": step})
        step_dir = self.out / f"step-{step}"
        was_training = model.training
        grad = torch.is_grad_enabled()
        model.eval()
        try:
            record = evaluate(captioner, self.benchmarks, session=self.session(), out=step_dir)
        finally:
            model.train(was_training)
            torch.set_grad_enabled(grad)
        scores = {name: b.score for name, b in record.benchmarks.items()}
        return EvalRecord(step, record.average, scores, time.perf_counter() - start, out_dir=str(step_dir))

    # -- trainer hooks ----------------------------------------------------------------------

    def _run(self, args, state, model, at_start: bool = False) -> None:
        if state.is_world_process_zero:
            record = self.evaluate(model, state.global_step)
            record.reward = self._current_reward(state)
            self.history.append(record)
            self.out.mkdir(parents=True, exist_ok=True)
            with (self.out / "history.jsonl").open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": record.step, "score": record.score, "benchmarks": record.benchmarks,
                                     "reward": record.reward, "seconds": round(record.seconds, 3)}) + "\n")
            self._log(record, at_start)
        _barrier()

    def _current_reward(self, state) -> float | None:
        """This step's mean reward (still pending in the trainer's metrics), else the last one logged."""
        metrics = getattr(self.trainer, "_metrics", None)
        pending = list(metrics["train"].get("reward", ())) if metrics is not None else []
        if pending:
            return float(sum(pending) / len(pending))
        return _last_reward(state.log_history)

    def _log(self, record: EvalRecord, at_start: bool) -> None:
        """Put the score in this step's log row, next to the reward.

        Mid-training the values join the trainer's pending metrics (flushed into
        the step's log row); before the first step they are logged as a row of
        their own at step 0.
        """
        values = {"eval/score": record.score, "eval/seconds": record.seconds}
        values.update({f"eval/{name}": v for name, v in record.benchmarks.items()})
        values = {k: float(v) for k, v in values.items() if v is not None}
        if self.trainer is None:
            return
        if at_start:
            self.trainer.log(values)
            return
        metrics = getattr(self.trainer, "_metrics", None)
        if metrics is not None:
            for key, value in values.items():
                metrics["train"][key].append(value)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.settings.at_start and state.global_step == 0 and model is not None:
            self._run(args, state, model, at_start=True)
        return control

    def on_step_end(self, args, state, control, model=None, **kwargs):
        every = self.settings.steps
        if every and state.global_step % every == 0 and model is not None:
            self._run(args, state, model)
        return control


class GradModeGuard(TrainerCallback):
    """Training needs autograd on; some engines switch it off process-wide when they load.

    (prism_eval's HF engines call torch.set_grad_enabled(False) at construction;
    a judge loaded before or during training would otherwise make the policy's
    loss a constant.) Turned back on at the start of training and of every step.
    """

    def on_train_begin(self, args, state, control, **kwargs):
        import torch

        torch.set_grad_enabled(True)
        return control

    on_step_begin = on_train_begin


def _last_reward(history: Sequence[dict[str, Any]]) -> float | None:
    for row in reversed(history):
        if "reward" in row:
            return float(row["reward"])
    return None


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


__all__ = ["EvalSettings", "PrismEvalCallback", "EvalRecord", "GradModeGuard"]
