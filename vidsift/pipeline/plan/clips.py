"""Clip segmentation for the clip index: cut a video into clips at scene changes seen in the
coarse pass, bounded in length, and summarise each clip as one vector per space.

Pure functions over numpy arrays: no files, no models. Times are seconds on the video's own
timeline; visual vectors are unit rows (N, D) float32, one per coarse frame, in time order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def cut_strengths(visual: np.ndarray) -> np.ndarray:
    """Cosine distance between consecutive coarse frames: (N, D) unit rows -> (N-1,) in [0, 2].

    Entry i is the change from frame i to frame i+1; a scene cut shows up as a spike.
    """
    visual = np.asarray(visual, dtype=np.float32)
    if len(visual) < 2:
        return np.zeros(0, dtype=np.float32)
    return 1.0 - np.einsum("nd,nd->n", visual[:-1], visual[1:])


def _snap_to_keyframe(
    lo: float, hi: float, keyframes: np.ndarray, default: float
) -> float:
    """A cut detected between coarse frames at lo and hi happened somewhere in (lo, hi]: encoders
    place keyframes at scene changes, so the last keyframe in that interval is the best guess."""
    inside = keyframes[(keyframes > lo) & (keyframes <= hi)]
    return float(inside[-1]) if len(inside) else default


def _split_long(
    start: float, end: float, min_s: float, max_s: float, keyframes: np.ndarray
) -> list[float]:
    """Interior boundaries splitting [start, end] into equal pieces no longer than max_s, each
    boundary moved to a nearby keyframe when that keeps every piece within [min_s, max_s]."""
    length = end - start
    n = math.ceil(length / max_s - 1e-9)
    if n <= 1:
        return []
    piece = length / n
    tolerance = 0.25 * piece
    bounds: list[float] = []
    prev = start
    for j in range(1, n):
        ideal = start + j * piece
        remaining = n - j  # pieces still to place after this boundary
        choice = ideal
        near = keyframes[np.abs(keyframes - ideal) <= tolerance]
        for kf in sorted(near, key=lambda t: abs(t - ideal)):
            before, after = kf - prev, end - kf
            if min_s <= before <= max_s and remaining * min_s <= after <= remaining * max_s:
                choice = float(kf)
                break
        bounds.append(choice)
        prev = choice
    return bounds


def segment_clips(
    times: np.ndarray,
    visual: np.ndarray,
    start: float,
    end: float,
    min_s: float,
    max_s: float,
    cut_threshold: float,
    keyframe_times: Sequence[float] = (),
) -> list[tuple[float, float]]:
    """Cut [start, end] (seconds) into clips at scene changes.

    times: (N,) ascending PTS of the coarse frames; visual: (N, D) their unit visual vectors.
    A scene cut is a pair of consecutive frames whose cosine distance exceeds cut_threshold; it is
    placed at the second frame's time, or at the last keyframe between the two frames when there
    is one (keyframe_times, seconds). Cuts are accepted strongest first while every clip stays at
    least min_s long; clips longer than max_s are then split evenly (at keyframes where possible).

    Returns (start, end) pairs in seconds that tile [start, end] exactly: ascending, the first
    starts at start, each starts where the previous ends, the last ends at end. Every clip is at
    least min_s long unless the whole video is shorter, and at most max_s long (when min_s is
    above max_s / 2 a split cannot satisfy both; the max wins).
    """
    if not end > start:
        raise ValueError(f"empty time range: start {start} >= end {end}")
    if not 0 < min_s <= max_s:
        raise ValueError(f"need 0 < min_s <= max_s, got min_s={min_s}, max_s={max_s}")
    times = np.asarray(times, dtype=np.float64)
    visual = np.asarray(visual, dtype=np.float32)
    if len(times) != len(visual):
        raise ValueError(f"{len(times)} times but {len(visual)} visual vectors")
    keyframes = np.sort(np.asarray(keyframe_times, dtype=np.float64))

    strengths = cut_strengths(visual)
    candidates = []  # (strength, cut time)
    for i in np.flatnonzero(strengths > cut_threshold):
        at = _snap_to_keyframe(times[i], times[i + 1], keyframes, default=float(times[i + 1]))
        candidates.append((float(strengths[i]), at))
    candidates.sort(key=lambda c: -c[0])

    accepted = [start, end]
    for _, at in candidates:
        pos = int(np.searchsorted(accepted, at))
        if 0 < pos < len(accepted) and at - accepted[pos - 1] >= min_s and accepted[pos] - at >= min_s:
            accepted.insert(pos, at)

    bounds = [start]
    for lo, hi in zip(accepted[:-1], accepted[1:]):
        bounds.extend(_split_long(lo, hi, min_s, max_s, keyframes))
        bounds.append(hi)
    return list(zip(bounds[:-1], bounds[1:]))


def frames_in_clips(times: np.ndarray, clips: Sequence[tuple[float, float]]) -> list[np.ndarray]:
    """Indices of the coarse frames inside each clip ([start, end), the last clip's end included).

    A clip that no coarse frame falls in (sparse keyframes) gets the frame nearest its middle, so
    every clip has at least one frame to describe it.
    """
    times = np.asarray(times, dtype=np.float64)
    if len(times) == 0:
        raise ValueError("no coarse frames")
    members = []
    for j, (lo, hi) in enumerate(clips):
        last = j == len(clips) - 1
        inside = np.flatnonzero((times >= lo) & ((times <= hi) if last else (times < hi)))
        if len(inside) == 0:
            inside = np.array([int(np.argmin(np.abs(times - (lo + hi) / 2)))])
        members.append(inside)
    return members


def _normalize_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def clip_vectors(vectors: np.ndarray, members: Sequence[np.ndarray]) -> np.ndarray:
    """(N, D) frame vectors and each clip's frame indices -> (C, D) unit mean vector per clip."""
    vectors = np.asarray(vectors, dtype=np.float32)
    means = np.stack([vectors[idx].mean(axis=0) for idx in members])
    return _normalize_rows(means)


def clip_texts(descriptions: Sequence[str], members: Sequence[np.ndarray]) -> list[str]:
    """Each clip's text: its frames' descriptions, distinct and in time order, joined by '; '."""
    texts = []
    for idx in members:
        seen: dict[str, None] = {}
        for i in idx:
            text = descriptions[int(i)].strip() if int(i) < len(descriptions) else ""
            if text:
                seen.setdefault(text, None)
        texts.append("; ".join(seen))
    return texts


def middle_frame(times: np.ndarray, idx: np.ndarray, clip: tuple[float, float]) -> int:
    """The index (into times) of the clip's frame nearest its middle: its thumbnail."""
    times = np.asarray(times, dtype=np.float64)
    mid = (clip[0] + clip[1]) / 2
    return int(idx[int(np.argmin(np.abs(times[idx] - mid)))])


def speech_in_clips(spans: Sequence[tuple[float, float]], segments: Sequence) -> list[str]:
    """Each clip's speech: the text of the transcript segments (core.types.TranscriptSegment,
    seconds) overlapping its [start, end), in order, lines joined by a space; "" where none."""
    from vidsift.core.transcript import overlapping

    return [" ".join(" ".join(s.text.split()) for s in overlapping(segments, lo, hi)) for lo, hi in spans]


def fuse_text(texts: Sequence[str], vectors: np.ndarray, speech: Sequence[str],
              speech_vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Clips' texts and (C, D) unit text vectors with their speech added: where speech[i] is not
    empty, text i gains " | speech: ..." and vector i becomes the normalized sum of its own and
    speech_vectors[i] (as the offline embedder fuses a frame's labels and on-screen text), so a
    query matching either scores the clip. speech_vectors: (C, D) unit rows, rows of clips
    without speech ignored."""
    vectors = np.asarray(vectors, dtype=np.float32)
    has = np.array([bool(s) for s in speech])
    fused = vectors.copy()
    if has.any():
        fused[has] = _normalize_rows(vectors[has] + np.asarray(speech_vectors, np.float32)[has])
    fused_texts = [f"{t} | speech: {s}" if t and s else f"speech: {s}" if s else t
                   for t, s in zip(texts, speech)]
    return fused_texts, fused
