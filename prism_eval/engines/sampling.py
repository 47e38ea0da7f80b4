"""Per-request seeded sampling for transformers' generate.

HF generate draws from one global RNG, so a sample depends on which other rows
share its batch. Here each row gets its own generator, seeded from the run seed
and the row's own content, and sampling is done with the Gumbel-max trick
(argmax of logits/T + Gumbel noise is an exact draw from softmax(logits/T)).
generate then runs in greedy mode, and the same request always yields the same
text whatever the batch size or order.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import torch


def row_seed(seed: int, *parts: bytes | str | int) -> int:
    """A 63-bit seed from the run seed and a row's identifying content."""
    h = hashlib.sha256(str(seed).encode())
    for p in parts:
        h.update(b"\x00")
        h.update(p if isinstance(p, bytes) else str(p).encode())
    return int.from_bytes(h.digest()[:8], "little") >> 1


class SeededSampler:
    """A LogitsProcessor turning greedy decoding into seeded sampling per row."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float = 1.0):
        if temperature <= 0:
            raise ValueError("SeededSampler: temperature must be > 0 (use greedy decoding for 0)")
        self.seeds = list(seeds)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self._gens: list[torch.Generator] | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._gens is None:
            if len(self.seeds) != scores.shape[0]:
                raise ValueError(f"SeededSampler: {len(self.seeds)} seeds for {scores.shape[0]} rows")
            self._gens = [torch.Generator(device="cpu").manual_seed(s) for s in self.seeds]
        logits = scores.float() / self.temperature
        if self.top_p < 1.0:
            logits = _top_p_filter(logits, self.top_p)
        noise = torch.stack([torch.rand(scores.shape[1], generator=g) for g in self._gens]).to(logits.device)
        gumbel = -torch.log(-torch.log(noise.clamp(min=1e-20, max=1.0 - 1e-7)))
        return logits + gumbel


def _top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability reaches top_p (always >= 1 token)."""
    sorted_logits, idx = torch.sort(logits, descending=True, dim=-1)
    probs = torch.softmax(sorted_logits, dim=-1)
    before = torch.cumsum(probs, dim=-1) - probs  # mass strictly above each token
    drop_sorted = before >= top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, idx, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))
