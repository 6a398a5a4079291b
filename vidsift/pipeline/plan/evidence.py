"""Evidence planning: coarse frames in, a TokenSet out (score -> select -> merge -> allocate).

The pure composition that the ask flow and the needle benchmark share; no decoding, no models:
the caller has already embedded the coarse frames and the question.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from vidsift.core.config import BudgetConfig, SelectionConfig
from vidsift.core.errors import BudgetError
from vidsift.core.types import Peak, TokenSet
from vidsift.core.vision import VISION_SPECS, VisionSpec
from vidsift.pipeline.plan.budget import frame_grids, get_budget_policy, split_budget
from vidsift.pipeline.plan.chapters import parse_description
from vidsift.pipeline.plan.matching import matched, picture_scores, text_parts
from vidsift.pipeline.plan.selection import find_peaks, get_selector, several_moments


def frame_relevance(text_vectors: np.ndarray, query_vector: np.ndarray | None) -> np.ndarray:
    """Cosine similarity of each coarse frame to the question.

    text_vectors: (N, Dt) unit vectors, each frame in the embedder's text-queryable space.
    query_vector: (Dt,) unit vector of the question, or (M, Dt) for several phrasings (a frame
    scores its best match), or None (no question: all zeros). Returns (N,) float64.
    """
    frames = np.asarray(text_vectors)
    if query_vector is None:
        return np.zeros(len(frames))
    # in the vectors' own precision (float32): no float64 copy of a long video's (N, Dt)
    query = np.atleast_2d(np.asarray(query_vector, dtype=frames.dtype))
    if frames.ndim != 2 or query.shape[1] != frames.shape[1]:
        raise ValueError(
            f"frame_relevance: text vectors {frames.shape} and query {query.shape} disagree"
        )
    return (frames @ query.T).max(axis=1).astype(np.float64)


def speech_relevance(
    times: np.ndarray,
    relevance: np.ndarray,
    spans: np.ndarray,
    similarity: np.ndarray,
    reach_s: float,
) -> np.ndarray:
    """Each coarse frame's relevance raised by what is said around it.

    times: (N,) seconds of the coarse frames. relevance: (N,) their own relevance to the question
    (frame_relevance). spans: (K, 2) start/end seconds of the transcript's segments. similarity:
    (K,) each segment's cosine similarity to the question, in the same text space. reach_s: a
    frame at t stands for [t - reach_s, t + reach_s] (half the coarse pass's widest gap, so a
    line said between two frames still reaches one). Returns (N,) float64: per frame, the max
    of its own relevance and the similarity of the best segment sharing time with its stretch;
    a frame no segment reaches keeps its own. Both scores are cosines to the same question
    vector, so the max compares like with like: speech only ever adds candidates, and the
    visual order of frames nothing is said about is unchanged.
    """
    times = np.asarray(times, dtype=np.float64)
    raised = np.asarray(relevance, dtype=np.float64).copy()
    spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
    similarity = np.asarray(similarity, dtype=np.float64)
    if len(spans) != len(similarity) or len(raised) != len(times):
        raise ValueError(f"speech_relevance: {len(spans)} spans but {len(similarity)} similarities,"
                         f" {len(times)} times but {len(raised)} relevances")
    order = np.argsort(times, kind="stable")
    sorted_times = times[order]
    for (start, end), score in zip(spans, similarity):
        first = np.searchsorted(sorted_times, start - reach_s, side="left")
        last = np.searchsorted(sorted_times, end + reach_s, side="right")
        reached = order[first:last]
        raised[reached] = np.maximum(raised[reached], score)
    return raised


def lines_near_segments(
    spans: np.ndarray, segments, reach_s: float
) -> list[int]:
    """Indices of the transcript lines said during the planned evidence, in their order.

    spans: (K, 2) start/end seconds of the lines. segments: PlannedSegments (start/end seconds).
    A line counts when it shares time with [segment.start - reach_s, segment.end + reach_s]
    (ends included): the same reach speech_relevance gives a coarse frame, so a line that raised
    a chosen frame is among them."""
    spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
    near = np.zeros(len(spans), dtype=bool)
    for segment in segments:
        near |= (spans[:, 0] <= segment.end + reach_s) & (spans[:, 1] >= segment.start - reach_s)
    return np.flatnonzero(near).tolist()


def slot_count(
    budget: BudgetConfig, frame_size: tuple[int, int], model: str | None = None
) -> int:
    """How many segments the selector plans for: one per budget.tokens_per_slot tokens, or per
    full-size frame when the video's frames are smaller than that (no upscaling), and never more
    than the budget can pay at min_pixels. At least 1."""
    spec = VISION_SPECS[model or budget.model]
    grids = frame_grids(frame_size, budget.min_pixels, budget.max_pixels, spec)
    if not grids:
        return 1
    floor_cost = grids[0][0] * grids[0][1]
    cap_cost = grids[-1][0] * grids[-1][1]
    per_slot = min(budget.tokens_per_slot, cap_cost)
    return max(1, min(budget.tokens // per_slot, budget.tokens // floor_cost))


@dataclass(frozen=True, slots=True, eq=False)
class TextEvidence:
    """The on-screen text of a video's coarse frames, each distinct text embedded on its own
    (sentence against sentence: a frame's fused vector mixes its text with its labels, which
    blurs a question asked in other words). frame_text: (N,) int, per coarse frame the row of
    `vectors` holding its text, -1 where it shows none; vectors: (T, Dt) unit vectors of the T
    distinct texts in the question's space. frame_read, read_vectors: the same per frame for
    the texts as OCR read them (before plan.words respaced them: what the embedder fused into
    the frame's vector), or None; with them a frame's picture is scored on its own too
    (plan.matching.picture_scores)."""

    frame_text: np.ndarray
    vectors: np.ndarray
    frame_read: np.ndarray | None = None
    read_vectors: np.ndarray | None = None
    # (P,) the text (row of vectors) each part belongs to, (P, Dt) the parts' vectors
    # (plan.matching.text_parts: a sign's name and value apart); a text scores its best
    part_text: np.ndarray | None = None
    part_vectors: np.ndarray | None = None


def distinct_texts(descriptions) -> tuple[np.ndarray, list[str]]:
    """Frame descriptions ("labels: a, b | text: ..." from the offline embedder) -> ((N,) int
    per frame the index of its on-screen text in the returned list, -1 where it shows none;
    the distinct texts in order of first appearance, their words spaced by
    plan.words.readable_text: OCR glues them). A caption held on screen is one text."""
    from vidsift.pipeline.plan.words import readable_text

    rows: dict[str, int] = {}
    frame_text = np.full(len(descriptions), -1, dtype=np.int64)
    for i, description in enumerate(descriptions):
        text = readable_text(parse_description(description)[1]) if description else ""
        if text:
            frame_text[i] = rows.setdefault(text, len(rows))
    return frame_text, list(rows)


def on_screen_texts(descriptions, embed_text) -> TextEvidence | None:
    """A memory's on-screen texts as plan_evidence scores them: each distinct text respaced
    (distinct_texts), its parts (plan.matching.text_parts) and each text as OCR read it,
    embedded in one embed_text call (list[str] -> (n, Dt) unit rows), a string that recurs
    once. None where no frame shows text."""
    frame_text, texts = distinct_texts(descriptions)
    if not texts:
        return None
    rows: dict[str, int] = {}
    frame_read = np.full(len(descriptions), -1, dtype=np.int64)
    for i, description in enumerate(descriptions):
        read = parse_description(description)[1] if description else ""
        if read:
            frame_read[i] = rows.setdefault(read, len(rows))
    parts = [(row, part) for row, text in enumerate(texts) for part in text_parts(text)]
    every = list(dict.fromkeys(texts + [part for _, part in parts] + list(rows)))
    vectors = dict(zip(every, np.asarray(embed_text(every), dtype=np.float32)))
    dim = len(vectors[texts[0]])
    return TextEvidence(
        frame_text, np.stack([vectors[t] for t in texts]), frame_read,
        np.stack([vectors[t] for t in rows]), np.array([row for row, _ in parts], dtype=np.int64),
        np.array([vectors[part] for _, part in parts], dtype=np.float32).reshape(-1, dim))


def text_relevance(
    relevance: np.ndarray, texts: TextEvidence, query_vector: np.ndarray,
    reference: np.ndarray | None = None, fused_vectors: np.ndarray | None = None,
) -> np.ndarray:
    """(N,) relevance, each frame that shows text raised to its text's own similarity to the
    question when that is the better match (both are cosines to the same question vector).
    reference: (N',) scores whose scale the texts' similarities are put on first
    (plan.matching.matched, over the T distinct texts: a text far above the other texts counts
    as far above the frames), or None: raw cosines. A text with parts (texts.part_vectors)
    scores its best part or itself. fused_vectors: (N, Dt) the frames' fused
    vectors; with them and texts.read_vectors a frame that shows text is raised to its picture's
    own similarity too (plan.matching.picture_scores: unrelated text in view does not bury a
    picture that answers)."""
    raised = np.asarray(relevance, dtype=np.float64).copy()
    frame_text = np.asarray(texts.frame_text)
    if len(frame_text) != len(raised):
        raise ValueError(f"text_relevance: {len(frame_text)} frame texts for {len(raised)} frames")
    shown = frame_text >= 0
    if shown.any() and len(texts.vectors):
        similarity = frame_relevance(texts.vectors, query_vector)
        if texts.part_vectors is not None and len(texts.part_vectors):
            np.maximum.at(similarity, texts.part_text,
                          frame_relevance(texts.part_vectors, query_vector))
        if reference is not None:
            similarity = matched(similarity, reference)
        raised[shown] = np.maximum(raised[shown], similarity[frame_text[shown]])
    if fused_vectors is not None and texts.read_vectors is not None:
        read = np.flatnonzero(np.asarray(texts.frame_read) >= 0)
        if len(read):
            picture = picture_scores(np.asarray(fused_vectors)[read],
                                     texts.read_vectors[np.asarray(texts.frame_read)[read]],
                                     query_vector)
            raised[read] = np.maximum(raised[read], picture)
    return raised


def mark_covered(peaks: list[Peak], token_set: TokenSet) -> list[Peak]:
    """The peaks, each covered when a planned segment shares time with its [start, end]."""
    return [dataclasses.replace(peak, covered=any(
        s.start <= peak.end and s.end >= peak.start for s in token_set.segments))
        for peak in peaks]


@dataclass(frozen=True, slots=True, eq=False)
class SpeechEvidence:
    """A video's transcript as plan_evidence scores it. spans: (K, 2) start/end seconds of its
    segments; vectors: (K, Dt) unit vectors of their text in the question's space; reach_s: how
    far a coarse frame's moment reaches either side of its timestamp (speech_relevance)."""

    spans: np.ndarray
    vectors: np.ndarray
    reach_s: float


def plan_evidence(
    times: np.ndarray,
    visual: np.ndarray,
    text_vectors: np.ndarray,
    query_vector: np.ndarray | None,
    start: float,
    end: float,
    selection: SelectionConfig,
    budget: BudgetConfig,
    frame_size: tuple[int, int],
    video: str = "",
    spec: VisionSpec | None = None,
    speech: SpeechEvidence | None = None,
    texts: TextEvidence | None = None,
    question: str = "",
) -> TokenSet:
    """Plan what the VLM sees for one question.

    times: (N,) PTS seconds of the coarse frames (any order). visual: (N, Dv) unit vectors.
    text_vectors: (N, Dt) unit vectors in the question's space. query_vector: (Dt,) or (M, Dt),
    or None. [start, end]: the video's timeline, seconds. frame_size: (height, width) of the
    video's frames in pixels (display orientation). spec: the token arithmetic (default
    budget.model's; Config.vision_spec() says how the configured VLM counts). speech: the
    video's transcript segments in the question's space; the frames around a segment that
    matches the question are raised to its similarity (speech_relevance). None: pixels only.
    texts: the frames' on-screen texts embedded on their own; with selection.sentence_match a
    frame scores the best of its fused vector, its text and (texts.read_vectors given) its
    picture alone (text_relevance), and the texts' and the lines' similarities are put on the
    fused scores' scale first (plan.matching: each kind standardised over its own texts or
    lines, so a strong text match wins). question: its
    words say whether it is about several moments (selection.several_moments): then
    selection.counting_peaks relevance peaks are anchored first, else selection.max_peaks
    (selection.find_peaks states the rule).

    Returns a TokenSet ordered by time whose PlannedSegments carry the timestamps to decode
    (IMAGE: the picked coarse frame's PTS; CLIP: evenly spread inside the clip), the input size
    and the exact token cost; total_tokens <= budget.tokens; its peaks are the moments found,
    each marked covered or not. Without coarse frames it falls back to uniform times. Raises BudgetError when the budget
    cannot hold one image at min_pixels.
    """
    times = np.asarray(times, dtype=np.float64)
    visual = np.asarray(visual, dtype=np.float32)
    if not end >= start:
        raise ValueError(f"plan_evidence: end {end} before start {start}")
    if len(times) and (visual.ndim != 2 or len(visual) != len(times) or len(text_vectors) != len(times)):
        raise ValueError(
            f"plan_evidence: {len(times)} times but visual {visual.shape} and"
            f" {len(text_vectors)} text vectors"
        )
    text_vectors = np.asarray(text_vectors)
    if np.any(np.diff(times) < 0):  # a memory is in time order already: no copy then
        order = np.argsort(times, kind="stable")
        times, visual, text_vectors = times[order], visual[order], text_vectors[order]
        if texts is not None:
            texts = dataclasses.replace(
                texts, frame_text=np.asarray(texts.frame_text)[order],
                frame_read=None if texts.frame_read is None else np.asarray(texts.frame_read)[order])
    if len(times):
        fused = relevance = frame_relevance(text_vectors, query_vector)
        if texts is not None and selection.sentence_match and query_vector is not None:
            relevance = text_relevance(relevance, texts, query_vector, reference=fused,
                                       fused_vectors=text_vectors)
        if speech is not None and len(speech.spans) and query_vector is not None:
            said = frame_relevance(speech.vectors, query_vector)
            if selection.sentence_match:
                said = matched(said, fused)
            relevance = speech_relevance(times, relevance, speech.spans, said, speech.reach_s)
    else:
        relevance = np.zeros(0)

    selector = get_selector(selection.selector if len(times) else "uniform")
    policy = get_budget_policy(budget.policy)
    n_slots = slot_count(budget, frame_size)
    if query_vector is not None:  # budget.policy=adaptive: fewer segments when relevance is peaked
        n_slots = policy.slots(relevance, n_slots)
    n_peaks = selection.counting_peaks if several_moments(question) else selection.max_peaks
    peaks = (find_peaks(times, relevance, min(n_peaks, n_slots), selection.peak_ratio,
                        selection.min_anchor_gap_s) if query_vector is not None else [])
    segments = selector(times, visual, relevance, start, end, selection, n_slots, peaks=peaks)
    token_set = policy.plan(segments, budget, frame_size, selection.clip_fps,
                            spec or VISION_SPECS[budget.model], video)
    token_set.peaks = mark_covered(peaks, token_set)
    return token_set


@dataclass(slots=True, eq=False)
class VideoEvidence:
    """One video's candidate evidence for a question asked across several videos.

    times, visual, text_vectors: its coarse frames as plan_evidence takes them. [start, end]:
    its timeline, seconds. frame_size: (height, width) pixels. weight: how much of the budget it
    deserves (e.g. the summed scores of its clips the index retrieved), >= 0. speech: its
    transcript as plan_evidence scores it (the frames around a line that matches the question
    are raised), or None: pixels only. texts: its frames' on-screen texts as plan_evidence
    takes them, or None.
    """

    video: str
    times: np.ndarray
    visual: np.ndarray
    text_vectors: np.ndarray
    start: float
    end: float
    frame_size: tuple[int, int]
    weight: float = 1.0
    speech: SpeechEvidence | None = None
    texts: TextEvidence | None = None


def plan_across_videos(
    sources: list[VideoEvidence],
    query_vector: np.ndarray | None,
    selection: SelectionConfig,
    budget: BudgetConfig,
    spec: VisionSpec | None = None,
    question: str = "",
) -> TokenSet:
    """One token set over several videos within the one budget.

    The budget is split between the videos by weight (split_budget; each video's floor is one
    image at min_pixels of its own frame size, and a video whose floor does not fit beside the
    heavier ones' is left out), each video's share is planned by plan_evidence, and the tokens
    the plans leave unspent are offered, heaviest video first, to a re-plan of that video with
    its share raised by them. A video's speech and texts, when given, score its frames as in
    plan_evidence, and the question's words set how many peaks each video's plan anchors; the
    token set's peaks are each planned video's, naming it. Every segment names its video (PlannedSegment.video); segments are
    grouped by video, heaviest first, in time order within a video. total_tokens <= budget.tokens,
    each segment's count exact by the model's arithmetic. TokenSet.video is "".
    Raises BudgetError when the budget cannot hold one image of any of the videos.
    """
    spec = spec or VISION_SPECS[budget.model]
    floors = []
    for source in sources:
        grids = frame_grids(source.frame_size, budget.min_pixels, budget.max_pixels, spec)
        floors.append(grids[0][0] * grids[0][1] if grids else budget.tokens + 1)
    shares = split_budget([s.weight for s in sources], floors, budget.tokens)
    if not any(shares):
        raise BudgetError(
            f"a budget of {budget.tokens} tokens cannot hold one image of any of the"
            f" {len(sources)} videos at min_pixels={budget.min_pixels}"
        )

    def plan(source: VideoEvidence, tokens: int) -> TokenSet:
        return plan_evidence(
            source.times, source.visual, source.text_vectors, query_vector, source.start,
            source.end, selection, budget.model_copy(update={"tokens": tokens}),
            source.frame_size, video=source.video, spec=spec, speech=source.speech,
            texts=source.texts, question=question,
        )

    order = sorted((i for i, share in enumerate(shares) if share),
                   key=lambda i: (-sources[i].weight, i))
    plans = {i: plan(sources[i], shares[i]) for i in order}
    for i in order:
        unspent = budget.tokens - sum(p.total_tokens for p in plans.values())
        if unspent <= 0:
            break
        raised = plan(sources[i], plans[i].total_tokens + unspent)
        if raised.total_tokens > plans[i].total_tokens:
            plans[i] = raised
    segments = [dataclasses.replace(segment, video=sources[i].video)
                for i in order for segment in plans[i].segments]
    peaks = [dataclasses.replace(peak, video=sources[i].video)
             for i in order for peak in plans[i].peaks]
    return TokenSet(video="", segments=segments, budget=budget.tokens, peaks=peaks)
