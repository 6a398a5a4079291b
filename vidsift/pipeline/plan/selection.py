"""Selection: which stretches of a video the VLM should see, before the budget sizes them.

Pure functions over the coarse pass's arrays:
- times: (N,) float seconds, the PTS of each coarse frame, ascending;
- visual: (N, Dv) float unit vectors, what each coarse frame looks like;
- relevance: (N,) float cosine similarity of each coarse frame to the question.

Every selector has the signature
    (times, visual, relevance, start, end, config: SelectionConfig, n_slots, peaks=()) -> list[Segment]
with [start, end] the video's timeline in seconds, n_slots how many segments the budget plans
for and peaks the moments the relevance peaks at (find_peaks: the anchor-based selectors,
keyclips and balanced, anchor each of them first; the others rank frames alone). It returns Segments ordered by time: IMAGE segments at a frame time, CLIP segments over a
range inside [start, end]; weight is the share of the token budget each deserves (summing to 1).

Ideas and where they come from:
- relevance weights (QuoTA): w = (100 s)^2 normalised, or a softmax with a temperature;
- key clips (F2C): anchors at relevance peaks, suppressed within a radius in time, each expanded
  into a short clip (the budget later trades its resolution against its length);
- coverage (Spatial-MLLM's greedy maximum coverage, on visual features): add the frames that
  cover most of what the picks do not;
- temporal merge (B-VLLM): neighbouring picks that look the same are one pick;
- several moments: a counting or ordering question needs every moment it is about, so each
  relevance peak of similar height gets an anchor before any peak gets a second (find_peaks).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from vidsift.core.registry import lookup
from vidsift.core.timeline import bin_centres
from vidsift.core.types import Peak, Segment, SegmentKind

# Facility location keeps a (candidates, clients) similarity matrix; beyond this many frames both
# are even subsamples of the frames, which bounds memory and time on long videos.
MAX_COVERAGE_CLIENTS = 2048


def relevance_weights(
    relevance: np.ndarray, weighting: str = "quota", temperature: float = 0.05
) -> np.ndarray:
    """(N,) cosine similarities -> (N,) non-negative weights summing to 1.

    quota: w = (100 * max(s, 0))^2, normalised (QuoTA); squares sharpen the contrast between a
        relevant frame and the rest. softmax: exp(s / temperature), normalised.
    All-zero scores (no question, or nothing relevant) give equal weights.
    """
    scores = np.asarray(relevance, dtype=np.float64)
    if scores.size == 0:
        return scores
    if weighting == "quota":
        raw = (100.0 * np.clip(scores, 0.0, None)) ** 2
    elif weighting == "softmax":
        raw = np.exp((scores - scores.max()) / temperature)
    else:
        raise ValueError(f"relevance_weights: unknown weighting {weighting!r} (quota | softmax)")
    total = raw.sum()
    if not np.isfinite(total) or total <= 0:
        return np.full(scores.shape, 1.0 / scores.size)
    return raw / total


def find_anchors(
    times: np.ndarray, relevance: np.ndarray, max_anchors: int, min_gap_s: float,
    first: Sequence[int] = (),
) -> np.ndarray:
    """Relevance peaks with temporal suppression: repeatedly take the most relevant frame not
    within min_gap_s seconds of an anchor already taken. Returns indices into times, most
    relevant first, at most max_anchors. Ties go to the earlier frame. first: frames that are
    anchors before any other (each peak's, find_peaks), in their order; the rest keep clear of
    them."""
    order = np.lexsort((np.arange(len(relevance)), -np.asarray(relevance)))
    anchors: list[int] = [int(i) for i in first][:max_anchors]
    for i in order:
        if len(anchors) >= max_anchors:
            break
        if all(abs(times[i] - times[a]) >= min_gap_s for a in anchors):
            anchors.append(int(i))
    return np.asarray(anchors, dtype=np.int64)


# Questions about several moments: counting them, ordering them, following a change over them.
_SEVERAL_MOMENTS = re.compile(
    r"\b(how many|how often|times|count|each time|every time|again|first|last|before|after"
    r"|order|sequence|earlier|later|change[sd]?|changing)\b", re.IGNORECASE)

# A best frame closer than this (cosine) to the footage's level stands out from nothing: no peaks.
MIN_PEAK_CONTRAST = 0.03


def several_moments(question: str) -> bool:
    """Whether a question is about several moments: it counts ("how many times", "how often"),
    orders ("first", "before", "after", "in which order") or follows a change ("how does it
    change from ... to ...")."""
    return bool(_SEVERAL_MOMENTS.search(question or ""))


def find_peaks(
    times: np.ndarray, relevance: np.ndarray, max_peaks: int, ratio: float, min_gap_s: float
) -> list[Peak]:
    """The moments the relevance over time peaks at, in time order (uncovered: the plan marks
    what it covers).

    The rule: with m the lower quartile of the relevance (the footage's own level: the moments
    may fill half a short video, so not the median) and b the best, a frame belongs to a moment
    when its relevance reaches m + ratio * (b - m), i.e. its height above m is within `ratio` of
    the best one's; such frames less than min_gap_s apart (a dip between them included) are one
    moment, so moments are at least min_gap_s apart. The max_peaks moments with the highest
    peaks are kept (ties: the earlier). None when max_peaks is 0 or b - m < MIN_PEAK_CONTRAST
    (a flat curve: no moment stands out).

    times: (N,) seconds, ascending. relevance: (N,) cosine similarities to the question.
    Each Peak spans its first to last frame above the level; time and score are its best frame's.
    """
    relevance = np.asarray(relevance, dtype=np.float64)
    if max_peaks < 1 or len(relevance) == 0:
        return []
    floor, best = float(np.percentile(relevance, 25)), float(relevance.max())
    if best - floor < MIN_PEAK_CONTRAST:
        return []
    above = np.flatnonzero(relevance >= floor + ratio * (best - floor))
    breaks = np.flatnonzero(np.diff(times[above]) >= min_gap_s) + 1
    peaks = []
    for run in np.split(above, breaks):
        top = int(run[np.argmax(relevance[run])])  # argmax: the earliest of equal frames
        peaks.append(Peak(start=float(times[run[0]]), end=float(times[run[-1]]),
                          time=float(times[top]), score=float(relevance[top])))
    strongest = sorted(peaks, key=lambda p: (-p.score, p.start))[:max_peaks]
    return sorted(strongest, key=lambda p: p.start)


def peak_frames(times: np.ndarray, peaks: Sequence[Peak]) -> list[int]:
    """Indices into times (ascending) of the peaks' best frames, the most relevant first."""
    ranked = sorted(peaks, key=lambda p: (-p.score, p.start))
    return [int(np.searchsorted(times, p.time)) for p in ranked]


def clip_around(t: float, seconds: float, start: float, end: float) -> tuple[float, float]:
    """A clip of `seconds` centred on t, shifted to lie inside [start, end] (the whole video
    when it is shorter). Returns (clip_start, clip_end) seconds."""
    if end - start <= seconds:
        return start, end
    lo = min(max(t - seconds / 2, start), end - seconds)
    return lo, lo + seconds


def _spread(indices: np.ndarray, limit: int) -> np.ndarray:
    """indices, or `limit` of them spread evenly from the first to the last."""
    if len(indices) <= limit:
        return indices
    return indices[np.linspace(0, len(indices) - 1, limit).round().astype(np.int64)]


def coverage_order(
    visual: np.ndarray, n: int, covered: np.ndarray | None = None, candidates: np.ndarray | None = None
) -> np.ndarray:
    """Greedy maximum coverage (facility location) over visual features: repeatedly add the frame
    that most raises sum_j max(0, max_{i picked} cos(v_j, v_i)) over all frames j, i.e. the frame
    that covers most of what is not covered yet.

    visual: (N, D) unit vectors. covered: indices already picked (they cover, are not returned).
    candidates: (N,) bool, frames that may be picked (default all). Returns up to n indices in
    pick order; fewer when the candidates run out.

    Past MAX_COVERAGE_CLIENTS frames, coverage is measured on that many frames spread evenly
    over the video, and picks are drawn from as many evenly spread candidates: the work and the
    (candidates, clients) similarity buffers stay bounded (2 x 2048 x 2048 float32, 32 MB) however
    long the video, and a pick's neighbours a few seconds away cover what it would have.
    """
    count = len(visual)
    allowed = np.ones(count, bool) if candidates is None else candidates.copy()
    if covered is not None and len(covered):
        allowed[np.asarray(covered)] = False
    clients = _spread(np.arange(count), MAX_COVERAGE_CLIENTS)
    rows = _spread(np.flatnonzero(allowed), MAX_COVERAGE_CLIENTS)
    client_vectors = visual[clients].T
    sim = visual[rows] @ client_vectors  # (R, C) float32
    np.maximum(sim, 0.0, out=sim)
    best = np.zeros(len(clients), dtype=sim.dtype)
    if covered is not None and len(covered):
        best = np.maximum(visual[np.asarray(covered)] @ client_vectors, 0.0).max(axis=0)
    open_rows = np.ones(len(rows), bool)
    picks: list[int] = []
    gain_terms = np.empty_like(sim)  # one (R, C) buffer for every round
    while len(picks) < n and open_rows.any():
        np.subtract(sim, best, out=gain_terms)
        np.maximum(gain_terms, 0.0, out=gain_terms)
        gains = gain_terms.sum(axis=1, dtype=np.float64)
        gains[~open_rows] = -1.0
        row = int(np.argmax(gains))
        picks.append(int(rows[row]))
        open_rows[row] = False
        best = np.maximum(best, sim[row])
    return np.asarray(picks, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class _Pick:
    """A segment and the coarse frame that represents it (for visual comparisons)."""

    segment: Segment
    frame: int


def merge_similar_neighbours(picks: list[_Pick], visual: np.ndarray, threshold: float) -> list[_Pick]:
    """Temporal merge (B-VLLM) over picks, walked in time order; weights of merged picks add.

    - overlapping clips become their union (represented by the more relevant anchor);
    - an image inside a clip, or next to a clip whose anchor it looks like (cosine > threshold),
      joins the clip;
    - neighbouring images that look alike (cosine > threshold) are one: the more relevant stays.
    """
    merged: list[_Pick] = []
    for pick in sorted(picks, key=lambda p: (p.segment.start, p.segment.end)):
        if not merged:
            merged.append(pick)
            continue
        prev = merged[-1]
        a, b = prev.segment, pick.segment
        a_clip, b_clip = a.kind is SegmentKind.CLIP, b.kind is SegmentKind.CLIP
        overlap = b.start <= a.end
        similar = float(visual[prev.frame] @ visual[pick.frame]) > threshold
        weight = a.weight + b.weight
        if a_clip and b_clip and overlap:
            frame = prev.frame if a.score >= b.score else pick.frame
            union = replace(a, end=max(a.end, b.end), score=max(a.score, b.score), weight=weight)
            merged[-1] = _Pick(union, frame)
        elif a_clip != b_clip and (overlap or similar):
            clip = prev if a_clip else pick
            merged[-1] = _Pick(replace(clip.segment, weight=weight), clip.frame)
        elif not a_clip and not b_clip and similar:
            keep = prev if a.score >= b.score else pick
            merged[-1] = _Pick(replace(keep.segment, weight=weight), keep.frame)
        else:
            merged.append(pick)
    return merged


def _check(times: np.ndarray, visual: np.ndarray, relevance: np.ndarray, n_slots: int) -> None:
    if n_slots < 1:
        raise ValueError(f"selection: n_slots must be >= 1, got {n_slots}")
    if times.ndim != 1 or len(times) == 0:
        raise ValueError("selection: need at least one coarse frame time, shape (N,)")
    if visual.shape[0] != len(times) or relevance.shape != times.shape:
        raise ValueError(
            f"selection: shapes disagree: times {times.shape}, visual {visual.shape},"
            f" relevance {relevance.shape}"
        )


def select_uniform(times, visual, relevance, start, end, config, n_slots,
                   peaks=()) -> list[Segment]:
    """Baseline: n_slots images at evenly spaced times over [start, end] (exact times, not
    snapped to coarse frames: this is what a plain uniform sampler shows), equal weights."""
    picks = bin_centres(start, end, n_slots)
    nearest = np.abs(np.asarray(times)[None, :] - picks[:, None]).argmin(axis=1) if len(times) else None
    return [
        Segment(
            start=float(t),
            end=float(t),
            kind=SegmentKind.IMAGE,
            score=float(relevance[nearest[k]]) if nearest is not None else 0.0,
            weight=1.0 / n_slots,
            source="uniform",
        )
        for k, t in enumerate(picks)
    ]


def select_uniform_video(times, visual, relevance, start, end, config, n_slots,
                         peaks=()) -> list[Segment]:
    """Baseline: the whole of [start, end] as one clip, as a plain uniform sampler feeds a VLM's
    video input (frames paired into temporal patches, where single images each fill a patch):
    the budget (allocate) spreads as many frames as it pays at min_pixels evenly over the video,
    up to clip_fps of them a second, then sizes them up with what is left. n_slots and the
    relevance are not used. A video without duration is one image at start."""
    score = float(np.mean(relevance)) if len(relevance) else 0.0
    kind = SegmentKind.CLIP if end > start else SegmentKind.IMAGE
    return [Segment(start=float(start), end=float(end if end > start else start), kind=kind,
                    score=score, weight=1.0, source="uniform_video")]


def select_query(times, visual, relevance, start, end, config, n_slots,
                 peaks=()) -> list[Segment]:
    """QuoTA-style: the n_slots coarse frames most relevant to the question, as images weighted
    by their relevance weights."""
    _check(times, visual, relevance, n_slots)
    weights = relevance_weights(relevance, config.weighting, config.temperature)
    top = np.lexsort((np.arange(len(relevance)), -relevance))[:n_slots]
    share = weights[top].sum()
    segments = [
        Segment(
            start=float(times[i]),
            end=float(times[i]),
            kind=SegmentKind.IMAGE,
            score=float(relevance[i]),
            weight=float(weights[i] / share) if share > 0 else 1.0 / len(top),
            source="query",
        )
        for i in top
    ]
    return sorted(segments, key=lambda s: s.start)


def _anchor_clips(times, relevance, start, end, config, n_anchors, peaks=()) -> list[_Pick]:
    """Key clips (F2C) around relevance peaks, weighted by the anchors' relevance weights: one
    on each of `peaks` first (up to n_anchors, past max_anchors if there are more peaks), then
    the most relevant frames clear of them, up to min(max_anchors, n_anchors) in all."""
    count = min(max(config.max_anchors, len(peaks)), n_anchors)
    anchors = find_anchors(times, relevance, count, config.min_anchor_gap_s,
                           first=peak_frames(times, peaks))
    weights = relevance_weights(relevance[anchors], config.weighting, config.temperature)
    picks = []
    for i, weight in zip(anchors, weights):
        lo, hi = clip_around(float(times[i]), config.clip_seconds, start, end)
        kind = SegmentKind.CLIP if hi > lo else SegmentKind.IMAGE
        segment = Segment(lo, hi, kind, score=float(relevance[i]), weight=float(weight), source="anchor")
        picks.append(_Pick(segment, int(i)))
    return picks


def select_keyclips(times, visual, relevance, start, end, config, n_slots,
                    peaks=()) -> list[Segment]:
    """Key clips: up to min(max_anchors, n_slots) clips of clip_seconds around relevance peaks
    at least min_anchor_gap_s apart, one on each of `peaks` first; overlapping clips are
    joined."""
    _check(times, visual, relevance, n_slots)
    clips = merge_similar_neighbours(
        _anchor_clips(times, relevance, start, end, config, n_slots, peaks), visual,
        threshold=np.inf,
    )
    return [p.segment for p in clips]


def select_coverage(times, visual, relevance, start, end, config, n_slots,
                    peaks=()) -> list[Segment]:
    """Space-aware coverage: n_slots images chosen by greedy maximum coverage of the visual
    features, equal weights."""
    _check(times, visual, relevance, n_slots)
    picks = coverage_order(np.asarray(visual, dtype=np.float32), n_slots)
    segments = [
        Segment(
            float(times[i]), float(times[i]), SegmentKind.IMAGE,
            score=float(relevance[i]), weight=1.0 / len(picks), source="coverage",
        )
        for i in picks
    ]
    return sorted(segments, key=lambda s: s.start)


def select_balanced(times, visual, relevance, start, end, config, n_slots,
                    peaks=()) -> list[Segment]:
    """Relevance share + coverage share + merge.

    round(coverage_share * n_slots) slots (at most n_slots - 1) go to coverage images, the rest to
    key clips at relevance peaks, one on each of `peaks` first (coverage gives up slots when
    there are more peaks than the rest holds, down to none). Coverage starts from what the clips already show (their frames
    count as covered and are not candidates), then neighbours that look alike are merged. Finally
    the clips share 1 - coverage_share of the budget by relevance weight and the surviving
    coverage images share coverage_share equally (the clips take everything when none survive).
    """
    _check(times, visual, relevance, n_slots)
    visual = np.asarray(visual, dtype=np.float32)
    n_cover = min(n_slots - 1, round(config.coverage_share * n_slots),
                  n_slots - min(len(peaks), n_slots))
    clips = _anchor_clips(times, relevance, start, end, config, n_slots - n_cover, peaks)
    inside = np.zeros(len(times), bool)
    for pick in clips:
        inside |= (times >= pick.segment.start) & (times <= pick.segment.end)
        inside[pick.frame] = True
    cover_frames = coverage_order(visual, n_cover, covered=np.flatnonzero(inside), candidates=~inside)
    covers = [
        _Pick(
            Segment(float(times[i]), float(times[i]), SegmentKind.IMAGE,
                    score=float(relevance[i]), weight=0.0, source="coverage"),
            int(i),
        )
        for i in cover_frames
    ]
    merged = merge_similar_neighbours(clips + covers, visual, config.merge_threshold)

    anchors = [p for p in merged if p.segment.source == "anchor"]
    cover = [p for p in merged if p.segment.source != "anchor"]
    anchor_share = 1.0 - config.coverage_share if cover else 1.0
    anchor_weights = relevance_weights(
        np.array([p.segment.score for p in anchors]), config.weighting, config.temperature
    )
    segments = [replace(p.segment, weight=float(anchor_share * w)) for p, w in zip(anchors, anchor_weights)]
    segments += [replace(p.segment, weight=(1.0 - anchor_share) / len(cover)) for p in cover]
    return sorted(segments, key=lambda s: (s.start, s.end))


Selector = Callable[..., list[Segment]]

SELECTORS: dict[str, Selector] = {
    "uniform": select_uniform,
    "uniform_video": select_uniform_video,
    "query": select_query,
    "keyclips": select_keyclips,
    "coverage": select_coverage,
    "balanced": select_balanced,
}


def get_selector(name: str) -> Selector:
    return lookup(SELECTORS, name, "selector")

