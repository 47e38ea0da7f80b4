"""Benchmarks: where questions come from (a local JSONL file, a YAML spec over a dataset, a suite,
an lmms-eval task) and the Benchmark record they all become.

Nothing here imports `datasets` or lmms-eval until a benchmark that needs it is loaded.
"""
from prism_eval.benchmarks.load import default_judge, default_protocol, expand_names, load_benchmark, suite_of
from prism_eval.benchmarks.local import load_jsonl_benchmark
from prism_eval.benchmarks.types import Benchmark, BenchmarkError, group_by_image, infer_kind

__all__ = ["Benchmark", "BenchmarkError", "group_by_image", "infer_kind", "load_benchmark", "expand_names",
           "default_protocol", "default_judge", "suite_of", "load_jsonl_benchmark"]
