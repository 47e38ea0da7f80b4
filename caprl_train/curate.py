"""QA curation, as CapRL built CapRL-QA-75K: a VLM writes questions, a VLM filters them.

generate: for each image a VLM writes five multiple-choice questions with the
  published system prompt (gen_qa.py, typos kept), sampled at temperature 0.1;
  `mcq_parse.parse_mcqs` reads them and every problem it meets is reported.
filter: each question is asked `rounds` times (options shuffled every round)
  twice over: with the image, plus a "None of the above" option, and text-only
  without it. A question is kept when its accuracy with the image is above
  `image_threshold` and without it below `text_threshold` (answerable from the
  image, not from the question alone: Eq. 4 of the paper).
Both write the CapRL-QA-75K training layout (caprl_train.data.training_row);
the filter's kept questions carry their statistics, and a .stats.jsonl beside
the output has every question's, kept or not.

Deviations from the released scripts, where our engines cannot do the same:
engines without a system-message hook get the system prompt prepended to the
user turn (recorded in the report), and repetition_penalty=1.05 is not applied.
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from caprl_train.data import _is_question_per_line, _read_jsonl, ground_truth_of, normalise_questions, training_row
from caprl_train.mcq_parse import parse_mcqs
from prism_eval.core.answers import extract_letter
from prism_eval.core.options import LETTERS, format_caprl_question, seeded_rng, show_options
from prism_eval.core.records import ImageRef, Sampling

# QA_data_curation/1_generate_qa/gen_qa.py, verbatim ("challenge", "quesiton" and the trailing spaces are original).
GENERATE_SYSTEM_PROMPT = (
    "Your task is to generate five multiple-choice questions and their answers about the object based on the "
    "provided image.\n"
    "The questions should be challenge and focus on the image content, you answer should strictly follow the "
    "following format:\n"
    "#### 1. **Which method achieves the highest accuracy (Acc) on the FF++ (HQ) dataset?**\n"
    "   - A) Method \"a\"\n"
    "   - B) Method \"b\"\n"
    "   - C) Method \"c\"\n"
    "   - D) Ours\n"
    "\n"
    "**Answer:** D) Ours   \n"
    "------\n"
    "#### 2. **What is the primary color of the kayak in the image?**\n"
    "   - A) Blue\n"
    "   - B) Red\n"
    "   - C) Black\n"
    "   - D) White\n"
    "\n"
    "**Answer:** B) Red \n"
    "------\n"
    "You should strictly follow the above format and should not generate irrelevant sentences. All the quesiton "
    "should be answered based on the image."
)
GENERATE_USER_TEXT = "Here is the image"
GENERATE_SAMPLING = Sampling(temperature=0.1, top_p=1.0, max_new_tokens=2048)
# QA_data_curation/3_answer_qa: the literal "{}." is original.
FILTER_PROMPT = "{}. Answer the question with only the correct letter"
NONE_OF_THE_ABOVE = "None of the above"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


class CurateError(ValueError):
    """Bad curation input; the message names it and the problem."""


# ---- talking to the VLM ----------------------------------------------------------------------

def with_system_prompt(captioner, system: str) -> tuple[Any, str]:
    """Make `captioner` send `system` as a system message; returns (captioner, how).

    The transformers and OpenAI captioners build their messages in one method
    (`render` / `messages`); that method is wrapped on this instance only.
    Other engines get the system text prepended to the user turn ("prepended").
    """
    if hasattr(captioner, "processor") and callable(getattr(captioner, "render", None)):
        processor = captioner.processor

        def render(n_images: int, prompt: str) -> str:
            content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
            content.append({"type": "text", "text": prompt})
            return processor.apply_chat_template(
                [{"role": "system", "content": [{"type": "text", "text": system}]},
                 {"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)

        captioner.render = render
        return captioner, "system-message"
    if callable(getattr(captioner, "messages", None)):
        original = captioner.messages

        def messages(images, prompt):
            return [{"role": "system", "content": system}, *original(images, prompt)]

        captioner.messages = messages
        return captioner, "system-message"
    return captioner, "prepended"


def _ask(captioner, images: Sequence[Sequence[Any]], prompts: Sequence[str], sampling: Sampling, batch: int,
         on_batch: Callable[[int], None] | None = None) -> list[str]:
    out: list[str] = []
    for start in range(0, len(prompts), batch):
        texts = captioner.caption(images[start:start + batch], prompts[start:start + batch], 1, sampling)
        out.extend(t[0] if t else "" for t in texts)
        if on_batch:
            on_batch(len(texts))
    return out


# ---- inputs -----------------------------------------------------------------------------------

@dataclass
class ImageItem:
    id: str
    path: Path  # absolute
    key: str  # what the output's "image" field says


def _image_key(path: Path, out_dir: Path) -> str:
    try:
        return path.resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def find_images(source: str | Path, out_dir: Path, limit: int | None = None) -> list[ImageItem]:
    """Images from a folder (recursive), one image file, or a text file listing paths (one a line)."""
    src = Path(source)
    if src.is_dir():
        paths = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        base = src
    elif src.is_file() and src.suffix.lower() in IMAGE_EXTENSIONS:
        paths, base = [src], src.parent
    elif src.is_file() and src.suffix.lower() == ".txt":
        base = src.parent
        paths = []
        for lineno, line in enumerate(src.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                p = Path(line.strip())
                p = p if p.is_absolute() else base / p
                if not p.is_file():
                    raise CurateError(f"{src}:{lineno}: image {line.strip()!r} does not exist")
                paths.append(p)
    else:
        raise CurateError(f"{src}: not a folder of images, an image, or a .txt list of image paths")
    if not paths:
        raise CurateError(f"{src}: no images found ({', '.join(IMAGE_EXTENSIONS)})")
    if limit is not None:
        paths = paths[:limit]
    items, seen = [], set()
    for p in paths:
        ident = p.resolve().relative_to(base.resolve()).as_posix() if p.resolve().is_relative_to(
            base.resolve()) else str(p.resolve())
        if ident in seen:
            continue
        seen.add(ident)
        items.append(ImageItem(ident, p.resolve(), _image_key(p, out_dir)))
    return items


def _open(path: Path):
    from prism_eval.images import ImageError, image_ref_from_file, open_image

    try:
        return open_image(image_ref_from_file(path.parent, path.name))
    except ImageError as exc:
        raise CurateError(str(exc)) from None


def _jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n


# ---- generate ---------------------------------------------------------------------------------

@dataclass
class GenerateConfig:
    vlm: str = "Qwen/Qwen2.5-VL-72B-Instruct"
    limit: int | None = None
    batch_size: int = 8
    temperature: float = GENERATE_SAMPLING.temperature
    max_new_tokens: int = GENERATE_SAMPLING.max_new_tokens
    seed: int = 0
    expected_questions: int = 5


@dataclass
class GenerateReport:
    images: int = 0
    images_with_questions: int = 0
    questions: int = 0
    rejected_blocks: int = 0
    unparsed_images: int = 0
    problems: Counter = field(default_factory=Counter)
    wrong_count: int = 0  # images whose question count differs from expected_questions
    system_prompt: str = ""
    seconds: float = 0.0
    out: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["problems"] = dict(self.problems.most_common())
        return d


def _problem_kind(problem: str) -> str:
    """A problem without its specifics ("question 3: no answer line" -> "no answer line"), for counting."""
    kind = re.sub(r"^question \d+: ", "", problem)
    return re.split(r" \(|'", kind, maxsplit=1)[0].strip()


def generate_qa(images: str | Path, out: str | Path, cfg: GenerateConfig, captioner: Any = None,
                progress: Callable[[int], None] | None = None) -> GenerateReport:
    """Ask the VLM for questions about every image; write the training layout and a raw-output file.

    Writes `out` (images with >= 1 parsed question), `<out>.raw.jsonl` (every image: raw text and the
    parser's problems) and `<out>.report.json`.
    """
    from prism_eval.engines.registry import load_captioner

    out = Path(out)
    items = find_images(images, out.parent, cfg.limit)
    if captioner is None:
        captioner = load_captioner(cfg.vlm)
    captioner, how = with_system_prompt(captioner, GENERATE_SYSTEM_PROMPT)
    user = GENERATE_USER_TEXT if how == "system-message" else f"{GENERATE_SYSTEM_PROMPT}\n\n{GENERATE_USER_TEXT}"
    sampling = Sampling(temperature=cfg.temperature, top_p=1.0, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    report = GenerateReport(images=len(items), system_prompt=how, out=str(out))
    start = time.perf_counter()
    rows, raw_rows = [], []
    for first in range(0, len(items), cfg.batch_size):
        chunk = items[first:first + cfg.batch_size]
        if getattr(captioner, "needs_pixels", True):
            images_in = [[_open(it.path)] for it in chunk]
        else:  # e.g. file:<outputs.jsonl>: earlier VLM outputs keyed by image id, re-parsed
            images_in = [[ImageRef(key=it.id, sha256="", path=str(it.path))] for it in chunk]
        texts = _ask(captioner, images_in, [user] * len(chunk), sampling, cfg.batch_size, progress)
        for it, text in zip(chunk, texts):
            parsed = parse_mcqs(text)
            report.rejected_blocks += parsed.rejected
            report.problems.update(_problem_kind(p) for p in parsed.problems)
            raw_rows.append({"id": it.id, "image": it.key, "raw": text, "questions": len(parsed.questions),
                             "problems": parsed.problems})
            if not parsed.questions:
                report.unparsed_images += 1
                continue
            if len(parsed.questions) != cfg.expected_questions:
                report.wrong_count += 1
            qs = [dict(q.to_record(), id=f"{it.id}#{k}") for k, q in enumerate(parsed.questions)]
            report.questions += len(qs)
            report.images_with_questions += 1
            rows.append(training_row(it.id, it.key, qs, generator=cfg.vlm))
    report.seconds = time.perf_counter() - start
    _jsonl(out, rows)
    _jsonl(out.with_name(out.name + ".raw.jsonl"), raw_rows)
    out.with_name(out.name + ".report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return report


# ---- filter -----------------------------------------------------------------------------------

@dataclass
class FilterConfig:
    """The filter; defaults are CapRL's (ROTATE_NUM=4, keep visual acc > 0.75 and text acc < 0.25).

    `match="letter"` reads the answer with the evaluator's letter cascade;
    "substring" is the released script's `letter in output` test (which also
    counts "Answer: C" as A).
    """

    vlm: str = "Qwen/Qwen2.5-VL-3B-Instruct"
    rounds: int = 4
    image_threshold: float = 0.75
    text_threshold: float = 0.25
    none_of_the_above: bool = True
    text_only: bool = True
    match: str = "letter"
    temperature: float = 0.1
    max_new_tokens: int = 4
    seed: int = 0
    batch_size: int = 32
    limit: int | None = None

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
    asks: list[tuple[int, int, int, bool]] = []  # (item, question, round, with_image)
    for i, it in enumerate(items):
        for j, _ in enumerate(it.questions):
            for rnd in range(cfg.rounds):
                asks.append((i, j, rnd, True))
                if cfg.text_only:
                    asks.append((i, j, rnd, False))
    prompts, golds, labels = [], [], []
    for i, j, rnd, with_image in asks:
        p, g, lab = _prompt(items[i].questions[j], rnd, cfg.seed, with_image, cfg.none_of_the_above)
        prompts.append(p)
        golds.append(g)
        labels.append(lab)
    answers: list[str] = [""] * len(asks)
    by_item: dict[int, list[int]] = {}
    for k, a in enumerate(asks):
        by_item.setdefault(a[0], []).append(k)
    chunk = max(1, cfg.batch_size)
    for first in range(0, len(items), chunk):  # a chunk of images at a time keeps memory flat
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
                got = _ask(captioner, ims, [prompts[k] for k in idx], sampling, cfg.batch_size, progress)
                for k, text in zip(idx, got):
                    answers[k] = text
    by_question: dict[tuple[int, int], dict[str, list]] = {}
    for k, (i, j, _rnd, with_image) in enumerate(asks):
        slot = by_question.setdefault((i, j), {"ic": [], "tc": [], "ia": [], "ta": []})
        ok = _correct(answers[k], golds[k], labels[k], cfg.match)
        slot["ic" if with_image else "tc"].append(ok)
        slot["ia" if with_image else "ta"].append(answers[k])
    report = FilterReport(images=len(items), out=str(out))
    rows, stats_rows = [], []
    for i, it in enumerate(items):
        kept = []
        for j, q in enumerate(it.questions):
            s = by_question[(i, j)]
            image_acc = sum(s["ic"]) / len(s["ic"])
            text_acc = sum(s["tc"]) / len(s["tc"]) if s["tc"] else None
            low_image = not image_acc > cfg.image_threshold
            leaks = text_acc is not None and not text_acc < cfg.text_threshold
            reason = ("kept" if not (low_image or leaks) else
                      "image accuracy too low and answerable without the image" if low_image and leaks else
                      "image accuracy too low" if low_image else "answerable without the image")
            st = QuestionStats(it.sample_id, q["id"], s["ic"], s["tc"], s["ia"], s["ta"], image_acc, text_acc,
                               reason == "kept", reason)
            stats_rows.append(asdict(st))
            report.questions += 1
            report.reasons[reason] += 1
            if st.kept:
                kept.append(dict(q, image_acc=image_acc, text_acc=text_acc, image_correct=s["ic"],
                                 text_correct=s["tc"], rounds=cfg.rounds))
        if kept:
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


__all__ = ["GENERATE_SYSTEM_PROMPT", "GENERATE_USER_TEXT", "FILTER_PROMPT", "NONE_OF_THE_ABOVE", "GenerateConfig",
           "GenerateReport", "FilterConfig", "FilterReport", "generate_qa", "filter_qa", "find_images",
           "read_qa_file", "with_system_prompt", "CurateError"]
