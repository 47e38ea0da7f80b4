"""The pure QA-scoring core shared by the evaluator and the trainer (no model libraries)."""
