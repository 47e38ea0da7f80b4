"""Builder of realistic run directories for the report tests (and a check that it keeps the contract).

The pipeline is not needed: this writes exactly what `prism-eval run` writes per
captioner (results.json + samples.jsonl + thumbs/), from a seeded simulation. The
aggregates in results.json are computed from the samples written, so the report can
be checked against them. Captioner names are fictional on purpose.
"""
from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from prism_eval.runner.results import RunSettings

HOSTILE = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "</textarea>")

MMSTAR_CATS = ("coarse perception", "fine-grained perception", "instance reasoning", "logical reasoning",
               "math", "science & technology")
CHART_CATS = ("human", "augmented")
WORDS = ("a red bus parked beside a brick building with two windows and a green door while people wait "
         "under a striped awning near a bicycle the sky is overcast and the street is wet from rain a sign "
         "reads open in white letters there are three potted plants on the left side of the entrance the "
         "chart shows sales rising from 12 in january to 48 in june with a dip in april labelled in blue").split()

# (captioner, captions per image, skill, mean caption words); one leaderboard's runs share their settings,
# so every captioner has the same number of captions per image.
CAPTIONERS = (
    ("none", 2, 0.0, 0),
    ("hf:example/captioner-small", 2, 0.45, 30),
    ("hf:example/captioner-large", 2, 0.7, 80),
    ("file:captions/verbose.jsonl", 2, 0.6, 160),
)


_IMAGES: dict[tuple[str, int], bytes] = {}


def _image(path: Path, kind: str, seed: int) -> None:
    """A 256x192 JPEG: a photo-like gradient with shapes, or a bar chart; noisy so its size is realistic."""
    if (kind, seed) not in _IMAGES:
        rng = random.Random(seed)
        w, h = 256, 192
        top = tuple(rng.randrange(120, 255) for _ in range(3))
        bottom = tuple(rng.randrange(0, 120) for _ in range(3))
        im = ImageOps.colorize(Image.linear_gradient("L").resize((w, h)), black=top, white=bottom)
        d = ImageDraw.Draw(im)
        if kind == "chart":
            d.rectangle([20, 20, w - 20, h - 20], fill=(250, 250, 250), outline=(60, 60, 60))
            for i in range(6):
                bh = rng.randrange(15, h - 50)
                d.rectangle([35 + i * 34, h - 25 - bh, 55 + i * 34, h - 25], fill=(70, 110 + i * 20, 200))
        else:
            for _ in range(6):
                x, y, r = rng.randrange(w), rng.randrange(h), rng.randrange(10, 50)
                d.ellipse([x - r, y - r, x + r, y + r], fill=tuple(rng.randrange(256) for _ in range(3)))
        noise = np.random.default_rng(seed).integers(-20, 21, (h, w, 3), dtype=np.int16)
        im = Image.fromarray(np.clip(np.asarray(im, np.int16) + noise, 0, 255).astype(np.uint8), "RGB")
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=85)
        _IMAGES[(kind, seed)] = buf.getvalue()
    path.write_bytes(_IMAGES[(kind, seed)])


def _questions(rng: random.Random, n_mmstar: int = 90, n_chart: int = 35) -> list[dict]:
    qs = []
    for i in range(n_mmstar):
        qs.append({"benchmark": "MMStar", "id": f"mmstar-{i}", "image": f"mmstar/{i:04d}.jpg",
                   "category": MMSTAR_CATS[i % 6], "difficulty": rng.random(), "kind": "photo",
                   "question": f"What is the colour of object {i} in the image?",
                   "options": [f"option {c} for {i}" for c in "wxyz"]})
    for i in range(n_chart):
        qs.append({"benchmark": "ChartQA", "id": f"chartqa-{i}", "image": f"chartqa/{i % 20:04d}.png",
                   "category": CHART_CATS[i % 2], "difficulty": rng.random(), "kind": "chart",
                   "question": f"What is the value of bar {i % 6 + 1}?", "options": None,
                   "target": str(10 + i)})
    # Hostile text in a question as well as in captions and judge outputs.
    qs[3]["question"] = "Which label appears? " + HOSTILE[2] + HOSTILE[0]
    return qs


def build_runs(root: Path, *, hostile: bool = True, judge: str = "builtin:smollm2-135m",
               protocol: str = "prism", captioners=CAPTIONERS, seed: int = 0, n_mmstar: int = 90,
               n_chart: int = 35) -> list[Path]:
    """Write one run dir per captioner under root/<slug>/; returns them. By default 125 questions (110 images)
    and 1,000 samples over the four captioners."""
    rng = random.Random(seed)
    questions = _questions(rng, n_mmstar, n_chart)
    dirs = []
    for ci_run, (captioner, n_caps, skill, words) in enumerate(captioners):
        slug = "".join(c if c.isalnum() else "-" for c in captioner).strip("-") or "run"
        d = root / slug
        (d / "thumbs").mkdir(parents=True, exist_ok=True)
        samples = []
        for qi, q in enumerate(questions):
            thumb = f"thumbs/{q['image'].replace('/', '_')}.jpg"
            if not (d / thumb).exists():
                _image(d / thumb, q["kind"], int(hashlib.sha1(q["image"].encode()).hexdigest()[:8], 16))
            for c in range(n_caps):
                if words == 0:
                    caption = ""
                else:
                    n = max(5, int(rng.gauss(words, words / 4)))
                    caption = " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."
                    if hostile and qi % 17 == 0:
                        caption += " " + HOSTILE[(qi + c) % 3] + " \u2028 & done"
                p_ok = 0.25 + skill * (1 - q["difficulty"] * 0.6) if q["options"] else skill * (1 - q["difficulty"])
                ok = rng.random() < p_ok
                status, error, extracted = "ok", None, None
                if q["options"]:
                    opts = q["options"][:]
                    rng.shuffle(opts)
                    gold = "ABCD"[opts.index(q["options"][0])]
                    extracted = gold if ok else rng.choice([x for x in "ABCD" if x != gold])
                    raw = f"Based on the caption, the answer is {extracted}."
                else:
                    opts, gold = None, q["target"]
                    extracted = gold if ok else str(int(gold) + rng.randrange(1, 9))
                    raw = f"<think>The chart suggests</think> <answer>\\boxed{{{extracted}}}</answer>"
                if rng.random() < 0.03:
                    status, extracted, ok = "unanswered", None, False
                    raw = "I cannot tell from the description."
                if hostile and qi % 13 == 0:
                    raw += " " + HOSTILE[(qi + c + 1) % 3]
                if captioner.startswith("hf:example/captioner-small") and qi == 7 and c == 0:
                    status, error, raw, extracted, ok = "failed", "judge timed out after 60 s", "", None, False
                samples.append({
                    "captioner": captioner, "benchmark": q["benchmark"], "sample_id": q["image"],
                    "question_id": q["id"], "category": q["category"], "image": q["image"], "thumb": thumb,
                    "caption_index": c, "caption": caption,
                    "caption_tokens": int(len(caption.split()) * 1.3), "draw": 0, "question": q["question"],
                    "options": opts, "gold": gold, "raw": raw, "extracted": extracted,
                    "score": 1.0 if ok else 0.0, "correct": ok, "status": status, "error": error})
        with (d / "samples.jsonl").open("w", encoding="utf-8") as fh:
            for s in samples:
                fh.write(json.dumps(s, ensure_ascii=False) + "\n")
        (d / "results.json").write_text(json.dumps(_results(captioner, judge, protocol, n_caps, samples, ci_run),
                                                   indent=2), encoding="utf-8")
        dirs.append(d)
    return dirs


def _results(captioner: str, judge: str, protocol: str, n_caps: int, samples: list[dict], run_seed: int, *,
             scoring: str = "generate", estimator: str = "argmax", shipped: bool = True, source: str = "") -> dict:
    benches: dict[str, dict] = {}
    for b in dict.fromkeys(s["benchmark"] for s in samples):
        bs = [s for s in samples if s["benchmark"] == b]
        per_q: dict[str, list[float]] = {}
        cat_of = {}
        for s in bs:
            per_q.setdefault(s["question_id"], []).append(s["score"])
            cat_of[s["question_id"]] = s["category"]
        means = {q: sum(v) / len(v) for q, v in per_q.items()}
        score = 100 * sum(means.values()) / len(means)
        rng = random.Random(run_seed)
        keys = list(means)
        boot = sorted(100 * sum(means[rng.choice(keys)] for _ in keys) / len(keys) for _ in range(200))
        cats: dict[str, list[float]] = {}
        for q, m in means.items():
            cats.setdefault(cat_of[q], []).append(m)
        benches[b] = {
            "score": score, "n": len(means), "ci95": [boot[5], boot[194]],
            "best_of_n": 100 * sum(max(v) for v in per_q.values()) / len(per_q),
            "categories": {c: 100 * sum(v) / len(v) for c, v in cats.items()},
            "unanswered": sum(s["status"] == "unanswered" for s in bs),
            "failed": sum(s["status"] == "failed" for s in bs), "num_captions": n_caps,
            "mean_caption_tokens": sum(s["caption_tokens"] for s in bs) / len(bs), "shipped": shipped,
            "source": source,
            "question_set": hashlib.sha256(" ".join(sorted(per_q)).encode()).hexdigest()[:16]}
    config = {"captioner": captioner, "judge": judge, "protocol": protocol, "seed": 0, "num_captions": n_caps,
              "limit": None, "benchmarks": list(benches)}
    config["config_hash"] = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    settings = RunSettings(judge=judge, protocol=protocol, scoring=scoring, estimator=estimator,
                           judge_identity="0123456789abcdef", permutations=1, num_captions=n_caps,
                           caption_prompt="Describe the image.", caption_temperature=0.0, caption_top_p=1.0,
                           caption_max_tokens=512, label_quirk=False, seed=0,
                           question_sets={b: v["question_set"] for b, v in benches.items()})
    return {"version": 2, "captioner": captioner, "judge": judge, "protocol": protocol, "scoring": scoring,
            "estimator": estimator, "benchmarks": benches,
            "average": sum(v["score"] for v in benches.values()) / len(benches), "settings": settings.to_dict(),
            "config": config, "versions": {"prism-eval": "0.2.0", "transformers": "5.24.0", "torch": "2.13.0+cpu"},
            "created": "2026-11-30T02:00:00+00:00", "complete": True}


def test_fixture_writes_the_run_contract(tmp_path):
    dirs = build_runs(tmp_path)
    assert [d.name for d in dirs] == ["none", "hf-example-captioner-small", "hf-example-captioner-large",
                                      "file-captions-verbose-jsonl"]
    n = 0
    for d in dirs:
        res = json.loads((d / "results.json").read_text())
        assert set(res["benchmarks"]) == {"MMStar", "ChartQA"}
        assert len(res["benchmarks"]["MMStar"]["categories"]) == 6
        lines = (d / "samples.jsonl").read_text(encoding="utf-8").rstrip("\n").split("\n")
        n += len(lines)
        first = json.loads(lines[0])
        assert (d / first["thumb"]).is_file()
        assert 0.0 <= first["score"] <= 1.0
    assert n == 1000
    text = "".join((d / "samples.jsonl").read_text(encoding="utf-8") for d in dirs)
    assert all(h in text for h in HOSTILE)
