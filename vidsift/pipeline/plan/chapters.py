"""Chapters from a video's memory: cut its timeline where what is seen, read or said changes, and
title each chapter with what was read or heard in it. No decode, no model: pure functions over
the stored coarse frames (and the transcript lines' vectors when speech is on).

Times are seconds on the video's own timeline. The coarse frames come in time order: times (N,),
visual (N, Dv) and text (N, Dt) unit rows (text: labels and on-screen text, embedded), and their
descriptions ("labels: a, b | text: ..."). A frame stands for the time from its PTS to the next
frame's (the first from the video's start, the last to its end).

The cut is an optimal segmentation (dynamic programming) of the frames' features, every feature
a unit vector per modality: the chapters minimise the time-weighted squared distance of each
frame to its chapter's mean, under the length limits; with no count given, a chapter is added
while it explains more of the change than the frame-to-frame noise would by chance. Boundaries
then snap to a shot cut, the start of a transcript line or a keyframe, in that order, where one
is near and the lengths still hold.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vidsift.pipeline.plan.clips import cut_strengths

# At most this many units (runs of consecutive frames) in the segmentation: the cost table is
# units x units, so a 2-hour video is cut at ~5 s resolution before the boundaries snap.
MAX_UNITS = 1500
# With no count, at most this many chapters are weighed (more when max_s forces more).
MAX_AUTO_CHAPTERS = 60
# A boundary moves to a shot cut, line start or keyframe at most this far (seconds), or one unit.
SNAP_S = 3.0
# A frame between transcript lines hears the nearest line up to this far (seconds): a pause
# inside a talk is still the talk; further than this it hears nothing.
SPEECH_REACH_S = 5.0
# With no count, a chapter is kept when its cut lowers the cost by more than this many times the
# noise (how much the content varies within a steady stretch, _noise) over a shortest chapter:
# the two sides of a cut must differ more than the content does inside each. Calibrated on
# bench/summary.py's two videos (both exact from 0.5 to 1.0; the lecture falls to one chapter
# from 1.15).
AUTO_PENALTY = 0.75
NOISE_FLOOR = 1e-3  # per modality, in squared distance of unit vectors (0..4)


@dataclass(frozen=True, slots=True)
class SpeechLines:
    """What is said, for chapters: spans (K, 2) start/end seconds of the transcript lines, in
    time order; vectors (K, D) their unit text vectors."""

    spans: np.ndarray
    vectors: np.ndarray


def frame_cells(times: np.ndarray, start: float, end: float) -> np.ndarray:
    """(N + 1,) edges of the time each frame stands for: start, times[1:], end (ascending)."""
    times = np.asarray(times, dtype=np.float64)
    edges = np.concatenate([[start], times[1:], [end]])
    return np.maximum.accumulate(edges)


def speech_features(edges: np.ndarray, speech: SpeechLines) -> np.ndarray:
    """(N, D) per frame cell [edges[i], edges[i+1]): the unit mean of the vectors of the lines
    said in it, weighted by the time they share; a cell no line overlaps takes the nearest line
    within SPEECH_REACH_S, else zeros."""
    spans = np.asarray(speech.spans, dtype=np.float64).reshape(-1, 2)
    vectors = np.asarray(speech.vectors, dtype=np.float64)
    lo, hi = edges[:-1, None], edges[1:, None]
    shared = np.clip(np.minimum(hi, spans[None, :, 1]) - np.maximum(lo, spans[None, :, 0]), 0, None)
    features = shared @ vectors
    silent = shared.sum(axis=1) == 0
    if silent.any() and len(spans):
        middle = (edges[:-1] + edges[1:])[silent] / 2
        gap = np.maximum(spans[None, :, 0] - middle[:, None], middle[:, None] - spans[None, :, 1])
        gap = np.maximum(gap, 0)
        nearest = np.argmin(gap, axis=1)
        near = gap[np.arange(len(nearest)), nearest] <= SPEECH_REACH_S
        rows = np.flatnonzero(silent)[near]
        features[rows] = vectors[nearest[near]]
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return np.divide(features, norms, out=np.zeros_like(features), where=norms > 0)


def _units(edges: np.ndarray, unit_s: float) -> np.ndarray:
    """Frame indices where units start (ascending, from 0) plus N: a new unit starts at a frame
    once the current one spans unit_s seconds (every frame is a unit when unit_s is 0)."""
    n = len(edges) - 1
    starts = [0]
    for i in range(1, n):
        if edges[i] - edges[starts[-1]] >= unit_s:
            starts.append(i)
    return np.array([*starts, n])


def _segment_costs(modalities: Sequence[np.ndarray], weights: np.ndarray,
                   bounds: np.ndarray) -> np.ndarray:
    """(U+1, U+1) cost[a, b] of one chapter from unit a to unit b (a < b): the time-weighted sum
    of squared distances of its frames' features to their weighted mean, summed over the
    modalities ((N, D) each: the cost of a concatenation is the sum of its parts'); inf for
    a >= b. Prefix sums over units, one Gram matrix per modality."""
    w = np.concatenate([[0.0], np.cumsum(np.add.reduceat(weights, bounds[:-1]))])
    span = w[None, :] - w[:, None]
    cost = np.zeros(span.shape)
    unit_w = np.diff(w)
    for features in modalities:
        x = np.asarray(features)
        raw = np.add.reduceat(x * weights[:, None].astype(x.dtype), bounds[:-1],
                              axis=0).astype(np.float64)
        squares = np.add.reduceat(weights * np.einsum("nd,nd->n", x, x, dtype=np.float64),
                                  bounds[:-1])
        # centred on the weighted mean c (smaller sums, same costs): per unit,
        # sum w|x-c|^2 = sum w|x|^2 - 2c.sum wx + (sum w)|c|^2
        mean = raw.sum(axis=0) / w[-1]
        squares = squares - 2 * raw @ mean + unit_w * (mean @ mean)
        sums = raw - unit_w[:, None] * mean
        first = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(sums, axis=0)])
        sq = np.concatenate([[0.0], np.cumsum(squares)])
        norms = np.einsum("ud,ud->u", first, first)
        moment = norms[None, :] + norms[:, None] - 2 * (first @ first.T)
        with np.errstate(divide="ignore", invalid="ignore"):
            cost += (sq[None, :] - sq[:, None]) - moment / span
    cost = np.maximum(cost, 0.0)
    cost[span <= 0] = np.inf
    return cost


def _optimal_cuts(cost: np.ndarray, allowed: np.ndarray, k_max: int) -> tuple[list[float], list]:
    """Dynamic programming over units: for k = 1..k_max chapters, the least total cost of
    chapters tiling units 0..U whose lengths are allowed ((U+1, U+1) bool) -> (costs per k, inf
    where k chapters cannot tile; backpointers to read the cut back)."""
    cost = np.where(allowed, cost, np.inf)
    best = cost[0].copy()
    totals, back = [float(best[-1])], [None]
    for _ in range(2, k_max + 1):
        total = best[:, None] + cost
        arg = np.argmin(total, axis=0)
        best = total[arg, np.arange(total.shape[1])]
        totals.append(float(best[-1]))
        back.append(arg)
    return totals, back


def _read_cuts(back: list, k: int, last: int) -> list[int]:
    cuts, at = [], last
    for step in range(k - 1, 0, -1):
        at = int(back[step][at])
        cuts.append(at)
    return cuts[::-1]


def _noise(features: np.ndarray, times: np.ndarray, lag_s: float) -> float:
    """How much a modality varies inside a stretch of steady content: half the squared
    distance between frames lag_s apart, averaged over the smallest three quarters of the
    pairs (the rest may straddle a change), at least NOISE_FLOOR."""
    later = np.searchsorted(times, times + lag_s)
    pairs = np.flatnonzero(later < len(times))
    if not len(pairs):
        return NOISE_FLOOR
    steps = features[later[pairs]] - features[pairs]
    half = np.sort(np.einsum("nd,nd->n", steps, steps, dtype=np.float64)) / 2
    return max(float(half[: max(1, (3 * len(half)) // 4)].mean()), NOISE_FLOOR)


def snap_targets(times: np.ndarray, visual: np.ndarray, cut_threshold: float,
                 keyframe_times: Sequence[float], speech: SpeechLines | None) -> list[np.ndarray]:
    """Where boundaries like to sit, best first: shot cuts (a cosine distance above
    cut_threshold between neighbouring frames, at the last keyframe between them, else at the
    second frame), transcript line starts, keyframes. Each (M,) seconds, ascending."""
    times = np.asarray(times, dtype=np.float64)
    keyframes = np.sort(np.asarray(keyframe_times, dtype=np.float64))
    shots = []
    for i in np.flatnonzero(cut_strengths(visual) > cut_threshold):
        inside = keyframes[(keyframes > times[i]) & (keyframes <= times[i + 1])]
        shots.append(float(inside[-1]) if len(inside) else float(times[i + 1]))
    lines = (np.asarray(speech.spans, dtype=np.float64).reshape(-1, 2)[:, 0]
             if speech is not None else np.zeros(0))
    return [np.array(sorted(shots)), np.sort(lines), keyframes]


def _snap(bounds: list[float], targets: list[np.ndarray], radius: float, min_s: float,
          max_s: float) -> list[float]:
    """Each interior boundary moved to the nearest target of the first kind with one within
    radius, when both chapters beside it stay within [min_s, max_s]."""
    bounds = list(bounds)
    for j in range(1, len(bounds) - 1):
        for kind in targets:
            near = kind[np.abs(kind - bounds[j]) <= radius]
            placed = False
            for at in sorted(near, key=lambda t: (abs(t - bounds[j]), t)):
                before, after = at - bounds[j - 1], bounds[j + 1] - at
                if min_s <= before <= max_s and min_s <= after <= max_s:
                    bounds[j], placed = float(at), True
                    break
            if placed:
                break
    return bounds


def plan_chapters(
    times: np.ndarray,
    visual: np.ndarray,
    text: np.ndarray,
    start: float,
    end: float,
    min_s: float,
    max_s: float,
    count: int | None = None,
    speech: SpeechLines | None = None,
    keyframe_times: Sequence[float] = (),
    cut_threshold: float = 0.2,
) -> list[tuple[float, float]]:
    """Cut [start, end] seconds into chapters.

    times (N,) ascending PTS of the coarse frames; visual (N, Dv), text (N, Dt) their unit
    vectors; speech: the transcript lines and their vectors, or None. count: the number of
    chapters wanted (fewer when the lengths do not allow it), None: chosen from the change
    itself. Chapters last min_s to max_s seconds; a video shorter than 2 * min_s (or than
    max_s with no change worth a cut) is one chapter, and where the lengths cannot all hold
    max_s wins. Deterministic: the same inputs give the same chapters.

    Returns (start, end) pairs tiling [start, end]: ascending, each starting where the previous
    ends, the first at start, the last at end.
    """
    if not end > start:
        raise ValueError(f"empty time range: start {start} >= end {end}")
    if not 0 < min_s <= max_s:
        raise ValueError(f"need 0 < min_s <= max_s, got min_s={min_s}, max_s={max_s}")
    if count is not None and count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    times = np.asarray(times, dtype=np.float64)
    if len(times) != len(visual) or len(times) != len(text):
        raise ValueError(f"{len(times)} times, {len(visual)} visual and {len(text)} text vectors")
    duration = end - start
    k_lo = max(1, math.ceil(duration / max_s - 1e-9))
    k_hi = max(k_lo, int(duration // min_s))
    if len(times) < 2 or k_hi == 1:
        return _tile([start, end]) if k_lo == 1 else _uniform(start, end, k_lo)

    edges = frame_cells(times, start, end)
    weights = np.diff(edges)
    parts = [np.asarray(visual), np.asarray(text)]
    if speech is not None and len(speech.spans):
        parts.append(speech_features(edges, speech))
    bounds = _units(edges, duration / MAX_UNITS)
    unit_times = edges[bounds]
    span = unit_times[None, :] - unit_times[:, None]
    slack = 1e-6
    allowed = (span >= min_s - slack) & (span <= max_s + slack)
    wanted = k_hi if count is None else max(k_lo, min(count, k_hi))
    k_max = min(k_hi, wanted if count is not None else max(k_lo, MAX_AUTO_CHAPTERS))
    totals, back = _optimal_cuts(_segment_costs(parts, weights, bounds), allowed, k_max)
    feasible = [k for k in range(1, k_max + 1) if math.isfinite(totals[k - 1])]
    if not feasible:  # the units cannot meet both limits: max wins
        return _uniform(start, end, k_lo)
    if count is not None:
        k = min(feasible, key=lambda n: (abs(n - wanted), n))
    else:
        noise = sum(_noise(part, times, min_s / 2) for part in parts)
        penalty = AUTO_PENALTY * noise * min_s
        k = min(feasible, key=lambda n: (totals[n - 1] + penalty * n, n))
    cut_units = _read_cuts(back, k, len(bounds) - 1)
    chosen = [start, *(float(unit_times[u]) for u in cut_units), end]
    targets = snap_targets(times, visual, cut_threshold, keyframe_times, speech)
    radius = max(SNAP_S, duration / MAX_UNITS)
    return _tile(_snap(chosen, targets, radius, min_s, max_s))


def _tile(bounds: list[float]) -> list[tuple[float, float]]:
    return list(zip(bounds[:-1], bounds[1:]))


def _uniform(start: float, end: float, k: int) -> list[tuple[float, float]]:
    """k chapters of equal length over [start, end]."""
    return _tile([start + (end - start) * j / k for j in range(k)] + [end])


def uniform_chapters(start: float, end: float, k: int) -> list[tuple[float, float]]:
    """The baseline: k chapters of equal length tiling [start, end] seconds."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return _uniform(start, end, k)


# Words a title never keeps: function words and fillers of speech.
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each even every few for from
further get gets got had has have having he her here hers him his how i if in into is it its
itself just know let like lot made make many may me might more most much must my no nor not now
of off on once one only or other our ours out over own really right said same say see she should
so some such take than that the their them then there these they thing things think this those
through to too two under until up us very was way we well were what when where which while who
whom why will with would yeah yes you your yours going want okay oh um uh actually called next
first second third new use used using three four five time times today people""".split())
TITLE_WORDS = 4  # keywords in a title made of what is said
TITLE_LABELS = 2  # labels in a title made of what is seen
TITLE_CHARS = 80  # a title read off the screen is cut at a word near this length


@dataclass(frozen=True, slots=True)
class ChapterTitle:
    """A chapter's extractive title and where it came from: source "text" (read on screen),
    "speech" (keywords of what is said), "labels" (what the frames were recognised as) or ""
    (nothing was read or heard); text: the distinct on-screen texts, in order; keywords: the
    speech keywords, best first; labels: the frames' commonest labels, commonest first."""

    title: str
    source: str
    text: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()


def parse_description(description: str) -> tuple[list[str], str]:
    """The offline embedder's "labels: a, b | text: ..." -> (labels, on-screen text); any other
    backend's description is taken as text."""
    labels, text = [], ""
    for part in description.split(" | "):
        key, sep, value = part.partition(": ")
        if sep and key == "labels":
            labels = [name.strip() for name in value.split(",") if name.strip()]
        elif sep and key == "text":
            text = " ".join(value.split())
        elif part.strip():
            text = " ".join(part.split())
    return labels, text


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z][a-z'-]+", text.lower())
            if len(w) > 2 and w not in STOPWORDS]


def _tf_idf(counts: list[Counter]) -> list[list[tuple[float, str]]]:
    """Each chapter's terms scored count x idf over the chapters (a term said everywhere names
    no chapter), best first, ties in alphabetical order."""
    documents = Counter(term for c in counts for term in c)
    total = len(counts)
    return [sorted(((n * math.log((1 + total) / documents[term]), term) for term, n in c.items()),
                   key=lambda st: (-st[0], st[1])) for c in counts]


def _shorten(text: str, limit: int = TITLE_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return (cut or text[:limit]) + "…"


def chapter_titles(descriptions: Sequence[str], members: Sequence[np.ndarray],
                   speech: Sequence[str] = ()) -> list[ChapterTitle]:
    """Titles from what was read or heard in each chapter, no invented words.

    descriptions: N frame descriptions; members[c]: the indices of chapter c's frames; speech[c]:
    what is said in chapter c ("" or absent: nothing). The title is, first found: the on-screen
    text read most often in the chapter when it is not read in every chapter; else the
    chapter's most distinctive spoken words (count x idf over the chapters); else any text read;
    else its commonest distinctive labels; else "" (source "")."""
    parsed = [parse_description(d) for d in descriptions]
    count = len(members)
    texts = [Counter(parsed[int(i)][1] for i in idx if parsed[int(i)][1]) for idx in members]
    labels = [Counter(name for i in idx for name in parsed[int(i)][0]) for idx in members]
    spoken = [Counter(_words(speech[c] if c < len(speech) else "")) for c in range(count)]
    text_in = Counter(t for c in texts for t in c)
    keywords, label_scores = _tf_idf(spoken), _tf_idf(labels)
    titles = []
    for c, idx in enumerate(members):
        order = list(dict.fromkeys(parsed[int(i)][1] for i in idx if parsed[int(i)][1]))
        read = sorted(texts[c].items(), key=lambda tn: (-tn[1], order.index(tn[0])))
        distinct = [t for t, _ in read if text_in[t] == 1]
        words = tuple(term for score, term in keywords[c] if score > 0)[:TITLE_WORDS]
        if count == 1:  # no other chapter to tell it from: the commonest words
            words = tuple(term for term, _ in sorted(spoken[c].items(),
                                                     key=lambda tn: (-tn[1], tn[0])))[:TITLE_WORDS]
        seen = tuple(name for _, name in sorted(((-n, name) for name, n in labels[c].items())))
        best_labels = [term for score, term in label_scores[c] if score > 0] or list(seen)
        if distinct:
            title, source = _shorten(distinct[0]), "text"
        elif words:
            title, source = ", ".join(words), "speech"
        elif read:
            title, source = _shorten(read[0][0]), "text"
        elif best_labels:
            title, source = ", ".join(best_labels[:TITLE_LABELS]), "labels"
        else:
            title, source = "", ""
        titles.append(ChapterTitle(title, source, tuple(order), words, seen[:5]))
    return titles


def representative_frame(visual: np.ndarray, idx: np.ndarray) -> int:
    """The index (into visual, (N, D) unit rows) of the frame among idx closest to their mean:
    the chapter's thumbnail (the first of equals)."""
    rows = np.asarray(visual[idx], dtype=np.float64)
    return int(idx[int(np.argmax(rows @ rows.mean(axis=0)))])
