"""Shared session fixtures: tiny locally built models and the built-in judge.

PRISM_EVAL_CACHE points at the repo's git-ignored .cache/, so the built-in
judge is converted from its GGUF once and reused by every test (and every later
run of the suite on this clone).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ["PRISM_EVAL_CACHE"] = str(REPO / ".cache" / "prism-eval")

# One intra-op thread: the models under test are small, and on a shared 2-core machine
# two OpenMP threads wait on each other at every op (20 tiny forwards: 0.2 s with one
# thread, 3-7 s with two under load). PRISM_EVAL_TEST_THREADS overrides.
_THREADS = int(os.environ.get("PRISM_EVAL_TEST_THREADS", "1"))
os.environ.setdefault("OMP_NUM_THREADS", str(_THREADS))


def pytest_configure(config):
    import torch

    torch.set_num_threads(_THREADS)

BUILTIN_JUDGE_SPEC = "builtin:smollm2-135m"


# -- tiny random models (built in well under a second each) ------------------------------

@pytest.fixture(scope="session")
def tiny_llava_dir(tmp_path_factory) -> Path:
    from prism_eval.engines.tiny import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-llava"), arch="llava", seed=0)


@pytest.fixture(scope="session")
def tiny_qwen_vl_dir(tmp_path_factory) -> Path:
    from prism_eval.engines.tiny import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-qwen-vl"), arch="qwen2_5_vl", seed=0)


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    """A tiny random text-only chat model (Llama, ChatML template) for fast judge tests."""
    from prism_eval.engines.tiny import build_tiny_lm

    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"), arch="llama", seed=0)


@pytest.fixture(scope="session")
def tiny_judge(tiny_lm_dir):
    from prism_eval.engines.hf import HFJudge

    return HFJudge(str(tiny_lm_dir))


# -- the built-in judge (SmolLM2-135M-Instruct; first conversion ~20-40 s, then cached) ---

@pytest.fixture(scope="session")
def builtin_judge_spec() -> str:
    """The built-in judge's spec, with its converted checkpoint already in the cache."""
    from prism_eval.engines.builtin import converted_dir

    converted_dir("smollm2-135m")
    return BUILTIN_JUDGE_SPEC


@pytest.fixture(scope="session")
def builtin_judge(builtin_judge_spec):
    from prism_eval.engines.registry import load_judge

    return load_judge(builtin_judge_spec)
