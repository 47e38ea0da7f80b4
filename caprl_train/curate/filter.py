"""`caprl-train curate filter`: keep questions answerable with the image and not without it (CapRL's filter).

Each question is asked `rounds` times (options shuffled every round) twice over:
with the image, plus a "None of the above" option, and text-only without it. A
question is kept when its accuracy with the image is above `image_threshold` and
without it below `text_threshold` (Eq. 4 of the paper). The kept questions carry
their statistics in the training layout; a .stats.jsonl beside the output has
every question's, kept or not.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from caprl_train.config import setting
from caprl_train.curate.common import CurateError, _ask, _image_key, _jsonl, _open
from caprl_train.data import _is_question_per_line, _read_jsonl, ground_truth_of, normalise_questions, training_row
from prism_eval.core.answers import extract_letter
from prism_eval.core.options import LETTERS, format_caprl_question, seeded_rng, show_options
from prism_eval.core.records import Sampling

# QA_data_curation/3_answer_qa: the literal "{}." is original.
FILTER_PROMPT = "{}. Answer the question with only the correct letter"
NONE_OF_THE_ABOVE = "None of the above"


@dataclass
class FilterConfig:
    """The filter; defaults are CapRL's (ROTATE_NUM=4, keep visual acc > 0.75 and text acc < 0.25).

    `match="letter"` reads the answer with the evaluator's letter cascade;
    "substring" is the released script's `letter in output` test (which also
    counts "Answer: C" as A).
    """

    vlm: str = setting("Qwen/Qwen2.5-VL-3B-Instruct", "VLM spec (hf:, vllm:, openai:<model>@<url>)")
    rounds: int = setting(4, "times each question is asked (options reshuffled each time)")
    image_threshold: float = setting(0.75, "keep when accuracy with the image is above this")
    text_threshold: float = setting(0.25, "keep when text-only accuracy is below this")
    none_of_the_above: bool = setting(True, "add 'None of the above' when asking with the image")
    text_only: bool = setting(True, "also ask without the image")
    match: str = setting("letter", "letter: the evaluator's answer cascade; substring: the released script's "
                                   "`letter in output`", ("letter", "substring"))
    temperature: float = setting(0.1, "VLM temperature")
    max_new_tokens: int = setting(4, "VLM output tokens")
    seed: int = setting(0, "shuffle and sampling seed")
    batch_size: int = setting(32, "requests per VLM call")
    limit: int | None = setting(None, "use only the first N questions")

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise CurateError(f"rounds must be at least 1, got {self.rounds}")
        if self.match not in ("letter", "substring"):
            raise CurateError(f"match {self.match!r}: use 'letter' or 'substring'")


@dataclass
class QuestionStats:
    sample_id: str
    question_id: str
    image_correct: list[bool]
    text_correct: list[bool]
    image_answers: list[str]
    text_answers: list[str]
    image_acc: float
    text_acc: float | None
    kept: bool
    reason: str


@dataclass
class FilterReport:
    images: int = 0
    questions: int = 0
    kept_questions: int = 0
    kept_images: int = 0
    reasons: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    out: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reasons"] = dict(self.reasons.most_common())
        return d


@dataclass
class _Item:
    sample_id: str
    image_key: str
    image_path: Path
    questions: list[dict[str, Any]]
    extra: dict[str, Any]


def read_qa_file(path: str | Path, image_root: str | Path | None = None, limit: int | None = None) -> list[_Item]:
    """A local QA file in either layout (training rows, or the evaluator's one-question-a-line JSONL)."""
    from caprl_train.data import _resolve, _rows_from_benchmark_jsonl

    path = Path(path)
    if not path.is_file():
        raise CurateError(f"{path}: QA file does not exist")
    root = Path(image_root) if image_root else path.parent
    rows = _read_jsonl(path)
    items: list[_Item] = []
    if _is_question_per_line(rows[0][1]):
        for r in _rows_from_benchmark_jsonl(path, limit):
            img = Path(r["image"])
            items.append(_Item(r["sample_id"], r["sample_id"], img, json.loads(r["qa"]), {}))
        return items
    for lineno, row in rows:
        where = f"{path}:{lineno}"
        qs = ground_truth_of(row)
        if qs is None:
            raise CurateError(f"{where}: no questions ('reward_model.ground_truth' or 'qa')")
        qs = normalise_questions(qs, where)
        if not qs:
            continue
        image = row.get("image")
        if not isinstance(image, str):
            raise CurateError(f"{where}: 'image' must be a path")
        sid = str(row.get("id", image))
        for k, q in enumerate(qs):
            q.setdefault("id", f"{sid}#{k}")
        extra = {k: v for k, v in row.items() if k not in ("id", "image", "prompt", "data_source", "reward_model",
                                                          "qa", "questions", "ground_truth")}
        items.append(_Item(sid, image, _resolve(image, root, where), qs, extra))
        if limit is not None and len(items) >= limit:
            break
    return items


def _prompt(question: dict[str, Any], rnd: int, seed: int, with_image: bool, none_option: bool
            ) -> tuple[str, str, str]:
    """(prompt, gold letter, shown labels) for one round; the option order is seeded by question and round."""
    shown = show_options(tuple(question["options"]), question["answer"], shuffle=True,
                         rng=seeded_rng(seed, "filter", question["id"], rnd))
    block = format_caprl_question(question["question"], shown)
    labels = "".join(shown.labels)
    if with_image and none_option:
        extra = LETTERS[len(shown.labels)]
        block += f"\n   - {extra}) {NONE_OF_THE_ABOVE}"
        labels += extra
    return FILTER_PROMPT.format(block), shown.gold, labels


def _correct(output: str, gold: str, labels: str, match: str) -> bool:
    if match == "substring":
        return gold in output
    return extract_letter(output, labels).value == gold


Ask = tuple[int, int, int, bool]  # (item, question, round, with the image)


def _plan_asks(items: list[_Item], cfg: FilterConfig) -> list[Ask]:
    asks: list[Ask] = []
    for i, it in enumerate(items):
        for j, _ in enumerate(it.questions):
            for rnd in range(cfg.rounds):
                asks.append((i, j, rnd, True))
                if cfg.text_only:
                    asks.append((i, j, rnd, False))
    return asks


def _answer_all(captioner: Any, items: list[_Item], asks: list[Ask], prompts: list[str], cfg: FilterConfig,
                progress: Callable[[int], None] | None) -> list[str]:
    """The VLM's answer to every ask, a chunk of images at a time (keeps memory flat), one round per call."""
    answers: list[str] = [""] * len(asks)
    by_item: dict[int, list[int]] = {}
    for k, a in enumerate(asks):
        by_item.setdefault(a[0], []).append(k)
    chunk = max(1, cfg.batch_size)
    for first in range(0, len(items), chunk):
        in_chunk = range(first, min(first + chunk, len(items)))
        images = {i: _open(items[i].image_path) for i in in_chunk}
        for with_image in (True, False):
            for rnd in range(cfg.rounds):
                idx = [k for i in in_chunk for k in by_item[i] if asks[k][3] is with_image and asks[k][2] == rnd]
                if not idx:
                    continue
                ims = [[images[asks[k][0]]] if with_image else [] for k in idx]
                sampling = Sampling(temperature=cfg.temperature, top_p=1.0, max_new_tokens=cfg.max_new_tokens,
                                    seed=cfg.seed + rnd)
                for k, text in zip(idx, _ask(captioner, ims, [prompts[k] for k in idx], sampling, cfg.batch_size,
                                             progress)):
                    answers[k] = text
    return answers


def _verdict(image_acc: float, text_acc: float | None, cfg: FilterConfig) -> str:
    low_image = not image_acc > cfg.image_threshold
    leaks = text_acc is not None and not text_acc < cfg.text_threshold
    if low_image and leaks:
        return "image accuracy too low and answerable without the image"
    if low_image:
        return "image accuracy too low"
    return "answerable without the image" if leaks else "kept"


def _judge_questions(items: list[_Item], by_question: dict[tuple[int, int], dict[str, list]], cfg: FilterConfig,
                     report: FilterReport) -> tuple[list[list[dict]], list[dict]]:
    """Per item, its kept questions (with their statistics); and every question's statistics row."""
    kept_by_item, stats_rows = [], []
    for i, it in enumerate(items):
        kept = []
        for j, q in enumerate(it.questions):
            s = by_question[(i, j)]
            image_acc = sum(s["ic"]) / len(s["ic"])
            text_acc = sum(s["tc"]) / len(s["tc"]) if s["tc"] else None
            reason = _verdict(image_acc, text_acc, cfg)
            st = QuestionStats(it.sample_id, q["id"], s["ic"], s["tc"], s["ia"], s["ta"], image_acc, text_acc,
                               reason == "kept", reason)
            stats_rows.append(asdict(st))
            report.questions += 1
            report.reasons[reason] += 1
            if st.kept:
                kept.append(dict(q, image_acc=image_acc, text_acc=text_acc, image_correct=s["ic"],
                                 text_correct=s["tc"], rounds=cfg.rounds))
        kept_by_item.append(kept)
    return kept_by_item, stats_rows


def filter_qa(source: str | Path, out: str | Path, cfg: FilterConfig, captioner: Any = None,
              image_root: str | Path | None = None, progress: Callable[[int], None] | None = None) -> FilterReport:
    """Keep the questions answerable with the image and not without; write the training layout.

    Writes `out` (images with >= 1 kept question; each kept question carries its statistics),
    `<out>.stats.jsonl` (every question) and `<out>.report.json`.
    """
    from prism_eval.engines.registry import load_captioner

    out = Path(out)
    items = read_qa_file(source, image_root, cfg.limit)
    if not items:
        raise CurateError(f"{source}: no questions to filter")
    if captioner is None:
        captioner = load_captioner(cfg.vlm)
    start = time.perf_counter()
    asks = _plan_asks(items, cfg)
    shown = [_prompt(items[i].questions[j], rnd, cfg.seed, with_image, cfg.none_of_the_above)
             for i, j, rnd, with_image in asks]
    answers = _answer_all(captioner, items, asks, [p for p, _, _ in shown], cfg, progress)
    by_question: dict[tuple[int, int], dict[str, list]] = {}
    for k, (i, j, _rnd, with_image) in enumerate(asks):
        slot = by_question.setdefault((i, j), {"ic": [], "tc": [], "ia": [], "ta": []})
        _, gold, labels = shown[k]
        slot["ic" if with_image else "tc"].append(_correct(answers[k], gold, labels, cfg.match))
        slot["ia" if with_image else "ta"].append(answers[k])
    report = FilterReport(images=len(items), out=str(out))
    kept_by_item, stats_rows = _judge_questions(items, by_question, cfg, report)
    rows = []
    for it, kept in zip(items, kept_by_item):
        if not kept:
            continue
        report.kept_questions += len(kept)
        report.kept_images += 1
        key = it.image_key
        if not Path(key).is_absolute() and Path(out).parent.resolve() != Path(source).parent.resolve():
            key = _image_key(it.image_path, out.parent)
        rows.append(training_row(it.sample_id, key, kept, **it.extra))
    report.seconds = time.perf_counter() - start
    _jsonl(out, rows)
    _jsonl(out.with_name(out.name + ".stats.jsonl"), stats_rows)
    summary = report.to_dict()
    summary["config"] = asdict(cfg)
    out.with_name(out.name + ".report.json").write_text(json.dumps(summary, indent=2) + "\n")
    return report
