"""Pack samples and downscaled thumbnails into the JSON the sample browser reads.

Why: the page must stay one offline file under a few MB. Texts that repeat (a
caption is judged once per question, a question once per captioner) are stored
once in a string table; each image is embedded once, downscaled to a size chosen
from how many distinct images there are.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import re
from pathlib import Path
from typing import Any

from PIL import Image

from prism_eval.core.diagnostics import option_probabilities
from prism_eval.report.board import length_unit
from prism_eval.report.diagnostics import OUTCOMES
from prism_eval.report.runs import Run
from prism_eval.runner.results import SampleRecord

__all__ = ["build_payload", "thumbnail_data_uri", "safe_json_for_script", "thumb_size_for", "top_choice", "verdict"]

PROBABILISTIC = ("expected", "sampled")  # estimators whose score is not "the decision was right"


def safe_json_for_script(obj: Any) -> str:
    """JSON that cannot end or confuse a <script> element: <, >, & and JS line separators escaped."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for ch, rep in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, rep)
    return text


def thumb_size_for(n_images: int) -> int:
    """Longest side in pixels: 160 up to 300 images, then smaller so the total stays near 2-3 MB."""
    if n_images <= 300:
        return 160
    return max(64, int(160 * math.sqrt(300 / n_images)))


def thumbnail_data_uri(path: Path, size: int, quality: int = 72) -> str | None:
    """A JPEG data URI of the image shrunk to `size` px on its longest side; None if unreadable."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((size, size), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=quality, optimize=True, progressive=False)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _thumb_path(run_dir: Path, thumb: Any) -> Path | None:
    """The thumbnail file, only if it lies inside the run directory (a report never embeds other files)."""
    if not thumb:
        return None
    p = (run_dir / str(thumb)).resolve()
    return p if p.is_relative_to(run_dir.resolve()) and p.is_file() else None


def top_choice(raw: str | None) -> tuple[str, float] | None:
    """The judge's most probable option and its probability, from a log-prob answer's `raw` JSON; None otherwise."""
    probs = option_probabilities(raw)
    if probs is None:
        return None
    label = max(probs, key=lambda k: probs[k])
    return label, probs[label]


def verdict(s: SampleRecord, estimator: str) -> tuple[bool, str | None, float | None]:
    """(right, top choice, its probability). Under expected/sampled scoring an answer is right when the
    judge's top choice is the gold option (its score is a probability or a draw, so score >= 1 says little);
    otherwise when it scored 1."""
    top = top_choice(s.raw) if s.status == "ok" else None
    if top is None:
        return bool(s.correct), None, None
    if estimator in PROBABILISTIC and s.gold is not None:
        return top[0] == str(s.gold), top[0], top[1]
    return bool(s.correct), top[0], top[1]


def _natural(s: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _select_questions(runs: list[Run], max_samples: int) -> tuple[set[tuple[str, str]], int, int]:
    """Whole questions (every captioner's samples for them) in a fixed hash order, up to the cap."""
    per_q: dict[tuple[str, str], int] = {}
    for r in runs:
        for s in r.samples or ():
            k = (s.benchmark, s.question_id)
            per_q[k] = per_q.get(k, 0) + 1
    total = sum(per_q.values())
    if total <= max_samples:
        return set(per_q), total, total
    order = sorted(per_q, key=lambda k: hashlib.sha1(f"{k[0]}\0{k[1]}".encode()).hexdigest())
    chosen, count = set(), 0
    for k in order:
        if count + per_q[k] > max_samples:
            continue
        chosen.add(k)
        count += per_q[k]
    return chosen, count, total


def _benchmarks(runs: list[Run]) -> list[str]:
    """Every benchmark the runs report, then any that only their samples name, in first-seen order."""
    named = [b for r in runs for b in r.benchmarks]
    sampled = [s.benchmark for r in runs for s in r.samples or ()]
    return list(dict.fromkeys(named + sampled))


def _images(runs: list[Run], chosen: set[tuple[str, str]]) -> tuple[list[str | None], dict, int, int]:
    """Each distinct image once, as a data URI sized by how many there are: (uris, index, px, missing)."""
    image_src: dict[tuple[str, str], Path | None] = {}
    for r in runs:
        for s in r.samples or ():
            ik = (s.benchmark, s.image)
            if (s.benchmark, s.question_id) in chosen and image_src.get(ik) is None:
                image_src[ik] = _thumb_path(r.path, s.thumb)
    size = thumb_size_for(len(image_src))
    images: list[str | None] = []
    index: dict[tuple[str, str], int] = {}
    missing = 0
    for ik, p in image_src.items():
        uri = thumbnail_data_uri(p, size) if p is not None else None
        missing += p is not None and uri is None
        index[ik] = len(images)
        images.append(uri)
    return images, index, size, missing


def build_payload(groups: list[list[Run]], max_samples: int = 2000) -> dict[str, Any]:
    """The sample browser's data: runs, benchmarks, images, a string table and compact samples."""
    runs = [r for g in groups for r in g]
    chosen, shown, total = _select_questions(runs, max_samples)
    strings: dict[str, int] = {}

    def sid(text: Any) -> int:
        return strings.setdefault("" if text is None else str(text), len(strings))

    benches = _benchmarks(runs)
    b_index = {b: i for i, b in enumerate(benches)}
    images, i_index, size, missing = _images(runs, chosen)
    rows = []
    for ri, r in enumerate(runs):
        for s in r.samples or ():
            if (s.benchmark, s.question_id) not in chosen:
                continue
            ci = -1 if s.caption_index is None else s.caption_index
            ok, top, p_top = verdict(s, r.settings.estimator)
            rows.append(((b_index[s.benchmark], _natural(s.question_id), ri, ci, s.draw), {
                "r": ri, "b": b_index[s.benchmark], "q": s.question_id, "cat": s.category,
                "im": i_index[(s.benchmark, s.image)], "ik": r.shown(s.image),
                "ci": ci, "cap": sid(s.caption), "tok": s.caption_tokens,
                "d": s.draw, "qs": sid(s.question),
                "o": None if s.options is None else [sid(o) for o in s.options],
                "g": None if s.gold is None else str(s.gold), "raw": sid(s.raw),
                "x": None if s.extracted is None else str(s.extracted),
                "top": top, "pt": None if p_top is None else round(p_top, 4),
                "s": round(s.score, 4), "ok": ok,
                "st": s.status or "ok", "err": r.shown(s.error) if s.error else None,
                "oc": s.outcome,
            }))
    rows.sort(key=lambda t: t[0])
    return {
        "runs": [{"label": r.label, "spec": r.spec, "blind": r.blind, "group": gi, "estimator": r.settings.estimator}
                 for gi, g in enumerate(groups) for r in g],
        "estimators": sorted({r.settings.estimator for r in runs} & set(PROBABILISTIC)),
        "length_unit": length_unit(runs),
        "benchmarks": benches,
        "images": images,
        "text": list(strings),
        "samples": [row for _, row in rows],
        "outcomes": [k for k in OUTCOMES if any(row["oc"] == k for _, row in rows)],
        "shown": shown,
        "total": total,
        "thumb_px": size,
        "missing_thumbs": missing,
    }
