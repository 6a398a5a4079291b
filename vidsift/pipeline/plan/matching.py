"""Scores of different kinds on one scale, so that a strong match of any kind wins.

A question is scored against a video in several ways, each a cosine to the question in the text
embedder's space: each coarse frame's fused vector (its labels and on-screen text together),
each distinct on-screen text on its own, each transcript line on its own (sentence against
sentence). The kinds sit at different raw levels: with all-MiniLM-L6-v2 a question scores
~0.35 against unrelated frames' fused vectors (their labels are words too) but 0.21 against the
one sign that answers it in other words ("What password is displayed?" / "SECRET WORD: ORCHID"),
so the raw maximum buries the text match. What makes a match stand out is its height above the
other scores of its own kind for this question, so each kind is standardised over its own
population (the memory's distinct texts, its lines; a z-score, its spread floored at
MIN_SPREAD) and put back on the reference kind's scale (the frames' fused scores: their mean
plus z times their spread), and a score is the better of its raw and its rescaled value. The
reference kind itself is unchanged, so a video without text or speech plans exactly as before,
and the result stays a cosine-like number the planner's weights and peak rule read as before.
"""

from __future__ import annotations

import numpy as np

# The least spread (cosine) a kind's scores are standardised by: fewer than a handful of texts,
# or texts that all score alike, say little about what an unusual score is.
MIN_SPREAD = 0.05


def on_scale_of(scores: np.ndarray, reference: np.ndarray,
                min_spread: float = MIN_SPREAD) -> np.ndarray:
    """(K,) scores of one kind expressed on the (N,) reference scores' scale:
    mean(reference) + std(reference) * (scores - mean(scores)) / max(std(scores), min_spread).

    The population of a kind is the K scores given (one per distinct text, per line); an empty
    one or an empty reference gives the scores as they are. Returns (K,) float64."""
    scores = np.asarray(scores, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if scores.size == 0 or reference.size == 0:
        return scores.copy()
    spread = max(float(scores.std()), min_spread)
    return float(reference.mean()) + float(reference.std()) * (scores - scores.mean()) / spread


def matched(scores: np.ndarray, reference: np.ndarray,
            min_spread: float = MIN_SPREAD) -> np.ndarray:
    """(K,) each score of a kind as the better of its raw value and its value on the reference
    scale (on_scale_of): a strong match of its kind counts as strong as the reference's best;
    a weak one never drops below its raw cosine. Returns (K,) float64."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.maximum(scores, on_scale_of(scores, reference, min_spread))
