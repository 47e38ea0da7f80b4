"""A `prism` model for lmms-eval's own CLI: caption the task's images, then let a text judge answer.

    python -m lmms_eval --model prism \\
        --model_args captioner=hf:Qwen/Qwen2.5-VL-3B-Instruct,judge=builtin:smollm2-135m,protocol=prism \\
        --tasks mmstar

Registered through the entry-point group `lmms_eval.models` (setup.cfg), whose
payload is `manifest()`; lmms-eval then imports PrismLMM only when `--model
prism` is asked for. Captioner and judge are prism-eval model specs (hf:,
vllm:, openai:<model>@<url>, file:<captions.jsonl>, none, builtin:). For a
captions file the image keys are "lmms:<task>/<doc id>/<i>", the same keys
`--benchmark lmms:<task>` uses. The judge sees the task's own prompt after the
protocol's caption preamble, and its text goes back to the task's
process_results, so lmms-eval's parsing, metrics and aggregation apply.
"""
from __future__ import annotations

from typing import Any

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms

from prism_eval.core.protocols import Protocol, get_protocol
from prism_eval.core.records import JudgeRequest, Sampling
from prism_eval.integrations.lmms.tasks import doc_image_refs


def manifest():
    """The entry-point payload: the model id and where its class lives (imported lazily by lmms-eval)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id="prism", simple_class_path="prism_eval.integrations.lmms.model.PrismLMM")


def judge_request(protocol: Protocol, caption: str, context: str) -> JudgeRequest:
    """The task prompt behind the protocol's caption preamble (the task prompt carries its own instruction)."""
    return protocol.task_request(caption, context)


def _cut(text: str, until: Any) -> str:
    stops = [until] if isinstance(until, str) else list(until or [])
    for stop in stops:
        if stop and stop in text:
            text = text.split(stop, 1)[0]
    return text


class PrismLMM(lmms):
    """Caption-then-answer as an lmms-eval model (generate_until tasks with images)."""

    is_simple = True

    def __init__(self, captioner: str = "none", judge: str = "builtin:smollm2-135m", protocol: str = "prism",
                 caption_batch: int | str = 8, judge_batch: int | str = 64, seed: int | str = 0,
                 trust_remote_code: bool | str = False, **kwargs: Any) -> None:
        super().__init__()
        from prism_eval.engines.registry import load_captioner, load_judge

        self.protocol = get_protocol(str(protocol))
        trust = str(trust_remote_code).lower() in ("1", "true", "yes")
        self.captioner = load_captioner(str(captioner), trust_remote_code=trust)
        self.judge = load_judge(str(judge), trust_remote_code=trust)
        self.caption_batch = max(1, int(caption_batch))
        self.judge_batch = max(1, int(judge_batch))
        self.seed = int(seed)
        self._captions: dict[str, str] = {}  # image-set hash -> caption, shared across tasks in one run

    # -- stage 1 -----------------------------------------------------------------------
    def _caption_all(self, entries: list[tuple[str, tuple]]) -> None:
        from prism_eval.io.images import open_image

        todo, seen = [], set()
        for key, refs in entries:
            if key not in self._captions and key not in seen:
                seen.add(key)
                todo.append((key, refs))
        cs = self.protocol.caption_sampling
        sampling = Sampling(temperature=cs.temperature, top_p=cs.top_p, max_new_tokens=cs.max_new_tokens,
                            seed=self.seed)
        needs_pixels = getattr(self.captioner, "needs_pixels", True)
        for start in range(0, len(todo), self.caption_batch):
            batch = todo[start:start + self.caption_batch]
            images = [[open_image(r) for r in refs] if needs_pixels else list(refs) for _, refs in batch]
            prompts = [self.protocol.caption_prompt] * len(batch)
            outputs = self.captioner.caption(images, prompts, 1, sampling)
            for (key, _), texts in zip(batch, outputs):
                self._captions[key] = str(texts[0]) if texts else ""

    # -- lmms-eval interface -------------------------------------------------------------
    def generate_until(self, requests: list[Instance]) -> list[str]:
        entries, asks = [], []
        for request in requests:
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            visuals = doc_to_visual(doc) or []
            refs = doc_image_refs(task, doc_id, visuals)
            key = "|".join(r.sha256 for r in refs)
            entries.append((key, refs))
            asks.append((key, context, dict(gen_kwargs or {})))
        self._caption_all(entries)
        js = self.protocol.judge_sampling
        answers: list[str] = []
        for start in range(0, len(asks), self.judge_batch):
            batch = asks[start:start + self.judge_batch]
            # one sampling setting per call: group by the task's generation kwargs
            groups: dict[tuple, list[int]] = {}
            for i, (_, _, kw) in enumerate(batch):
                groups.setdefault((kw.get("temperature"), kw.get("max_new_tokens")), []).append(i)
            out: list[str] = [""] * len(batch)
            for (temperature, max_new), idx in groups.items():
                sampling = Sampling(temperature=js.temperature if temperature is None else float(temperature),
                                    top_p=js.top_p, max_new_tokens=int(max_new or js.max_new_tokens), seed=self.seed)
                reqs = [judge_request(self.protocol, self._captions[batch[i][0]], batch[i][1]) for i in idx]
                for i, text in zip(idx, self.judge.generate(reqs, sampling)):
                    out[i] = _cut(str(text), batch[i][2].get("until")).strip()
            answers.extend(out)
        return answers

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError("the prism model answers generate_until tasks only (caption, then a judge's text)")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError("the prism model does not support multi-round tasks")
