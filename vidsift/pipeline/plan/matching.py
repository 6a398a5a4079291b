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

Two more kinds keep a fused vector from hiding what matches: a frame's picture apart from the
text fused into it (picture_scores: unrelated credits behind an inset photo no longer bury it),
and a sign's name apart from its value (text_parts: "SECRET WORD" of "SECRET WORD: ORCHID").
"""

from __future__ import annotations

import re

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


def picture_scores(fused: np.ndarray, read: np.ndarray, query: np.ndarray) -> np.ndarray:
    """(K,) each frame's picture alone (its labels, without its on-screen text) scored against
    the question, from its fused vector and the vector of the text fused into it.

    The offline embedder fuses a frame that shows text as f = unit(l + t), l and t the unit
    vectors of its labels and of its text as OCR read it (workers.embed.offline). Text that has
    nothing to do with the question (a credits roll behind an inset photo) pulls f away from a
    picture that answers it: with l . q = 0.32 and t . q ~ 0, f . q ~ 0.22, under frames
    without text. l is recovered exactly: |l| = 1 gives |l + t| = 2 (f . t), so
    l = 2 (f . t) f - t and l . q = 2 (f . t)(f . q) - t . q; a frame's picture is then its own
    score kind, on the fused scale already (a frame without text is scored by its labels alone).

    fused: (K, D) unit fused vectors of frames that show text. read: (K, D) unit vectors of
    their texts as fused (the raw OCR string, not respaced). query: (D,) or (M, D) unit rows
    (several phrasings: the best). Returns (K,) float64 cosines."""
    fused = np.asarray(fused)
    read = np.asarray(read, dtype=fused.dtype)
    query = np.atleast_2d(np.asarray(query, dtype=fused.dtype))
    if fused.shape != read.shape or (fused.size and query.shape[1] != fused.shape[1]):
        raise ValueError(f"picture_scores: fused {fused.shape}, read {read.shape},"
                         f" query {query.shape} disagree")
    overlap = np.einsum("kd,kd->k", fused, read).astype(np.float64)[:, None]
    scores = 2.0 * overlap * (fused @ query.T) - read @ query.T  # (K, M)
    return scores.max(axis=1).astype(np.float64)


# A colon that joins a sign's name to its value ("SECRET WORD: ORCHID"), not one inside a time
# or ratio ("7:30").
_NAME_VALUE = re.compile(r"(?<!\d):|:(?!\d)")


def text_parts(text: str) -> list[str]:
    """The parts of an on-screen text that names what it shows before a colon: "SECRET WORD:
    ORCHID" -> ["SECRET WORD", "ORCHID"]; [] for a text of one part. A question asks for the
    value, so it cannot share the value's words: what it can match is the name, and the whole
    text's vector is diluted by the value (MiniLM: "What password is displayed?" 0.21 against
    the whole sign, 0.33 against SECRET WORD). Each part is scored beside the whole and the
    text keeps its best (evidence.text_relevance, flows.index.match_clips)."""
    parts = [" ".join(p.split()) for p in _NAME_VALUE.split(text)]
    parts = [p for p in dict.fromkeys(parts) if p]
    return parts if len(parts) > 1 else []
