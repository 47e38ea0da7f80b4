"""CapRL's Prism evaluation files (HF dataset internlm/CapRL-Evaluation-Files) and its judge prompt.

CapRL's Eval_CapRL.py reads one JSON list per benchmark (`--data-path`, a
file under `json_file/`). Each sample carries its own chat-formatted `prompt`
(the image placeholder, then the question and answer instructions), its
`answer` (a string, or a list of alternatives) and its `image`, which is read
with qwen-vl-utils' `process_vision_info`, i.e. a chat message list whose
content holds an `{"image": <path>}` element. The dataset card says the image
paths are relative to the dataset root (`bench_image_folder/<file stem>/...`,
unzipped from `bench_image_folder.zip`). Stage 2 replaces the placeholder in
the sample's prompt with the caption sentence (`build_judge_prompt`).

`load_caprl_eval_file` reads such a file into plain records; every problem is
one line `file: item N: problem` (N is the 0-based position in the list).
"""
from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prism_eval.core.compat import (
    CAPRL_FAMILIES,
    VISION_PLACEHOLDER,
)
from prism_eval.io.jsonl import iter_jsonl

# our benchmark id -> the file name Eval_CapRL.py's launch script (scripts/bash.sh) passes as --data-path
CAPRL_EVAL_FILES: dict[str, str] = {
    "chartqa": "lmm_eval_chartqa.json",
    "infovqa": "lmm_eval_infovqa.json",
    "mmstar": "lmm_eval_MMStar.json",
    "mmmu": "lmm_eval_mmmu.json",
    "charxiv": "lmm_eval_CharXiv.json",
    "chartqa-pro": "lmm_eval_ChartQA_Pro.json",
    "mmmu-pro": "lmm_eval_MMMU_Pro.json",
    "seed": "lmm_eval_seed2k.json",
    "mathverse": "lmm_eval_MathVerse_MINIVInt.json",
    "mathvision": "lmm_eval_MathVision.json",
    "wemath": "lmm_eval_WeMath.json",
    "visulogic": "lmm_eval_Visu.json",
}
JSON_DIR = "json_file"  # the dataset's folder of the 12 files
IMAGE_DIR = "bench_image_folder"

_END_OF_TURN = "<|im_end|>"
_ID_KEYS = ("id", "question_id", "questionId", "index", "idx", "qid", "pid", "sample_index")


class CaprlEvalFileError(ValueError):
    """A CapRL evaluation file that cannot be read; the message is `file: item N: problem`."""


@dataclass(frozen=True)
class CaprlEvalSample:
    """One question of a CapRL evaluation file.

    `id` is positional ("<benchmark>:<N>") so it is unique and stable for a
    given file; `source_id` is the file's own id field when it has one.
    `images` holds, in order, resolved file paths (str) or the decoded bytes of
    data URIs. `question` is the sample's own question field, else the text
    of an image message, else the user-turn text after the image placeholder
    (instructions included). `options` are split out only when the gold is a
    single letter and the question text lists lettered options.
    """

    id: str
    benchmark: str
    prompt: str
    answer: str | int | float | list
    images: tuple[str | bytes, ...]
    question: str | None = None
    options: tuple[str, ...] | None = None
    source_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def image(self) -> str | bytes:
        """The (first) image: CapRL's caption prompt has one image slot."""
        return self.images[0]


def resolve_eval_file(path_or_dir: str | os.PathLike, benchmark: str) -> Path:
    """The JSON file for `benchmark`: the path itself if it is a file, else its CapRL file name inside
    the folder or inside the folder's json_file/ (the dataset root)."""
    name = _file_name(benchmark)
    path = Path(path_or_dir)
    if path.is_file():
        return path
    if not path.is_dir():
        raise CaprlEvalFileError(f"{path}: no such file or folder")
    for candidate in (path / name, path / JSON_DIR / name):
        if candidate.is_file():
            return candidate
    raise CaprlEvalFileError(f"{path}: no {name} in it or in {JSON_DIR}/ (the file CapRL uses for {benchmark})")


def load_caprl_eval_file(path_or_dir: str | os.PathLike, benchmark: str, limit: int | None = None, *,
                         image_root: str | os.PathLike | None = None,
                         check_images: bool = True) -> list[CaprlEvalSample]:
    """Read one CapRL evaluation file (a JSON list, or JSONL as Eval_CapRL.py also accepts).

    `path_or_dir` is the file, or a folder holding the 12 files (directly or in
    json_file/). Relative image paths are resolved against `image_root`,
    default the dataset root: the parent of json_file/ when the file sits in
    one, else the file's folder. `check_images` makes a missing image file an
    error. `limit` keeps (and checks) the first `limit` samples.
    """
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    path = resolve_eval_file(path_or_dir, benchmark)
    root = Path(image_root) if image_root is not None else (
        path.parent.parent if path.parent.name == JSON_DIR else path.parent)
    items = _read_items(path)
    if limit is not None:
        items = items[:limit]
    return [_sample(path, n, item, benchmark, root, check_images) for n, item in items]


# ---------------------------------------------------------------- internals

def _file_name(benchmark: str) -> str:
    try:
        return CAPRL_EVAL_FILES[benchmark]
    except (KeyError, TypeError):
        raise CaprlEvalFileError(f"unknown CapRL benchmark {benchmark!r}; known: "
                                 f"{', '.join(CAPRL_EVAL_FILES)}") from None


def _read_items(path: Path) -> list[tuple[int, Any]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CaprlEvalFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if path.suffix == ".jsonl":
        return [(lineno - 1, row) for lineno, row in iter_jsonl(data, str(path), CaprlEvalFileError)]
    try:
        items = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise CaprlEvalFileError(f"{path}: not valid UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise CaprlEvalFileError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") \
            from None
    if not isinstance(items, list):
        raise CaprlEvalFileError(f"{path}: expected a JSON list of samples, got {type(items).__name__}")
    return list(enumerate(items))


def _sample(path: Path, n: int, item: Any, benchmark: str, root: Path, check_images: bool) -> CaprlEvalSample:
    where = f"{path}: item {n}"
    if not isinstance(item, dict):
        raise CaprlEvalFileError(f"{where}: expected an object, got {type(item).__name__}")
    prompt = item.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise CaprlEvalFileError(f"{where}: 'prompt' must be a non-empty string, got {_kind(prompt)}")
    if VISION_PLACEHOLDER not in prompt:
        raise CaprlEvalFileError(f"{where}: prompt lacks the image placeholder {VISION_PLACEHOLDER!r}, "
                                 f"so CapRL would ask it without the caption")
    if "answer" not in item:
        raise CaprlEvalFileError(f"{where}: no 'answer'")
    answer = item["answer"]
    if answer is None or isinstance(answer, (bool, dict)) or not isinstance(answer, (str, int, float, list)):
        raise CaprlEvalFileError(f"{where}: 'answer' must be a string, a number or a list, got {_kind(answer)}")
    if isinstance(answer, list) and not answer and CAPRL_FAMILIES[benchmark] != "math":
        raise CaprlEvalFileError(f"{where}: 'answer' is an empty list; CapRL's chart scoring crashes on it")
    images, image_text = _images(item.get("image"), where, root, check_images)
    question = item.get("question") if isinstance(item.get("question"), str) else image_text
    if question is None:
        question = _user_text(prompt)
    options = _options(item, question, answer)
    source_id = next((str(item[k]) for k in _ID_KEYS if k in item and item[k] is not None), None)
    return CaprlEvalSample(id=f"{benchmark}:{n}", benchmark=benchmark, prompt=prompt, answer=answer,
                           images=images, question=question, options=options, source_id=source_id, raw=item)


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r:.60}"


def _images(value: Any, where: str, root: Path, check: bool) -> tuple[tuple[str | bytes, ...], str | None]:
    """Image references in the forms qwen-vl-utils reads: a message list (or a list of them) whose content
    has {"image"|"image_url": ...} elements; also bare paths or such elements, which the card's wording allows."""
    if value is None:
        raise CaprlEvalFileError(f"{where}: no 'image'")
    elements: list[Any] = []
    texts: list[str] = []
    _collect(value, elements, texts, depth=0)
    if not elements:
        raise CaprlEvalFileError(f"{where}: 'image' holds no image reference ({_kind(value)})")
    refs = tuple(_image_ref(e, where, root, check) for e in elements)
    return refs, ("\n".join(t for t in texts if t.strip()) or None)


def _is_image_element(value: dict) -> bool:
    return "image" in value or "image_url" in value or value.get("type") in ("image", "image_url")


def _collect(value: Any, elements: list[Any], texts: list[str], depth: int) -> None:
    if depth > 4:  # messages nest at most list -> list -> message -> content -> element
        return
    if isinstance(value, str):
        elements.append(value)
    elif isinstance(value, list):
        for v in value:
            _collect(v, elements, texts, depth + 1)
    elif isinstance(value, dict):
        if "content" in value and not _is_image_element(value):  # a chat message
            if isinstance(value["content"], list):
                for element in value["content"]:
                    if isinstance(element, dict):
                        _collect(element, elements, texts, depth + 1)
        elif _is_image_element(value):
            elements.append(value)
        elif value.get("type") == "text" and isinstance(value.get("text"), str):
            texts.append(value["text"])


def _image_ref(element: Any, where: str, root: Path, check: bool) -> str | bytes:
    if isinstance(element, dict):
        ref = element.get("image", element.get("image_url"))
        if isinstance(ref, dict):  # OpenAI style {"image_url": {"url": ...}}
            ref = ref.get("url")
    else:
        ref = element
    if not isinstance(ref, str) or not ref.strip():
        raise CaprlEvalFileError(f"{where}: image reference must be a path or data URI, got {_kind(ref)}")
    if ref.startswith("data:"):
        head, sep, payload = ref.partition("base64,")
        if not sep:
            raise CaprlEvalFileError(f"{where}: image data URI is not base64 ({ref[:40]!r})")
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise CaprlEvalFileError(f"{where}: image data URI holds invalid base64") from None
    if ref.startswith(("http://", "https://")):
        raise CaprlEvalFileError(f"{where}: image {ref!r} is a remote URL; download the images and "
                                 f"give local paths")
    local = Path(ref[len("file://"):] if ref.startswith("file://") else ref)
    resolved = local if local.is_absolute() else root / local
    if check and not resolved.is_file():
        raise CaprlEvalFileError(f"{where}: image {ref!r} not found (looked for {resolved}; unzip "
                                 f"{IMAGE_DIR}.zip in the dataset root or pass image_root)")
    return str(resolved)


def _user_text(prompt: str) -> str | None:
    """The user-turn text after the image placeholder, up to the end of the turn."""
    start = prompt.find(VISION_PLACEHOLDER)
    body = prompt[start + len(VISION_PLACEHOLDER):]
    end = body.find(_END_OF_TURN)
    if end < 0:
        return None
    text = body[:end].strip()
    return text or None


def _options(item: dict, question: str | None, answer: Any) -> tuple[str, ...] | None:
    """Options of a multiple-choice sample: an explicit options/choices field, else lettered options in the
    question text; only when the gold is a single letter."""
    if not (isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().isalpha()
            and answer.strip().isupper()):
        return None
    for key in ("options", "choices"):
        value = item.get(key)
        if isinstance(value, list) and len(value) >= 2 and all(isinstance(v, str) for v in value):
            return tuple(value)
        if isinstance(value, dict) and len(value) >= 2:
            return tuple(str(value[k]) for k in sorted(value))
    if question:
        from prism_eval.benchmarks.catalog.fields import parse_inline_options

        parsed = parse_inline_options(question)
        if parsed is not None and ord(answer.strip()) - ord("A") < len(parsed[1]):
            return parsed[1]
    return None


# ---------------------------------------------------------------- as a prism-eval benchmark

HUB_DATASET = "internlm/CapRL-Evaluation-Files"
ENV_ROOT = "PRISM_EVAL_CAPRL_DATA"


def dataset_root() -> Path:
    """CapRL's evaluation files: PRISM_EVAL_CAPRL_DATA (a local copy), else the hub dataset (downloaded once)."""
    local = os.environ.get(ENV_ROOT)
    if local:
        root = Path(local).expanduser()
        if not root.is_dir():
            raise CaprlEvalFileError(f"{ENV_ROOT}={local}: not a folder (the root of {HUB_DATASET})")
        return root
    try:
        from huggingface_hub import snapshot_download

        root = Path(snapshot_download(HUB_DATASET, repo_type="dataset"))
    except Exception as exc:  # noqa: BLE001 - offline, gated, missing: all end the same way
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CaprlEvalFileError(f"CapRL's evaluation files ({HUB_DATASET}) cannot be fetched ({first}); download "
                                 f"them and set {ENV_ROOT} to the folder") from None
    return _unzipped(root)


def _unzipped(root: Path) -> Path:
    """The dataset root with bench_image_folder/ present: the hub ships it zipped; it is extracted once."""
    if (root / IMAGE_DIR).is_dir() or not (root / f"{IMAGE_DIR}.zip").is_file():
        return root
    import zipfile

    from prism_eval.engines.cache_dir import cache_root, publish_dir

    def extract(tmp: Path) -> None:
        with zipfile.ZipFile(root / f"{IMAGE_DIR}.zip") as archive:
            archive.extractall(tmp)
        for entry in root.iterdir():
            if entry.is_dir() and entry.name == JSON_DIR:
                (tmp / JSON_DIR).symlink_to(entry.resolve(), target_is_directory=True)

    return publish_dir(cache_root() / "caprl-evaluation-files" / root.name, extract)


def load_caprl_benchmark(benchmark: str, limit: int | None = None, root: str | os.PathLike | None = None,
                         **_: Any):
    """One of CapRL's 12 evaluation files as a Benchmark: CapRL's own questions, images, prompts and golds.

    Each question keeps its sample's prompt (the judge is asked with it, the caption
    in place of the image, as Eval_CapRL.py does) and its gold exactly as stored
    (CapRL's scoring reads lists and strings differently).
    """
    from prism_eval.benchmarks.types import Benchmark, BenchmarkError, group_by_image
    from prism_eval.core.records import ImageRef, Question
    from prism_eval.core.utility import OWN_PROMPT, STORED_GOLD
    from prism_eval.io.images import ImageError, image_ref_from_bytes

    folder = Path(root) if root is not None else dataset_root()
    try:
        samples = load_caprl_eval_file(folder, benchmark, limit)
    except CaprlEvalFileError as exc:
        raise BenchmarkError(f"caprl:{benchmark}: {exc}") from None
    items: list[tuple[tuple[ImageRef, ...], Question]] = []
    for s in samples:
        answers = [str(a) for a in s.answer] if isinstance(s.answer, list) else [str(s.answer)]
        question = Question(id=s.id, text=s.question or "", answer=answers[0] if answers else "",
                            targets=tuple(answers[1:]),
                            extra={OWN_PROMPT: s.prompt, STORED_GOLD: s.answer, "caprl_options": s.options})
        try:
            refs = tuple(image_ref_from_bytes(f"caprl:{benchmark}/{s.id}/{i}",
                                              img if isinstance(img, bytes) else Path(img).read_bytes())
                         for i, img in enumerate(s.images))
        except (ImageError, OSError) as exc:
            raise BenchmarkError(f"caprl:{benchmark}: {s.id}: {exc}") from None
        items.append((refs, question))
    return Benchmark(name=benchmark, samples=group_by_image(items, benchmark), kind="open", metric="exact_match",
                     protocol="caprl-eval", answer_format="boxed",
                     source=f"{HUB_DATASET} ({JSON_DIR}/{CAPRL_EVAL_FILES[benchmark]})", shipped=True,
                     notes=["CapRL's own evaluation file: its questions, images, judge prompts and golds"])
