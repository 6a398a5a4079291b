"""Attention-guided visual-token pruning inside the vision encoder, with the encoder running on
SDPA or FlashAttention: the attention of only the layers a pruner reads is computed explicitly
(softmax(q k^T * scale) of that layer's own q and k, taken by a forward pre-hook on its attention
module), never by switching the model to eager attention.

- Window attention (Qwen2.5-VL): each vision block attends within the chunks its cu_seqlens names
  (windows, or whole images / clips in the full-attention blocks); the hook gets the block's own
  cu_seqlens, so the explicit attention is that layer's, window or full. Qwen2.5-VL's blocks see
  the patches in window order (merge units permuted by its window index); scores are mapped back
  to the merger's output order.
- A patch's score is the attention it receives, averaged over heads and over the queries of its
  chunk (FasterVLM's [CLS] attention has no [CLS] to come from in Qwen's encoder: the mean
  attention received stands in); a merged token's score is the sum over its merge unit's patches.
- DeepStack (Qwen3-VL): the pruned rows are dropped at every DeepStack level alike (the backend's
  prefill applies one keep mask to the tokens and to each level).

Pruners here have the pruning.PRUNERS signature plus `attention`: {layer index: (N,) float32
merged-token scores in prompt order}, and an `attention_layers(depth)` attribute naming the
layers they read. They keep exactly `keep` tokens, ascending, so the kept rows and positions are
the unpruned request's.
- hiprune (HiPrune, Liu et al., arXiv 2508.00553): anchors = the ANCHOR_SHARE * keep tokens most
  attended in the middle layer (depth // 2), each followed by its 4 spatial neighbours (buffer
  tokens, same segment and step), then register tokens: the most attended in the last layer among
  the rest, until keep.
- fastervlm (FasterVLM, Zhang et al., arXiv 2412.01818): the keep tokens most attended in the last
  layer.
Ties go to the lower index.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import torch

ANCHOR_SHARE = 0.1  # HiPrune's alpha: anchors as a share of the kept tokens
QUERY_BLOCK = 512  # queries per softmax block: bounds memory at (heads, QUERY_BLOCK, chunk)


def layer_qk(module: torch.nn.Module, hidden: torch.Tensor, position_embeddings) -> tuple[torch.Tensor, torch.Tensor]:
    """A Qwen vision attention module's q and k for its input `hidden` (S, C), rotary applied,
    as (heads, S, head_dim) float32 each: the module's own qkv projection and rotary function."""
    seq = hidden.shape[0]
    q, k, _ = module.qkv(hidden).reshape(seq, 3, module.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    rotary = sys.modules[type(module).__module__].apply_rotary_pos_emb_vision
    cos, sin = position_embeddings
    q, k = rotary(q, k, cos, sin)
    return q.transpose(0, 1).float(), k.transpose(0, 1).float()


def chunk_attention(q: torch.Tensor, k: torch.Tensor, cu_seqlens: torch.Tensor, scaling: float) -> Iterator[torch.Tensor]:
    """Per chunk [cu_seqlens[i], cu_seqlens[i + 1]): its (heads, n, n) float32 attention
    probabilities softmax(q k^T * scaling) over its own keys. q, k: (heads, S, head_dim)."""
    bounds = cu_seqlens.tolist()
    for start, end in zip(bounds[:-1], bounds[1:]):
        yield torch.softmax(q[:, start:end] @ k[:, start:end].transpose(1, 2) * scaling, dim=-1)


def received_attention(q: torch.Tensor, k: torch.Tensor, cu_seqlens: torch.Tensor, scaling: float) -> torch.Tensor:
    """(S,) float32: the attention each patch receives, averaged over heads and over the queries
    of its chunk; the probabilities are chunk_attention's, computed QUERY_BLOCK queries at a time."""
    out = torch.zeros(q.shape[1], device=q.device)
    bounds = cu_seqlens.tolist()
    for start, end in zip(bounds[:-1], bounds[1:]):
        keys = k[:, start:end].transpose(1, 2)
        for block in range(start, end, QUERY_BLOCK):
            stop = min(end, block + QUERY_BLOCK)
            probs = torch.softmax(q[:, block:stop] @ keys * scaling, dim=-1)
            out[start:end] += probs.sum(dim=(0, 1))
        out[start:end] /= q.shape[0] * (end - start)
    return out


def _block_order(visual: torch.nn.Module, grid_thw: torch.Tensor) -> torch.Tensor | None:
    """The window index of Qwen2.5-VL's vision tower (block row r // unit is merge unit
    window_index[r // unit] of the merger's output), or None for a tower without windows."""
    if not hasattr(visual, "fullatt_block_indexes"):
        return None
    from transformers.vision_utils import get_vision_window_index

    window_index, _ = get_vision_window_index(
        grid_thw, spatial_merge_size=visual.spatial_merge_size, window_size=visual.window_size,
        patch_size=visual.patch_size, kwargs={})
    return window_index


@contextlib.contextmanager
def recorded_attention(visual: torch.nn.Module, layers: tuple[int, ...]) -> Iterator[dict[int, list[torch.Tensor]]]:
    """While inside, each forward of the vision tower `visual` appends to out[layer], for each of
    `layers`, the (merged tokens of that call,) float32 attention each merged token receives
    (received_attention summed over its merge unit), in the tower's output (pooler) order."""
    out: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    if not layers:
        yield out
        return
    call: dict = {}
    unit = visual.spatial_merge_size ** 2

    def start(module, args, kwargs):
        grid_thw = kwargs["grid_thw"] if "grid_thw" in kwargs else args[1]
        call["window_index"] = _block_order(visual, grid_thw)

    def hook(layer):
        def record(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            q, k = layer_qk(module, hidden, kwargs["position_embeddings"])
            scores = received_attention(q, k, kwargs["cu_seqlens"], module.scaling)
            merged = scores.reshape(-1, unit).sum(dim=1)
            window_index = call["window_index"]
            if window_index is not None:
                merged = torch.empty_like(merged).index_copy_(0, window_index.to(merged.device), merged)
            out[layer].append(merged)
        return record

    handles = [visual.register_forward_pre_hook(start, with_kwargs=True)]
    handles += [visual.blocks[layer].attn.register_forward_pre_hook(hook(layer), with_kwargs=True)
                for layer in layers]
    try:
        yield out
    finally:
        for handle in handles:
            handle.remove()


def _check(features, keep, attention, layers):
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"pruning: keep must be a positive int, got {keep!r}")
    if attention is None or any(layer not in attention for layer in layers):
        raise ValueError(f"pruning: needs the vision encoder's attention of layers {layers} "
                         "(attention={layer: (N,) scores}); the in-process Qwen backends record it")
    for layer in layers:
        if tuple(attention[layer].shape) != (features.shape[0],):
            raise ValueError(f"pruning: attention[{layer}] must be ({features.shape[0]},), got "
                             f"{tuple(attention[layer].shape)}")


def _ranked(scores: torch.Tensor) -> torch.Tensor:
    return torch.sort(scores.float().cpu(), descending=True, stable=True).indices


def _depth_of(attention: dict) -> int:
    return max(attention) + 1


def fastervlm(features, keep, *, token_thw=None, segment_ids=None, text_features=None,
              attention=None) -> torch.Tensor:
    """FasterVLM-style: the `keep` tokens receiving the most attention in the last layer."""
    if isinstance(keep, int) and keep >= features.shape[0]:
        return torch.arange(features.shape[0], device=features.device)
    layers = (max(attention),) if attention else (0,)
    _check(features, keep, attention, layers)
    return _ranked(attention[layers[0]])[:keep].sort().values.to(features.device)


fastervlm.attention_layers = lambda depth: (depth - 1,)


def hiprune(features, keep, *, token_thw=None, segment_ids=None, text_features=None,
            attention=None) -> torch.Tensor:
    """HiPrune: anchors (middle layer), their 4-neighbour buffers, registers (last layer): see
    the module rule. Needs token_thw for the neighbours."""
    n = features.shape[0]
    if isinstance(keep, int) and keep >= n:
        return torch.arange(n, device=features.device)
    if not attention:
        _check(features, keep, attention, (0,))
    depth = _depth_of(attention)
    middle, deep = hiprune.attention_layers(depth)
    _check(features, keep, attention, (middle, deep))
    if token_thw is None:
        raise ValueError("pruning: the hiprune pruner needs token_thw (each token's (t, h, w))")
    thw = token_thw.cpu().long()
    segments = torch.zeros(n, dtype=torch.long) if segment_ids is None else segment_ids.cpu().long()
    where = {(int(s), *map(int, p)): i for i, (s, p) in enumerate(zip(segments, thw))}
    chosen: dict[int, None] = {}  # insertion-ordered set
    anchors = max(1, round(keep * ANCHOR_SHARE))
    for index in _ranked(attention[middle])[:anchors].tolist():
        s, (t, h, w) = int(segments[index]), thw[index].tolist()
        for cell in ((t, h, w), (t, h - 1, w), (t, h + 1, w), (t, h, w - 1), (t, h, w + 1)):
            neighbour = where.get((s, *cell))
            if neighbour is not None and len(chosen) < keep:
                chosen.setdefault(neighbour)
    for index in _ranked(attention[deep]).tolist():
        if len(chosen) >= keep:
            break
        chosen.setdefault(index)
    return torch.tensor(sorted(chosen), dtype=torch.long, device=features.device)


# HiPrune's middle (object-centric) layer and its deep (global) one.
hiprune.attention_layers = lambda depth: (depth // 2, depth - 1)
