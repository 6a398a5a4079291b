"""Qwen3-VL through transformers: the Qwen2.5-VL backend (workers.vlm.qwen2_5_vl) with what
Qwen3-VL does differently.

- Token arithmetic: patch 16, spatial merge 2, temporal patch 2 (core.vision.QWEN3_VL), checked
  against the checkpoint's preprocessor_config.json at load, as for Qwen2.5-VL.
- A clip is stamped with time as text, as Qwen3-VL's processor does: its one video placeholder
  becomes, per temporal patch, "<12.3 seconds>" then <|vision_start|>, that patch's visual tokens,
  <|vision_end|>. The time is the mean of the patch's first and last frame (preprocess
  .temporal_patch_times), in the video's own seconds. The extra tokens are text: the visual
  tokens stay exactly the plan's. M-RoPE positions come from the model's own get_rope_index,
  which gives every temporal patch its own grid after its time tag (no second_per_grid_ts).
- DeepStack: the vision tower also returns, per level, features of the same visual tokens from
  earlier blocks, which the LLM adds to its first layers' hidden states at the visual positions.
  The prefill carries them per kept visual token (pruning keeps the same rows at every level) and
  prefill_features hands them, with the kept visual positions, to the LLM's prefill forward.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from vidsift.core.config import VLMConfig
from vidsift.workers.vlm.preprocess import SegmentPixels
from vidsift.workers.vlm.qwen2_5_vl import TEXT, VIDEO, PrefillInputs, QwenVLBackend


class Qwen3VLBackend(QwenVLBackend):
    """Qwen3-VL by local path or hub id, dense (2B to 32B) or mixture-of-experts (30B-A3B,
    235B-A22B) checkpoints. See the module docstring."""

    name = "qwen3_vl"
    family = "Qwen3-VL"
    model_classes = {"qwen3_vl": "Qwen3VLForConditionalGeneration",
                     "qwen3_vl_moe": "Qwen3VLMoeForConditionalGeneration"}
    seconds_in_positions = False

    def __init__(self, cfg: VLMConfig) -> None:
        super().__init__(cfg)
        config = self.model.config
        self.vision_start_id = int(config.vision_start_token_id)
        self.vision_end_id = int(config.vision_end_token_id)

    def expand_placeholder(self, token: int, pixels: SegmentPixels) -> tuple[list[int], list[int]]:
        """An image: one placeholder per visual token. A clip: per temporal patch its time tag,
        <|vision_start|>, the patch's placeholders, <|vision_end|> (Qwen3-VL's processor)."""
        if token != self.video_token_id:
            return super().expand_placeholder(token, pixels)
        per_patch = pixels.tokens // pixels.grid_thw[0]
        ids: list[int] = []
        types: list[int] = []
        for seconds in pixels.patch_times:
            tag = self.tokenizer(f"<{seconds:.1f} seconds>", add_special_tokens=False)["input_ids"]
            ids.extend([*tag, self.vision_start_id, *[token] * per_patch, self.vision_end_id])
            types.extend([TEXT] * (len(tag) + 1) + [VIDEO] * per_patch + [TEXT])
        return ids, types

    @contextlib.contextmanager
    def prefill_features(
        self, prefills: list[PrefillInputs], batch: dict[str, torch.Tensor]
    ) -> Iterator[None]:
        """While inside, the LLM's first forward on the batch (the prefill) receives the kept
        visual tokens' positions in the left-padded batch and their DeepStack features (rows in
        batch-major, position order, as the model's own forward builds them). The decode steps
        after it see no visual tokens and get nothing."""
        embeds = batch["inputs_embeds"]
        if not any(p.deepstack for p in prefills):
            yield
            return
        batch_size, length = embeds.shape[:2]
        visual_pos_masks = torch.zeros(batch_size, length, dtype=torch.bool, device=embeds.device)
        for row, p in enumerate(prefills):
            visual_pos_masks[row, length - len(p.visual_mask):] = p.visual_mask
        levels = [
            torch.cat([p.deepstack[level] for p in prefills if p.deepstack])
            for level in range(len(next(p.deepstack for p in prefills if p.deepstack)))
        ]
        armed = True

        def inject(module, args, kwargs):
            nonlocal armed
            if not armed:
                return None
            armed = False
            shape = tuple(kwargs["inputs_embeds"].shape[:2])
            if shape != (batch_size, length):
                raise RuntimeError(f"Qwen3-VL prefill forward got {shape} tokens, expected "
                                   f"{(batch_size, length)}: DeepStack features cannot be placed")
            return args, {**kwargs, "visual_pos_masks": visual_pos_masks,
                          "deepstack_visual_embeds": levels}

        handle = self.model.model.language_model.register_forward_pre_hook(inject, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()
