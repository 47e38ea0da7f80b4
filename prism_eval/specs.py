"""Benchmark specs: one YAML file per benchmark under benchmarks/, read into Samples.

A spec names a dataset (hub id, config, split, revision, or a local copy) and
says how a row becomes Questions: which column is the question, where the
options are (a list, a stringified list, `choice_a..d` columns, or inline in
the question text as MMStar and WeMath keep them), what the answer is (a
letter, a 0-based index, the option text, or target text), the category and
the image columns. Loading goes through `datasets.load_dataset` or
`load_from_disk`, the same path for a hub id and for a local folder, so the
tests exercise the real code on small local datasets.

A spec's dataset can be pointed at a local copy with the `dataset_path`
argument or the environment variable PRISM_EVAL_DATA_<NAME> (name upper-cased,
'-' -> '_'), or PRISM_EVAL_DATA_DIR/<name> when that folder exists.
"""
from __future__ import annotations

import ast
import hashlib
import io
import os
import re
import sys
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from prism_eval.core import metrics as metrics_mod
from prism_eval.core.options import LETTERS
from prism_eval.core.records import ImageRef, Question, Sample

KINDS = ("mcq", "open", "mixed")
ANSWER_FORMATS = ("boxed", "short")
ANSWER_AS = ("letter", "index", "index1", "text", "target")
SPEC_KEYS = {"name", "title", "dataset", "count", "kind", "metric", "caprl_metric", "protocol", "answer_format",
             "categories", "fields", "filter", "subset", "adapter", "image_root", "notes", "verified", "source",
             "homepage", "prompt_suffix"}
FIELD_KEYS = {"id", "question", "context", "options", "answer", "targets", "category", "images"}


class SpecError(ValueError):
    """A bad spec or a row that does not fit it; the message names the spec (and row) and the problem."""


# ------------------------------------------------------------------ finding specs

def spec_dirs() -> list[Path]:
    """Where specs are looked up: PRISM_EVAL_BENCHMARKS (os.pathsep-separated), the source tree, the install."""
    dirs: list[Path] = []
    for part in os.environ.get("PRISM_EVAL_BENCHMARKS", "").split(os.pathsep):
        if part.strip():
            dirs.append(Path(part).expanduser())
    dirs.append(Path(__file__).resolve().parent.parent / "benchmarks")
    dirs.append(Path(sys.prefix) / "share" / "prism-eval" / "benchmarks")
    return [d for d in dirs if d.is_dir()]


def _spec_files() -> dict[str, tuple[Path, dict]]:
    """name -> (file, parsed YAML) for every spec and suite; earlier directories win."""
    found: dict[str, tuple[Path, dict]] = {}
    for folder in spec_dirs():
        for path in sorted(folder.glob("*.y*ml")):
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                raise SpecError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
            if not isinstance(data, dict):
                raise SpecError(f"{path}: a spec must be a YAML mapping")
            name = data.get("suite") or data.get("name")
            if not name:
                raise SpecError(f"{path}: needs a 'name' (benchmark) or 'suite' key")
            found.setdefault(str(name), (path, data))
    return found


def list_specs() -> list[str]:
    """Names of every benchmark spec (suites excluded)."""
    return sorted(n for n, (_, d) in _spec_files().items() if "suite" not in d)


def list_suites() -> list[str]:
    return sorted(n for n, (_, d) in _spec_files().items() if "suite" in d)


def suite_members(name: str) -> list[str] | None:
    """The benchmark names of a suite, in order, or None when `name` is not a suite."""
    entry = _spec_files().get(name)
    if entry is None or "suite" not in entry[1]:
        return None
    members = entry[1].get("members")
    if not isinstance(members, list) or not members:
        raise SpecError(f"{entry[0]}: suite {name!r} needs a non-empty 'members' list")
    return [str(m) for m in members]


def suite_protocol(name: str) -> str | None:
    """The protocol a suite is run with by default (caprl -> caprl-eval, prism -> prism)."""
    entry = _spec_files().get(name)
    return entry[1].get("protocol") if entry and "suite" in entry[1] else None


# ------------------------------------------------------------------ the spec record

@dataclass
class Spec:
    name: str
    path: Path
    dataset_path: str
    dataset_name: str | None
    split: str
    revision: str | None
    data_files: Any
    kind: str
    metric: str
    caprl_metric: str | None
    protocol: str | None
    answer_format: str
    fields: dict[str, Any]
    title: str = ""
    count: int | None = None
    categories: tuple[str, ...] = ()
    filter: dict[str, Any] | None = None
    subset: dict[str, Any] | None = None
    adapter: str | None = None
    image_root: str | None = None
    prompt_suffix: str = ""
    notes: str = ""
    verified: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        src = self.dataset_path
        if self.dataset_name:
            src += f" ({self.dataset_name})"
        return f"{src} [{self.split}]" + (f" @{self.revision}" if self.revision else "")


def _field(data: dict, key: str, where: str, types: tuple, required: bool = True, default: Any = None):
    if key not in data or data[key] is None:
        if required:
            raise SpecError(f"{where}: missing required key {key!r}")
        return default
    value = data[key]
    if not isinstance(value, types):
        raise SpecError(f"{where}: {key!r} must be {' or '.join(t.__name__ for t in types)}, got {type(value).__name__}")
    return value


def parse_spec(data: dict, path: Path) -> Spec:
    """Validate a spec mapping; every problem is one SpecError naming the file and the key."""
    where = str(path)
    unknown = set(data) - SPEC_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(SPEC_KEYS))}")
    name = str(_field(data, "name", where, (str,)))
    ds = _field(data, "dataset", where, (dict,))
    kind = _field(data, "kind", where, (str,))
    if kind not in KINDS:
        raise SpecError(f"{where}: kind {kind!r} must be one of {', '.join(KINDS)}")
    metric = _field(data, "metric", where, (str,))
    caprl_metric = _field(data, "caprl_metric", where, (str,), required=False)
    for m in filter(None, (metric, caprl_metric)):
        try:
            metrics_mod.parse_metric(m)
        except metrics_mod.MetricError as exc:
            raise SpecError(f"{where}: {exc}") from None
    answer_format = _field(data, "answer_format", where, (str,), required=False, default="short")
    if answer_format not in ANSWER_FORMATS:
        raise SpecError(f"{where}: answer_format {answer_format!r} must be one of {', '.join(ANSWER_FORMATS)}")
    fields = _field(data, "fields", where, (dict,))
    bad = set(fields) - FIELD_KEYS
    if bad:
        raise SpecError(f"{where}: unknown field(s) {', '.join(sorted(bad))}; allowed: {', '.join(sorted(FIELD_KEYS))}")
    for key in ("question", "answer", "images"):
        if key not in fields:
            raise SpecError(f"{where}: fields needs {key!r}")
    adapter = data.get("adapter")
    if adapter is not None and adapter not in ADAPTERS:
        raise SpecError(f"{where}: unknown adapter {adapter!r}; known: {', '.join(sorted(ADAPTERS))}")
    count = data.get("count")
    if count is not None and not isinstance(count, int):
        raise SpecError(f"{where}: 'count' must be an integer")
    return Spec(
        name=name, path=path,
        dataset_path=str(_field(ds, "path", f"{where}: dataset", (str,))),
        dataset_name=_field(ds, "name", f"{where}: dataset", (str,), required=False),
        split=str(_field(ds, "split", f"{where}: dataset", (str,))),
        revision=_field(ds, "revision", f"{where}: dataset", (str,), required=False),
        data_files=ds.get("data_files"),
        kind=kind, metric=metric, caprl_metric=caprl_metric,
        protocol=_field(data, "protocol", where, (str,), required=False),
        answer_format=answer_format, fields=fields, title=str(data.get("title") or name), count=count,
        categories=tuple(str(c) for c in (data.get("categories") or ())),
        filter=_field(data, "filter", where, (dict,), required=False),
        subset=_field(data, "subset", where, (dict,), required=False),
        adapter=adapter, image_root=_field(data, "image_root", where, (str,), required=False),
        prompt_suffix=str(data.get("prompt_suffix") or ""),
        notes=str(data.get("notes") or "").strip(), verified=str(data.get("verified") or "").strip(), raw=data,
    )


def get_spec(name_or_path: str | Path) -> Spec:
    """A spec by name (see list_specs) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise SpecError(f"{path}: a spec must be a YAML mapping")
        return parse_spec(data, path)
    entry = _spec_files().get(str(name_or_path))
    if entry is None or "suite" in entry[1]:
        raise SpecError(f"{name_or_path}: no benchmark spec of that name (known: {', '.join(list_specs())})")
    return parse_spec(entry[1], entry[0])


# ------------------------------------------------------------------ loading the dataset

def _env_name(name: str) -> str:
    return "PRISM_EVAL_DATA_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def resolve_dataset_path(spec: Spec, dataset_path: str | None = None) -> str:
    """The local override if any (argument, PRISM_EVAL_DATA_<NAME>, PRISM_EVAL_DATA_DIR/<name>), else the hub id."""
    if dataset_path:
        return str(dataset_path)
    env = os.environ.get(_env_name(spec.name))
    if env:
        return env
    root = os.environ.get("PRISM_EVAL_DATA_DIR")
    if root and (Path(root) / spec.name).exists():
        return str(Path(root) / spec.name)
    return spec.dataset_path


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def load_rows(spec: Spec, dataset_path: str | None = None):
    """The spec's split as a `datasets.Dataset`, from a local copy or the hub."""
    import datasets

    source = resolve_dataset_path(spec, dataset_path)
    local = Path(source).expanduser()
    try:
        if local.exists():
            folder = local
            if spec.dataset_name and (folder / spec.dataset_name).is_dir():
                folder = folder / spec.dataset_name
            if _is_saved_dataset(folder):
                loaded = datasets.load_from_disk(str(folder))
                if isinstance(loaded, datasets.DatasetDict):
                    if spec.split not in loaded:
                        raise SpecError(f"{spec.name}: split {spec.split!r} not in {folder} "
                                        f"(it has {', '.join(loaded)})")
                    return loaded[spec.split]
                return loaded
            return datasets.load_dataset(str(folder), data_files=spec.data_files, split=spec.split)
        return datasets.load_dataset(spec.dataset_path, spec.dataset_name, split=spec.split,
                                     revision=spec.revision, data_files=spec.data_files)
    except SpecError:
        raise
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds (network, missing split, bad files)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = "" if local.exists() else f"; offline? point {_env_name(spec.name)} at a local copy"
        raise SpecError(f"{spec.name}: cannot load dataset {source!r} split {spec.split!r}: "
                        f"{type(exc).__name__}: {first}{hint}") from None


# ------------------------------------------------------------------ reading rows

def get_value(row: dict, column: str, where: str) -> Any:
    """row[column], with 'a.b' reading a key inside a dict column (MathVista's metadata.task)."""
    if column in row:
        return row[column]
    head, _, rest = column.partition(".")
    if rest and head in row:
        value = row[head]
        if isinstance(value, str):
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise SpecError(f"{where}: column {head!r} is not a mapping, cannot read {column!r}") from None
        if isinstance(value, dict) and rest in value:
            return value[rest]
    raise SpecError(f"{where}: no column {column!r} (row has {', '.join(sorted(row))})")


def _as_list(value: Any, parse: str | None, where: str) -> list | None:
    if value is None:
        return None
    if isinstance(value, str) and parse == "literal":
        text = value.strip()
        if not text:
            return []
        if not text.startswith(("[", "(")):
            return [value]
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise SpecError(f"{where}: cannot parse {text[:60]!r} as a list") from None
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def read_field(row: dict, spec_value: Any, where: str) -> Any:
    """A field is a column name, or {column, template, pick, parse, map, default}."""
    if spec_value is None:
        return None
    if isinstance(spec_value, str):
        return get_value(row, spec_value, where)
    if not isinstance(spec_value, dict):
        raise SpecError(f"{where}: a field must be a column name or a mapping, got {spec_value!r}")
    if "template" in spec_value:
        names = re.findall(r"\{([^{}]+)\}", spec_value["template"])
        values = {n: get_value(row, n, where) for n in names}
        text = spec_value["template"]
        for n, v in values.items():
            text = text.replace("{" + n + "}", "" if v is None else str(v))
        return text
    column = spec_value.get("column")
    if not column:
        raise SpecError(f"{where}: field mapping needs 'column' or 'template': {spec_value!r}")
    value = get_value(row, column, where)
    if spec_value.get("parse") == "literal" and isinstance(value, str):
        value = _as_list(value, "literal", where)
    if spec_value.get("pick") in ("last", "first") and isinstance(value, (list, tuple)):
        value = (value[-1] if spec_value["pick"] == "last" else value[0]) if value else None
    if "regex" in spec_value and value is not None:
        match = re.search(spec_value["regex"], str(value))
        value = (match.group(1) if match.groups() else match.group(0)) if match else None
    if "map" in spec_value and value is not None:
        value = spec_value["map"].get(value, spec_value["map"].get(str(value), value))
    if value is None or value == "":
        value = spec_value.get("default", value)
    return value


_INLINE_MARKERS = ("Options:", "Choices:", "Choice:")


def parse_inline_options(text: str, marker: str | None = None) -> tuple[str, tuple[str, ...]] | None:
    """Split 'stem Options: A: x, B: y' (MMStar) or 'A. x; B. y' (WeMath) into (stem, options).

    Letters must run A, B, C, ... in order, each followed by ':', '.' or ')';
    returns None when fewer than two are found, so the caller keeps the text.
    """
    body, stem = text, ""
    markers = (marker,) if marker else _INLINE_MARKERS
    for m in markers:
        idx = text.rfind(m)
        if idx != -1:
            stem, body = text[:idx].rstrip(), text[idx + len(m):]
            break
    starts: list[tuple[int, int]] = []  # (label start, text start)
    pos = 0
    for letter in LETTERS:
        pattern = re.compile(r"(?:^|(?<=[\s,;(]))\(?" + letter + r"\s?[:.)：]\s*")
        match = pattern.search(body, pos)
        if not match:
            break
        starts.append((match.start(), match.end()))
        pos = match.end()
    if len(starts) < 2:
        return None
    options = []
    for i, (_, text_start) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(body)
        option = body[text_start:end].strip().rstrip(",;").strip()
        options.append(option)
    if not stem:
        stem = body[:starts[0][0]].strip()
    if any(o == "" for o in options):
        return None
    return stem, tuple(options)


def read_options(row: dict, spec_value: Any, question_text: str, where: str) -> tuple[str, tuple[str, ...] | None]:
    """(question text, options or None) from a list column, choice columns, or inline text."""
    if spec_value is None:
        return question_text, None
    if isinstance(spec_value, str):
        spec_value = {"column": spec_value}
    if "columns" in spec_value:
        values = [get_value(row, c, where) for c in spec_value["columns"]]
        opts = tuple(str(v) for v in values if v is not None and str(v) != "")
        return question_text, opts or None
    if "inline" in spec_value:
        source = spec_value["inline"]
        text = question_text if source in (True, "question") else str(read_field(row, source, where) or "")
        parsed = parse_inline_options(text, spec_value.get("marker"))
        if parsed is None:  # no recognisable options: the question stays open, its text unchanged
            return question_text, None
        stem, opts = parsed
        return (stem if source in (True, "question") else question_text), opts
    value = read_field(row, {**spec_value, "parse": spec_value.get("parse", "literal")}, where)
    values = _as_list(value, "literal", where)
    if not values:
        return question_text, None
    return question_text, tuple(str(v) for v in values)


def read_answer(row: dict, spec_value: Any, options: tuple[str, ...] | None, where: str) -> tuple[str, tuple[str, ...]]:
    """(answer, further targets): a letter for an MCQ, the target text(s) for an open question."""
    how = "letter"
    if isinstance(spec_value, dict) and "as" in spec_value:
        how = spec_value["as"]
        if how not in ANSWER_AS:
            raise SpecError(f"{where}: answer 'as' must be one of {', '.join(ANSWER_AS)}, got {how!r}")
    value = read_field(row, spec_value, where)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise SpecError(f"{where}: empty answer")
    if options is None:
        answers = _as_list(value, "literal" if isinstance(spec_value, dict) and spec_value.get("parse") == "literal"
                           else None, where)
        answers = [str(a).strip() for a in answers if str(a).strip()]
        if not answers:
            raise SpecError(f"{where}: empty answer")
        return answers[0], tuple(answers[1:])
    n = len(options)
    if isinstance(value, (list, tuple)):
        value = value[0]
    text = str(value).strip()
    if how == "letter":
        letter = text.upper().strip("().")
        if len(letter) != 1 or letter not in LETTERS[:n]:
            # some sets give the option text where a letter is expected
            matches = [i for i, o in enumerate(options) if o.strip() == text]
            if len(matches) == 1:
                return LETTERS[matches[0]], ()
            raise SpecError(f"{where}: answer {text!r} is not one of the letters {LETTERS[:n]}")
        return letter, ()
    if how in ("index", "index1"):
        try:
            index = int(float(text)) - (1 if how == "index1" else 0)
        except ValueError:
            raise SpecError(f"{where}: answer {text!r} is not an option index") from None
        if not 0 <= index < n:
            raise SpecError(f"{where}: answer index {text!r} out of range for {n} options")
        return LETTERS[index], ()
    if how == "text":
        matches = [i for i, o in enumerate(options) if o.strip() == text]
        if not matches:
            matches = [i for i, o in enumerate(options) if metrics_mod.normalize_text(o) == metrics_mod.normalize_text(text)]
        if len(matches) != 1:
            raise SpecError(f"{where}: answer {text!r} matches {len(matches)} of the options {list(options)!r}")
        return LETTERS[matches[0]], ()
    return text, ()


# ------------------------------------------------------------------ images

def encode_png(image) -> bytes:
    """Deterministic PNG bytes of a PIL image (no metadata), for images datasets gives only decoded."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


class ImageSource:
    """Turns a row's image value (bytes, {'bytes','path'}, a PIL image, a relative path) into bytes."""

    def __init__(self, spec: Spec, dataset_source: str):
        self.spec = spec
        self.local = Path(dataset_source).expanduser() if Path(dataset_source).expanduser().exists() else None
        self._zip: zipfile.ZipFile | None = None
        self._root: Path | None = None

    def _root_path(self) -> Path | None:
        if self._root is None and self.spec.image_root:
            if self.local is not None:
                self._root = self.local / self.spec.image_root
            else:  # hub: fetch only the image archive / folder next to the data
                from huggingface_hub import snapshot_download
                snap = snapshot_download(self.spec.dataset_path, repo_type="dataset", revision=self.spec.revision,
                                         allow_patterns=[self.spec.image_root, self.spec.image_root + "/*"])
                self._root = Path(snap) / self.spec.image_root
        return self._root

    def _from_path(self, rel: str, where: str) -> bytes:
        rel = rel.strip().lstrip("./") if rel.startswith("./") else rel.strip()
        root = self._root_path()
        if root is not None and root.suffix == ".zip":
            if self._zip is None:
                self._zip = zipfile.ZipFile(root)
            names = (rel, rel.split("/", 1)[-1])
            for n in names:
                try:
                    return self._zip.read(n)
                except KeyError:
                    continue
            raise SpecError(f"{where}: image {rel!r} not found in {root.name}")
        base = root or self.local
        if base is None:
            raise SpecError(f"{where}: image given as a path {rel!r} but the spec has no image_root")
        target = (base / rel).resolve()
        if not target.is_relative_to(base.resolve()):
            raise SpecError(f"{where}: image path {rel!r} escapes the dataset folder")
        if not target.is_file():
            raise SpecError(f"{where}: image file {rel!r} does not exist under {base}")
        return target.read_bytes()

    def to_bytes(self, value: Any, where: str) -> bytes:
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, dict):
            if value.get("bytes"):
                return bytes(value["bytes"])
            if value.get("path"):
                path = Path(value["path"])
                if path.is_file():
                    return path.read_bytes()
                return self._from_path(str(value["path"]), where)
            raise SpecError(f"{where}: image value has neither bytes nor path")
        if isinstance(value, str):
            return self._from_path(value, where)
        if hasattr(value, "save") and hasattr(value, "size"):
            return encode_png(value)
        raise SpecError(f"{where}: unsupported image value of type {type(value).__name__}")


def _undecode_images(ds, columns: list[str]):
    """Ask datasets for the original encoded bytes instead of decoded PIL images."""
    import datasets

    for col in columns:
        feature = ds.features.get(col)
        if isinstance(feature, datasets.Image) and feature.decode:
            ds = ds.cast_column(col, datasets.Image(decode=False))
        elif isinstance(feature, (datasets.List, datasets.Sequence)) and isinstance(
                getattr(feature, "feature", None), datasets.Image):
            ds = ds.cast_column(col, type(feature)(datasets.Image(decode=False)))
    return ds


def _image_columns(spec: Spec) -> list[str]:
    images = spec.fields["images"]
    if isinstance(images, str):
        return [images]
    if isinstance(images, list):
        return [str(c) for c in images]
    if isinstance(images, dict) and "columns" in images:
        return [str(c) for c in images["columns"]]
    raise SpecError(f"{spec.path}: fields.images must be a column, a list of columns, or {{columns: [...]}}")


# ------------------------------------------------------------------ rows -> questions

@dataclass
class RowQuestion:
    """A question read from a row, before grouping by image."""

    question: Question
    image_values: list[Any]


def row_questions(spec: Spec, row: dict, index: int) -> list[RowQuestion]:
    """The Questions of one row (several for adapters such as CharXiv descriptive)."""
    if spec.adapter:
        return ADAPTERS[spec.adapter](spec, row, index)
    return [_generic_question(spec, row, index)]


def _row_id(spec: Spec, row: dict, index: int, where: str) -> str:
    id_field = spec.fields.get("id")
    value = read_field(row, id_field, where) if id_field else None
    return str(value) if value not in (None, "") else str(index)


def _generic_question(spec: Spec, row: dict, index: int, text: str | None = None, qid: str | None = None,
                      answer_field: Any = None) -> RowQuestion:
    f = spec.fields
    where = f"{spec.name} row {index}"
    qid = qid or _row_id(spec, row, index, where)
    where = f"{spec.name} row {index} (id {qid})"
    if text is None:
        text = read_field(row, f["question"], where)
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"{where}: empty question text")
    text = text.strip()
    text, options = read_options(row, f.get("options"), text, where)
    if spec.kind == "open":
        options = None
    elif spec.kind == "mcq" and options is None:
        opt_spec = f.get("options")
        if not (isinstance(opt_spec, dict) and "inline" in opt_spec):
            raise SpecError(f"{where}: no options found for a multiple-choice benchmark")
        # options inside free text that do not parse: keep the text whole, ask it open, compare the letter

    answer, targets = read_answer(row, answer_field or f["answer"], options, where)
    if options is None and f.get("targets"):
        more = _as_list(read_field(row, f["targets"], where), "literal", where) or []
        targets = tuple(dict.fromkeys([*targets, *(str(t).strip() for t in more if str(t).strip())]))
        targets = tuple(t for t in targets if t != answer)
    context = read_field(row, f.get("context"), where) if f.get("context") else None
    if isinstance(context, str) and context.strip():
        text = f"{context.strip()}\n{text}"
    if spec.prompt_suffix:
        text = text + spec.prompt_suffix
    category = read_field(row, f.get("category"), where) if f.get("category") else None
    images = f["images"]
    if isinstance(images, dict):
        images = images["columns"]
    if isinstance(images, str):
        images = [images]
    values: list[Any] = []
    for col in images:
        value = get_value(row, col, where)
        if isinstance(value, (list, tuple)):
            values.extend(v for v in value if v is not None)
        elif value is not None and value != "":
            values.append(value)
    if not values:
        raise SpecError(f"{where}: no image in column(s) {', '.join(images)}")
    question = Question(id=qid, text=text, answer=answer, options=options,
                        category=None if category in (None, "") else str(category), targets=targets)
    return RowQuestion(question, values)


# -- adapters for layouts a declarative mapping cannot express

_CHARXIV_DESCRIPTIVE = {
    1: "{}what is its title?", 2: "{}what is the label of the x-axis?", 3: "{}what is the label of the y-axis?",
    4: "{}what is the leftmost labeled tick on the x-axis?", 5: "{}what is the rightmost labeled tick on the x-axis?",
    6: "{}what is the spatially lowest labeled tick on the y-axis?",
    7: "{}what is the spatially highest labeled tick on the y-axis?",
    8: "{}what is difference between consecutive numerical tick values on the x-axis?",
    9: "{}what is difference between consecutive numerical tick values on the y-axis?",
    10: "{}how many lines are there?", 11: "{}do any lines intersect?",
    12: "{}how many discrete labels are there in the legend?", 13: "{}what are the names of the labels in the legend?",
    14: "{}what is the difference between the maximum and minimum values of the tick labels on the continuous "
        "legend (i.e., colorbar)?",
    15: "{}what is the maximum value of the tick labels on the continuous legend (i.e., colorbar)?",
    16: "{}what is the general trend of data from left to right?",
    17: "{}What is the total number of explicitly labeled ticks across all axes?",
    18: "What is the layout of the subplots?", 19: "What is the number of subplots?",
}


def _charxiv_descriptive(spec: Spec, row: dict, index: int) -> list[RowQuestion]:
    """CharXiv rows hold four descriptive template ids (descriptive_q1..4) and answers (descriptive_a1..4)."""
    where = f"{spec.name} row {index}"
    base = _row_id(spec, row, index, where)
    loc = row.get("subplot_loc")
    if loc is None or loc == []:
        loc = [row.get("subplot_row"), row.get("subplot_col")]
    if isinstance(loc, (list, tuple)) and loc and loc[0] == 0:
        prefix = "For the current plot, "
    elif isinstance(loc, (list, tuple)) and len(loc) >= 2:
        prefix = f"For the subplot at row {loc[0]} and column {loc[1]}, "
    else:
        prefix = f"For {loc}, "
    out = []
    for k in range(1, 5):
        qid_tpl = row.get(f"descriptive_q{k}")
        if qid_tpl is None:
            continue
        try:
            template = _CHARXIV_DESCRIPTIVE[int(qid_tpl)]
        except (KeyError, ValueError):
            raise SpecError(f"{where}: unknown CharXiv descriptive template id {qid_tpl!r}") from None
        text = template.format(prefix) if "{}" in template else template
        rq = _generic_question(spec, row, index, text=text, qid=f"{base}_d{k}",
                               answer_field={"column": f"descriptive_a{k}", "as": "target"})
        out.append(RowQuestion(Question(id=rq.question.id, text=rq.question.text, answer=rq.question.answer,
                                        options=None, category=f"template {int(qid_tpl)}", targets=()),
                               rq.image_values))
    return out


def _chartqa_pro(spec: Spec, row: dict, index: int) -> list[RowQuestion]:
    """ChartQA-Pro keeps a conversation: Question and Answer are lists; the last turn is asked."""
    where = f"{spec.name} row {index}"
    questions = row.get("Question")
    answers = row.get("Answer")
    questions = questions if isinstance(questions, list) else [questions]
    answers = answers if isinstance(answers, list) else [answers]
    if not questions or not questions[-1]:
        raise SpecError(f"{where}: empty Question")
    if row.get("Question Type") == "Conversational" and len(questions) > 1:
        turns = []
        for i, q in enumerate(questions[:-1]):
            turns.append(f"Q{i + 1}: {str(q).strip()}")
            if i < len(answers):
                turns.append(f"A{i + 1}: {str(answers[i]).strip()}")
        turns.append(f"Q{len(questions)}: {str(questions[-1]).strip()}")
        text = "\n".join(turns)
    else:
        text = str(questions[-1]).strip()
    paragraph = str(row.get("Paragraph") or "").strip()
    if paragraph:
        text = f"Context: {paragraph}\n\n{text}"
    rq = _generic_question(spec, row, index, text=text,
                           answer_field={"column": "Answer", "pick": "last", "as": "target"})
    return [rq]


ADAPTERS: dict[str, Callable[[Spec, dict, int], list[RowQuestion]]] = {
    "charxiv_descriptive": _charxiv_descriptive,
    "chartqa_pro": _chartqa_pro,
}


# ------------------------------------------------------------------ filter, subset, load

def _filter_indices(spec: Spec, ds) -> list[int]:
    """Row indices kept by the spec's filter ({column, equals | in}), read without decoding images."""
    n = len(ds)
    if not spec.filter:
        return list(range(n))
    column = spec.filter.get("column")
    if column not in ds.column_names:
        raise SpecError(f"{spec.name}: filter column {column!r} not in the dataset ({', '.join(ds.column_names)})")
    values = ds[column]
    if "equals" in spec.filter:
        keep = {spec.filter["equals"]}
    elif "in" in spec.filter:
        keep = set(spec.filter["in"])
    else:
        raise SpecError(f"{spec.name}: filter needs 'equals' or 'in'")
    keep_s = {str(k) for k in keep}
    return [i for i, v in enumerate(values) if v in keep or str(v) in keep_s]


def _subset(spec: Spec, ds, indices: list[int]) -> list[int]:
    """A deterministic subset: rows ranked by sha256(seed:id), the first `size` kept, in dataset order.

    Independent of row order and of library versions, so the same rows are picked anywhere.
    """
    if not spec.subset:
        return indices
    size = int(spec.subset.get("size", 0))
    if size <= 0:
        raise SpecError(f"{spec.name}: subset.size must be a positive integer")
    if len(indices) <= size:
        return indices
    seed = str(spec.subset.get("seed", 0))
    key_col = spec.subset.get("by")
    keys = ds[key_col] if key_col else None
    if key_col and key_col not in ds.column_names:
        raise SpecError(f"{spec.name}: subset column {key_col!r} not in the dataset")

    def rank(i: int) -> str:
        key = str(keys[i]) if keys is not None else str(i)
        return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()

    chosen = set(sorted(indices, key=rank)[:size])
    return [i for i in indices if i in chosen]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_samples(spec: Spec, rows, dataset_source: str, limit: int | None = None,
                  indices: list[int] | None = None) -> list[Sample]:
    """Questions from rows, grouped into one Sample per distinct image set (captioned once)."""
    from prism_eval.images import ImageError, check_image_bytes

    images = ImageSource(spec, dataset_source)
    grouped: OrderedDict[str, tuple[tuple[ImageRef, ...], list[Question]]] = OrderedDict()
    seen: set[str] = set()
    count = 0
    for pos, row in enumerate(rows):
        index = indices[pos] if indices is not None else pos
        for rq in row_questions(spec, row, index):
            if limit is not None and count >= limit:
                break
            q = rq.question
            if q.id in seen:
                raise SpecError(f"{spec.name} row {index}: duplicate question id {q.id!r}")
            seen.add(q.id)
            refs = []
            for i, value in enumerate(rq.image_values):
                where = f"{spec.name} row {index} (id {q.id}) image {i}"
                data = images.to_bytes(value, where)
                key = f"{spec.name}/{q.id}/{i}"
                try:
                    check_image_bytes(data, key)
                except ImageError as exc:
                    raise SpecError(f"{where}: {exc}") from None
                refs.append(ImageRef(key=key, sha256=_sha256(data), data=data))
            group = "|".join(r.sha256 for r in refs)
            if group in grouped:
                grouped[group][1].append(q)
            else:
                grouped[group] = (tuple(refs), [q])
            count += 1
        if limit is not None and count >= limit:
            break
    return [Sample(id=qs[0].id, images=refs, questions=tuple(qs), benchmark=spec.name)
            for refs, qs in grouped.values()]


def load_spec_samples(spec: Spec, limit: int | None = None, dataset_path: str | None = None) -> list[Sample]:
    if limit is not None and limit < 1:
        raise SpecError(f"{spec.name}: limit must be at least 1, got {limit}")
    source = resolve_dataset_path(spec, dataset_path)
    ds = load_rows(spec, dataset_path)
    indices = _subset(spec, ds, _filter_indices(spec, ds))
    if limit is not None:
        # a row yields at most a few questions; take enough rows, build_samples stops at `limit`
        indices = indices[: limit * (4 if spec.adapter == "charxiv_descriptive" else 1)]
    ds = ds.select(indices) if indices != list(range(len(ds))) else ds
    ds = _undecode_images(ds, [c for c in _image_columns(spec) if c in ds.column_names])
    samples = build_samples(spec, ds, source, limit=limit, indices=indices)
    if not samples:
        raise SpecError(f"{spec.name}: no questions after filtering ({source!r} split {spec.split!r})")
    return samples


def load_spec_benchmark(name: str, limit: int | None = None, dataset_path: str | None = None,
                        compat: str | None = None, **_: Any):
    """A `prism_eval.benchmarks.Benchmark` from a spec name or YAML path.

    compat="caprl" switches the default metric to the spec's `caprl_metric`
    (CapRL's scoring, quirks included), so published numbers can be reproduced.
    """
    from prism_eval.benchmarks import Benchmark

    spec = get_spec(name)
    samples = load_spec_samples(spec, limit=limit, dataset_path=dataset_path)
    metric = spec.metric
    if compat is not None:
        metric = spec.caprl_metric or metrics_mod.with_compat(spec.metric, compat)
    questions = [q for s in samples for q in s.questions]
    mcq = sum(q.is_mcq for q in questions)
    kind = "mcq" if mcq == len(questions) else "open" if mcq == 0 else "mixed"
    cats = spec.categories or tuple(sorted({q.category for q in questions if q.category}))
    notes = [n for n in (spec.notes, f"verified: {spec.verified}" if spec.verified else "") if n]
    return Benchmark(name=spec.name, samples=samples, kind=kind, metric=metric, protocol=spec.protocol,
                     answer_format=spec.answer_format, source=f"{spec.source} via {resolve_dataset_path(spec, dataset_path)}"
                     if dataset_path or resolve_dataset_path(spec) != spec.dataset_path else spec.source,
                     categories=cats, notes=notes)


# ------------------------------------------------------------------ `prism-eval benchmarks`

def catalogue() -> list[dict[str, Any]]:
    """One row per benchmark and suite, for `prism-eval benchmarks`."""
    rows: list[dict[str, Any]] = []
    for name in list_specs():
        spec = get_spec(name)
        rows.append({"id": name, "type": "benchmark", "dataset": spec.dataset_path + (
            f" ({spec.dataset_name})" if spec.dataset_name else ""), "split": spec.split, "questions": spec.count,
            "kind": spec.kind, "metric": spec.metric, "caprl_metric": spec.caprl_metric,
            "protocol": spec.protocol, "answer_format": spec.answer_format, "verified": spec.verified})
    for name in list_suites():
        members = suite_members(name) or []
        counts = []
        for m in members:
            try:
                counts.append(get_spec(m).count)
            except SpecError:
                counts.append(None)
        total = sum(counts) if counts and all(c is not None for c in counts) else None
        rows.append({"id": name, "type": "suite", "dataset": ", ".join(members), "split": "", "questions": total,
                     "kind": "suite", "metric": "per benchmark", "caprl_metric": None,
                     "protocol": suite_protocol(name), "answer_format": "", "verified": ""})
    return rows


def _make_command():
    import click

    @click.command("benchmarks")
    @click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
    def benchmarks_command(as_json: bool) -> None:
        """List every benchmark spec and suite: id, dataset, split, question count, kind, metric."""
        import json as _json

        try:
            rows = catalogue()
        except SpecError as exc:
            raise click.ClickException(str(exc)) from None
        if as_json:
            click.echo(_json.dumps(rows, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title="Benchmarks (lmms:<task> also loads any lmms-eval task)")
        for col in ("id", "dataset", "split", "questions", "kind", "metric", "protocol"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(r["id"], r["dataset"], r["split"], "?" if r["questions"] is None else str(r["questions"]),
                          r["kind"], r["metric"], r["protocol"] or "")
        Console().print(table)

    return benchmarks_command


benchmarks_command = _make_command()
