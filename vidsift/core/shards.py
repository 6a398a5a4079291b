"""Cutting a video into time shards that ingest can decode and embed independently.

Pure: keyframe times in, (start, end) pairs out, seconds on the video's own timeline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def plan_shards(
    keyframe_times: Sequence[float], start: float, end: float, shard_s: float
) -> list[tuple[float, float]]:
    """Cut [start, end) into shards of at least shard_s seconds (the last may be shorter), each
    interior bound at a keyframe: the first keyframe at or after the previous bound + shard_s.

    Bounds at keyframes keep every keyframe gap inside one shard, so a shard decodes without
    reading the one before it and the coarse pass over the shards equals the pass over the whole
    video. A video with fewer keyframes than shards gets fewer, longer shards.

    keyframe_times: ascending PTS of the keyframes, seconds. Returns ascending, contiguous
    (start, end) pairs tiling [start, end): the first starts at start, the last ends at end.
    """
    if not end > start:
        raise ValueError(f"plan_shards: empty range [{start}, {end})")
    if not shard_s > 0:
        raise ValueError(f"plan_shards: shard length must be positive, got {shard_s}")
    bounds = [float(start)]
    for t in np.asarray(keyframe_times, dtype=np.float64):
        if start < t < end and t - bounds[-1] >= shard_s:
            bounds.append(float(t))
    bounds.append(float(end))
    return list(zip(bounds[:-1], bounds[1:]))
