"""The demo's scene plan and the construction of one valid scene.

Each scene is sampled from its own seeded generator, so adding a scene never
changes the others. A wrong-facts version is re-drawn until it contradicts every
fact, its caption no longer names the true answer of any value question, and the
reference caption does not name the wrong one.
"""
from __future__ import annotations

import random

from prism_eval.demo.charts import ChartKind
from prism_eval.demo.model import Scene, SceneKind, choose_partial, mentions
from prism_eval.demo.outdoor import OutdoorKind
from prism_eval.demo.shapes import ShapesKind
from prism_eval.demo.tables import TableKind
from prism_eval.demo.texts import ReceiptKind, SignKind

# (kind, number of images). 34 images, 156 questions in 5 categories.
PLAN: tuple[tuple[SceneKind, int], ...] = (
    (ShapesKind(), 7),
    (ChartKind(), 7),
    (ReceiptKind(), 4),
    (SignKind(), 4),
    (OutdoorKind(), 6),
    (TableKind(), 6),
)
MAX_TRIES = 2000


def wrong_is_valid(scene: Scene) -> bool:
    """Every fact differs; for value questions the true answer is absent from the wrong
    caption and the wrong answer is absent from the reference caption.

    So each caption points at exactly one of the two options: a judge that follows
    the wrong caption picks the wrong option, never the right one by accident.
    """
    if set(scene.wrong) != set(scene.facts):
        return False
    if any(not v or v == scene.facts[k] for k, v in scene.wrong.items()):
        return False
    wrong, reference = scene.caption("wrong"), scene.caption("reference")
    return not any(mentions(wrong, scene.facts[q.fact]) or mentions(reference, scene.wrong[q.fact])
                   for q in scene.questions if not q.entity)


def make_scene(kind: SceneKind, index: int, seed: int, partial_target_up: bool) -> Scene:
    """Sample scene `index` of `kind`; `partial_target_up` rounds half of an odd count up."""
    name = f"{kind.prefix}_{index:02d}"
    rng = random.Random(f"prism-eval-demo:{seed}:{name}")
    layout, facts = kind.sample(rng)
    questions = kind.questions(layout, facts, rng)
    scene = Scene(name, kind.category, kind, layout, facts, {}, questions)
    for _ in range(MAX_TRIES):
        scene.wrong = kind.perturb(layout, facts, rng)
        if wrong_is_valid(scene):
            break
    else:
        raise RuntimeError(f"demo scene {name}: no valid wrong-facts version in {MAX_TRIES} tries")
    n = len(questions)
    target = (n + 1) // 2 if partial_target_up else n // 2
    scene.partial = choose_partial(questions, list(facts), target, rng)
    return scene


def make_scenes(seed: int) -> list[Scene]:
    scenes = []
    for kind, count in PLAN:
        for i in range(count):
            scenes.append(make_scene(kind, i, seed, partial_target_up=len(scenes) % 2 == 0))
    return scenes
