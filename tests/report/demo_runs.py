"""Run folders shaped like `prism-eval demo`'s: five captioners named by absolute local paths, one local benchmark.

Why: the demo's real runs carry what a published report must not show (the
machine's folders in `file:` and `hf:` specs, a benchmark's source file, an error
message naming a file) and score with option log-likelihoods, so a sample's `raw`
holds the judge's probabilities. Seeded; the aggregates are computed from the
samples written, as in test_fixture.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from prism_eval.engines.cache_dir import models_dir
from prism_eval.runner.naming import output_folders

from .test_fixture import WORDS, _image, _results

KINDS = ("chart", "scene", "shapes", "table", "text")
CANNOT = "Can not answer based on the caption"


def demo_specs(root: Path) -> list[tuple[str, float, int]]:
    """(captioner spec, skill, mean caption words): the demo's five, with absolute paths as the demo writes them."""
    captions = Path(root).resolve() / "data" / "captions"
    return [(f"file:{captions / 'reference.jsonl'}", 0.85, 70), (f"file:{captions / 'partial.jsonl'}", 0.55, 45),
            (f"file:{captions / 'wrong.jsonl'}", -0.6, 65), ("none", 0.0, 0),
            (f"hf:{models_dir() / 'tiny-llava-demo'}", -0.05, 40)]


def _questions(n_images: int) -> list[dict]:
    qs = []
    for i in range(n_images):
        kind = KINDS[i % len(KINDS)]
        for j in range(4):
            qs.append({"id": f"{kind}_{i:02d}_q{j}", "image": f"images/{kind}_{i:02d}.png", "category": kind,
                       "question": f"What is fact {j} of the {kind} in image {i}?",
                       "options": [f"value {k} of fact {j}" for k in range(4)], "difficulty": (i * 7 + j) % 10 / 10})
    return qs


def _probs(rng: random.Random, labels: str, gold: str, ok: bool) -> dict[str, float]:
    """A judge's distribution over the option labels whose top choice is the gold one exactly when `ok`."""
    top = gold if ok else rng.choice([x for x in labels if x != gold])
    p_top = rng.uniform(0.35, 0.95)
    rest = [rng.random() + 0.05 for _ in labels[1:]]
    scale = (1 - p_top) / sum(rest)
    others = iter(sorted((r * scale for r in rest), reverse=True))
    out = {x: (p_top if x == top else next(others)) for x in labels}
    return {k: round(v, 6) for k, v in out.items()}


def _sample(rng: random.Random, spec: str, q: dict, caption: str, thumb: str, skill: float, estimator: str) -> dict:
    opts = q["options"][:]
    rng.shuffle(opts)
    opts.append(CANNOT)
    labels = "ABCDE"
    gold = labels[opts.index(q["options"][0])]
    p_ok = min(0.97, max(0.03, 0.2 + skill * (1 - q["difficulty"] * 0.5)))
    probs = _probs(rng, labels, gold, rng.random() < p_ok)
    top = max(probs, key=lambda k: probs[k])
    score = probs[gold] if estimator == "expected" else float(top == gold)
    return {"captioner": spec, "benchmark": "demo", "sample_id": q["image"], "question_id": q["id"],
            "category": q["category"], "image": q["image"], "thumb": thumb, "caption_index": 0, "caption": caption,
            "caption_prompt": None, "caption_tokens": len(caption.split()), "draw": 0, "question": q["question"],
            "options": opts, "gold": gold, "raw": json.dumps(probs), "extracted": top, "score": score,
            "correct": score >= 1.0, "status": "ok", "error": None}


def build_demo_like_runs(root: Path, *, estimator: str = "argmax", n_images: int = 30, seed: int = 0) -> list[Path]:
    """One run folder per demo captioner under root/runs/<name>/, as `prism-eval demo` lays them out."""
    root = Path(root)
    rng = random.Random(seed)
    specs = demo_specs(root)
    folders = output_folders([s for s, _, _ in specs])
    questions = _questions(n_images)
    dirs = []
    for run_seed, (spec, skill, words) in enumerate(specs):
        d = root / "runs" / folders[spec]
        (d / "thumbs").mkdir(parents=True, exist_ok=True)
        samples = []
        captions: dict[str, str] = {}
        for q in questions:
            thumb = f"thumbs/{hashlib.sha1(q['image'].encode()).hexdigest()[:16]}.jpg"
            if not (d / thumb).exists():
                _image(d / thumb, "chart" if q["category"] in ("chart", "table") else "photo",
                       int(hashlib.sha1(q["image"].encode()).hexdigest()[:8], 16))
            if q["image"] not in captions:
                n = max(5, int(rng.gauss(words, words / 5))) if words else 0
                captions[q["image"]] = " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + ("." if n else "")
            samples.append(_sample(rng, spec, q, captions[q["image"]], thumb, skill, estimator))
        if spec.startswith("hf:"):  # one judge call that failed, with an error naming a local file
            samples[5].update(status="failed", raw="", extracted=None, score=0.0, correct=False,
                              error=f"cannot read {root.resolve() / 'data' / questions[5]['image']}: truncated file")
        (d / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples), encoding="utf-8")
        res = _results(spec, "builtin:smollm2-135m", "caprl", 1, samples, run_seed, scoring="option-loglik",
                       estimator=estimator, shipped=False, source=str(root.resolve() / "data" / "demo.jsonl"))
        res["config"].update(option_norm="mean", benchmark_files=[str(root.resolve() / "data" / "demo.jsonl")])
        (d / "results.json").write_text(json.dumps(res, indent=2), encoding="utf-8")
        dirs.append(d)
    return dirs
