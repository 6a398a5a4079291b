"""The Qwen3-VL backend on a tiny random-weight checkpoint loaded by path through get_vlm: its
prompt (per-temporal-patch time tags, as HF's processor writes them), exact token counts against
the budget's plan, DeepStack features through the embeds path and through pruning, batching."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vidsift.core.config import VLMConfig
from vidsift.core.errors import ConfigError, ModelLoadError
from vidsift.core.types import Frame, Segment, SegmentKind, TokenSet, VLMRequest
from vidsift.core.vision import QWEN3_VL
from vidsift.pipeline.plan.budget import allocate
from vidsift.workers.vlm import get_vlm
from vidsift.workers.vlm.qwen3_vl import Qwen3VLBackend

from tests.tiny_vlm import (
    PREPROCESSOR_CONFIG,
    QWEN3_PREPROCESSOR_CONFIG,
    random_token_set,
    save_tiny_qwen3,
)

CAP = 6


def _config(checkpoint, **changes) -> VLMConfig:
    return VLMConfig(backend="qwen3_vl", model=str(checkpoint), device="cpu", dtype="float32",
                     max_new_tokens=CAP, **changes)


@pytest.fixture(scope="module")
def vlm(tiny_qwen3_dir):
    return get_vlm(_config(tiny_qwen3_dir))


@pytest.fixture(scope="module")
def pruned_vlm(tiny_qwen3_dir):
    return get_vlm(_config(tiny_qwen3_dir, pruner="divprune", prune_ratio=0.5))


def _token_set(seed: int = 0) -> TokenSet:
    """random_token_set at Qwen3-VL's sizes (64x96, 64x64, 96x64): 6 + 8 + 6 = 20 tokens."""
    return random_token_set(seed, spec=QWEN3_VL)


def _hf_video_placeholder(grid_thw, frame_indices: list[int], fps: float) -> str:
    """What transformers' Qwen3VLProcessor puts for one video's <|video_pad|> (its own
    replace_video_token; the processor cannot be built here, its video half needs torchvision)."""
    from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor
    from transformers.video_utils import VideoMetadata

    processor = Qwen3VLProcessor.__new__(Qwen3VLProcessor)
    processor.video_processor = Qwen3VLVideoProcessor()
    processor.video_token = "<|video_pad|>"
    processor.vision_start_token = "<|vision_start|>"
    processor.vision_end_token = "<|vision_end|>"
    metadata = VideoMetadata(total_num_frames=1000, fps=fps, frames_indices=frame_indices)
    inputs = {"video_grid_thw": torch.tensor([grid_thw]), "video_metadata": [metadata]}
    return processor.replace_video_token(inputs, 0)


def test_backend_is_registered_and_loads_the_checkpoint(vlm):
    assert isinstance(vlm, Qwen3VLBackend) and vlm.name == "qwen3_vl"
    assert vlm.vision_spec == QWEN3_VL
    assert type(vlm.model).__name__ == "Qwen3VLForConditionalGeneration"


def test_clip_is_stamped_per_temporal_patch_as_hf_processor_does(vlm):
    """The clip's frames are at 2.0, 2.5, 3.0 s (indices 4, 5, 6 at 2 fps; padded to 4 frames):
    patch times (2.0 + 2.5) / 2 = 2.25 and (3.0 + 3.0) / 2 = 3.0, written as HF writes them."""
    inputs = vlm.build_inputs(VLMRequest(_token_set(), "What moves?"))
    text = vlm.tokenizer.decode(inputs.input_ids.tolist())
    placeholder = _hf_video_placeholder([2, 4, 4], [4, 5, 6], fps=2.0)
    assert placeholder.startswith("<2.2 seconds><|vision_start|>") and "<3.0 seconds>" in placeholder
    # The chat template's <|vision_start|><|video_pad|><|vision_end|>, the pad expanded by HF's rule.
    assert f"[2] <t=2.0s-3.0s><|vision_start|>{placeholder}<|vision_end|>\n[3]" in text
    assert "[1] <t=1.0s><|vision_start|>" + "<|image_pad|>" * 6 + "<|vision_end|>" in text
    assert text.startswith("<|im_start|>user\n[1]")  # Qwen3-VL has no default system turn
    assert inputs.second_per_grid_ts is None  # times are text, not M-RoPE spacing
    # Visual tokens are exactly the plan's; the time tags are text.
    types = inputs.mm_token_type_ids
    assert int((types == 1).sum()) == 12 and int((types == 2).sum()) == 8
    assert bool((inputs.input_ids[types == 2] == vlm.video_token_id).all())
    assert inputs.video_grid_thw.tolist() == [[2, 4, 4]]
    assert inputs.pixel_values.shape == (2 * (4 * 6), 3 * 2 * 16 * 16)


def test_token_count_equals_the_budget_plan(vlm):
    """A plan by pipeline.plan.budget.allocate with Qwen3-VL's arithmetic, frames decoded at the
    source size (360x640) and resized by vidsift: the model sees exactly the planned tokens."""
    segments = [Segment(3.0, 3.0, SegmentKind.IMAGE, weight=1.0),
                Segment(10.0, 14.0, SegmentKind.CLIP, weight=2.0),
                Segment(20.0, 20.0, SegmentKind.IMAGE, weight=0.5)]
    plan = allocate(segments, 300, (360, 640), 32 * 32 * 4, 32 * 32 * 256, clip_fps=1.0,
                    spec=QWEN3_VL, video="v.mp4")
    # 7 x 12 tokens per frame (224x384), the clip 4 frames = 2 temporal patches, the last 5 x 9.
    assert [(s.height, s.width, s.tokens) for s in plan.segments] == [
        (224, 384, 84), (224, 384, 168), (160, 288, 45)]
    rng = np.random.default_rng(0)
    filled = []
    for planned in plan.segments:
        assert planned.height % 32 == 0 and planned.width % 32 == 0
        frames = tuple(Frame(rng.integers(0, 256, (360, 640, 3), dtype=np.uint8), t, i)
                       for i, t in enumerate(planned.timestamps))
        filled.append(dataclasses.replace(planned, frames=frames))
    token_set = TokenSet("v.mp4", filled, budget=plan.budget)
    assert token_set.total_tokens == 297
    inputs = vlm.build_inputs(VLMRequest(token_set, "When?"))
    assert int((inputs.mm_token_type_ids > 0).sum()) == token_set.total_tokens
    prefill = vlm.prefill_inputs(inputs)
    assert prefill.visual_tokens == prefill.visual_tokens_kept == token_set.total_tokens
    assert [d.shape[0] for d in prefill.deepstack] == [token_set.total_tokens] * 2


def _plain_and_prefill_logits(vlm, inputs):
    """(logits of the plain forward, the prefill, logits through vidsift's prefill path with
    its DeepStack features)."""
    plain = vlm.model(**inputs.model_kwargs()).logits
    prefill = vlm.prefill_inputs(inputs)
    batch = vlm.left_pad([prefill])
    with vlm.prefill_features([prefill], batch):
        mine = vlm.model(**batch).logits
    return plain, prefill, mine


def test_embeds_path_with_deepstack_matches_plain_forward_logits(vlm):
    inputs = vlm.build_inputs(VLMRequest(_token_set(), "Describe the scene."))
    with torch.inference_mode():
        plain, prefill, mine = _plain_and_prefill_logits(vlm, inputs)
        without_deepstack = vlm.model(**vlm.left_pad([prefill])).logits
    assert prefill.visual_tokens == prefill.visual_tokens_kept == 20
    assert len(prefill.deepstack) == 2 and all(d.shape == (20, 64) for d in prefill.deepstack)
    assert float((mine - plain).abs().max()) <= 1e-5
    assert float((without_deepstack - plain).abs().max()) > 1e-2  # DeepStack really is applied


def test_generate_equals_transformers_own_generate(vlm):
    request = VLMRequest(_token_set(), "What happens?")
    tokens = vlm.generate_tokens([request])[0][0]
    inputs = vlm.build_inputs(request)
    with torch.inference_mode():
        reference = vlm.model.generate(**inputs.model_kwargs(), max_new_tokens=CAP, do_sample=False)
    expected = reference[0, len(inputs.input_ids):].tolist()
    if vlm.tokenizer.eos_token_id in expected:
        expected = expected[: expected.index(vlm.tokenizer.eos_token_id)]
    assert tokens == expected and len(tokens) > 0


def test_batch_equals_one_by_one(vlm):
    requests = [
        VLMRequest(_token_set(0), "What happens first?", request_id="a"),
        VLMRequest(TokenSet("v.mp4", _token_set(5).segments[:1]), "Colour?", request_id="b"),
        VLMRequest(TokenSet("v.mp4", []), "No evidence at all?", request_id="c"),
        VLMRequest(_token_set(9), "A much longer question about what the man does next?",
                   request_id="d"),
    ]
    batched, _, _, _ = vlm.generate_tokens(requests)
    alone = [vlm.generate_tokens([request])[0][0] for request in requests]
    assert batched == alone
    results = vlm.generate(requests)
    assert [r.request_id for r in results] == ["a", "b", "c", "d"]
    assert [r.visual_tokens for r in results] == [r.token_set.total_tokens for r in requests]


def test_pruning_keeps_positions_and_deepstack_rows(pruned_vlm):
    inputs = pruned_vlm.build_inputs(VLMRequest(_token_set(), "Where is the ball?"))
    full = pruned_vlm.prefill_inputs(inputs, prune=False)
    pruned = pruned_vlm.prefill_inputs(inputs)
    assert (pruned.visual_tokens, pruned.visual_tokens_kept) == (20, 10)
    assert torch.equal(pruned.position_ids, full.position_ids[:, pruned.kept_index])
    assert torch.equal(pruned.inputs_embeds, full.inputs_embeds[pruned.kept_index])
    assert pruned.next_position == full.next_position == int(full.position_ids.max()) + 1
    # The kept visual tokens, as indices among the unpruned visual tokens...
    visual_positions = torch.nonzero(full.visual_mask).flatten()
    kept_visual = torch.nonzero(torch.isin(visual_positions, pruned.kept_index)).flatten()
    assert len(kept_visual) == 10 and int(pruned.visual_mask.sum()) == 10
    assert torch.equal(pruned.visual_mask, full.visual_mask[pruned.kept_index])
    # ...select the same rows at every DeepStack level.
    for kept_level, full_level in zip(pruned.deepstack, full.deepstack, strict=True):
        assert torch.equal(kept_level, full_level[kept_visual])
    # Pruned generation runs, alone and batched with an unpruned-size request, identically.
    other = VLMRequest(TokenSet("v.mp4", _token_set(3).segments[1:2]), "And this?")
    alone = pruned_vlm.generate_tokens([VLMRequest(_token_set(), "Where is the ball?")])[0][0]
    batched = pruned_vlm.generate_tokens(
        [VLMRequest(_token_set(), "Where is the ball?"), other])[0]
    assert len(alone) > 0 and batched[0] == alone
    assert pruned_vlm.generate([other])[0].visual_tokens_kept == 4


def _with_preprocessor(weights: Path, tmp_path: Path, preprocessor: dict) -> Path:
    """A copy of the checkpoint at `weights` (as tmp_path/ckpt) with another preprocessor config."""
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(weights, checkpoint)
    (checkpoint / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    return checkpoint


def test_checkpoint_of_another_geometry_is_a_config_error(tiny_qwen3_dir, tmp_path):
    """A Qwen2.5-VL preprocessor config (patch 14) beside Qwen3-VL weights: the budget would
    plan multiples of 32 pixels the checkpoint's own processor does not make."""
    checkpoint = _with_preprocessor(tiny_qwen3_dir, tmp_path, PREPROCESSOR_CONFIG)
    with pytest.raises(ConfigError, match=r"ckpt: checkpoint's vision spec .* \(14, 2, 2\) "
                       r"differs from the qwen3_vl spec the budget plans with, \(16, 2, 2\)"):
        get_vlm(_config(checkpoint))


def test_qwen2_5_checkpoint_is_not_loaded_as_qwen3(tiny_qwen_dir):
    """The Qwen2.5-VL tiny checkpoint under the qwen3_vl backend: its patch 14 is named."""
    with pytest.raises(ConfigError, match=r"\(14, 2, 2\) differs from the qwen3_vl spec"):
        get_vlm(_config(tiny_qwen_dir))


def test_mixture_of_experts_checkpoint_loads_and_matches_transformers(tmp_path):
    """Qwen3-VL-30B-A3B's kind (model_type qwen3_vl_moe, its own class): the same embeds path,
    DeepStack included, gives the plain forward's logits and transformers' own generate."""
    checkpoint = save_tiny_qwen3(tmp_path / "moe", moe=True)
    vlm = get_vlm(_config(checkpoint))
    assert type(vlm.model).__name__ == "Qwen3VLMoeForConditionalGeneration"
    request = VLMRequest(_token_set(), "What happens?")
    inputs = vlm.build_inputs(request)
    with torch.inference_mode():
        plain, _prefill, mine = _plain_and_prefill_logits(vlm, inputs)
        reference = vlm.model.generate(**inputs.model_kwargs(), max_new_tokens=CAP, do_sample=False)
    assert float((mine - plain).abs().max()) <= 1e-5
    expected = reference[0, len(inputs.input_ids):].tolist()
    if vlm.tokenizer.eos_token_id in expected:
        expected = expected[: expected.index(vlm.tokenizer.eos_token_id)]
    assert vlm.generate_tokens([request])[0][0] == expected


def test_checkpoint_of_another_model_type_is_named(tiny_qwen_dir, tmp_path):
    """Qwen2.5-VL weights behind a Qwen3-VL preprocessor config pass the spec check; the model
    type in config.json still says what they are."""
    checkpoint = _with_preprocessor(tiny_qwen_dir, tmp_path, QWEN3_PREPROCESSOR_CONFIG)
    with pytest.raises(ModelLoadError, match=r"ckpt: a qwen2_5_vl checkpoint; the qwen3_vl "
                       r"backend loads qwen3_vl, qwen3_vl_moe checkpoints"):
        get_vlm(_config(checkpoint))
