"""Shared-prefix scoring: read next-token log-probs from many token sequences
that share long prefixes, computing each shared prefix once.

The judge's prompts for one caption differ only after the caption (and every
option of one question only after the question), so the sequences are arranged
in a radix tree of token segments. Nodes are processed level by level: a batch
of nodes from the same level is run on top of their ancestors' key/value cache,
which is rebuilt for the batch by copying each row's ancestor segments into a
padded cache tensor (the prefix "expanded over the batch"). Every row is
right-aligned: padding sits before its cached prefix and before its new tokens,
is masked out, and position ids are given explicitly, so padding never changes
a real token's result. Rows from different captions share one forward pass.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from prism_eval.engines.base import EngineError

Read = tuple[int, Sequence[int]]  # (position p, candidate ids): log P(token p+1 = c | tokens[:p+1])


@dataclass
class PrefixConfig:
    """Batching knobs; none of them changes results, only speed and memory."""

    share_prefix: bool = True
    min_shared_tokens: int = 16  # shorter common prefixes are recomputed, not cached
    max_batch_rows: int = 64
    max_batch_tokens: int = 2048  # padded new tokens per forward pass
    max_cache_tokens: int = 16384  # rows x cached prefix length per forward pass
    max_tree_tokens: int = 16384  # distinct tokens whose KV one tree may hold at once
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


def _buffer_layer_class():
    from transformers.cache_utils import DynamicLayer

    class BufferLayer(DynamicLayer):
        """A full-attention cache layer over preallocated storage; updates write in place."""

        def __init__(self, keys: torch.Tensor, values: torch.Tensor, filled: int):
            super().__init__()
            self.keys, self.values = keys, values
            self.filled = filled
            self.is_initialized = True
            self.device, self.dtype = keys.device, keys.dtype

        def update(self, key_states, value_states, *args, **kwargs):
            end = self.filled + key_states.shape[-2]
            if end > self.keys.shape[-2]:
                raise EngineError("shared-prefix cache overflow (more tokens than allocated)")
            self.keys[..., self.filled:end, :] = key_states
            self.values[..., self.filled:end, :] = value_states
            self.filled = end
            return self.keys[..., :end, :], self.values[..., :end, :]

        def get_seq_length(self) -> int:
            return self.filled

    return BufferLayer


def _BufferLayer(keys: torch.Tensor, values: torch.Tensor, filled: int):
    global _BUFFER_LAYER
    if _BUFFER_LAYER is None:
        _BUFFER_LAYER = _buffer_layer_class()
    return _BUFFER_LAYER(keys, values, filled)


_BUFFER_LAYER = None


class PrefixScorer:
    """Runs a causal LM over read requests with shared-prefix KV reuse."""

    def __init__(self, model: Any, config: PrefixConfig):
        self.model = model
        self.config = config
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        if config.share_prefix:
            text_cfg = model.config.get_text_config()
            kinds = set(getattr(text_cfg, "layer_types", None) or ["full_attention"])
            if kinds != {"full_attention"}:
                raise EngineError(f"shared-prefix scoring supports full-attention layers only (this model has "
                                  f"{', '.join(sorted(kinds))}); load the judge with share_prefix=False")
        self.stats = ForwardStats()

    def score(self, seqs: Sequence[Sequence[int]], reads: Sequence[Sequence[Read]]) -> list[list[list[float]]]:
        """For each sequence and each of its reads, the log-probs of the candidate ids."""
        if len(seqs) != len(reads):
            raise ValueError("score: seqs and reads differ in length")
        for k, (s, rs) in enumerate(zip(seqs, reads)):
            for p, _ in rs:
                if not 0 <= p < len(s):
                    raise ValueError(f"score: request {k} reads position {p} outside its {len(s)} tokens")
        results: list[list[list[float]]] = [[[] for _ in rs] for rs in reads]
        # Tokens after a sequence's last read position are never needed as input.
        seqs = [list(s[:max(p for p, _ in rs) + 1]) if rs else [] for s, rs in zip(seqs, reads)]
        cfg = self.config
        order = sorted((i for i in range(len(seqs)) if reads[i]), key=lambda i: list(seqs[i]))
        min_shared = cfg.min_shared_tokens if cfg.share_prefix else 1 << 62
        for chunk in _chunks(order, seqs, cfg.max_tree_tokens):
            leaf_of: dict[int, _Node] = {}
            nodes: list[_Node] = []
            _build(chunk, seqs, 0, None, 0, min_shared, leaf_of, nodes)
            for n in nodes:
                if n.parent is not None:
                    n.parent.children.append(n)
            for i in chunk:
                path = []
                node: _Node | None = leaf_of[i]
                while node is not None:
                    path.append(node)
                    node = node.parent
                for j, (p, cands) in enumerate(reads[i]):
                    owner = next(n for n in path if n.start <= p < n.end)
                    owner.reads.append((i, j, p, tuple(cands)))
            self._run_tree(nodes, results)
        return results

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
        for n in nodes:
            n.kv = None

    def _batches(self, level: list[_Node]) -> list[list[_Node]]:
        cfg = self.config
        out: list[list[_Node]] = []
        cur: list[_Node] = []
        s_max = a_max = 0
        for n in level:
            s2, a2 = max(s_max, len(n.tokens)), max(a_max, n.start)
            rows = len(cur) + 1
            if cur and (rows > cfg.max_batch_rows or rows * s2 > cfg.max_batch_tokens
                        or rows * (a2 + s2) > cfg.max_cache_tokens):
                out.append(cur)
                cur, s2, a2 = [], len(n.tokens), n.start
            cur.append(n)
            s_max, a_max = s2, a2
        if cur:
            out.append(cur)
        return out

    def _forward(self, batch: list[_Node], results: list[list[list[float]]]) -> None:
        model, cfg = self.model, self.config
        device = model.device
        rows = len(batch)
        s_max = max(len(n.tokens) for n in batch)
        a_max = max(n.start for n in batch)
        ids = torch.full((rows, s_max), cfg.pad_id, dtype=torch.long)
        mask = torch.zeros((rows, a_max + s_max), dtype=torch.long)
        pos = torch.zeros((rows, s_max), dtype=torch.long)
        for r, n in enumerate(batch):
            s = len(n.tokens)
            ids[r, s_max - s:] = torch.tensor(n.tokens, dtype=torch.long)
            mask[r, a_max - n.start:a_max] = 1
            mask[r, a_max + s_max - s:] = 1
            pos[r, :] = n.start
            pos[r, s_max - s:] = torch.arange(n.start, n.start + s)
        need_kv = any(n.children for n in batch)
        cache = self._prefix_cache(batch, a_max, s_max) if a_max > 0 else None
        if cache is None and need_kv:
            from transformers import DynamicCache

            cache = DynamicCache(config=model.config)
        read_cols = [s_max - len(n.tokens) + (p - n.start) for n in batch for (_, _, p, _) in n.reads]
        keep = s_max - min(read_cols) if read_cols else 1
        kwargs = {self._cache_kw: cache} if cache is not None else {}
        with torch.inference_mode():
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos.to(device),
                        use_cache=need_kv, logits_to_keep=keep, **kwargs)
        self.stats.forward_calls += 1
        self.stats.tokens += sum(len(n.tokens) for n in batch)
        self.stats.padded_tokens += rows * s_max
        if need_kv:
            out_cache = getattr(out, self._cache_kw, None)
            if out_cache is None:
                out_cache = getattr(out, "past_key_values", None)
            self._store_kv(batch, out_cache, a_max + s_max)
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

    def _prefix_cache(self, batch: list[_Node], a_max: int, s_max: int):
        """A cache holding each row's ancestor segments, right-aligned in a_max slots.

        Its storage is allocated once at full length (a_max + s_max) and the new
        tokens' keys/values are written in place, so the prefix is copied once
        per row and never re-concatenated.
        """
        from transformers import DynamicCache

        paths = []
        for n in batch:
            chain = []
            a = n.parent
            while a is not None:
                chain.append(a)
                a = a.parent
            paths.append(chain[::-1])
        ref = next(p for path in paths for p in path)
        cache = DynamicCache(config=self.model.config)
        if len(cache.layers) != len(ref.kv):
            cache = DynamicCache()
        layers = []
        for layer in range(len(ref.kv)):
            k0, v0 = ref.kv[layer]
            keys = k0.new_empty((len(batch), k0.shape[0], a_max + s_max, k0.shape[2]))
            values = v0.new_empty((len(batch), v0.shape[0], a_max + s_max, v0.shape[2]))
            for r, (n, path) in enumerate(zip(batch, paths)):
                off = a_max - n.start
                if off:  # masked slots must still hold finite numbers (0 x NaN is NaN)
                    keys[r, :, :off] = 0
                    values[r, :, :off] = 0
                for a in path:
                    k, v = a.kv[layer]
                    keys[r, :, off:off + k.shape[1]] = k
                    values[r, :, off:off + v.shape[1]] = v
                    off += k.shape[1]
            layers.append(_BufferLayer(keys, values, a_max))
        cache.layers = layers
        return cache

    def _store_kv(self, batch: list[_Node], cache: Any, total: int) -> None:
        if cache is None or not hasattr(cache, "layers"):
            raise EngineError("shared-prefix scoring needs a key/value cache from the model; "
                              "this model returned none (disable prefix sharing)")
        layers = cache.layers
        for layer in layers:
            if layer.keys is None or layer.get_seq_length() != total:
                raise EngineError("shared-prefix scoring needs a full (non-sliding, non-recurrent) cache in every "
                                  "layer; disable prefix sharing for this model")
        for r, n in enumerate(batch):
            if not n.children:
                continue
            s = len(n.tokens)
            n.kv = [(layer.keys[r, :, total - s:].clone(), layer.values[r, :, total - s:].clone())
                    for layer in layers]
