"""`prism_eval.evaluate`: one captioner over benchmarks, scored by a judge, as a RunRecord.

The one entry point behind `prism-eval run`, `prism-eval demo` and evaluation
during training, so all three score the same way:

    from prism_eval import evaluate
    record = evaluate("hf:Qwen/Qwen2.5-VL-3B-Instruct", ["mmstar"], judge="builtin:smollm2-135m", limit=50)
    print(record.average, record.benchmarks["mmstar"].ci95)

Several captioners under one judge share an `Evaluator` (one store, one judge
loaded once): pass it as `session`.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

from prism_eval.benchmarks import Benchmark, expand_names, load_benchmark, suite_of
from prism_eval.benchmarks.names import unique_benchmarks
from prism_eval.plugins import load_plugins
from prism_eval.runner.evaluator import CaptionerRef, Evaluator, Progress
from prism_eval.runner.lock import output_lock
from prism_eval.runner.naming import display_names, folder_name
from prism_eval.runner.options import RunOptions
from prism_eval.runner.results import RunRecord

_OPTION_NAMES = {f.name for f in fields(RunOptions)}


def load_benchmarks(names: Sequence[str | Benchmark], options: RunOptions, metric: str | None = None
                    ) -> list[Benchmark]:
    """Benchmarks by name, suite, path or lmms:<task> (suites expanded), loaded with the run's limit and compat;
    Benchmark objects pass through."""
    load_plugins()
    loaded: list[Benchmark] = []
    for item in names:
        if isinstance(item, Benchmark):
            loaded.append(item)
            continue
        loaded.extend(load_benchmark(name, limit=options.limit, metric=metric, compat=options.compat)
                      for name in expand_names([str(item)]))
    return unique_benchmarks(loaded)  # results are keyed by name: two benchmarks never share one


def evaluate(captioner: str | Any, benchmarks: Sequence[str | Benchmark], *, options: RunOptions | None = None,
             out: str | Path | None = None, name: str | None = None, session: Evaluator | None = None,
             judge_engine: Any = None, progress: Progress | None = None, metric: str | None = None,
             average_over: Sequence[str] | None = None, **settings: Any) -> RunRecord:
    """Caption `benchmarks` with `captioner`, let the judge answer, score, write and return the RunRecord.

    captioner: a model spec (hf:, vllm:, openai:, file:, none, org/name) or a built captioner engine
      (e.g. `HFCaptioner.from_loaded(model, processor)`).
    benchmarks: names, suites, paths, `lmms:<task>`, or Benchmark objects.
    options / **settings: RunOptions, or its fields as keywords (judge=..., limit=..., seed=...).
    out: the run folder (results.json, samples.jsonl, thumbs/); default runs/<captioner name>.
    session: an Evaluator to reuse (same store and judge) across several captioners.
    judge_engine: an already loaded judge to share (ignored when a session is given).
    average_over: the benchmarks the headline average covers; default all, or the declared set when
      `benchmarks` is exactly one suite (the caprl suite averages Table 3's 11, not VisuLogic).
    """
    load_plugins()
    unknown = sorted(set(settings) - _OPTION_NAMES)
    if unknown:
        raise TypeError(f"evaluate() got unknown setting(s) {', '.join(unknown)}")
    if options is None:
        options = RunOptions(**settings)
    elif settings:
        raise TypeError("pass either options= or settings as keywords, not both")
    session = session or Evaluator(options, progress=progress, judge=judge_engine)
    ref = (CaptionerRef.from_spec(captioner, session.options) if isinstance(captioner, str)
           else CaptionerRef.from_engine(captioner))
    loaded = load_benchmarks(benchmarks, session.options, metric)
    if average_over is None:
        average_over = suite_average(benchmarks)
    if out is None:
        out = Path("runs") / folder_name(display_names([ref.spec])[ref.spec])
    with output_lock(out):  # two runs writing one folder would silently replace each other's results
        return session.run(ref, loaded, Path(out), name=name, average_over=average_over)


def suite_average(names: Sequence[str | Benchmark]) -> list[str] | None:
    """A suite's declared headline set when the run is exactly that suite; else None (average everything)."""
    if len(names) != 1 or isinstance(names[0], Benchmark):
        return None
    suite = suite_of(str(names[0]))
    return list(suite.average_over) if suite is not None else None
