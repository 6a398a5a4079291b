"""Attention-guided pruning in the vision encoder (workers.vlm.vision_attention) on the tiny
random-weight Qwen2.5-VL (window attention in block 0, full in block 1) and Qwen3-VL (DeepStack):
the explicit attention of a layer equals the model's own eager attention of that layer within
1e-5 (fp32); the pruned request's rows equal the unpruned request's bit for bit; exact count;
the model runs on SDPA."""

from __future__ import annotations

import importlib

import pytest
import torch

from vidsift.core.config import VLMConfig
from vidsift.core.types import SegmentKind, TokenSet, VLMRequest
from vidsift.core.vision import QWEN2_5_VL, QWEN3_VL
from vidsift.workers.vlm import get_vlm
from vidsift.workers.vlm.pruning import kept_visual_tokens
from vidsift.workers.vlm.vision_attention import (
    chunk_attention, layer_qk, received_attention, recorded_attention,
)

from tests.tiny_vlm import random_segment

MODELS = {"qwen2_5_vl": ("tiny_qwen_dir", QWEN2_5_VL, "modeling_qwen2_5_vl"),
          "qwen3_vl": ("tiny_qwen3_dir", QWEN3_VL, "modeling_qwen3_vl")}


def _token_set(spec) -> TokenSet:
    """A 6 x 6 merged-token image (Qwen2.5-VL: 2 x 2 attention windows of 4 x 4 merged tokens at
    most) and a 2-step 2 x 3 clip: 36 + 12 = 48 tokens."""
    f = spec.factor
    return TokenSet("v.mp4", [
        random_segment(SegmentKind.IMAGE, [1.0], 6 * f, 6 * f, 3, spec),
        random_segment(SegmentKind.CLIP, [2.0, 2.5, 3.0, 3.5], 2 * f, 3 * f, 4, spec),
    ], budget=48)


def _load(request, backend, attn, **changes):
    fixture, _, _ = MODELS[backend]
    directory = request.getfixturevalue(fixture)
    return get_vlm(VLMConfig(backend=backend, model=str(directory), device="cpu", dtype="float32",
                             max_new_tokens=3, attn_implementation=attn, **changes))


@pytest.mark.parametrize("backend", ["qwen2_5_vl", "qwen3_vl"])
def test_explicit_attention_equals_eager_attention_of_the_layer(request, backend, monkeypatch):
    _, spec, module_name = MODELS[backend]
    vlm = _load(request, backend, "eager")
    modeling = importlib.import_module(f"transformers.models.{backend}.{module_name}")
    eager_forward = modeling.eager_attention_forward
    eager: dict[int, list[torch.Tensor]] = {}
    explicit: dict[int, list[torch.Tensor]] = {}
    received: dict[int, torch.Tensor] = {}
    blocks = vlm.model.model.visual.blocks
    layer_of = {id(block.attn): i for i, block in enumerate(blocks)}

    def recording(module, *args, **kwargs):  # the model's own eager attention, its weights kept
        output, weights = eager_forward(module, *args, **kwargs)
        eager.setdefault(layer_of[id(module)], []).append(weights[0])
        return output, weights

    def explicit_hook(layer):
        def hook(module, args, kwargs):
            q, k = layer_qk(module, args[0], kwargs["position_embeddings"])
            explicit.setdefault(layer, []).extend(
                chunk_attention(q, k, kwargs["cu_seqlens"], module.scaling))
            received[layer] = received_attention(q, k, kwargs["cu_seqlens"], module.scaling)
        return hook

    monkeypatch.setattr(modeling, "eager_attention_forward", recording)
    handles = [block.attn.register_forward_pre_hook(explicit_hook(i), with_kwargs=True)
               for i, block in enumerate(blocks)]
    inputs = vlm.build_inputs(VLMRequest(_token_set(spec), "Where?"))
    try:
        with torch.inference_mode():
            vlm.model.model.get_image_features(inputs.pixel_values, inputs.image_grid_thw)
    finally:
        for handle in handles:
            handle.remove()
    for layer in range(len(blocks)):
        assert len(explicit[layer]) == len(eager[layer]) >= 1
        for mine, theirs in zip(explicit[layer], eager[layer], strict=True):
            assert mine.shape == theirs.shape
            assert float((mine - theirs).abs().max()) <= 1e-5
        # the mean attention received, from the eager weights
        from_eager = torch.cat([w.mean(dim=(0, 1)) for w in eager[layer]])
        assert float((received[layer] - from_eager).abs().max()) <= 1e-6
    if backend == "qwen2_5_vl":  # block 0 is windowed (4 windows), block 1 full (1 chunk)
        assert [len(explicit[0]), len(explicit[1])] == [4, 1]


def test_recorded_scores_follow_the_windows_in_output_order(request):
    """Block 0 of Qwen2.5-VL attends within windows: each window's received attention sums to 1,
    which holds in the merger's output order only if the window permutation is undone."""
    vlm = _load(request, "qwen2_5_vl", "sdpa")
    inputs = vlm.build_inputs(VLMRequest(_token_set(QWEN2_5_VL), "Where?"))
    visual = vlm.model.model.visual
    with torch.inference_mode(), recorded_attention(visual, (0, 1)) as recorded:
        vlm.model.model.get_image_features(inputs.pixel_values, inputs.image_grid_thw)
    window = recorded[0][0].reshape(6, 6)  # the 6 x 6 image: windows of 4 x 4 merged tokens
    sums = [window[:4, :4].sum(), window[:4, 4:].sum(), window[4:, :4].sum(), window[4:, 4:].sum()]
    assert all(abs(float(s) - 1.0) < 1e-5 for s in sums)
    assert abs(float(recorded[1][0].sum()) - 1.0) < 1e-5  # block 1: one full chunk


@pytest.mark.parametrize("backend", ["qwen2_5_vl", "qwen3_vl"])
@pytest.mark.parametrize("pruner", ["hiprune", "fastervlm"])
def test_pruned_rows_equal_unpruned_rows_on_sdpa(request, backend, pruner):
    _, spec, _ = MODELS[backend]
    vlm = _load(request, backend, "sdpa", pruner=pruner, prune_ratio=0.25)
    assert vlm.model.config._attn_implementation == "sdpa"
    token_set = _token_set(spec)
    inputs = vlm.build_inputs(VLMRequest(token_set, "Where is the ball?"))
    full = vlm.prefill_inputs(inputs, prune=False)
    pruned = vlm.prefill_inputs(inputs)
    assert pruned.visual_tokens == 48
    assert pruned.visual_tokens_kept == 12 == kept_visual_tokens(pruner, "none", [(1, 6, 6), (2, 2, 3)], 0.25)
    assert torch.equal(pruned.inputs_embeds, full.inputs_embeds[pruned.kept_index])
    assert torch.equal(pruned.position_ids, full.position_ids[:, pruned.kept_index])
    visual_positions = torch.nonzero(full.visual_mask).flatten()
    kept_visual = torch.nonzero(torch.isin(visual_positions, pruned.kept_index)).flatten()
    for kept_level, full_level in zip(pruned.deepstack or [], full.deepstack or [], strict=True):
        assert torch.equal(kept_level, full_level[kept_visual])
    assert (pruned.deepstack is not None) == (backend == "qwen3_vl")
    result = vlm.generate([VLMRequest(token_set, "Where is the ball?")])[0]
    assert (result.visual_tokens, result.visual_tokens_kept) == (48, 12)


def test_hiprune_keeps_anchor_neighbours_and_fastervlm_the_most_attended():
    from vidsift.workers.vlm.vision_attention import fastervlm, hiprune

    thw = torch.stack(torch.meshgrid(torch.arange(1), torch.arange(5), torch.arange(5),
                                     indexing="ij"), dim=-1).reshape(-1, 3)
    features = torch.zeros(25, 4)
    middle = torch.zeros(25)
    middle[12] = 1.0  # the centre (2, 2) is the anchor
    deep = torch.arange(25, dtype=torch.float32)  # the last tokens are the global ones
    attention = {2: middle, 3: deep}  # depth 4: HiPrune reads layers 2 and 3
    kept = hiprune(features, 8, token_thw=thw, attention=attention).tolist()
    assert kept == sorted([12, 7, 17, 11, 13, 24, 23, 22])  # anchor, 4 neighbours, 3 registers
    assert fastervlm(features, 3, token_thw=thw, attention=attention).tolist() == [22, 23, 24]
    with pytest.raises(ValueError, match="attention"):
        fastervlm(features, 3, token_thw=thw)
