"""Write the demo benchmark: images, questions, and three caption files.

Same seed, same bytes: every random choice comes from a generator seeded by
(seed, scene name) or (seed, "options"), JSON is written with fixed key order,
and PNGs carry no timestamps.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prism_eval.demo.model import QuestionSpec, Scene, mentions
from prism_eval.demo.scenes import make_scenes

LETTERS = "ABCD"
CAPTION_KINDS = ("reference", "partial", "wrong")


@dataclass(frozen=True)
class DemoData:
    """Where the demo files are and what they hold."""

    root: Path
    benchmark: Path  # demo.jsonl
    captions: dict[str, Path]  # "reference" | "partial" | "wrong" -> captions JSONL
    scenes: Path  # scenes.jsonl: each image's facts, wrong facts and partial fact ids
    images: tuple[Path, ...]
    n_questions: int
    categories: dict[str, int] = field(default_factory=dict)  # category -> questions

    @property
    def n_images(self) -> int:
        return len(self.images)


def _options(q: QuestionSpec, scene: Scene, reference: str, position: int,
             rng: random.Random) -> list[str]:
    """Four options: the true value at `position`, the wrong caption's value, two more.

    The two more are values the scene does not show where the pool allows (as in
    most MCQ benchmarks, e.g. a colour absent from the picture); otherwise other
    values of the scene (the corners, the bar labels).
    """
    truth, wrong = scene.facts[q.fact], scene.wrong[q.fact]
    taken = {truth.lower(), wrong.lower()}
    rest = sorted({p for p in q.pool if p.lower() not in taken}, key=q.pool.index)
    if len(rest) < 2:
        raise RuntimeError(f"demo scene {scene.name}: too few distractors for {q.text!r}")
    absent = [p for p in rest if not mentions(reference, p)]
    shown = [p for p in rest if mentions(reference, p)]
    picked = rng.sample(absent, min(2, len(absent)))
    picked += rng.sample(shown, 2 - len(picked))
    others = [wrong, *picked]
    rng.shuffle(others)
    others.insert(position, truth)
    return others


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def build_demo(out_dir: Path | str, seed: int = 0) -> DemoData:
    """Generate the demo benchmark under `out_dir` (created if missing; our files overwritten)."""
    root = Path(out_dir)
    (root / "images").mkdir(parents=True, exist_ok=True)
    scenes = make_scenes(seed)
    n_questions = sum(len(s.questions) for s in scenes)
    rng = random.Random(f"prism-eval-demo:{seed}:options")
    positions = [i % len(LETTERS) for i in range(n_questions)]
    rng.shuffle(positions)

    questions, images, facts_rows = [], [], []
    captions: dict[str, list[dict[str, Any]]] = {k: [] for k in CAPTION_KINDS}
    for scene in scenes:
        key = f"images/{scene.name}.png"
        path = root / key
        scene.kind.draw(scene.layout, scene.facts).save(path, format="PNG")
        images.append(path)
        reference = scene.caption("reference")
        for j, q in enumerate(scene.questions):
            pos = positions[len(questions)]
            questions.append({"id": f"{scene.name}_q{j}", "image": key, "question": q.text,
                              "options": _options(q, scene, reference, pos, rng), "answer": LETTERS[pos],
                              "category": scene.category})
        for kind in CAPTION_KINDS:
            captions[kind].append({"image": key, "caption": scene.caption(kind)})
        facts_rows.append({"image": key, "category": scene.category, "facts": scene.facts,
                           "wrong_facts": scene.wrong, "partial_facts": sorted(scene.partial),
                           "questions": {f"{scene.name}_q{j}": {"fact": q.fact, "entity": q.entity}
                                         for j, q in enumerate(scene.questions)}})

    _jsonl(root / "demo.jsonl", questions)
    caption_paths = {k: root / "captions" / f"{k}.jsonl" for k in CAPTION_KINDS}
    for k, p in caption_paths.items():
        _jsonl(p, captions[k])
    _jsonl(root / "scenes.jsonl", facts_rows)
    counts = Counter(q["category"] for q in questions)
    return DemoData(root=root, benchmark=root / "demo.jsonl", captions=caption_paths,
                    scenes=root / "scenes.jsonl", images=tuple(images),
                    n_questions=len(questions), categories=dict(sorted(counts.items())))
