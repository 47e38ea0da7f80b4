"""The embedded demo's data: deterministic, well-formed, and valid by construction.

Reference captions state every answer, wrong captions state a wrong option
instead, partial captions state about half; the checks read the written files.
"""
from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from prism_eval.demo import DemoData, build_demo
from prism_eval.demo.model import ask, choose_partial, covered, mentions
from prism_eval.demo.scenes import PLAN, make_scenes

LETTERS = "ABCD"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoData:
    return build_demo(tmp_path_factory.mktemp("demo") / "out", seed=0)


@pytest.fixture(scope="module")
def questions(demo: DemoData) -> list[dict]:
    return read_jsonl(demo.benchmark)


@pytest.fixture(scope="module")
def captions(demo: DemoData) -> dict[str, dict[str, str]]:
    return {k: {r["image"]: r["caption"] for r in read_jsonl(p)} for k, p in demo.captions.items()}


@pytest.fixture(scope="module")
def meta(demo: DemoData) -> dict[str, dict]:
    """Question id -> {"fact", "entity", "wrong", "partial"} from scenes.jsonl."""
    out = {}
    for row in read_jsonl(demo.scenes):
        for qid, q in row["questions"].items():
            out[qid] = {**q, "wrong": row["wrong_facts"][q["fact"]],
                        "partial": q["fact"] in row["partial_facts"]}
    return out


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(demo: DemoData, tmp_path: Path) -> None:
    again = build_demo(tmp_path / "again", seed=0)
    first, second = files_of(demo.root), files_of(again.root)
    assert list(first) == list(second)
    assert first == second


def test_other_seed_gives_other_data(demo: DemoData, tmp_path: Path) -> None:
    other = build_demo(tmp_path / "other", seed=1)
    assert other.benchmark.read_bytes() != demo.benchmark.read_bytes()
    assert other.n_questions >= 100


def test_counts_and_categories(demo: DemoData, questions: list[dict]) -> None:
    assert demo.n_questions == len(questions) >= 100
    cats = Counter(q["category"] for q in questions)
    assert len(cats) >= 4 and min(cats.values()) >= 15
    assert dict(cats) == demo.categories
    assert 30 <= demo.n_images <= 40
    assert len({q["id"] for q in questions}) == len(questions)


def test_rows_follow_the_local_benchmark_format(questions: list[dict]) -> None:
    for q in questions:
        assert set(q) == {"id", "image", "question", "options", "answer", "category"}
        assert len(q["options"]) == 4, q
        assert len({o.lower() for o in q["options"]}) == 4, q
        assert q["answer"] in LETTERS
        assert q["question"].endswith("?")


def test_answer_letters_are_balanced(questions: list[dict]) -> None:
    counts = Counter(q["answer"] for q in questions)
    assert set(counts) == set(LETTERS)
    assert max(counts.values()) - min(counts.values()) <= 1


def option_type(text: str) -> str:
    """A coarse type read from the option text alone."""
    for name, pattern in (("money", r"\$\d+\.\d\d"), ("celsius", r"-?\d+°C"), ("int", r"\d+"),
                          ("clock", r"\d+ [AP]M")):
        if re.fullmatch(pattern, text):
            return name
    colours = {"red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "black", "grey"}
    return "colour" if text in colours else "word"


def test_distractors_are_mostly_absent_from_the_scene(captions: dict[str, dict[str, str]],
                                                     questions: list[dict]) -> None:
    """Like colours not in the picture: only the true option is named by the reference caption,
    except where the question is about relations between named things (corners, bar labels)."""
    only_truth = sum(sum(mentions(captions["reference"][q["image"]], o) for o in q["options"]) == 1
                     for q in questions)
    assert only_truth >= 0.6 * len(questions)


def test_distractors_share_the_answer_type(questions: list[dict]) -> None:
    for q in questions:
        assert len({option_type(o) for o in q["options"]}) == 1, q


def test_images_exist_open_and_are_small(demo: DemoData, questions: list[dict]) -> None:
    root = demo.benchmark.parent
    keys = {q["image"] for q in questions}
    assert keys == {str(p.relative_to(root)) for p in demo.images}
    for key in keys:
        with Image.open(root / key) as im:
            im.load()
            assert im.format == "PNG"
            assert 256 <= max(im.size) <= 448 and min(im.size) >= 200, (key, im.size)
    total = sum(p.stat().st_size for p in demo.root.rglob("*") if p.is_file())
    assert total < 3 * 1024 * 1024


def test_every_caption_file_covers_every_image(captions: dict[str, dict[str, str]],
                                               questions: list[dict], demo: DemoData) -> None:
    keys = {q["image"] for q in questions}
    assert set(captions) == {"reference", "partial", "wrong"}
    for kind, path in demo.captions.items():
        rows = read_jsonl(path)
        assert [set(r) for r in rows] == [{"image", "caption"}] * len(rows)
        assert len(rows) == len(keys) and set(captions[kind]) == keys, kind
        assert all(r["caption"].strip() for r in rows)


def test_reference_captions_state_every_answer(captions: dict[str, dict[str, str]],
                                               questions: list[dict]) -> None:
    for q in questions:
        correct = q["options"][LETTERS.index(q["answer"])]
        assert mentions(captions["reference"][q["image"]], correct), (q["id"], correct)
    for text in captions["reference"].values():
        assert 40 <= len(text.split()) <= 120, text


def test_wrong_captions_state_a_wrong_option(captions: dict[str, dict[str, str]],
                                             questions: list[dict], meta: dict[str, dict]) -> None:
    n_entity = 0
    for q in questions:
        correct = q["options"][LETTERS.index(q["answer"])]
        wrong_text = captions["wrong"][q["image"]]
        m = meta[q["id"]]
        assert m["wrong"] in q["options"] and m["wrong"] != correct
        assert mentions(wrong_text, m["wrong"]), (q["id"], m["wrong"])
        if m["entity"]:  # e.g. "which bar is highest": every bar label is named in any caption
            n_entity += 1
        else:  # each caption points at one option only: the true one or the wrong one
            assert not mentions(wrong_text, correct), (q["id"], correct, wrong_text)
            assert not mentions(captions["reference"][q["image"]], m["wrong"]), (q["id"], m["wrong"])
    assert n_entity <= len(questions) // 4


def test_partial_captions_state_about_half(captions: dict[str, dict[str, str]],
                                           questions: list[dict], meta: dict[str, dict]) -> None:
    covered_n = sum(meta[q["id"]]["partial"] for q in questions)
    assert 0.4 <= covered_n / len(questions) <= 0.6
    value_qs = [q for q in questions if not meta[q["id"]]["entity"]]
    stated = 0
    for q in value_qs:
        correct = q["options"][LETTERS.index(q["answer"])]
        said = mentions(captions["partial"][q["image"]], correct)
        if meta[q["id"]]["partial"]:
            assert said, q["id"]
        stated += said
    # the rest appear only by coincidence (the same colour or number elsewhere in the scene)
    assert 0.4 <= stated / len(value_qs) <= 0.7
    ref_words = sum(len(c.split()) for c in captions["reference"].values())
    part_words = sum(len(c.split()) for c in captions["partial"].values())
    assert part_words < 0.85 * ref_words


def test_partial_never_covers_more_than_its_target() -> None:
    for scene in make_scenes(seed=3):
        n = len(scene.questions)
        got = sum(covered(q, scene.partial) for q in scene.questions)
        assert got in (n // 2, (n + 1) // 2), scene.name
        assert len(scene.partial) <= (len(scene.facts) + 1) // 2 + 1, scene.name


def test_a_derivable_fact_counts_as_stated() -> None:
    """A receipt's total with all other prices gives the missing price; the max follows from all values."""
    price = ask("price.tea", "How much is the tea?", ["$1.00"], ["total", "price.milk"])
    assert covered(price, {"total", "price.milk"})
    assert not covered(price, {"total"})
    top = ask("max", "Which is highest?", ["a", "b"], ["value.a", "value.b"], entity=True)
    chosen = choose_partial([top], ["max", "value.a", "value.b"], 0, random.Random(0))
    assert not covered(top, chosen)
    assert len(chosen) <= 1


def test_mentions_matches_whole_tokens_only() -> None:
    assert mentions("The total is $3.50.", "$3.50")
    assert not mentions("The total is $13.50.", "$3.50")
    assert not mentions("It costs 3.50 and opens at 3:00", "3")
    assert mentions("There are 3 red circles.", "3")
    assert not mentions("one hundred", "red")
    assert mentions("The Sun is in the sky", "the sun")


def test_plan_has_four_or_more_categories() -> None:
    assert len({kind.category for kind, _ in PLAN}) >= 4
