"""The captioner section: images/s and generated tokens/s of a random-weight Qwen2.5-VL-3B.

Captions go through HFCaptioner.caption, the evaluator's own path (processor,
chat template, left padding, generate). A random model rarely emits its stop
token, so nearly every caption runs to the token limit: the figures are for
full-length captions. Images are seeded noise at the requested size; the
processor resizes them to multiples of 28 pixels as it does any image.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from prism_eval.core.protocols import CAPRL_CAPTION_PROMPT
from prism_eval.core.records import Sampling
from prism_eval.tools.gpu_bench.measure import sig, sync, text_flops, vision_flops


def noise_images(size: int, count: int, seed: int) -> list[Any]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng([seed, size])
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(count)]


def image_tokens(processor: Any, size: int) -> tuple[int, int]:
    """(patches, LLM tokens) one size x size image becomes."""
    grid = processor.image_processor(images=noise_images(size, 1, 0), return_tensors="pt")["image_grid_thw"][0]
    patches = int(grid.prod())
    merge = processor.image_processor.merge_size
    return patches, patches // (merge * merge)


def _captioner(built: Any, processor: Any, batch: int):
    from prism_eval.engines.hf import HFCaptioner

    return HFCaptioner.from_loaded(built.model, processor, spec=f"random-weights:{built.name}",
                                   identity=built.identity(), batch_size=batch)


def _plan(image_sizes: Sequence[int], batches: Sequence[int], sampled: bool) -> list[tuple[int, int, float]]:
    """(size, batch, temperature) of every run: each size with each batch greedy, then the first sampled."""
    plan = [(size, batch, 0.0) for size in image_sizes for batch in batches]
    if sampled and plan:
        plan.append((plan[0][0], plan[0][1], 1.0))
    return plan


def _warm_up(built: Any, processor: Any, size: int, seed: int) -> None:
    """A first caption at a new size: kernels, vision windows and the allocator settle outside the timing."""
    image = noise_images(size, 1, seed + 1)[0]
    _captioner(built, processor, 1).caption([[image]], [CAPRL_CAPTION_PROMPT], 1,
                                            Sampling(temperature=0.0, max_new_tokens=4))


def _one_run(built: Any, processor: Any, *, device: str, size: int, batch: int, temperature: float,
             new_tokens: int, seed: int, merger: int, peak_tflops: float | None, matmul_tflops: float | None,
             memory: Callable[[], Any]) -> dict[str, Any]:
    cap = _captioner(built, processor, batch)  # fresh token counters for this run
    images = noise_images(size, batch, seed)
    sampling = Sampling(temperature=temperature, top_p=1.0, max_new_tokens=new_tokens, seed=seed)
    with memory() as mem:
        sync(device)
        t0 = time.perf_counter()
        cap.caption([[im] for im in images], [CAPRL_CAPTION_PROMPT] * batch, 1, sampling)
        sync(device)
        seconds = time.perf_counter() - t0
    patches, img_tokens = image_tokens(processor, size)
    generated = cap.generated_tokens
    flops = text_flops(built.body_params, cap.stats.tokens) + vision_flops(built.vision_params, merger,
                                                                            patches * batch)
    rate = flops / seconds / 1e12
    per_image = generated / batch
    return {
        "image_size": size, "batch": batch, "temperature": temperature, "new_tokens_limit": new_tokens,
        "seconds": round(seconds, 4), "images_per_s": round(batch / seconds, 4),
        "generated_tokens": generated, "generated_tokens_per_s": round(generated / seconds, 2),
        "mean_generated_per_image": round(per_image, 1), "prompt_tokens": cap.stats.tokens - generated,
        "image_tokens_per_image": img_tokens, "patches_per_image": patches,
        "peak_memory_mb": round(mem.peak_mb, 1), "memory_before_mb": round(mem.start_mb, 1),
        "tflops_per_s": sig(rate),
        "fraction_of_matmul_ceiling": sig(rate / matmul_tflops) if matmul_tflops else None,
        "fraction_of_datasheet_peak": sig(rate / peak_tflops) if peak_tflops else None,
        # every decode step reads all weights once: a floor on the bytes the decode moved
        "weight_read_tb_s": sig(built.weight_bytes * per_image / seconds / 1e12),
    }


def run_captioner_section(built: Any, processor: Any, *, device: str, image_sizes: Sequence[int],
                          batches: Sequence[int], new_tokens: int, sampled: bool, seed: int,
                          peak_tflops: float | None, matmul_tflops: float | None, memory: Callable[[], Any],
                          deadline: float, log: Callable[[str], None]) -> dict[str, Any]:
    """Every planned run that starts before `deadline`; the rest are listed as skipped for time."""
    merger = sum(p.numel() for p in built.model.model.visual.merger.parameters())
    runs: list[dict[str, Any]] = []
    skipped: list[str] = []
    warm: set[int] = set()
    for size, batch, temperature in _plan(image_sizes, batches, sampled):
        label = f"{size}x{size}, batch {batch}, " + ("greedy" if temperature == 0 else f"sampled at T={temperature}")
        if time.monotonic() > deadline:
            skipped.append(label)
            continue
        if size not in warm:
            _warm_up(built, processor, size, seed)
            warm.add(size)
        log(f"captioner: {label}")
        runs.append(_one_run(built, processor, device=device, size=size, batch=batch, temperature=temperature,
                             new_tokens=new_tokens, seed=seed, merger=merger, peak_tflops=peak_tflops,
                             matmul_tflops=matmul_tflops, memory=memory))
    return {"runs": runs, "skipped_for_time": skipped, "attn_implementation": built.attn_implementation,
            "dtype": str(built.model.dtype), "prompt": CAPRL_CAPTION_PROMPT}
