"""Sliding-window judges (Gemma 3) share prefixes while every sequence fits the window, and run whole beyond it."""
from __future__ import annotations

import copy
import random

import pytest
import torch

from prism_eval.engines.prefix import PrefixConfig, PrefixScorer
from tests.engines.test_hf_prefix import _max_diff, _reference  # each sequence alone, the model's own attention

WINDOW = 24
TOL = 1e-4


@pytest.fixture(scope="module")
def gemma_like():
    """A tiny random Gemma-3 text model: one sliding-window layer, one full-attention layer."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=WINDOW,
                           layer_types=["sliding_attention", "full_attention"], max_position_embeddings=256,
                           pad_token_id=0, bos_token_id=2, eos_token_id=1)
    return Gemma3ForCausalLM(cfg).eval()


def _prompts(lengths: list[tuple[int, int]], seed: int):
    """A shared 8-token header, then per prompt a caption of length c shared by q questions of 3 tokens."""
    rng = random.Random(seed)
    header = [rng.randrange(3, 97) for _ in range(8)]
    seqs, reads = [], []
    for cap_len, n_q in lengths:
        caption = header + [rng.randrange(3, 97) for _ in range(cap_len)]
        for _ in range(n_q):
            seq = caption + [rng.randrange(3, 97) for _ in range(3)]
            seqs.append(seq)
            reads.append([(len(seq) - 2, (5, 6)), (len(seq) - 1, (7,))])
    return seqs, reads


def test_within_the_window_prefixes_are_shared_and_exact(gemma_like):
    scorer = PrefixScorer(gemma_like, PrefixConfig(min_shared_tokens=4))
    assert scorer.share and scorer.window == WINDOW
    seqs, reads = _prompts([(10, 3), (12, 2)], seed=1)
    assert max(map(len, seqs)) <= WINDOW
    got = scorer.score(seqs, reads)
    assert _max_diff(got, _reference(gemma_like, seqs, reads)) < TOL
    assert scorer.stats.tokens < sum(len(s) for s in seqs)  # the header and captions ran once


def test_sequences_longer_than_the_window_run_whole_and_the_others_still_share(gemma_like):
    scorer = PrefixScorer(gemma_like, PrefixConfig(min_shared_tokens=4))
    seqs, reads = _prompts([(30, 2), (10, 3)], seed=2)  # two 41-token prompts past the window, three within
    long_tokens = sum(len(s) for s in seqs if len(s) > WINDOW)
    assert long_tokens == 82
    ref = _reference(gemma_like, seqs, reads)
    # The window matters here: the same weights with a window wider than the prompts give other numbers.
    wide = copy.deepcopy(gemma_like.config)
    wide.sliding_window = 1000
    twin = type(gemma_like)(wide).eval()
    twin.load_state_dict(gemma_like.state_dict())
    assert _max_diff(_reference(twin, seqs, reads), ref) > 1e-3
    got = scorer.score(seqs, reads)
    assert _max_diff(got, ref) < TOL
    # The long prompts ran whole (each token once per prompt); the short ones shared header and caption.
    assert long_tokens < scorer.stats.tokens < sum(len(s) for s in seqs)
    only_long = [i for i, s in enumerate(seqs) if len(s) > WINDOW]
    before = scorer.stats.tokens
    got = scorer.score([seqs[i] for i in only_long], [reads[i] for i in only_long])
    assert _max_diff(got, [ref[i] for i in only_long]) < TOL and scorer.stats.tokens - before == long_tokens


def test_sliding_layers_without_a_window_size_still_run_whole(gemma_like, monkeypatch):
    monkeypatch.setattr(gemma_like.config, "sliding_window", None)
    with pytest.warns(UserWarning, match="shared-prefix scoring is off for this judge .*sliding_attention"):
        scorer = PrefixScorer(gemma_like, PrefixConfig())
    assert not scorer.share and scorer.window is None
