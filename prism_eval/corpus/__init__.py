"""Caption an image corpus (`prism-eval caption`): resumable parquet shards, one machine or a Ray cluster."""
from prism_eval.corpus.run import DEFAULT_PROMPT, caption_corpus
from prism_eval.corpus.shards import read_captions
from prism_eval.corpus.source import CorpusError, CorpusImages

__all__ = ["caption_corpus", "read_captions", "CorpusError", "CorpusImages", "DEFAULT_PROMPT"]
