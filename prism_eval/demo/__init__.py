"""The embedded demo benchmark: synthetic scenes with known facts, generated on the fly.

`build_demo(out_dir, seed)` writes images, a local-JSONL benchmark and three
caption files (reference, partial, wrong) whose quality is fixed by construction.
"""
from prism_eval.demo.build import DemoData, build_demo

__all__ = ["DemoData", "build_demo"]
