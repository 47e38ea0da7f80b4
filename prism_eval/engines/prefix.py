"""Shared-prefix scoring: read next-token log-probs from many token sequences
that share long prefixes, computing each shared prefix once.

The judge's prompts for one caption differ only after the caption (and every
option of one question only after the question), so the sequences are arranged
in a radix tree of token segments. Nodes are processed level by level: a batch
of nodes from the same level runs as rows holding only their own new tokens,
and each row attends to its stored ancestor segments through
`prefix_attention` (each segment is read once per pass for all rows that
descend from it, never copied into rows). Rows are right-aligned, padding is
masked out and position ids are given explicitly, so padding never changes a
real token's result. Rows from different captions share one forward pass.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from prism_eval.engines.base import EngineError
from prism_eval.engines.prefix_attention import (
    PLAN_KWARG,
    PrefixPlan,
    SegmentGroup,
    own_token_mask,
    supports_shared_prefix_attention,
    use_shared_prefix_attention,
)

Read = tuple[int, Sequence[int]]  # (position p, candidate ids): log P(token p+1 = c | tokens[:p+1])


@dataclass
class PrefixConfig:
    """Batching knobs; none of them changes results, only speed and memory."""

    share_prefix: bool = True
    min_shared_tokens: int = 16  # shorter common prefixes are recomputed, not cached
    max_batch_rows: int = 64
    max_batch_tokens: int = 2048  # padded new tokens per forward pass
    max_cache_tokens: int = 16384  # rows x context length per forward pass (bounds attention work)
    max_padding: float = 1.25  # padded / real new tokens per forward pass
    max_tree_tokens: int = 16384  # distinct tokens whose KV one tree may hold at once
    keep_root_tokens: int = 4096  # tokens of common root segments kept for later calls (0: none)
    pad_id: int = 0


@dataclass
class ForwardStats:
    """Work counters, so benchmarks can relate speed to tokens actually computed."""

    forward_calls: int = 0
    tokens: int = 0  # real (unpadded) tokens run through the model
    padded_tokens: int = 0  # including padding

    def add(self, other: "ForwardStats") -> None:
        self.forward_calls += other.forward_calls
        self.tokens += other.tokens
        self.padded_tokens += other.padded_tokens


@dataclass(eq=False)
class _Node:
    tokens: list[int]
    start: int  # absolute position of tokens[0]
    parent: "_Node | None"
    depth: int
    children: list["_Node"] = field(default_factory=list)
    reads: list[tuple[int, int, int, Sequence[int]]] = field(default_factory=list)  # (req, read idx, pos, cands)
    kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # own segment, per layer, (heads, len, dim)

    @property
    def end(self) -> int:
        return self.start + len(self.tokens)


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _build(order: list[int], seqs: Sequence[Sequence[int]], off: int, parent: _Node | None, depth: int,
           min_shared: int, leaf_of: dict[int, _Node], nodes: list[_Node]) -> None:
    """Add nodes for `order` (sorted indices whose sequences share seqs[i][:off])."""
    first, last = seqs[order[0]], seqs[order[-1]]
    common = _lcp(first, last)  # in sorted order, the LCP of the whole set
    if len(order) == 1 or (common == len(first) == len(last)):
        node = _Node(list(first[off:]), off, parent, depth)
        nodes.append(node)
        for i in order:
            leaf_of[i] = node
        return
    if common - off >= min_shared:
        node = _Node(list(first[off:common]), off, parent, depth)
        nodes.append(node)
        parent, off, depth = node, common, depth + 1
        ended = [i for i in order if len(seqs[i]) == common]
        for i in ended:
            leaf_of[i] = node
    else:
        ended = [i for i in order if len(seqs[i]) == common]
        if ended:  # short sequences that are a prefix of the others: their own leaf
            leaf = _Node(list(first[off:common]), off, parent, depth)
            nodes.append(leaf)
            for i in ended:
                leaf_of[i] = leaf
    rest = [i for i in order if len(seqs[i]) > common]
    run: list[int] = []
    for i in rest:
        if run and seqs[i][common] != seqs[run[0]][common]:
            _build(run, seqs, off, parent, depth, min_shared, leaf_of, nodes)
            run = []
        run.append(i)
    if run:
        _build(run, seqs, off, parent, depth, min_shared, leaf_of, nodes)


def _chunks(order: list[int], seqs: Sequence[Sequence[int]], budget: int) -> list[list[int]]:
    """Split sorted indices so each chunk's distinct tokens stay within budget."""
    out: list[list[int]] = []
    cur: list[int] = []
    used = 0
    prev: Sequence[int] = ()
    for i in order:
        new = len(seqs[i]) - _lcp(prev, seqs[i])
        if cur and used + new > budget:
            out.append(cur)
            cur, used, new = [], 0, len(seqs[i])
        cur.append(i)
        used += new
        prev = seqs[i]
    if cur:
        out.append(cur)
    return out


def _check_reads(seqs: Sequence[Sequence[int]], reads: Sequence[Sequence[Read]]) -> None:
    if len(seqs) != len(reads):
        raise ValueError("score: seqs and reads differ in length")
    for k, (s, rs) in enumerate(zip(seqs, reads)):
        for p, _ in rs:
            if not 0 <= p < len(s):
                raise ValueError(f"score: request {k} reads position {p} outside its {len(s)} tokens")


def _assign_reads(chunk: list[int], reads: Sequence[Sequence[Read]], leaf_of: dict[int, "_Node"]) -> None:
    """Give each read to the tree node whose segment holds its position (a shared prefix or the sequence's own)."""
    for i in chunk:
        path = []
        node: _Node | None = leaf_of[i]
        while node is not None:
            path.append(node)
            node = node.parent
        for j, (p, cands) in enumerate(reads[i]):
            owner = next(n for n in path if n.start <= p < n.end)
            owner.reads.append((i, j, p, tuple(cands)))


def _sliding_window(model: Any) -> int | None:
    """The sliding window of a model with sliding-window layers (None: every layer attends to everything)."""
    text = model.config.get_text_config()
    if "sliding_attention" not in (getattr(text, "layer_types", None) or ()):
        return None
    window = getattr(text, "sliding_window", None)
    return int(window) if isinstance(window, int) and window > 0 else None


class PrefixScorer:
    """Runs a causal LM over read requests with shared-prefix KV reuse.

    Sliding-window models (Gemma 3) share prefixes while every sequence of a call
    fits the window, where sliding attention is full attention and sharing is
    exact; sequences longer than the window run whole (same results, no reuse).
    """

    def __init__(self, model: Any, config: PrefixConfig):
        self.model = model
        self.config = config
        self.window = _sliding_window(model)
        self.share = config.share_prefix and self._can_share(model)
        self._sharing = self.share  # this call's choice: sliding-window models share only within the window
        self.stats = ForwardStats()
        self._kept: list[_Node] = []  # root segments (instruction headers) with their keys/values, recent first

    @staticmethod
    def _can_share(model: Any) -> bool:
        """Whether prefix sharing is exact for this model; where not, every prompt runs whole (same results)."""
        kinds = set(getattr(model.config.get_text_config(), "layer_types", None) or ["full_attention"])
        exact = {"full_attention", "sliding_attention"} if _sliding_window(model) else {"full_attention"}
        if not kinds <= exact:
            why = f"it has {', '.join(sorted(kinds))} layers"
        elif not supports_shared_prefix_attention(model):
            why = f"{type(model).__name__} does not dispatch attention through transformers' AttentionInterface"
        else:
            return True
        warnings.warn(f"shared-prefix scoring is off for this judge ({why}); every prompt is run whole",
                      stacklevel=3)
        return False

    def score(self, seqs: Sequence[Sequence[int]], reads: Sequence[Sequence[Read]]) -> list[list[list[float]]]:
        """For each sequence and each of its reads, the log-probs of the candidate ids."""
        _check_reads(seqs, reads)
        results: list[list[list[float]]] = [[[] for _ in rs] for rs in reads]
        # Tokens after a sequence's last read position are never needed as input.
        seqs = [list(s[:max(p for p, _ in rs) + 1]) if rs else [] for s, rs in zip(seqs, reads)]
        if self.share and self.window is not None:
            longer = {i for i, s in enumerate(seqs) if len(s) > self.window}
            if longer and len(longer) < len(seqs):  # score them apart, so the others still share
                return self._score_apart(seqs, reads, longer)
        self._sharing = self.share and (self.window is None or max(map(len, seqs), default=0) <= self.window)
        order = sorted((i for i in range(len(seqs)) if reads[i]), key=lambda i: list(seqs[i]))
        min_shared = self.config.min_shared_tokens if self._sharing else 1 << 62
        for chunk in _chunks(order, seqs, self.config.max_tree_tokens):
            leaf_of: dict[int, _Node] = {}
            nodes: list[_Node] = []
            root = self._reusable_root(chunk, seqs, reads, min_shared)
            if root is None:
                _build(chunk, seqs, 0, None, 0, min_shared, leaf_of, nodes)
            else:
                _build(chunk, seqs, len(root.tokens), root, 1, min_shared, leaf_of, nodes)
            for n in nodes:
                if n.parent is not None:
                    n.parent.children.append(n)
            _assign_reads(chunk, reads, leaf_of)
            self._run_tree(nodes, results)
            if root is None:
                self._keep_root(nodes)
            for n in nodes:
                n.kv = None
        return results

    def _score_apart(self, seqs: list[list[int]], reads: Sequence[Sequence[Read]], longer: set[int]
                     ) -> list[list[list[float]]]:
        """Score the sequences within the sliding window (shared) and those beyond it (whole) separately."""
        out: list[list[list[float]]] = [[] for _ in seqs]
        for part in ([i for i in range(len(seqs)) if i not in longer], sorted(longer)):
            for i, res in zip(part, self.score([seqs[i] for i in part], [reads[i] for i in part])):
                out[i] = res
        return out

    # -- a root segment kept across calls ---------------------------------------------

    def _reusable_root(self, chunk: list[int], seqs: Sequence[Sequence[int]], reads: Sequence[Sequence[Read]],
                       min_shared: int) -> _Node | None:
        """A segment kept from an earlier call, cut to what every sequence of the chunk starts with.

        Successive calls of one run share the judge's instruction header; its
        keys/values are computed once per scorer instead of once per call.
        """
        best: tuple[int, _Node] | None = None
        for kept in self._kept:
            t = len(kept.tokens)
            for i in chunk:
                t = min(t, _lcp(kept.tokens, seqs[i]), min(p for p, _ in reads[i]))
                if t < min_shared:
                    break
            if t >= min_shared and (best is None or t > best[0]):
                best = (t, kept)
        if best is None:
            return None
        t, kept = best
        self._kept.remove(kept)
        self._kept.insert(0, kept)  # most recently used first
        kv = kept.kv if t == len(kept.tokens) else [(k[:, :t], v[:, :t]) for k, v in kept.kv]
        return _Node(kept.tokens[:t], 0, None, 0, kv=kv)

    def _keep_root(self, nodes: list[_Node]) -> None:
        """Remember the segment every sequence of this call started with, within the token budget."""
        roots = [n for n in nodes if n.parent is None and n.children and n.kv is not None]
        if len(roots) != 1 or len(roots[0].tokens) > self.config.keep_root_tokens:
            return
        kept = [_Node(roots[0].tokens, 0, None, 0, kv=roots[0].kv)]
        used = len(kept[0].tokens)
        for old in self._kept:
            if used + len(old.tokens) <= self.config.keep_root_tokens:
                kept.append(old)
                used += len(old.tokens)
        self._kept = kept

    # -- tree execution -------------------------------------------------------------

    def _run_tree(self, nodes: list[_Node], results: list[list[list[float]]]) -> None:
        by_depth: dict[int, list[_Node]] = {}
        for n in nodes:
            by_depth.setdefault(n.depth, []).append(n)
        for depth in sorted(by_depth):
            level = [n for n in by_depth[depth] if n.children or n.reads]
            level.sort(key=lambda n: (-len(n.tokens), n.start))
            for batch in self._batches(level):
                self._forward(batch, results)

    def _batches(self, level: list[_Node]) -> list[list[_Node]]:
        """Consecutive runs of the length-sorted level, within the budgets and without much padding."""
        cfg = self.config
        out: list[list[_Node]] = []
        cur: list[_Node] = []
        s_max = a_max = real = 0
        for n in level:
            s2, a2 = max(s_max, len(n.tokens)), max(a_max, n.start)
            rows, real2 = len(cur) + 1, real + len(n.tokens)
            if cur and (rows > cfg.max_batch_rows or rows * s2 > cfg.max_batch_tokens
                        or rows * (a2 + s2) > cfg.max_cache_tokens or rows * s2 > cfg.max_padding * real2):
                out.append(cur)
                cur, s2, a2, real2 = [], len(n.tokens), n.start, len(n.tokens)
            cur.append(n)
            s_max, a_max, real = s2, a2, real2
        if cur:
            out.append(cur)
        return out

    def _forward(self, batch: list[_Node], results: list[list[list[float]]]) -> None:
        model, cfg = self.model, self.config
        device = model.device
        rows = len(batch)
        s_max = max(len(n.tokens) for n in batch)
        ids = torch.full((rows, s_max), cfg.pad_id, dtype=torch.long)
        pos = torch.zeros((rows, s_max), dtype=torch.long)
        for r, n in enumerate(batch):
            s = len(n.tokens)
            ids[r, s_max - s:] = torch.tensor(n.tokens, dtype=torch.long)
            pos[r, :] = n.start
            pos[r, s_max - s:] = torch.arange(n.start, n.start + s)
        read_cols = [s_max - len(n.tokens) + (p - n.start) for n in batch for (_, _, p, _) in n.reads]
        keep = s_max - min(read_cols) if read_cols else 1
        kwargs: dict[str, Any] = {}
        if self._sharing:
            kwargs[PLAN_KWARG] = self._plan(batch, s_max, device)
        else:  # every node is a whole sequence: the model's own attention with a padding mask
            mask = torch.zeros((rows, s_max), dtype=torch.long)
            for r, n in enumerate(batch):
                mask[r, s_max - len(n.tokens):] = 1
            kwargs["attention_mask"] = mask.to(device)
        with torch.inference_mode(), (use_shared_prefix_attention(model) if self._sharing
                                      else contextlib.nullcontext()):
            out = model(input_ids=ids.to(device), position_ids=pos.to(device), use_cache=False,
                        logits_to_keep=keep, **kwargs)
        self.stats.forward_calls += 1
        self.stats.tokens += sum(len(n.tokens) for n in batch)
        self.stats.padded_tokens += rows * s_max
        if not read_cols:
            return
        logits = out.logits  # (rows, keep, vocab)
        row_idx, col_idx, owners = [], [], []
        for r, n in enumerate(batch):
            for (i, j, p, cands) in n.reads:
                row_idx.append(r)
                col_idx.append(keep - (len(n.tokens) - (p - n.start)))
                owners.append((i, j, cands))
        picked = logits[torch.tensor(row_idx, device=logits.device), torch.tensor(col_idx, device=logits.device)]
        logp = torch.log_softmax(picked.float(), dim=-1).cpu()
        for k, (i, j, cands) in enumerate(owners):
            results[i][j] = logp[k, list(cands)].tolist() if cands else []

    def _plan(self, batch: list[_Node], width: int, device: Any) -> PrefixPlan:
        """Which stored ancestor segments each row attends to, and which rows' keys/values to keep."""
        members: dict[int, tuple[_Node, list[int]]] = {}
        for r, n in enumerate(batch):
            a = n.parent
            while a is not None:
                if a.kv is None:
                    raise EngineError("shared-prefix scoring: an ancestor segment was not computed first")
                members.setdefault(id(a), (a, []))[1].append(r)
                a = a.parent
        groups = [SegmentGroup(a.kv, torch.tensor(rs, dtype=torch.long, device=device), len(rs) == len(batch))
                  for a, rs in members.values()]
        n_layers = self.model.config.get_text_config().num_hidden_layers
        keep = []
        for r, n in enumerate(batch):
            if n.children:
                n.kv = [None] * n_layers
                keep.append((r, len(n.tokens), n.kv))
        own = own_token_mask([len(n.tokens) for n in batch], width, self.model.dtype).to(device)
        return PrefixPlan(groups, own, keep, context=max(n.end for n in batch))
