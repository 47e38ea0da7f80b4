"""Attention over shared prefixes without copying them into every row.

In shared-prefix scoring a batch row holds only its new tokens; its context is
a chain of ancestor segments (instruction header, caption, ...) whose keys and
values were computed earlier and are stored once. Each ancestor is usually
shared by many rows of the batch (the eight questions of one caption, or every
row for the header), so its attention is computed once for all of them as one
large matrix product, and the row's own tokens are attended to separately. The
partial results are merged exactly through their log-sum-exps (the same algebra
as online softmax), so the output equals ordinary attention over the
concatenated sequence, to float rounding.

Compared with expanding the prefix into a padded per-row cache this removes
the copy, the grouped-query `repeat_kv` expansion and the masked-out padding
from the attention, which on a CPU had nearly doubled the cost of a question.

The function is registered with transformers' AttentionInterface and switched
on only for the scorer's own forward passes (`use_shared_prefix_attention`).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch

ATTENTION_NAME = "prism_shared_prefix"
PLAN_KWARG = "prism_prefix_plan"


@dataclass
class SegmentGroup:
    """One stored ancestor segment and the batch rows whose context contains it."""

    kv: Sequence[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values (kv_heads, length, head_dim)
    rows: torch.Tensor  # long, sorted row indices
    all_rows: bool = False


@dataclass
class PrefixPlan:
    """What one forward pass needs beyond the token ids: ancestors, the own-token mask, KV to keep."""

    groups: list[SegmentGroup]
    own_mask: torch.Tensor  # (rows, 1, new, new) additive: 0 where query i may attend to own key j, else -inf
    keep: list[tuple[int, int, list]] = field(default_factory=list)  # (row, length, per-layer destination)
    context: int = 0  # the longest row's total length (ancestors + own tokens)


def own_token_mask(lengths: Sequence[int], width: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Causal mask over right-aligned rows of new tokens; padding attends only to itself.

    Real queries never see padding keys. A padding query keeps its own diagonal
    so every softmax row has a finite maximum (no NaN that could reach a real
    token through a zero-weighted value).
    """
    idx = torch.arange(width)
    causal = idx[None, :] <= idx[:, None]
    starts = torch.tensor([width - n for n in lengths])
    valid_key = idx[None, :] >= starts[:, None]  # (rows, width)
    allowed = (causal[None] & valid_key[:, None, :]) | torch.eye(width, dtype=torch.bool)[None]
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, float("-inf"))[:, None]


def _flash_cpu() -> Any:
    """torch's fused CPU attention kernel that also returns the log-sum-exp (None where absent)."""
    return getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
            mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention of q (..., n, d) over k, v (..., m, d): (output, fp32 log-sum-exp of the scores).

    `mask` is additive (0 or -inf), broadcast over heads. On a CPU torch's fused
    flash kernel is used; elsewhere, plain matrix products.
    """
    flash = _flash_cpu() if q.device.type == "cpu" else None
    if flash is not None:
        out, lse = flash(q, k, v, 0.0, False, attn_mask=mask, scale=scale)
        return out, lse.float()
    scores = torch.matmul(q * scale, k.transpose(-1, -2)).float()
    if mask is not None:
        scores = scores + mask
    lse = torch.logsumexp(scores, dim=-1)
    weights = torch.exp(scores - lse[..., None]).to(v.dtype)
    return torch.matmul(weights, v), lse


def shared_prefix_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                            attention_mask: Any, scaling: float | None = None, dropout: float = 0.0,
                            **kwargs: Any) -> tuple[torch.Tensor, None]:
    """AttentionInterface function: own new tokens plus every stored ancestor segment of each row."""
    plan: PrefixPlan | None = kwargs.get(PLAN_KWARG)
    if plan is None:
        raise RuntimeError(f"{ATTENTION_NAME} attention called without a prefix plan")
    for unsupported in ("softcap", "s_aux"):
        if kwargs.get(unsupported) is not None:
            raise RuntimeError(f"{ATTENTION_NAME} attention does not support {unsupported}")
    window = kwargs.get("sliding_window")
    if window is not None and plan.context > window:  # within the window, sliding attention is full attention
        raise RuntimeError(f"{ATTENTION_NAME} attention: a {plan.context}-token context exceeds this model's "
                           f"{window}-token sliding window, which shared-prefix scoring does not follow; "
                           f"construct the judge with share_prefix=False")
    layer = int(module.layer_idx)
    rows, heads, width, dim = query.shape
    kv_heads = key.shape[1]
    rep = heads // kv_heads
    scale = scaling if scaling is not None else dim ** -0.5
    for r, n, dest in plan.keep:  # this row's keys/values become a stored segment for its children
        dest[layer] = (key[r, :, width - n:].clone(), value[r, :, width - n:].clone())
    # Own tokens: every query head against its key/value head (repeated; only `width` keys).
    own, own_lse = _attend(query, key.repeat_interleave(rep, dim=1), value.repeat_interleave(rep, dim=1), scale,
                           plan.own_mask)
    if not plan.groups:
        return own.transpose(1, 2).contiguous(), None
    # Ancestors: the `rep` query heads of one key/value head, of all rows in a group, stacked on one axis.
    # Layout (kv_heads, rows, rep, width, ...) throughout, so a group's output needs no transpose.
    stacked = query.view(rows, kv_heads, rep, width, dim).transpose(0, 1)
    acc = own.float().view(rows, kv_heads, rep, width, dim).transpose(0, 1)
    lse = own_lse.view(rows, kv_heads, rep, width).transpose(0, 1)
    for group in plan.groups:
        k, v = group.kv[layer]
        qg = stacked if group.all_rows else stacked.index_select(1, group.rows)
        m = qg.shape[1]
        go, gl = _attend(qg.reshape(1, kv_heads, m * rep * width, dim), k[None], v[None], scale)
        go = go.float().view(kv_heads, m, rep, width, dim)
        gl = gl.view(kv_heads, m, rep, width)
        old_acc, old_lse = (acc, lse) if group.all_rows else (acc.index_select(1, group.rows),
                                                              lse.index_select(1, group.rows))
        # softmax over the union = weighted mean of the two parts, weights from their log-sum-exps
        w_old = torch.sigmoid(old_lse - gl)[..., None]
        merged, merged_lse = torch.lerp(go, old_acc, w_old), torch.logaddexp(old_lse, gl)
        if group.all_rows:
            acc, lse = merged, merged_lse
        else:
            acc = acc.index_copy(1, group.rows, merged)
            lse = lse.index_copy(1, group.rows, merged_lse)
    out = acc.permute(1, 3, 0, 2, 4).reshape(rows, width, heads, dim)
    return out.to(query.dtype), None


def register() -> bool:
    """Make the function known to transformers; False where this transformers has no AttentionInterface."""
    try:
        from transformers import AttentionInterface
    except ImportError:
        return False
    AttentionInterface.register(ATTENTION_NAME, shared_prefix_attention)
    return True


def supports_shared_prefix_attention(model: Any) -> bool:
    """Whether the model dispatches attention through AttentionInterface (so ours can be switched in)."""
    can = getattr(type(model), "_can_set_attn_implementation", None)
    if can is None or not register():
        return False
    try:
        return bool(can())
    except Exception:  # a heuristic on the model's source; unreadable source means no
        return False


@contextlib.contextmanager
def use_shared_prefix_attention(model: Any) -> Iterator[None]:
    """Switch the model to shared-prefix attention for the duration of one forward pass."""
    before = model.config._attn_implementation
    model.set_attn_implementation(ATTENTION_NAME)
    try:
        yield
    finally:
        model.set_attn_implementation(before)
