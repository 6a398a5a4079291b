"""Tiny random-weight Qwen2.5-VL and Qwen3-VL checkpoints for tests: real model classes, a real
tokenizer with the special tokens and chat template each family uses, saved with save_pretrained
so tests load them through the same from_pretrained code users run on real checkpoints. Also the reference the
token arithmetic and pixels are checked against: transformers' own Qwen2-VL image processor (which
Qwen3-VL checkpoints use too, with patch 16 and mean/std 0.5).

The tokenizer is byte-level BPE with no merges (every UTF-8 byte is one token), built offline with
`tokenizers`, so any text tokenizes without a trained vocabulary.
"""

from __future__ import annotations

import json
from pathlib import Path

from vidsift.core.vision import IMAGE_MAX_PIXELS, IMAGE_MIN_PIXELS, QWEN2_5_VL, VisionSpec, tokens_for

# The special tokens of Qwen2.5-VL's tokenizer, in their real order.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Both Qwen templates from inside their loop over messages: each turn with its text, image and
# video parts, the loop's end, and the generation prompt.
_TURNS = (
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen2.5-VL-Instruct's chat template, reduced to what vidsift sends (text, image, video parts).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    + _TURNS
)


# Qwen3-VL-Instruct's chat template, reduced likewise: no default system turn.
QWEN3_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    + _TURNS
)


def _byte_vocab() -> dict[str, int]:
    """GPT-2 byte-to-unicode table: 256 printable characters, one per byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return {chars[b]: b for b in range(256)}


def build_tokenizer(chat_template: str = CHAT_TEMPLATE):
    """A PreTrainedTokenizerFast: 256 byte tokens then the special tokens (ids 256..269)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(vocab=_byte_vocab(), merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS[1:])})
    tokenizer.chat_template = chat_template
    return tokenizer


def _tiny_text_config(tokenizer, ids: dict[str, int], **overrides) -> dict:
    """The tiny language model both Qwen families share (hidden 64, 2 layers, 4 heads), its
    special token ids the tokenizer's; `overrides` replace fields."""
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        **overrides,
    }


def _vision_token_ids(ids: dict[str, int]) -> dict[str, int]:
    """The config fields naming the tokenizer's vision placeholder and delimiter tokens."""
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }


def build_config(tokenizer, text: dict | None = None, vision: dict | None = None):
    """A Qwen2_5_VLConfig whose special token ids are the tokenizer's. Defaults are tiny (text
    hidden 64, 2 layers; vision hidden 32, depth 2); `text` / `vision` override config fields
    (e.g. Qwen2.5-VL-3B's vision tower for benchmarks)."""
    from transformers import Qwen2_5_VLConfig

    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in SPECIAL_TOKENS}
    text_config = _tiny_text_config(tokenizer, ids, **(text or {}))
    # M-RoPE splits head_dim / 2 frequencies over (t, h, w) as 2:3:3, like [16, 24, 24] of 64.
    unit = text_config["hidden_size"] // text_config["num_attention_heads"] // 16
    text_config["rope_parameters"] = {"rope_type": "default", "rope_theta": 1_000_000.0,
                                      "mrope_section": [unit * 2, unit * 3, unit * 3]}
    vision_config = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "window_size": 112,
        "tokens_per_second": 2,
        **(vision or {}),
    }
    vision_config["out_hidden_size"] = text_config["hidden_size"]
    vision_config.setdefault("fullatt_block_indexes", [vision_config["depth"] - 1])
    return Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        **_vision_token_ids(ids),
    )


# Qwen2.5-VL's preprocessor_config.json (the fields vidsift's own preprocessing reads).
PREPROCESSOR_CONFIG = {
    "image_processor_type": "Qwen2VLImageProcessor",
    "do_resize": True,
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
}


def save_tiny_qwen(directory: str | Path, seed: int = 0, text: dict | None = None,
                   vision: dict | None = None) -> Path:
    """Build, randomly initialise (seeded) and save a Qwen2.5-VL checkpoint to `directory`
    (tiny unless `text` / `vision` override the config, see build_config)."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(build_config(tokenizer, text, vision))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG, indent=2))
    return directory


# A tiny mixture-of-experts LLM (Qwen3-VL-30B-A3B's layout: every layer sparse, 8 of 128 experts).
TINY_MOE = {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
            "decoder_sparse_step": 1}


def build_qwen3_config(tokenizer, text: dict | None = None, vision: dict | None = None,
                       moe: bool = False):
    """A Qwen3VLConfig (Qwen3VLMoeConfig with moe=True) whose special token ids are the
    tokenizer's. Defaults are tiny (text hidden 64, 2 layers; vision hidden 32, depth 3 with
    DeepStack mergers after blocks 0 and 1, so two DeepStack levels feed the first two LLM
    layers); `text` / `vision` override fields."""
    from transformers import Qwen3VLConfig, Qwen3VLMoeConfig

    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in SPECIAL_TOKENS}
    text_config = _tiny_text_config(tokenizer, ids, **{**(TINY_MOE if moe else {}), **(text or {})})
    text_config["head_dim"] = text_config["hidden_size"] // text_config["num_attention_heads"]
    # Interleaved M-RoPE over head_dim / 2 frequencies, (t, h, w) as Qwen3-VL's [24, 20, 20] of 64.
    half = text_config["head_dim"] // 2
    spatial = half * 20 // 64
    text_config["rope_parameters"] = {"rope_type": "default", "rope_theta": 5_000_000.0,
                                      "mrope_interleaved": True,
                                      "mrope_section": [half - 2 * spatial, spatial, spatial]}
    vision_config = {
        "depth": 3,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "num_position_embeddings": 64,  # an 8 x 8 learned grid, interpolated to each frame's
        "deepstack_visual_indexes": [0, 1],
        **(vision or {}),
    }
    vision_config["out_hidden_size"] = text_config["hidden_size"]
    return (Qwen3VLMoeConfig if moe else Qwen3VLConfig)(
        text_config=text_config,
        vision_config=vision_config,
        **_vision_token_ids(ids),
    )


# Qwen3-VL-8B-Instruct's preprocessor_config.json.
QWEN3_PREPROCESSOR_CONFIG = {
    "image_processor_type": "Qwen2VLImageProcessorFast",
    "processor_class": "Qwen3VLProcessor",
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
}


def save_tiny_qwen3(directory: str | Path, seed: int = 0, text: dict | None = None,
                    vision: dict | None = None, moe: bool = False) -> Path:
    """Build, randomly initialise (seeded) and save a Qwen3-VL checkpoint (mixture-of-experts
    with moe=True) to `directory` (tiny unless `text` / `vision` override the config, see
    build_qwen3_config)."""
    import torch
    from transformers import Qwen3VLForConditionalGeneration, Qwen3VLMoeForConditionalGeneration

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(QWEN3_CHAT_TEMPLATE)
    torch.manual_seed(seed)
    model_class = Qwen3VLMoeForConditionalGeneration if moe else Qwen3VLForConditionalGeneration
    model = model_class(build_qwen3_config(tokenizer, text, vision, moe))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / "preprocessor_config.json").write_text(
        json.dumps(QWEN3_PREPROCESSOR_CONFIG, indent=2))
    return directory


# (height, width) of frames the token arithmetic is checked on: common, portrait, tiny, extreme.
FRAME_SIZES = [(720, 1280), (1080, 1920), (240, 320), (1280, 720), (480, 854), (100, 3000),
               (37, 53), (2160, 3840), (576, 720), (1, 150), (333, 777)]


def hf_image_processor(min_pixels: int = IMAGE_MIN_PIXELS, max_pixels: int = IMAGE_MAX_PIXELS,
                       spec: VisionSpec = QWEN2_5_VL):
    """transformers' slow (PIL) Qwen2-VL image processor, the reference vidsift's arithmetic and
    pixels are checked against; defaults are its own image min/max pixels. With spec=QWEN3_VL
    it is Qwen3-VL's image processor (the same class with patch 16 and mean/std 0.5)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(
        min_pixels=min_pixels, max_pixels=max_pixels, patch_size=spec.patch_size,
        merge_size=spec.merge_size, temporal_patch_size=spec.temporal_patch_size,
        image_mean=list(spec.image_mean), image_std=list(spec.image_std),
    )


def hf_image_tokens(processor, images) -> list[int]:
    """LLM tokens the HF processor's grids give each of `images` ((H, W, 3) uint8 arrays)."""
    import numpy as np

    out = processor(images=images, return_tensors="np", input_data_format="channels_last")
    grids = out["image_grid_thw"]
    assert out["pixel_values"].shape[0] == int(np.prod(grids, axis=1).sum())
    return [int(t * h * w) // processor.merge_size**2 for t, h, w in grids]


def random_segment(kind, times: list[float], height: int, width: int, seed: int,
                   spec: VisionSpec = QWEN2_5_VL):
    """A PlannedSegment with decoded random frames at `times` (seconds), height x width pixels
    (multiples of spec.factor), its token cost by the model's arithmetic."""
    import numpy as np

    from vidsift.core.types import Frame, PlannedSegment

    rng = np.random.default_rng(seed)
    frames = tuple(
        Frame(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), t, int(round(t * 25)))
        for t in times
    )
    return PlannedSegment(kind, times[0], times[-1], tuple(times), height, width,
                          tokens_for(len(times), height, width, spec), frames=frames)


def random_token_set(seed: int = 0, video: str = "video.mp4", spec: VisionSpec = QWEN2_5_VL):
    """An image at 1.0 s (2 x 3 merged tokens: 56x84 for Qwen2.5-VL, 64x96 for Qwen3-VL), a
    3-frame clip at 2 fps from 2.0 s (2 x 2, odd: padded), and an image at 7.5 s (3 x 2):
    6 + 8 + 6 = 20 visual tokens."""
    from vidsift.core.types import SegmentKind, TokenSet

    f = spec.factor
    segments = [
        random_segment(SegmentKind.IMAGE, [1.0], 2 * f, 3 * f, seed, spec),
        random_segment(SegmentKind.CLIP, [2.0, 2.5, 3.0], 2 * f, 2 * f, seed + 1, spec),
        random_segment(SegmentKind.IMAGE, [7.5], 3 * f, 2 * f, seed + 2, spec),
    ]
    return TokenSet(video, segments, budget=20)
