"""Reading and writing files safely: JSONL, images, atomic writes (no model libraries)."""
