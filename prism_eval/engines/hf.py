"""transformers back ends: a captioner for any image-text-to-text model with a
chat template, and a text-only judge with the three scoring capabilities.

Both accept a local folder or a hub id, passed to from_pretrained unchanged.
The judge's log-prob capabilities run through PrefixScorer, so every question
about one caption reuses that caption's key/value cache.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

from prism_eval.core.records import JudgeRequest, RawPrompt, Sampling
from prism_eval.engines import judge_inputs as ji
from prism_eval.engines.base import EngineError, takes_raw_chatml_vision
from prism_eval.engines.identity import weights_identity
from prism_eval.engines.prefix import ForwardStats, PrefixConfig, PrefixScorer
from prism_eval.engines.sampling import SeededSampler, row_seed
from prism_eval.engines.tokens import token_ends

# -- shared helpers ----------------------------------------------------------------------

def pick_device(device: str | None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(dtype: str | None, device: str):
    """'auto': fp32 on CPU (fast and exact there), bf16 on an accelerator."""
    import torch

    name = (dtype or "auto").lower()
    if name == "auto":
        return torch.float32 if device == "cpu" else torch.bfloat16
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if name not in table:
        raise ValueError(f"dtype {dtype!r}: unknown (use auto, float32, bfloat16 or float16)")
    return table[name]


def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def _load_error(spec: str, err: Exception) -> EngineError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return EngineError(f"{spec}: cannot load model: {first}")


def _generation_config(model, tokenizer, max_new_tokens: int):
    """A clean greedy config: the model's stop/pad ids and suppressed tokens, nothing else.

    Hub generation_config.json files often carry sampling defaults and a
    repetition penalty; the papers' decoding uses none, so they are not inherited.
    """
    from transformers import GenerationConfig

    base = model.generation_config
    eos = base.eos_token_id if base.eos_token_id is not None else tokenizer.eos_token_id
    pad = base.pad_token_id if base.pad_token_id is not None else tokenizer.pad_token_id
    if pad is None:
        pad = eos[0] if isinstance(eos, list) else eos
    return GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos, pad_token_id=pad,
                            bos_token_id=base.bos_token_id, suppress_tokens=base.suppress_tokens,
                            num_beams=1, use_cache=True)


@contextlib.contextmanager
def _only_generation_config(model, config) -> Iterator[None]:
    """Make `config` the model's generation config for one call.

    generate() fills every field left unset in the config it is given from the
    model's own generation_config (hub files carry repetition penalties and
    sampling defaults); installing ours as the model's leaves nothing to inherit.
    """
    saved = model.generation_config
    model.generation_config = config
    try:
        yield
    finally:
        model.generation_config = saved


def _logits_processors(seeds: list[int], sampling: Sampling):
    from transformers import LogitsProcessorList

    if sampling.temperature <= 0:
        return LogitsProcessorList()
    return LogitsProcessorList([SeededSampler(seeds, sampling.temperature, sampling.top_p)])


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# -- judge -------------------------------------------------------------------------------

class HFJudge:
    """A text-only causal LM as the judge (transformers).

    batch_size caps rows per forward pass; token_budget caps padded new tokens
    per pass; share_prefix turns KV reuse of common prompt prefixes on or off
    (results are the same either way, to float rounding).
    """

    def __init__(self, path_or_hub_id: str, *, spec: str | None = None, dtype: str | None = "auto",
                 device: str | None = None, batch_size: int = 32, token_budget: int = 2048,
                 cache_token_budget: int = 16384, share_prefix: bool = True, min_shared_tokens: int = 16,
                 gguf_file: str | None = None, trust_remote_code: bool = False, revision: str | None = None):
        from transformers import AutoTokenizer

        from prism_eval.engines.text_only import load_text_model, processor_chat_template

        spec = spec or f"hf:{path_or_hub_id}"
        device = pick_device(device)
        torch_dtype = pick_dtype(dtype, device)
        load_kw: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if revision:
            load_kw["revision"] = revision
        if gguf_file:
            load_kw["gguf_file"] = gguf_file
        try:
            with _quiet():
                tokenizer = AutoTokenizer.from_pretrained(path_or_hub_id, **load_kw)
                model = load_text_model(path_or_hub_id, torch_dtype, **load_kw)
                if not getattr(tokenizer, "chat_template", None) and not gguf_file:
                    tokenizer.chat_template = processor_chat_template(path_or_hub_id, **load_kw)
        except (OSError, ValueError, ImportError, KeyError) as err:
            raise _load_error(spec, err) from err
        model.to(device).eval()
        self.gguf_file = gguf_file
        self._attach(model, tokenizer, spec=spec, path=path_or_hub_id, device=device, dtype=torch_dtype,
                     batch_size=batch_size, revision=revision, token_budget=token_budget,
                     cache_token_budget=cache_token_budget, share_prefix=share_prefix,
                     min_shared_tokens=min_shared_tokens)

    @classmethod
    def from_loaded(cls, model: Any, tokenizer: Any, *, spec: str, identity: dict[str, Any] | None = None,
                    batch_size: int = 32, token_budget: int = 2048, cache_token_budget: int = 16384,
                    share_prefix: bool = True, min_shared_tokens: int = 16) -> "HFJudge":
        """A judge around a causal LM already in memory (e.g. a benchmark's random-weight model): no load.

        `identity` names the weights for the store; the model is used as it is
        (its device, dtype and train/eval mode are the caller's).
        """
        first = next(model.parameters())
        judge = cls.__new__(cls)
        judge.gguf_file = None
        judge._attach(model, tokenizer, spec=spec, path=spec, device=first.device,
                      dtype=getattr(model, "dtype", None) or first.dtype, batch_size=batch_size, revision=None,
                      token_budget=token_budget, cache_token_budget=cache_token_budget,
                      share_prefix=share_prefix, min_shared_tokens=min_shared_tokens)
        judge._identity = dict(identity or {"live": spec})
        return judge

    def _attach(self, model: Any, tokenizer: Any, *, spec: str, path: str, device: Any, dtype: Any,
                batch_size: int, revision: str | None, token_budget: int, cache_token_budget: int,
                share_prefix: bool, min_shared_tokens: int) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.spec, self.path, self.device, self.dtype = spec, path, device, dtype
        self.batch_size = int(batch_size)
        self.revision = revision
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        self.pad_id = int(pad)
        self.prefix_config = PrefixConfig(share_prefix=share_prefix, min_shared_tokens=min_shared_tokens,
                                          max_batch_rows=self.batch_size, max_batch_tokens=token_budget,
                                          max_cache_tokens=cache_token_budget, pad_id=self.pad_id)
        self.scorer = PrefixScorer(self.model, self.prefix_config)
        self.generate_stats = ForwardStats()
        self._identity: dict[str, Any] | None = None
        self._letter_ids: dict[str, tuple[int, ...]] = {}

    # -- identity

    def fingerprint(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = weights_identity(self.path, self.revision)
        fp = {"engine": "hf", "spec": self.spec, "dtype": _dtype_name(self.dtype), **self._identity}
        if self.gguf_file:
            fp["gguf_file"] = self.gguf_file
        return fp

    @property
    def stats(self) -> ForwardStats:
        """Tokens run through the model so far, over all three capabilities."""
        total = ForwardStats()
        total.add(self.scorer.stats)
        total.add(self.generate_stats)
        return total

    # -- rendering

    def render(self, request: JudgeRequest) -> str:
        """The exact prompt text the model sees, ending with the prefill (judge_inputs, shared by all engines)."""
        return ji.prompt_text(request, self.tokenizer)

    def encode_prompt(self, request: JudgeRequest) -> list[int]:
        return ji.prompt_ids(self.tokenizer, request)

    def token_ends(self, texts: Sequence[str]) -> list[list[int]] | None:
        """Where each token of each text ends, in this judge's tokenizer (caption lengths, truncation)."""
        return token_ends(self.tokenizer, texts)

    # -- generate

    def generate(self, requests: Sequence[JudgeRequest], sampling: Sampling) -> list[str]:
        import torch

        prompts = [self.encode_prompt(r) for r in requests]
        gen_cfg = _generation_config(self.model, self.tokenizer, sampling.max_new_tokens)
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        out: list[str] = [""] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            width = max(len(prompts[i]) for i in idx)
            ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, width - len(prompts[i]):] = torch.tensor(prompts[i])
                mask[r, width - len(prompts[i]):] = 1
            seeds = [row_seed(sampling.seed, "judge", *prompts[i]) for i in idx]
            with torch.inference_mode(), _quiet(), _only_generation_config(self.model, gen_cfg):
                gen = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                          generation_config=gen_cfg,
                                          logits_processor=_logits_processors(seeds, sampling))
            new = gen[:, width:].cpu()
            for r, i in enumerate(idx):
                out[i] = self.tokenizer.decode(new[r], skip_special_tokens=True)
            self.generate_stats.forward_calls += 1
            self.generate_stats.tokens += int(mask.sum()) + int((new != self.pad_id).sum())
            self.generate_stats.padded_tokens += ids.numel() + new.numel()
        return out

    # -- log-prob capabilities

    def letter_token_ids(self, letter: str) -> tuple[int, ...]:
        """Single-token spellings of an option letter ("C" and " C" where both exist)."""
        if letter not in self._letter_ids:
            self._letter_ids[letter] = tuple(ji.letter_token_ids(self.tokenizer, letter))
        return self._letter_ids[letter]

    def letter_logprobs(self, requests: Sequence[JudgeRequest],
                        letters: Sequence[Sequence[str]]) -> list[list[float]]:
        if len(requests) != len(letters):
            raise ValueError("letter_logprobs: requests and letters differ in length")
        seqs, reads, spans = [], [], []
        for req, ls in zip(requests, letters):
            ids = self.encode_prompt(req)
            cands: list[int] = []
            span = []
            for letter in ls:
                variants = self.letter_token_ids(letter)
                span.append((len(cands), len(cands) + len(variants)))
                cands.extend(variants)
            seqs.append(ids)
            reads.append([(len(ids) - 1, cands)])
            spans.append(span)
        scored = self.scorer.score(seqs, reads)
        out = []
        for res, span in zip(scored, spans):
            row = res[0]
            out.append([ji.logsumexp(row[a:b]) for a, b in span])
        return out

    def option_logliks(self, requests: Sequence[JudgeRequest],
                       continuations: Sequence[Sequence[str]]) -> list[list[tuple[float, int]]]:
        if len(requests) != len(continuations):
            raise ValueError("option_logliks: requests and continuations differ in length")
        seqs, reads, shape = [], [], []
        for req, conts in zip(requests, continuations):
            prompt = self.encode_prompt(req)
            shape.append(len(conts))
            for cont in conts:
                # Prompt and continuation are tokenized separately and concatenated (lm-eval-harness style).
                cids = ji.continuation_ids(self.tokenizer, cont)
                seqs.append(prompt + cids)
                reads.append([(len(prompt) - 1 + j, (t,)) for j, t in enumerate(cids)])
        scored = self.scorer.score(seqs, reads)
        out, k = [], 0
        for n in shape:
            row = []
            for res in scored[k:k + n]:
                row.append((float(sum(r[0] for r in res)), len(res)))
            out.append(row)
            k += n
        return out


# -- captioner ---------------------------------------------------------------------------

@contextlib.contextmanager
def _allow_missing_video_processor() -> Iterator[None]:
    """Let a VL processor be built with video_processor=None (no torchvision here)."""
    from transformers.processing_utils import ProcessorMixin

    orig = ProcessorMixin.check_argument_for_proper_class

    def check(self, name, arg):
        if arg is None and name == "video_processor":
            return None
        return orig(self, name, arg)

    ProcessorMixin.check_argument_for_proper_class = check
    try:
        yield
    finally:
        ProcessorMixin.check_argument_for_proper_class = orig


def load_vlm_processor(path_or_hub_id: str, **load_kw: Any):
    """AutoProcessor, or, when it fails only for want of torchvision's video
    processor (Qwen2-VL family on CPU torch), the same processor assembled
    from its tokenizer and PIL image processor without video support."""
    from transformers import AutoConfig, AutoImageProcessor, AutoProcessor, AutoTokenizer

    try:
        with _quiet():
            return AutoProcessor.from_pretrained(path_or_hub_id, **load_kw)
    except (ImportError, AttributeError, ValueError) as err:
        if "torchvision" not in str(err).lower() and "video" not in str(err).lower():
            raise
        first_err = err
    import transformers
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    config = AutoConfig.from_pretrained(path_or_hub_id, **load_kw)
    cls_name = PROCESSOR_MAPPING_NAMES.get(config.model_type)
    if not cls_name:
        raise first_err
    cls = getattr(transformers, cls_name)
    with _quiet():
        tok = AutoTokenizer.from_pretrained(path_or_hub_id, **load_kw)
        image_processor = AutoImageProcessor.from_pretrained(path_or_hub_id, **load_kw)
    template = getattr(tok, "chat_template", None)
    local = Path(path_or_hub_id) / "chat_template.jinja"
    if local.is_file():
        template = local.read_text()
    with _allow_missing_video_processor():
        return cls(image_processor=image_processor, tokenizer=tok, video_processor=None, chat_template=template)


class HFCaptioner:
    """An image-text-to-text model from transformers, captioning with its chat template."""

    def __init__(self, path_or_hub_id: str, *, spec: str | None = None, dtype: str | None = "auto",
                 device: str | None = None, batch_size: int = 8, trust_remote_code: bool = False,
                 max_pixels: int | None = None, revision: str | None = None):
        from transformers import AutoModelForImageTextToText

        spec = spec or f"hf:{path_or_hub_id}"
        device = pick_device(device)
        torch_dtype = pick_dtype(dtype, device)
        load_kw: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if revision:
            load_kw["revision"] = revision
        try:
            processor = load_vlm_processor(path_or_hub_id, **load_kw)
            with _quiet():
                model = AutoModelForImageTextToText.from_pretrained(path_or_hub_id, dtype=torch_dtype, **load_kw)
        except (OSError, ValueError, ImportError, KeyError) as err:
            raise _load_error(spec, err) from err
        model.to(device).eval()
        self._attach(model, processor, spec=spec, path=path_or_hub_id, device=device, dtype=torch_dtype,
                     batch_size=batch_size, max_pixels=max_pixels, revision=revision)

    @classmethod
    def from_loaded(cls, model: Any, processor: Any, *, spec: str, identity: dict[str, Any] | None = None,
                    batch_size: int = 8, max_pixels: int | None = None) -> "HFCaptioner":
        """A captioner around weights already in memory (a policy being trained): no save, no reload.

        `identity` names the weights for the store (e.g. the training run and step); the model is
        used as it is (its device, dtype and train/eval mode are the caller's).
        """
        first = next(model.parameters())
        captioner = cls.__new__(cls)
        captioner._attach(model, processor, spec=spec, path=spec, device=first.device,
                          dtype=getattr(model, "dtype", None) or first.dtype, batch_size=batch_size,
                          max_pixels=max_pixels, revision=None)
        captioner._identity = dict(identity or {"live": spec})
        return captioner

    def _attach(self, model: Any, processor: Any, *, spec: str, path: str, device: Any, dtype: Any,
                batch_size: int, max_pixels: int | None, revision: str | None) -> None:
        self.model, self.processor = model, processor
        self.spec, self.path, self.device, self.dtype = spec, path, device, dtype
        self.batch_size = int(batch_size)
        self.revision = revision
        self.max_pixels = max_pixels
        self.tokenizer = getattr(processor, "tokenizer", None)
        if self.tokenizer is None:
            raise EngineError(f"{self.spec}: the processor has no tokenizer")
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if max_pixels is not None:
            self._set_max_pixels(int(max_pixels))
        if not getattr(processor, "chat_template", None):
            raise EngineError(f"{self.spec}: the processor has no chat template; an image-text-to-text "
                              "model with a chat template is required")
        self._identity: dict[str, Any] | None = None
        self.stats = ForwardStats()  # prompt tokens (image tokens included) plus generated tokens
        self.generated_tokens = 0  # up to and including each caption's stop token

    def _set_max_pixels(self, max_pixels: int) -> None:
        ip = getattr(self.processor, "image_processor", None)
        size = getattr(ip, "size", None)
        if ip is None or size is None or "longest_edge" not in size or not hasattr(ip, "merge_size"):
            raise ValueError(f"{self.spec}: max_pixels applies to pixel-budget image processors "
                             "(Qwen-VL family); this model's processor has none")
        shortest = size["shortest_edge"]
        if max_pixels < shortest:
            raise ValueError(f"{self.spec}: max_pixels {max_pixels} is below the processor's minimum {shortest}")
        ip.size = type(size)(shortest_edge=shortest, longest_edge=max_pixels) if not isinstance(size, dict) \
            else {"shortest_edge": shortest, "longest_edge": max_pixels}

    def fingerprint(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = weights_identity(self.path, self.revision)
        fp = {"engine": "hf", "spec": self.spec, "dtype": _dtype_name(self.dtype), **self._identity}
        if self.max_pixels is not None:
            fp["max_pixels"] = self.max_pixels
        return fp

    def render(self, n_images: int, prompt: str) -> str:
        """The model input for one image set: a raw prompt as written (when the model has its tokens),
        else the instruction in the processor's chat template."""
        if isinstance(prompt, RawPrompt):
            if takes_raw_chatml_vision(self.tokenizer):
                return str(prompt)
            prompt = prompt.instruction
        content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
        content.append({"type": "text", "text": prompt})
        return self.processor.apply_chat_template([{"role": "user", "content": content}],
                                                  add_generation_prompt=True, tokenize=False)

    def caption(self, images: Sequence[Sequence[Any]], prompts: Sequence[str], n: int,
                sampling: Sampling) -> list[list[str]]:
        import torch

        if len(images) != len(prompts):
            raise ValueError("caption: images and prompts differ in length")
        if n < 1:
            raise ValueError(f"caption: n must be >= 1 (got {n})")
        entries = [[_as_rgb(im) for im in ims] for ims in images]
        texts = [self.render(len(ims), p) for ims, p in zip(entries, prompts)]
        keys = [row_seed(0, t, *(_image_digest(im) for im in ims)) for t, ims in zip(texts, entries)]
        # Greedy decoding gives the same text every time: decode once, copy n times.
        draws = n if sampling.temperature > 0 else 1
        rows = [(e, j) for e in range(len(entries)) for j in range(draws)]
        gen_cfg = _generation_config(self.model, self.tokenizer, sampling.max_new_tokens)
        results: list[list[str]] = [[] for _ in entries]
        per_batch = max(1, self.batch_size)
        for start in range(0, len(rows), per_batch):
            chunk = rows[start:start + per_batch]
            batch_texts = [texts[e] for e, _ in chunk]
            batch_images = [im for e, _ in chunk for im in entries[e]]
            with _quiet():
                inputs = self.processor(text=batch_texts, images=batch_images or None, padding=True,
                                        return_tensors="pt")
            inputs = {k: (v.to(self.device) if hasattr(v, "to") else v) for k, v in inputs.items()}
            if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
                inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
            seeds = [row_seed(sampling.seed, keys[e], j) for e, j in chunk]
            with torch.inference_mode(), _quiet(), _only_generation_config(self.model, gen_cfg):
                gen = self.model.generate(**inputs, generation_config=gen_cfg,
                                          logits_processor=_logits_processors(seeds, sampling))
            width = inputs["input_ids"].shape[1]
            new = gen[:, width:].cpu()
            self._count(inputs, gen, new, gen_cfg)
            for (e, _), row in zip(chunk, new):
                results[e].append(self.tokenizer.decode(row, skip_special_tokens=True).strip())
        if draws == 1 and n > 1:
            results = [r * n for r in results]
        return results

    def _count(self, inputs: dict[str, Any], gen: Any, new: Any, gen_cfg: Any) -> None:
        """Add one generate call's tokens to `stats` and `generated_tokens` (for throughput benchmarks)."""
        made = _generated_tokens(new, gen_cfg.eos_token_id)
        self.generated_tokens += made
        mask = inputs.get("attention_mask")  # some processors return none: then every prompt position is real
        prompt = int(mask.sum()) if mask is not None else int(inputs["input_ids"].numel())
        self.stats.forward_calls += 1
        self.stats.tokens += prompt + made
        self.stats.padded_tokens += int(gen.numel())


def _generated_tokens(new: Any, eos: int | list[int] | None) -> int:
    """New tokens up to and including each row's first stop token (what follows it is padding)."""
    import torch

    stops = torch.tensor(eos if isinstance(eos, list) else ([] if eos is None else [eos]), dtype=new.dtype)
    if not len(stops) or not new.numel():
        return int(new.numel())
    hit = torch.isin(new, stops)
    ended = hit.any(dim=1)
    first = torch.where(ended, hit.int().argmax(dim=1) + 1, torch.full_like(ended, new.shape[1], dtype=torch.long))
    return int(first.sum())


def _as_rgb(image: Any):
    from PIL import Image

    if isinstance(image, (str, os.PathLike)):
        with Image.open(image) as im:
            return im.convert("RGB")
    if not hasattr(image, "convert"):
        raise ValueError(f"caption: expected a PIL image or a path, got {type(image).__name__}")
    return image.convert("RGB") if image.mode != "RGB" else image


def _image_digest(image: Any) -> bytes:
    return hashlib.sha256(f"{image.size}".encode() + image.tobytes()).digest()[:16]
