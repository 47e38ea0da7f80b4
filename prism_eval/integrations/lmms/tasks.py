"""`--benchmark lmms:<task>`: an lmms-eval task's documents, prompts and targets as a prism-eval benchmark.

Each document becomes one open Question whose text is the task's own prompt
(`doc_to_text`, options and answer instruction included), whose images are
`doc_to_visual`, and whose target is `doc_to_target`. Answers are scored by the
task's own `process_results`, reduced to one number per question with the
task's aggregation over that single item, through a scorer registered in
`prism_eval.core.metrics` under the metric name "lmms:<task>".

lmms-eval is an optional, heavy dependency that lives in its own venv
(`make setup-lmms`); this module imports it only when called. Local task
folders are found through PRISM_EVAL_LMMS_INCLUDE (os.pathsep-separated) or
the include_path argument; PRISM_EVAL_LMMS_DEFAULTS=0 skips indexing lmms-eval's
own tasks when only local ones are used.

Scores are the micro mean over questions; tasks whose lmms-eval aggregation
is not a mean (MMStar's macro average over categories, for example) report a
different headline number in lmms-eval itself. The `prism` model for
lmms-eval's own CLI (prism_eval.integrations.lmms.model) gives lmms-eval's aggregation.
"""
from __future__ import annotations

import hashlib
import math
import os
from typing import Any, Sequence

from prism_eval.benchmarks.types import Benchmark, BenchmarkError, group_by_image
from prism_eval.core import metrics as metrics_mod
from prism_eval.core.records import ImageRef, Question


class LmmsBridgeError(BenchmarkError):
    """lmms-eval is missing, or a task cannot be used; the message names the task and the problem."""


def _import_lmms():
    try:
        from lmms_eval.tasks import TaskManager, get_task_dict
    except ImportError as exc:
        raise LmmsBridgeError(f"lmms:<task> needs lmms-eval, which is not importable here ({exc}); "
                              "use the .venv-lmms environment (`make setup-lmms`)") from None
    return TaskManager, get_task_dict


def include_paths(include_path: str | Sequence[str] | None = None) -> list[str]:
    if include_path:
        return [include_path] if isinstance(include_path, str) else list(include_path)
    env = os.environ.get("PRISM_EVAL_LMMS_INCLUDE", "")
    return [p for p in env.split(os.pathsep) if p.strip()]


def get_task(task_name: str, include_path: str | Sequence[str] | None = None):
    """The lmms-eval ConfigurableTask for a task name (groups are refused: name one task)."""
    TaskManager, get_task_dict = _import_lmms()
    paths = include_paths(include_path)
    # PRISM_EVAL_LMMS_DEFAULTS=0 indexes only the include paths (seconds instead of lmms-eval's ~2,000 tasks)
    defaults = os.environ.get("PRISM_EVAL_LMMS_DEFAULTS", "1").strip() not in ("0", "false", "no")
    if not defaults and not paths:
        raise LmmsBridgeError(f"lmms:{task_name}: PRISM_EVAL_LMMS_DEFAULTS=0 but no include path "
                              "(set PRISM_EVAL_LMMS_INCLUDE)")
    manager = TaskManager(include_path=paths or None, include_defaults=defaults)
    if task_name not in manager.all_tasks:
        raise LmmsBridgeError(f"lmms:{task_name}: no such lmms-eval task"
                              + (f" (include path: {os.pathsep.join(paths)})" if paths else ""))
    try:
        tasks = get_task_dict([task_name], manager)
    except Exception as exc:  # noqa: BLE001 - dataset download / task config errors
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LmmsBridgeError(f"lmms:{task_name}: cannot build the task: {type(exc).__name__}: {first}") from None
    task = tasks.get(task_name)
    if task is None or isinstance(task, dict):
        members = [str(getattr(k, "task_name", k)) for k in (task or tasks)]
        raise LmmsBridgeError(f"lmms:{task_name} is a group; name one of its tasks: {', '.join(members)}")
    if task.OUTPUT_TYPE != "generate_until":
        raise LmmsBridgeError(f"lmms:{task_name}: output type {task.OUTPUT_TYPE!r}; only generate_until tasks "
                              "can be answered by a judge from a caption")
    return task


def png_bytes(image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def doc_image_refs(task_name: str, doc_id: Any, visuals: Sequence[Any]) -> tuple[ImageRef, ...]:
    """ImageRefs for a document's visuals, keyed "lmms:<task>/<doc id>/<i>" (the captions-file key)."""
    refs = []
    for i, visual in enumerate(visuals):
        if isinstance(visual, (bytes, bytearray)):
            data = bytes(visual)
        elif hasattr(visual, "save"):
            data = png_bytes(visual)
        else:
            raise LmmsBridgeError(f"lmms:{task_name} doc {doc_id}: visual {i} is a {type(visual).__name__}, "
                                  "not an image (video and audio tasks are not supported)")
        refs.append(ImageRef(key=f"lmms:{task_name}/{doc_id}/{i}", sha256=hashlib.sha256(data).hexdigest(),
                             data=data))
    return tuple(refs)


def _targets(target: Any) -> list[str]:
    if isinstance(target, (list, tuple)):
        values = [str(t).strip() for t in target if str(t).strip()]
    else:
        values = [str(target).strip()] if target is not None and str(target).strip() else []
    return values


def per_item_score(task, doc: dict, prediction: str, metric: str | None = None) -> float:
    """The task's own score of one answer: process_results, then that metric's aggregation over one item."""
    result = task.process_results(doc, [prediction])
    names = [m["metric"] for m in task.config.metric_list or [] if m.get("metric") in result]
    if metric is not None:
        if metric not in result:
            raise LmmsBridgeError(f"lmms:{task.config.task}: metric {metric!r} not produced by process_results "
                                  f"(it gives {', '.join(result)})")
        name = metric
    elif names:
        name = names[0]
    elif result:
        name = next(iter(result))
    else:
        raise LmmsBridgeError(f"lmms:{task.config.task}: process_results returned nothing")
    value = result[name]
    if not isinstance(value, (int, float)):
        aggregate = task.aggregation().get(name)
        if aggregate is None:
            raise LmmsBridgeError(f"lmms:{task.config.task}: metric {name!r} gives {type(value).__name__} values "
                                  "and has no aggregation to reduce them")
        value = aggregate([value])
    value = float(value)
    if math.isnan(value):
        return 0.0
    return value / 100.0 if value > 1.0 else value  # some tasks aggregate to percentages


def load_lmms_benchmark(task_name: str, limit: int | None = None, include_path: str | Sequence[str] | None = None,
                        metric: str | None = None, **_: Any):
    """A Benchmark from an lmms-eval task, scored by that task's process_results."""
    if limit is not None and limit < 1:
        raise LmmsBridgeError(f"lmms:{task_name}: limit must be at least 1, got {limit}")
    task = get_task(task_name, include_path)
    docs = task.eval_docs
    n = len(docs) if limit is None else min(limit, len(docs))
    metric_name = f"lmms:{task_name}"
    by_question: dict[str, dict] = {}
    items: list[tuple[tuple[ImageRef, ...], Question]] = []
    for doc_id in range(n):
        doc = docs[doc_id]
        text = task.doc_to_text(doc)
        if not isinstance(text, str) or not text.strip():
            raise LmmsBridgeError(f"lmms:{task_name} doc {doc_id}: doc_to_text gave no text prompt")
        visuals = task.doc_to_visual(doc) or []
        if not visuals:
            raise LmmsBridgeError(f"lmms:{task_name} doc {doc_id}: no image (doc_to_visual is empty)")
        refs = doc_image_refs(task_name, doc_id, visuals)
        targets = _targets(task.doc_to_target(doc))
        if not targets:
            raise LmmsBridgeError(f"lmms:{task_name} doc {doc_id}: empty target")
        qid = f"{task_name}/{doc_id}"
        q = Question(id=qid, text=text.strip(), answer=targets[0], targets=tuple(targets[1:]), metric=metric_name,
                     extra={"lmms_task": task_name, "lmms_doc_id": doc_id})
        by_question[qid] = doc
        items.append((refs, q))

    def score(prediction: str, question: Question) -> float:
        doc = by_question.get(question.id)
        if doc is None:
            raise LmmsBridgeError(f"{metric_name}: question {question.id!r} is not from this task")
        return per_item_score(task, doc, prediction, metric)

    metrics_mod.register_metric(metric_name, lambda p, q, _compat: score(p, q), replace=True)
    samples = group_by_image(items, metric_name)
    version = getattr(__import__("lmms_eval"), "__version__", "")
    return Benchmark(name=metric_name, samples=samples, kind="open", metric=metric_name, protocol=None,
                     answer_format="short", source=f"lmms-eval{(' ' + version) if version else ''} task {task_name}",
                     notes=[f"scored by lmms-eval's {task_name} process_results (micro mean over questions)"])
