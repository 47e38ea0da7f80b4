"""prism-eval: measure and train image captioners by the utility of their captions.

`prism_eval.evaluate(...)` runs one captioner over benchmarks and returns its RunRecord;
importing the package stays cheap (the entry point is loaded on first use).
"""
from __future__ import annotations

from typing import Any

from prism_eval._version import __version__

__all__ = ["evaluate", "RunRecord", "RunOptions", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "evaluate":
        from prism_eval.api import evaluate

        return evaluate
    if name == "RunRecord":
        from prism_eval.runner.results import RunRecord

        return RunRecord
    if name == "RunOptions":
        from prism_eval.runner.options import RunOptions

        return RunOptions
    raise AttributeError(f"module 'prism_eval' has no attribute {name!r}")
