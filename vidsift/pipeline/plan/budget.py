"""Allocation of a visual-token budget over the segments selection picked.

The token arithmetic (smart_resize, grid_thw, tokens_for) and each VLM family's VisionSpec live
in vidsift.core.vision; this module only decides how many frames each segment gets and at what
size, so that the plan's token counts are the model's own. Budget policies (BUDGET_POLICIES,
budget.policy) choose how: quota (allocate), slow_fast, adaptive. Pure: no models, no I/O.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vidsift.core.errors import BudgetError
from vidsift.core.registry import lookup
from vidsift.core.timeline import bin_centres
from vidsift.core.types import PlannedSegment, Segment, SegmentKind, TokenSet
from vidsift.core.vision import (
    MAX_ASPECT_RATIO, QWEN2_5_VL, VisionSpec, padded_size, smart_resize, tokens_for,
)


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
    A frame more elongated than MAX_ASPECT_RATIO is planned letterboxed, as core.vision.padded_size
    pads it (the decoders add the bars): every positive frame size has grids.
    """
    if frame_size[0] <= 0 or frame_size[1] <= 0:
        raise ValueError(f"frame_grids: frame size must be positive, got {frame_size[0]}x"
                         f"{frame_size[1]}")
    height, width = padded_size(*frame_size)
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
            timestamps = tuple(bin_centres(seg.start, seg.end, num_frames).tolist())
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


def split_budget(weights: Sequence[float], floors: Sequence[int], total: int) -> list[int]:
    """Whole-token shares of `total`, one per weight, proportional to the weights and each at
    least its floor (water-filled, as allocate shares a budget over segments); the shares sum to
    `total`. When the floors do not all fit, a part whose floor does not fit beside the floors
    of the heavier parts gets 0 (ties: the earlier index is heavier) and the rest share the whole
    total. Nothing fits: all 0.

    weights: >= 0 per part (all 0: equal). floors: tokens a part needs to be shown at all.
    """
    if len(weights) != len(floors):
        raise ValueError(f"split_budget: {len(weights)} weights but {len(floors)} floors")
    ranked = sorted(range(len(weights)), key=lambda i: (-weights[i], i))
    kept, used = [], 0
    for i in ranked:
        if used + floors[i] <= total:
            kept.append(i)
            used += floors[i]
    shares = [0] * len(weights)
    if not kept:
        return shares
    filled = _water_fill([weights[i] for i in kept], [floors[i] for i in kept], [total] * len(kept),
                         total)
    whole = [max(floors[i], math.floor(s + 1e-9)) for i, s in zip(kept, filled)]
    # The tokens rounding left over go to the largest fractional remainders.
    by_remainder = sorted(range(len(kept)), key=lambda j: (-(filled[j] - whole[j]), j))
    for j in by_remainder[: total - sum(whole)]:
        whole[j] += 1
    for i, share in zip(kept, whole):
        shares[i] = share
    return shares


# ---- budget policies: how a question's tokens are spent (budget.policy) ------------------------

ADAPTIVE_MIN_SHARE = 0.25  # adaptive: the fewest segments, as a share of the planned slots
ADAPTIVE_TEMPERATURE = 0.05  # adaptive: cosine scale of relevance (selection.temperature's default)


def adaptive_slots(relevance: Sequence[float], slots: int) -> int:
    """Segments to plan for a question whose per-frame relevance (N,) cosines are `relevance`,
    given the `slots` the budget plans by default: max(ceil(slots * ADAPTIVE_MIN_SHARE),
    ceil(slots * sqrt(PR))), at most `slots`. PR = (sum w)^2 / (N * sum w^2) is the
    participation ratio of the weights w = exp((r - max r) / ADAPTIVE_TEMPERATURE): 1 when every
    frame is as relevant (a question about the whole video), about k / N when k frames stand out
    (a question about one moment). Pure and deterministic; decided before the request, from the
    relevance the plan already has. N < 2: `slots`."""
    r = np.asarray(relevance, dtype=np.float64)
    if slots < 1:
        raise ValueError(f"adaptive_slots: slots must be >= 1, got {slots}")
    if r.ndim != 1 or len(r) < 2 or not np.isfinite(r).all():
        return slots
    w = np.exp((r - r.max()) / ADAPTIVE_TEMPERATURE)
    participation = float(w.sum() ** 2 / (len(w) * (w * w).sum()))
    fewest = math.ceil(slots * ADAPTIVE_MIN_SHARE)
    return min(slots, max(fewest, math.ceil(slots * math.sqrt(participation) - 1e-9)))


def slow_fast_allocate(
    segments: Sequence[Segment],
    budget_tokens: int,
    frame_size: tuple[int, int],
    min_pixels: int,
    max_pixels: int,
    clip_fps: float,
    spec: VisionSpec = QWEN2_5_VL,
    video: str = "",
    slow_steps: int = 1,
) -> TokenSet:
    """Slow-Fast (plan.slow_fast) inside allocate's plan: each clip keeps the tokens allocate gave
    it, and spends them as slow_fast_plan does on as many temporal steps as it can (up to
    clip_fps over its span, as allocate's cap): min(slow_steps, steps) evenly spaced steps
    become images at the slow (large) grid, the other steps one clip at the fast grid (at most
    a quarter of the slow cost), with those steps' frames (the clip's frames then have gaps
    where the slow steps are; its M-RoPE spacing is its mean frame rate). Images, and clips no
    slow-fast split fits, stay as allocate planned them. Every count is tokens_for's: the total
    is exact, and never above allocate's (so never above budget_tokens)."""
    from vidsift.pipeline.plan.slow_fast import slow_fast_plan

    base = allocate(segments, budget_tokens, frame_size, min_pixels, max_pixels, clip_fps, spec, video)
    grids = frame_grids(frame_size, min_pixels, max_pixels, spec)
    planned: list[PlannedSegment] = []
    for seg in base.segments:
        steps_now = len(seg.timestamps) // spec.temporal_patch_size
        if seg.kind is not SegmentKind.CLIP or steps_now < 2:
            planned.append(seg)
            continue
        most = max(steps_now, round((seg.end - seg.start) * clip_fps / spec.temporal_patch_size))
        plan = steps = None
        for steps in range(most, 1, -1):
            try:
                plan = slow_fast_plan(steps, min(slow_steps, steps - 1), grids, seg.tokens)
                break
            except BudgetError:
                continue
        if plan is None:
            planned.append(seg)
            continue
        times = bin_centres(seg.start, seg.end, steps * spec.temporal_patch_size).tolist()
        per = spec.temporal_patch_size
        fast_times = tuple(t for i in range(steps) if i not in plan.slow_steps
                           for t in times[i * per:(i + 1) * per])
        rows, cols = plan.fast_grid
        height, width = rows * spec.factor, cols * spec.factor
        planned.append(PlannedSegment(
            kind=SegmentKind.CLIP, start=fast_times[0], end=fast_times[-1], timestamps=fast_times,
            height=height, width=width, tokens=tokens_for(len(fast_times), height, width, spec),
            score=seg.score, source=f"{seg.source}+fast", video=seg.video))
        rows, cols = plan.slow_grid
        height, width = rows * spec.factor, cols * spec.factor
        for i in plan.slow_steps:
            t = times[i * per]
            planned.append(PlannedSegment(
                kind=SegmentKind.IMAGE, start=t, end=t, timestamps=(t,), height=height,
                width=width, tokens=tokens_for(1, height, width, spec), score=seg.score,
                source=f"{seg.source}+slow", video=seg.video))
    planned.sort(key=lambda s: (s.start, s.end))  # time order, as allocate's
    return TokenSet(video=video, segments=planned, budget=budget_tokens)


@dataclass(frozen=True)
class BudgetPolicy:
    """How budget.policy spends a question's tokens. slots(relevance (N,) per coarse frame,
    slots the budget plans) -> segments the selector is asked for. plan(segments, budget,
    frame_size, clip_fps, spec, video) -> the TokenSet, every count exact."""

    slots: Callable[[Sequence[float], int], int]
    plan: Callable[..., TokenSet]


def _quota_plan(segments, budget, frame_size, clip_fps, spec, video) -> TokenSet:
    return allocate(segments, budget.tokens, frame_size, min_pixels=budget.min_pixels,
                    max_pixels=budget.max_pixels, clip_fps=clip_fps, spec=spec, video=video)


def _slow_fast_plan(segments, budget, frame_size, clip_fps, spec, video) -> TokenSet:
    return slow_fast_allocate(segments, budget.tokens, frame_size, budget.min_pixels,
                              budget.max_pixels, clip_fps, spec, video, budget.slow_steps)


def _same_slots(relevance, slots: int) -> int:
    return slots


BUDGET_POLICIES: dict[str, BudgetPolicy] = {
    "quota": BudgetPolicy(_same_slots, _quota_plan),  # allocate: QuoTA shares, F2C clips
    "slow_fast": BudgetPolicy(_same_slots, _slow_fast_plan),  # SlowFast-LLaVA's dual rate
    "adaptive": BudgetPolicy(adaptive_slots, _quota_plan),  # fewer segments when peaked
}


def get_budget_policy(name: str) -> BudgetPolicy:
    return lookup(BUDGET_POLICIES, name, "budget policy")
