"""Benchmark specs: YAML files that map a dataset's rows to questions (schema, catalogue, loading)."""
