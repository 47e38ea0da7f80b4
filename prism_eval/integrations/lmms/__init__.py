"""lmms-eval: its tasks as prism-eval benchmarks (tasks.py), and prism-eval as an lmms-eval model (model.py)."""
