"""Token merging wired into the Qwen backends (vlm.merger): the tiny random-weight Qwen2.5-VL and
Qwen3-VL run on SDPA with merged visual tokens; each merged token is its group's size-weighted
mean at its first occurrence's place and (t, h, w) M-RoPE position, DeepStack rows merged alike,
and the count is the one kept_visual_tokens gives from the grids before any request."""

from __future__ import annotations

import pytest
import torch

from vidsift.core.config import VLMConfig
from vidsift.core.errors import ConfigError
from vidsift.core.types import VLMRequest
from vidsift.core.vision import QWEN2_5_VL, QWEN3_VL
from vidsift.workers.vlm import get_vlm
from vidsift.workers.vlm.pruning import kept_visual_tokens

from tests.tiny_vlm import random_token_set

QUESTION = "Where is the ball?"


def _grids(vlm, inputs) -> list[tuple[int, int, int]]:
    merge = vlm.vision_spec.merge_size
    return [(p.grid_thw[0], p.grid_thw[1] // merge, p.grid_thw[2] // merge)
            for p in inputs.segment_pixels]


@pytest.fixture(scope="module")
def backends(tiny_qwen_dir, tiny_qwen3_dir):
    """(backend name, checkpoint, spec) -> {merger: loaded VLM}, on SDPA."""
    loaded = {}
    for name, directory, spec in (("qwen2_5_vl", tiny_qwen_dir, QWEN2_5_VL),
                                  ("qwen3_vl", tiny_qwen3_dir, QWEN3_VL)):
        loaded[name] = (spec, {merger: get_vlm(VLMConfig(
            backend=name, model=str(directory), device="cpu", dtype="float32", max_new_tokens=4,
            attn_implementation="sdpa", merger=merger, prune_ratio=0.5))
            for merger in ("tome", "temporal")})
    return loaded


@pytest.mark.parametrize("backend", ["qwen2_5_vl", "qwen3_vl"])
@pytest.mark.parametrize("merger", ["tome", "temporal"])
def test_merged_tokens_are_group_means_at_first_occurrence(backends, backend, merger):
    spec, vlms = backends[backend]
    vlm = vlms[merger]
    assert vlm.model.config._attn_implementation == "sdpa"
    request = VLMRequest(random_token_set(spec=spec), QUESTION)
    inputs = vlm.build_inputs(request)
    full = vlm.prefill_inputs(inputs, prune=False)
    merged = vlm.prefill_inputs(inputs)
    # The count: exactly what the grids predict, before any request.
    expected = kept_visual_tokens("none", merger, _grids(vlm, inputs), 0.5)
    assert merged.visual_tokens_kept == expected == int(merged.visual_mask.sum())
    assert expected == {"tome": 3 + 4 + 3, "temporal": 6 + 4 + 6}[merger]
    assert float(merged.visual_sizes.sum()) == merged.visual_tokens == 20
    # The groups, recomputed from the unmerged visual features.
    token_thw, segment_ids = vlm._visual_token_grid(inputs)
    visual = full.inputs_embeds[full.visual_mask]
    group = vlm.merger(visual.float(), 0.5, token_thw=token_thw, segment_ids=segment_ids)
    visual_index = torch.nonzero(full.visual_mask).flatten()
    firsts = torch.stack([torch.nonzero(group == g).flatten()[0] for g in range(int(group.max()) + 1)])
    kept_visual_index = merged.kept_index[merged.visual_mask]
    assert torch.equal(kept_visual_index, visual_index[firsts])
    # Every merged token sits at its first occurrence's M-RoPE position; text rows are untouched.
    assert torch.equal(merged.position_ids, full.position_ids[:, merged.kept_index])
    text = ~merged.visual_mask
    assert torch.equal(merged.inputs_embeds[text], full.inputs_embeds[merged.kept_index][text])
    for g, row in enumerate(merged.inputs_embeds[merged.visual_mask]):
        members = group == g
        assert float(merged.visual_sizes[g]) == int(members.sum())
        assert torch.allclose(row, visual[members].mean(dim=0), atol=1e-6)
        for kept_level, full_level in zip(merged.deepstack or [], full.deepstack or [], strict=True):
            assert torch.allclose(kept_level[g], full_level[members].mean(dim=0), atol=1e-6)
    assert (merged.deepstack is not None) == (backend == "qwen3_vl")
    assert bool((merged.visual_sizes > 1).any())  # something was merged
    assert merged.next_position == full.next_position
    # The request runs end to end on SDPA and reports the merged count.
    result = vlm.generate([request])[0]
    assert (result.visual_tokens, result.visual_tokens_kept) == (20, expected)


def test_pruner_and_merger_together_is_a_config_error(tiny_qwen_dir):
    with pytest.raises(ConfigError, match="choose one"):
        get_vlm(VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32",
                          pruner="divprune", merger="tome"))
