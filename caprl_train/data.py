"""Training data for caprl-train: images with their multiple-choice questions, as trl rows.

Two layouts are read:
- CapRL-QA-75K (`internlm/CapRL-QA-75K`, or a local parquet/JSONL copy, or what
  `caprl-train curate filter` writes): one row per image, `image`, `prompt`,
  `reward_model.ground_truth` = [{question, choices: ["A) ...", ...], answer: "C"}, ...].
- The evaluator's local JSONL benchmark: one question a line, grouped here by image.

Every source becomes a `datasets.Dataset` whose rows are what trl's GRPOTrainer
and `caprl_train.reward.CaptionUtilityReward` need: `prompt` (one conversational
user turn), `image` (RGB PIL), `qa` (JSON list of {question, options, answer})
and `sample_id`. Images are decoded and resized lazily (a dataset transform), so
a 75k-image corpus is never rewritten to disk.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any, Iterable

from caprl_train.config import DataConfig
from prism_eval.core.options import LETTERS, OptionsError, normalize_mcq
from prism_eval.core.protocols import CAPRL_CAPTION_PROMPT
from prism_eval.io.jsonl import iter_jsonl

_LABELLED = re.compile(r"^\s*\(?([A-Z])\s*[).:]\s*(.*)$", re.S)
TRL_COLUMNS = ("prompt", "image", "qa", "sample_id")


class DataError(ValueError):
    """Bad training data; the message names the source, the row and the problem."""


# ---- questions ---------------------------------------------------------------------------

def split_choice(choice: str) -> tuple[str | None, str]:
    """"A) text" -> ("A", "text"); an unlabelled choice -> (None, text)."""
    m = _LABELLED.match(str(choice))
    if m:
        return m.group(1), m.group(2).strip()
    return None, str(choice).strip()


def normalise_question(record: dict[str, Any], where: str) -> dict[str, Any]:
    """One QA record ({question, options|choices, answer, ...}) as {question, options, answer, ...extras}.

    Choices in CapRL's form ("A) text") lose their labels; labelled choices out of
    order are put back in letter order. The answer becomes one letter; an answer
    given as "C) text" or as the option's text is accepted. Extra keys (per-question
    statistics from curation) are kept.
    """
    if not isinstance(record, dict):
        raise DataError(f"{where}: a question must be an object, got {type(record).__name__}")
    text = record.get("question")
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: missing 'question' text")
    raw = record.get("options")
    if raw is None:
        raw = record.get("choices")
    if not isinstance(raw, (list, tuple)) or len(raw) < 2:
        raise DataError(f"{where}: a question needs a list of at least 2 'options' or 'choices'")
    labelled = [split_choice(c) for c in raw]
    labels = [lab for lab, _ in labelled]
    if all(labels) and sorted(labels) == list(LETTERS[:len(labels)]):
        by_label = dict(labelled)
        options = [by_label[L] for L in LETTERS[:len(labels)]]
    else:
        options = [str(c).strip() if lab is None else t for (lab, t), c in zip(labelled, raw)]
    answer = str(record.get("answer", "")).strip()
    letter, rest = split_choice(answer)  # "C) text" -> C
    try:
        options, letter = normalize_mcq(options, letter if letter is not None else answer)
    except OptionsError as exc:
        raise DataError(f"{where}: {exc}") from None
    out = {k: v for k, v in record.items() if k not in ("question", "options", "choices", "answer")}
    out.update(question=text.strip(), options=list(options), answer=letter)
    return out


def normalise_questions(records: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(records, str):
        try:
            records = json.loads(records)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: questions are not valid JSON ({exc.msg})") from None
    if not isinstance(records, (list, tuple)):
        raise DataError(f"{where}: questions must be a list")
    return [normalise_question(r, f"{where} question {i}") for i, r in enumerate(records)]


def caprl_choices(options: Iterable[str]) -> list[str]:
    """Options as CapRL-QA-75K writes them: ["A) text", "B) text", ...]."""
    return [f"{LETTERS[i]}) {o}" for i, o in enumerate(options)]


def ground_truth_of(row: dict[str, Any]) -> Any:
    """The question list of a row in either training layout ('reward_model.ground_truth' or 'qa')."""
    rm = row.get("reward_model")
    if isinstance(rm, str):
        try:
            rm = json.loads(rm)
        except json.JSONDecodeError:
            rm = None
    if isinstance(rm, dict) and rm.get("ground_truth") is not None:
        return rm["ground_truth"]
    for key in ("qa", "questions", "ground_truth"):
        if row.get(key) is not None:
            return row[key]
    return None


# ---- images ------------------------------------------------------------------------------

def _resolve(path: str, root: Path, where: str) -> Path:
    p = Path(path)
    if not p.is_absolute():
        from prism_eval.io.images import ImageError, resolve_inside
        try:
            return resolve_inside(root, path)
        except ImageError as exc:
            raise DataError(f"{where}: {exc}") from None
    if not p.is_file():
        raise DataError(f"{where}: image {path!r} does not exist")
    return p


def to_pil(value: Any, root: Path, where: str):
    """A dataset image cell (PIL, bytes, {bytes, path}, or a path) as an RGB PIL image."""
    from PIL import Image

    from prism_eval.io.images import to_rgb

    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    try:
        if isinstance(value, Image.Image):
            img = value
        elif isinstance(value, (bytes, bytearray)):
            img = Image.open(io.BytesIO(value))
        elif isinstance(value, str) and value:
            img = Image.open(_resolve(value, root, where))
        else:
            raise DataError(f"{where}: no image (got {type(value).__name__})")
        img.load()
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad data
        raise DataError(f"{where}: image cannot be decoded: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    return to_rgb(img)


def resize_image(img, image_size: int | None, max_image_side: int | None):
    from PIL import Image

    if image_size:
        return img.resize((image_size, image_size), Image.BICUBIC) if img.size != (image_size, image_size) else img
    if max_image_side and max(img.size) > max_image_side:
        img = img.copy()
        img.thumbnail((max_image_side, max_image_side), Image.BICUBIC)
    return img


# ---- sources -----------------------------------------------------------------------------

def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = list(iter_jsonl(path.read_bytes(), str(path), DataError))
    if not rows:
        raise DataError(f"{path}: the file is empty")
    return rows


def _is_question_per_line(row: dict[str, Any]) -> bool:
    return "question" in row and "reward_model" not in row and ground_truth_of(row) is None


def _rows_from_benchmark_jsonl(path: Path, limit: int | None) -> list[dict[str, Any]]:
    """A local JSONL benchmark, grouped by image; open questions are dropped (the reward is MCQ accuracy)."""
    from prism_eval.benchmarks import BenchmarkError, load_jsonl_benchmark

    try:
        bench = load_jsonl_benchmark(path)
    except BenchmarkError as exc:
        raise DataError(str(exc)) from None
    rows = []
    for sample in bench.samples:
        qs = [{"id": q.id, "question": q.text, "options": list(q.options), "answer": q.answer}
              for q in sample.questions if q.options is not None]
        if qs:
            rows.append({"sample_id": sample.id, "image": sample.images[0].path, "qa": json.dumps(qs)})
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise DataError(f"{path}: no multiple-choice questions (the reward needs options and a letter answer)")
    return rows


def _rows_from_training_jsonl(path: Path, root: Path, limit: int | None, min_questions: int
                              ) -> list[dict[str, Any]]:
    rows, seen = [], set()
    for lineno, row in _read_jsonl(path):
        where = f"{path}:{lineno}"
        qs = ground_truth_of(row)
        if qs is None:
            raise DataError(f"{where}: no questions ('reward_model.ground_truth' or 'qa')")
        qs = normalise_questions(qs, where)
        if len(qs) < min_questions:
            continue
        image = row.get("image")
        if not isinstance(image, str) or not image:
            raise DataError(f"{where}: 'image' must be a path (relative to {root})")
        sid = str(row.get("id", row.get("sample_id", image)))
        if sid in seen:
            raise DataError(f"{where}: duplicate id {sid!r}")
        seen.add(sid)
        rows.append({"sample_id": sid, "image": str(_resolve(image, root, where)), "qa": json.dumps(qs)})
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise DataError(f"{path}: no rows with at least {min_questions} question(s)")
    return rows


def _load_local_jsonl(path: Path, cfg: DataConfig):
    from datasets import Dataset, Image

    first = _read_jsonl(path)[0][1]
    root = Path(cfg.image_root) if cfg.image_root else path.parent
    if _is_question_per_line(first):
        rows = _rows_from_benchmark_jsonl(path, cfg.limit)
    else:
        rows = _rows_from_training_jsonl(path, root, cfg.limit, cfg.min_questions)
    return Dataset.from_list(rows).cast_column("image", Image(decode=False)), root


def _load_with_datasets(cfg: DataConfig):
    """A hub id, a local dataset folder, or parquet/arrow files, through `datasets`."""
    import datasets

    src = cfg.source
    path = Path(src)
    try:
        if path.is_file() and path.suffix in (".parquet", ".arrow"):
            ds = datasets.load_dataset(path.suffix[1:], data_files=str(path), split="train")
        elif path.is_dir() and (path / "dataset_info.json").exists():
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[cfg.split]
        else:
            ds = datasets.load_dataset(src, split=cfg.split)
    except (FileNotFoundError, ValueError, datasets.exceptions.DatasetNotFoundError) as exc:
        raise DataError(f"{src}: cannot load the dataset ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if "image" not in ds.column_names:
        raise DataError(f"{src}: no 'image' column (columns: {', '.join(ds.column_names)})")
    if "reward_model" not in ds.column_names and not {"qa", "questions"} & set(ds.column_names):
        raise DataError(f"{src}: no questions column ('reward_model' with 'ground_truth', or 'qa')")
    if isinstance(ds.features.get("image"), datasets.Image):
        ds = ds.cast_column("image", datasets.Image(decode=False))
    if cfg.limit is not None:
        ds = ds.select(range(min(cfg.limit, len(ds))))
    root = Path(cfg.image_root) if cfg.image_root else (path.parent if path.exists() else Path.cwd())
    return ds, root


def _transform(cfg: DataConfig, root: Path, source: str):
    """The lazy per-batch conversion to trl rows."""
    prompt = [{"role": "user", "content": cfg.prompt}]

    def convert(batch: dict[str, list]) -> dict[str, list]:
        n = len(batch["image"])
        ids = batch.get("sample_id") or batch.get("id") or [None] * n
        out: dict[str, list] = {k: [] for k in TRL_COLUMNS}
        for i in range(n):
            sid = str(ids[i]) if ids[i] is not None else f"row-{i}"
            where = f"{source} row {sid}"
            if "qa" in batch and isinstance(batch["qa"][i], str) and "reward_model" not in batch:
                qa = batch["qa"][i]  # already normalised by the JSONL readers
            else:
                row = {k: batch[k][i] for k in batch if k in ("reward_model", "qa", "questions")}
                qs = ground_truth_of(row)
                if qs is None:
                    raise DataError(f"{where}: no questions")
                qa = json.dumps(normalise_questions(qs, where))
            img = to_pil(batch["image"][i], root, where)
            out["prompt"].append(prompt)
            out["image"].append(resize_image(img, cfg.image_size, cfg.max_image_side))
            out["qa"].append(qa)
            out["sample_id"].append(sid)
        return out

    return convert


def load_training_data(cfg: DataConfig):
    """The QA data as a `datasets.Dataset` of trl rows (prompt, image, qa, sample_id)."""
    if not cfg.source:
        raise DataError("no training data given (a hub id such as internlm/CapRL-QA-75K, or a local path)")
    path = Path(cfg.source)
    if path.suffix == ".jsonl" or (path.is_file() and path.suffix == ".json"):
        if not path.is_file():
            raise DataError(f"{path}: training data file does not exist")
        ds, root = _load_local_jsonl(path, cfg)
    else:
        ds, root = _load_with_datasets(cfg)
    if len(ds) == 0:
        raise DataError(f"{cfg.source}: the dataset is empty")
    ds.set_transform(_transform(cfg, root, cfg.source))
    return ds


def training_row(sample_id: str, image: str, questions: list[dict[str, Any]], prompt: str = CAPRL_CAPTION_PROMPT,
                 **extra: Any) -> dict[str, Any]:
    """One row of the CapRL-QA-75K layout (what curation writes), questions as {question, options, answer, ...}."""
    gt = []
    for q in questions:
        item = {"question": q["question"], "choices": caprl_choices(q["options"]), "answer": q["answer"]}
        item.update({k: v for k, v in q.items() if k not in ("question", "options", "choices", "answer")})
        gt.append(item)
    row = {"id": sample_id, "image": image, "prompt": f"<image> {prompt}", "data_source": "image_caption_rl",
           "reward_model": {"ground_truth": gt, "style": "rule"}}
    row.update(extra)
    return row


__all__ = ["DataConfig", "DataError", "load_training_data", "normalise_question", "normalise_questions",
           "training_row", "caprl_choices", "split_choice", "ground_truth_of", "TRL_COLUMNS"]
