"""The vision spec of each VLM family: how a frame becomes patches, pixels and LLM tokens.

One VisionSpec per family is the single source of truth for both the budget (which counts tokens
before any model is loaded) and the VLM worker (which builds the pixels and checks that the
checkpoint it loads agrees with what the budget planned).

Qwen2.5-VL (as in qwen-vl-utils and transformers' Qwen2VLImageProcessor):
- an image or frame is resized by smart_resize to H x W, both multiples of factor = 28
  (patch 14 x spatial merge 2), with min_pixels <= H*W <= max_pixels, keeping the aspect ratio;
- it is cut into 14 x 14 patches and every 2 x 2 patches merge into ONE token, so a frame costs
  (H / 28) * (W / 28) tokens;
- frames are grouped two by two in time (temporal patch 2): a clip of T frames costs
  ceil(T / 2) * (H / 28) * (W / 28) tokens (an odd T is padded by repeating the last frame), and
  a still image costs as much as one temporal patch: (H / 28) * (W / 28).

Qwen3-VL (transformers' Qwen3-VL config, its checkpoints' preprocessor_config.json) counts the
same way with patch 16, so factor = 32: a frame costs (H / 32) * (W / 32) tokens per temporal
patch of 2 frames, normalized with mean = std = 0.5. Its prompt adds text around a clip's visual
tokens (a "<t seconds>" tag and vision start/end tokens per temporal patch) but no visual tokens,
so the visual-token arithmetic above is all the budget needs.

Extreme aspect ratios: the processors refuse a frame more than MAX_ASPECT_RATIO times wider than
high (or higher than wide). vidsift shows such a frame letterboxed: padded_size grows its short
side (black bars, centred) to the most elongated shape allowed, every input size is planned from
that padded size, and the pixels are made to match (content_size: where the frame's own pixels go
inside the planned input; the decoders and workers.vlm.preprocess fill it, core.images.pad_centred
adds the bars). A frame 16000 wide and 16 high is planned as if 80 high, so its token count is exact
and the model sees all of it, smaller; cropping to 3200 wide would throw away four fifths of it.

Pure arithmetic and plain data; only VisionSpec.from_pretrained touches files (and transformers,
imported there so that importing this module costs no torch/transformers import).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vidsift.core.errors import ConfigError

MAX_ASPECT_RATIO = 200  # smart_resize refuses frames more elongated than this (as HF does)
# HF Qwen2VLImageProcessor defaults (images): 56*56 .. 28*28*1280 pixels.
IMAGE_MIN_PIXELS = 56 * 56
IMAGE_MAX_PIXELS = 28 * 28 * 1280
# qwen-vl-utils defaults for video frames.
VIDEO_MIN_PIXELS = 128 * 28 * 28
VIDEO_MAX_PIXELS = 768 * 28 * 28

# Qwen2.5-VL's preprocessor_config.json normalization (OpenAI CLIP mean/std, per RGB channel).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# Qwen3-VL's (transformers' IMAGENET_STANDARD_MEAN / _STD): maps [0, 1] to [-1, 1].
HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True, slots=True)
class VisionSpec:
    """How one VLM family (or one checkpoint of it) sees pixels; Qwen2.5-VL's by default.

    patch_size: pixels per side of a vision patch. merge_size: patches per side merged into one
    LLM token. temporal_patch_size: frames per temporal patch. image_mean / image_std: per RGB
    channel, applied after rescale_factor (pixel value multiplier, 1/255 maps uint8 to [0, 1]).
    """

    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 2
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD
    rescale_factor: float = 1 / 255

    @property
    def factor(self) -> int:
        """Pixels per side of one merged token: input heights and widths are multiples of it."""
        return self.patch_size * self.merge_size

    @property
    def token_geometry(self) -> tuple[int, int, int]:
        """(patch_size, merge_size, temporal_patch_size): all a token count depends on."""
        return self.patch_size, self.merge_size, self.temporal_patch_size

    @classmethod
    def from_pretrained(cls, model: str, default: VisionSpec | None = None) -> VisionSpec:
        """The spec in preprocessor_config.json of a local checkpoint dir or hub id; fields the
        file leaves out keep `default`'s (the family's spec; Qwen2.5-VL's when None). Reads the
        JSON only (no torchvision)."""
        from transformers.image_processing_base import ImageProcessingMixin

        data, _ = ImageProcessingMixin.get_image_processor_dict(model)
        default = default or cls()
        return cls(
            patch_size=int(data.get("patch_size", default.patch_size)),
            merge_size=int(data.get("merge_size", default.merge_size)),
            temporal_patch_size=int(data.get("temporal_patch_size", default.temporal_patch_size)),
            image_mean=tuple(float(v) for v in data.get("image_mean", default.image_mean)),
            image_std=tuple(float(v) for v in data.get("image_std", default.image_std)),
            rescale_factor=float(data.get("rescale_factor", default.rescale_factor)),
        )


QWEN2_5_VL = VisionSpec()
QWEN3_VL = VisionSpec(patch_size=16, merge_size=2, temporal_patch_size=2, image_mean=HALF,
                      image_std=HALF)
VISION_SPECS: dict[str, VisionSpec] = {"qwen2_5_vl": QWEN2_5_VL, "qwen3_vl": QWEN3_VL}


def check_checkpoint_spec(family: str, checkpoint: VisionSpec, model: str) -> None:
    """Raise ConfigError unless a checkpoint's spec counts tokens as its family's VISION_SPECS
    entry does (the budget plans with that entry, so a differing checkpoint would receive
    requests whose token counts it cannot reproduce). Normalization may differ freely."""
    planned = VISION_SPECS[family]
    if checkpoint.token_geometry != planned.token_geometry:
        raise ConfigError(
            f"{model}: checkpoint's vision spec (patch, merge, temporal) = "
            f"{checkpoint.token_geometry} differs from the {family} spec the budget plans with, "
            f"{planned.token_geometry}"
        )


def round_by_factor(number: float, factor: int) -> int:
    """The multiple of `factor` nearest to `number`."""
    return round(number / factor) * factor


def ceil_by_factor(number: float, factor: int) -> int:
    """The smallest multiple of `factor` >= `number`."""
    return math.ceil(number / factor) * factor


def floor_by_factor(number: float, factor: int) -> int:
    """The largest multiple of `factor` <= `number`."""
    return math.floor(number / factor) * factor


def smart_resize(
    height: int,
    width: int,
    factor: int = QWEN2_5_VL.factor,
    min_pixels: int = IMAGE_MIN_PIXELS,
    max_pixels: int = IMAGE_MAX_PIXELS,
) -> tuple[int, int]:
    """(height, width) in pixels -> the model's input (height, width): multiples of `factor`,
    area within [min_pixels, max_pixels], aspect ratio kept as closely as the grid allows.

    Identical to transformers' Qwen2-VL smart_resize, so token counts match the processor's.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"smart_resize: size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"smart_resize: aspect ratio must be below {MAX_ASPECT_RATIO}, got {height}x{width}"
        )
    h_bar = round_by_factor(height, factor)
    w_bar = round_by_factor(width, factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, floor_by_factor(height / beta, factor))
        w_bar = max(factor, floor_by_factor(width / beta, factor))
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = ceil_by_factor(height * beta, factor)
        w_bar = ceil_by_factor(width * beta, factor)
    return max(h_bar, factor), max(w_bar, factor)


def padded_size(height: int, width: int) -> tuple[int, int]:
    """(height, width) in pixels of a frame letterboxed to at most MAX_ASPECT_RATIO: a frame more
    elongated than that has its short side grown to ceil(long side / MAX_ASPECT_RATIO) (black
    bars, centred); any other frame is unchanged. smart_resize accepts every size this returns,
    so input sizes are planned from it (budget.frame_grids, the caption reader, serve-vlm)."""
    if height <= 0 or width <= 0:
        raise ValueError(f"padded_size: size must be positive, got {height}x{width}")
    shortest = math.ceil(max(height, width) / MAX_ASPECT_RATIO)
    return max(height, shortest), max(width, shortest)


def content_size(frame_size: tuple[int, int], input_size: tuple[int, int]) -> tuple[int, int]:
    """(height, width) in pixels that a frame of frame_size = (height, width) fills inside a model
    input of input_size = (height, width) made from its padded frame (padded_size): each side
    scaled by input / padded, at least 1 pixel; the rest of the input is the letterbox bars.
    input_size itself for a frame that needs no padding."""
    (height, width), (padded_h, padded_w) = frame_size, padded_size(*frame_size)
    input_h, input_w = input_size
    return max(1, round(height * input_h / padded_h)), max(1, round(width * input_w / padded_w))


def grid_thw(
    num_frames: int, height: int, width: int, spec: VisionSpec = QWEN2_5_VL
) -> tuple[int, int, int]:
    """Patch grid (t, h, w) the vision encoder sees for `num_frames` frames of height x width
    pixels (already multiples of spec.factor). A still image is num_frames = 1."""
    if height % spec.factor or width % spec.factor:
        raise ValueError(f"grid_thw: {height}x{width} is not a multiple of {spec.factor}")
    if num_frames < 1:
        raise ValueError("grid_thw: need at least one frame")
    grid_t = math.ceil(num_frames / spec.temporal_patch_size)
    return grid_t, height // spec.patch_size, width // spec.patch_size


def tokens_for(num_frames: int, height: int, width: int, spec: VisionSpec = QWEN2_5_VL) -> int:
    """LLM visual tokens for `num_frames` frames (1 = a still image) at height x width pixels."""
    t, h, w = grid_thw(num_frames, height, width, spec)
    return t * h * w // (spec.merge_size**2)
