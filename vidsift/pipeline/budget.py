"""Visual-token arithmetic of the VLM, and the allocation of a token budget over segments.

Qwen2.5-VL (as in qwen-vl-utils and transformers' Qwen2VLImageProcessor):
- an image or frame is resized by smart_resize to H x W, both multiples of FACTOR = 28
  (patch 14 x spatial merge 2), with min_pixels <= H*W <= max_pixels, keeping the aspect ratio;
- it is cut into 14 x 14 patches and every 2 x 2 patches merge into ONE token, so a frame costs
  (H / 28) * (W / 28) tokens;
- frames are grouped two by two in time (temporal patch 2): a clip of T frames costs
  ceil(T / 2) * (H / 28) * (W / 28) tokens (an odd T is padded by repeating the last frame), and
  a still image costs as much as one temporal patch: (H / 28) * (W / 28).

Everything here is pure arithmetic: no models, no I/O.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from vidsift.core.errors import BudgetError
from vidsift.core.types import PlannedSegment, Segment, SegmentKind, TokenSet

PATCH_SIZE = 14  # pixels per side of a vision patch
MERGE_SIZE = 2  # patches per side merged into one LLM token
FACTOR = PATCH_SIZE * MERGE_SIZE  # 28: H and W are multiples of this
TEMPORAL_PATCH_SIZE = 2  # frames per temporal patch
MAX_ASPECT_RATIO = 200
# HF Qwen2VLImageProcessor defaults (images): 56*56 .. 28*28*1280 pixels.
IMAGE_MIN_PIXELS = 56 * 56
IMAGE_MAX_PIXELS = 28 * 28 * 1280
# qwen-vl-utils defaults for video frames.
VIDEO_MIN_PIXELS = 128 * 28 * 28
VIDEO_MAX_PIXELS = 768 * 28 * 28


@dataclass(frozen=True, slots=True)
class VisionSpec:
    """The token arithmetic of one VLM family; Qwen2.5-VL's by default."""

    patch_size: int = PATCH_SIZE
    merge_size: int = MERGE_SIZE
    temporal_patch_size: int = TEMPORAL_PATCH_SIZE

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size


QWEN2_5_VL = VisionSpec()
VISION_SPECS = {"qwen2_5_vl": QWEN2_5_VL}


def round_by_factor(number: float, factor: int) -> int:
    return round(number / factor) * factor


def ceil_by_factor(number: float, factor: int) -> int:
    return math.ceil(number / factor) * factor


def floor_by_factor(number: float, factor: int) -> int:
    return math.floor(number / factor) * factor


def smart_resize(
    height: int,
    width: int,
    factor: int = FACTOR,
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


# ---------------------------------------------------------------------------------------------
# Allocation of a token budget over picked segments.
# ---------------------------------------------------------------------------------------------

FRAME_EQUIVALENT_TOKENS = 256  # one "frame-equivalent": a frame of 256 tokens (448 x 448 px)


def frame_equivalents_to_tokens(frames: float, tokens_per_frame: int = FRAME_EQUIVALENT_TOKENS) -> int:
    """A budget stated in frames of `tokens_per_frame` tokens -> visual tokens (benchmarks speak
    in frame-equivalents so that budgets compare across resolutions)."""
    if frames <= 0 or tokens_per_frame <= 0:
        raise ValueError("frame_equivalents_to_tokens: frames and tokens_per_frame must be > 0")
    return int(round(frames * tokens_per_frame))


def frame_grids(
    frame_size: tuple[int, int],
    min_pixels: int,
    max_pixels: int,
    spec: VisionSpec = QWEN2_5_VL,
) -> list[tuple[int, int]]:
    """Every frame size the budget may choose for a video of frame_size = (height, width) pixels,
    as merged-token grids (rows, cols): the input size is (rows * factor, cols * factor) and one
    temporal patch of it costs rows * cols tokens.

    A grid qualifies when one side is the other scaled by the video's aspect ratio, rounded down
    or up (so the aspect is kept within one patch), its area lies in [min_pixels, max_pixels],
    and it is not larger than what smart_resize makes of the source frame (upscaling a small video
    spends tokens on no new detail). Each such size is a fixed point of smart_resize, so the
    processor keeps it as is. Sorted by cost, one grid per cost (the best-kept aspect), ascending.
    """
    height, width = frame_size
    if height <= 0 or width <= 0:
        raise ValueError(f"frame_grids: frame size must be positive, got {height}x{width}")
    if min_pixels > max_pixels:
        raise ValueError(f"frame_grids: min_pixels {min_pixels} > max_pixels {max_pixels}")
    area = spec.factor * spec.factor
    native_h, native_w = smart_resize(height, width, spec.factor, min_pixels, max_pixels)
    min_cost = math.ceil(min_pixels / area)
    max_cost = min(max_pixels // area, max(min_cost, (native_h // spec.factor) * (native_w // spec.factor)))
    ratio = height / width
    best: dict[int, tuple[float, int, int]] = {}

    def consider(rows: int, cols: int) -> None:
        cost = rows * cols
        if rows < 1 or cols < 1 or not min_cost <= cost <= max_cost:
            return
        if max(rows, cols) / min(rows, cols) > MAX_ASPECT_RATIO:
            return
        error = abs(math.log((rows / cols) / ratio))
        if cost not in best or error < best[cost][0]:
            best[cost] = (error, rows, cols)

    for rows in range(1, max_cost + 1):
        exact = rows / ratio
        for cols in {math.floor(exact), math.ceil(exact)}:
            consider(rows, cols)
        if rows * max(1, math.floor(exact)) > max_cost:
            break
    for cols in range(1, max_cost + 1):
        exact = cols * ratio
        for rows in {math.floor(exact), math.ceil(exact)}:
            consider(rows, cols)
        if cols * max(1, math.floor(exact)) > max_cost:
            break
    return [(rows, cols) for _, (_, rows, cols) in sorted(best.items())]


def _water_fill(weights: list[float], floors: list[int], caps: list[int], total: int) -> list[float]:
    """Shares s_i = clamp(lam * w_i, floor_i, cap_i) with sum(s) == total (QuoTA: the share is
    proportional to the weight, between the segment's floor and cap). Assumes sum(floors) <= total;
    when even the caps sum below total, returns the caps."""
    if sum(caps) <= total:
        return [float(c) for c in caps]
    if sum(weights) <= 0:
        weights = [1.0] * len(weights)

    def filled(lam: float) -> float:
        return sum(min(max(lam * w, f), c) for w, f, c in zip(weights, floors, caps))

    low, high = 0.0, 1.0
    while filled(high) < total:
        high *= 2.0
    for _ in range(100):
        mid = (low + high) / 2
        if filled(mid) < total:
            low = mid
        else:
            high = mid
    return [min(max(low * w, f), c) for w, f, c in zip(weights, floors, caps)]


def _clip_timestamps(start: float, end: float, num_frames: int) -> tuple[float, ...]:
    """num_frames times at the centres of equal bins over [start, end] (seconds), ascending."""
    step = (end - start) / num_frames
    return tuple(start + (k + 0.5) * step for k in range(num_frames))


def allocate(
    segments: Sequence[Segment],
    budget_tokens: int,
    frame_size: tuple[int, int],
    min_pixels: int,
    max_pixels: int,
    clip_fps: float,
    spec: VisionSpec = QWEN2_5_VL,
    video: str = "",
) -> TokenSet:
    """Spend exactly `budget_tokens` visual tokens over `segments` -> TokenSet.

    segments: types.Segment list (IMAGE at one PTS, CLIP over [start, end] seconds); weight is the
        budget share each deserves (relevance weights, QuoTA). frame_size: (height, width) pixels
        of the video's frames (its aspect ratio and source resolution). clip_fps: frames per
        second a clip is decoded at when it can afford its full length.

    Per segment the plan picks a frame count (an image: 1; a clip: an even count, since frames pair
    into temporal patches) and one size from frame_grids(), so the segment costs
    ceil(T / 2) * rows * cols tokens, by the model's own arithmetic (tokens_for).
    - Shares: proportional to weight, clamped between the floor (one temporal patch at min_pixels)
      and the cap (a clip's full length at max_pixels / the source size); water-filled to the budget.
    - A clip buys length before resolution (F2C): as many temporal patches as its share pays at the
      floor size, up to clip_fps over its span, then the largest size that fits.
    - Leftover tokens upgrade the most under-served segments to the largest size they can afford,
      until no segment can grow: the total never exceeds the budget, and falls short of it by less
      than one more row or column for any segment not at its cap.
    - If the budget cannot pay every segment's floor, the lowest-weight segments are dropped.
    Raises BudgetError when the budget cannot hold even one image at min_pixels.
    """
    if budget_tokens < 1:
        raise BudgetError(f"token budget must be positive, got {budget_tokens}")
    if clip_fps <= 0:
        raise ValueError(f"allocate: clip_fps must be > 0, got {clip_fps}")
    grids = frame_grids(frame_size, min_pixels, max_pixels, spec)
    if not grids:
        raise BudgetError(
            f"no frame size fits between min_pixels={min_pixels} and max_pixels={max_pixels}"
        )
    costs = [rows * cols for rows, cols in grids]
    floor_cost = costs[0]
    if budget_tokens < floor_cost:
        raise BudgetError(
            f"a budget of {budget_tokens} tokens cannot hold one image at min_pixels={min_pixels}"
            f" ({floor_cost} tokens)"
        )
    for seg in segments:
        if seg.kind is SegmentKind.CLIP and not seg.end > seg.start:
            raise ValueError(f"allocate: clip [{seg.start}, {seg.end}] has no duration")
        if seg.weight < 0:
            raise ValueError(f"allocate: negative weight {seg.weight}")

    # Keep what the budget can floor: the heaviest segments, shown in time order.
    capacity = budget_tokens // floor_cost
    ranked = sorted(range(len(segments)), key=lambda i: (-segments[i].weight, -segments[i].score, i))
    kept = sorted((segments[i] for i in ranked[:capacity]), key=lambda s: (s.start, s.end))

    max_patches = []
    for seg in kept:
        if seg.kind is SegmentKind.IMAGE:
            max_patches.append(1)
        else:
            frames = seg.duration * clip_fps
            max_patches.append(max(1, round(frames / spec.temporal_patch_size)))
    shares = _water_fill(
        [s.weight for s in kept],
        [floor_cost] * len(kept),
        [p * costs[-1] for p in max_patches],
        budget_tokens,
    )

    def largest_grid(limit: float) -> int:
        """Index of the largest grid costing at most `limit` tokens per temporal patch."""
        return bisect.bisect_right(costs, limit + 1e-9) - 1

    patches, grid_index = [], []
    for share, most in zip(shares, max_patches):
        count = max(1, min(most, int(share // floor_cost)))
        patches.append(count)
        grid_index.append(largest_grid(share / count))
    spent = sum(p * costs[g] for p, g in zip(patches, grid_index))

    changed = True
    while changed:
        changed = False
        order = sorted(
            range(len(kept)), key=lambda i: (-(shares[i] - patches[i] * costs[grid_index[i]]), i)
        )
        for i in order:
            current = patches[i] * costs[grid_index[i]]
            upgraded = largest_grid((current + budget_tokens - spent) / patches[i])
            if upgraded > grid_index[i]:
                spent += patches[i] * costs[upgraded] - current
                grid_index[i] = upgraded
                changed = True

    planned = []
    for seg, count, g in zip(kept, patches, grid_index):
        rows, cols = grids[g]
        height, width = rows * spec.factor, cols * spec.factor
        if seg.kind is SegmentKind.IMAGE:
            num_frames, timestamps = 1, (seg.start,)
        else:
            num_frames = count * spec.temporal_patch_size
            timestamps = _clip_timestamps(seg.start, seg.end, num_frames)
        planned.append(
            PlannedSegment(
                kind=seg.kind,
                start=seg.start,
                end=seg.end,
                timestamps=timestamps,
                height=height,
                width=width,
                tokens=tokens_for(num_frames, height, width, spec),
                score=seg.score,
                source=seg.source,
            )
        )
    return TokenSet(video=video, segments=planned, budget=budget_tokens)
