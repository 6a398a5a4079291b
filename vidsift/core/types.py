"""Domain types shared by every stage: what a video is, a decoded frame, a picked segment, and the
token set the VLM receives.

Units: times are seconds (float) on the video's own presentation timeline (the container's PTS
times time_base, so a video whose first frame has PTS 0.04 s starts at 0.04, not 0). Sizes are
pixels. Images are RGB uint8 arrays shaped (H, W, 3) with the container's rotation already
applied. These are plain dataclasses so Ray can pickle them between actors.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np



@dataclass(frozen=True, slots=True)
class VideoInfo:
    """Container and stream facts from probe(); cheap to compute (no full decode, except counting
    frames when the container's count is missing or wrong)."""

    path: str
    duration: float  # seconds from the first frame's PTS to the end of the last frame
    start_time: float  # PTS of the first video frame, seconds
    avg_fps: float  # frame_count / duration (the container's avg_frame_rate when it is sane)
    real_fps: float  # the stream's base rate (r_frame_rate / guessed rate), frames per second
    frame_count: int  # frames in the video stream, counted when the container lies
    width: int  # display width after rotation
    height: int  # display height after rotation
    rotation: int  # clockwise degrees applied for display: 0, 90, 180 or 270
    codec: str  # e.g. "h264", "vp9"
    is_vfr: bool  # frame durations vary (variable frame rate)
    keyframe_times: tuple[float, ...]  # PTS of every keyframe, ascending, seconds
    has_audio: bool = False
    size_bytes: int = 0

    @property
    def end_time(self) -> float:
        return self.start_time + self.duration


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One decoded frame with its exact place on the timeline."""

    image: np.ndarray  # (H, W, 3) uint8 RGB, rotation applied
    pts: float  # presentation time, seconds (the container's PTS * time_base)
    index: int  # 0-based index in presentation order within the video stream

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


class SegmentKind(str, enum.Enum):
    """A segment is shown to the VLM either as one still image or as a short clip."""

    IMAGE = "image"
    CLIP = "clip"


@dataclass(frozen=True, slots=True)
class Segment:
    """A picked stretch of video, before the budget assigns it frames and a resolution.

    For an IMAGE, start == end == the frame's PTS. For a CLIP, [start, end] in seconds.
    """

    start: float
    end: float
    kind: SegmentKind
    score: float = 0.0  # relevance to the question (similarity), higher is better
    weight: float = 1.0  # share of the token budget this segment deserves, >= 0
    source: str = "uniform"  # which selector step picked it: uniform | anchor | coverage | ...

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class PlannedSegment:
    """A segment with the budget's decision: which frames to decode and at what size.

    timestamps: PTS (seconds) of the frames to decode, ascending; exactly one for an IMAGE.
    height/width: the VLM input size (multiples of the model's patch factor).
    tokens: visual tokens this segment costs in the VLM, by the model's own arithmetic.
    frames: filled by the fine decode pass (one Frame per timestamp), empty before it.
    """

    kind: SegmentKind
    start: float
    end: float
    timestamps: tuple[float, ...]
    height: int
    width: int
    tokens: int
    score: float = 0.0
    source: str = "uniform"
    frames: tuple[Frame, ...] = ()
    # the file its frames come from; "" means the TokenSet's video (a token set planned over
    # several videos names each segment's own)
    video: str = ""

    @property
    def fps(self) -> float:
        """Sampling rate of a clip's frames (frames per second); 0 for an image."""
        if self.kind is SegmentKind.IMAGE or len(self.timestamps) < 2:
            return 0.0
        span = self.timestamps[-1] - self.timestamps[0]
        return (len(self.timestamps) - 1) / span if span > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Peak:
    """A moment the question's relevance over time peaks at (plan.selection.find_peaks).

    [start, end]: seconds, the first and last coarse frame of the stretch above the peak level;
    time: the PTS of its most relevant frame (where its anchor goes); score: that frame's
    relevance; covered: whether a planned segment shares time with [start, end]; video: set when
    planned across several videos."""

    start: float
    end: float
    time: float
    score: float
    covered: bool = False
    video: str = ""

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "time": self.time,
                "score": round(self.score, 4), "covered": self.covered,
                **({"video": self.video} if self.video else {})}


@dataclass(slots=True)
class TokenSet:
    """What the VLM sees: ordered segments with absolute timestamps and exact token counts;
    peaks: the moments the plan found the question's relevance to peak at, in time order, and
    whether each is covered (empty without a question or a clear peak)."""

    video: str
    segments: list[PlannedSegment] = field(default_factory=list)
    budget: int = 0  # the token budget the plan was made for; total_tokens <= budget
    peaks: list[Peak] = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        return sum(s.tokens for s in self.segments)

    @property
    def evidence(self) -> list[tuple[float, float]]:
        """(start, end) seconds of every segment shown, in order."""
        return [(s.start, s.end) for s in self.segments]


@dataclass(slots=True, eq=False)
class FrameEmbeddings:
    """An embedder's view of N frames.

    visual: (N, Dv) float32 unit vectors: what the frames look like (coverage, merging, the clip
        index's visual space).
    text: (N, Dt) float32 unit vectors in the same space as embed_text(): what text queries are
        scored against. For SigLIP/CLIP it is the image tower (the shared space); for the offline
        embedder it is the text bridge (labels + OCR embedded by MiniLM).
    descriptions: N strings, the bridge text of each frame ("" where the backend has none).
    """

    visual: np.ndarray
    text: np.ndarray
    descriptions: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class HistoryTurn:
    """An earlier question of a conversation and its answer, shown to the VLM as text.

    evidence: (video, start, end) seconds of the segments that turn's prompt numbered 1, 2, ...
    in order, so the [n] citations in its answer can be read back as times.
    """

    question: str
    answer: str
    evidence: tuple[tuple[str, float, float], ...] = ()


@dataclass(slots=True)
class VLMRequest:
    """One question over one decoded token set (every segment's frames filled)."""

    token_set: TokenSet
    question: str
    max_new_tokens: int | None = None  # None: the config's cap; never above the cap
    request_id: str = ""
    # earlier turns of the conversation, oldest first, already fitted to the text allowance
    history: tuple[HistoryTurn, ...] = ()
    # what is said during the evidence, in time order, already fitted to budget.speech_tokens
    transcript: tuple[TranscriptSegment, ...] = ()
    # a JSON Schema (checked, core.schema.check_schema) the answer must follow: in-process
    # backends decode constrained to it, the openai backend sends it as response_format, and
    # every backend returns the parsed answer in VLMResult.answer_json (or raises
    # core.schema.AnswerSchemaError with the raw text). None: free text.
    schema: dict | None = None


@dataclass(slots=True)
class VLMResult:
    text: str
    visual_tokens: int  # visual tokens produced by the vision encoder (after merge)
    visual_tokens_kept: int  # after post-encoder pruning (== visual_tokens without pruning)
    prefill_s: float
    decode_s: float
    request_id: str = ""
    model: str = ""
    # a remote server's accounting: prompt/completion tokens it reported, the prompt tokens the
    # plan expects and the difference, request bytes, round-trip seconds, attempts; {} in-process
    usage: dict = field(default_factory=dict)
    # the answer parsed as JSON and valid against the request's schema; None without a schema
    answer_json: Any = None


@dataclass(frozen=True, slots=True)
class TranscriptSegment:
    """One timed line of what is said: a subtitle cue or a stretch of recognised speech.

    start/end: seconds on the video's own timeline (subtitle times as the container stores
    them, ASR times from the audio stream's PTS). source: where it came from, e.g.
    "subtitle:2" (stream 2), "sidecar:movie.en.srt", "asr:pocketsphinx"."""

    start: float
    end: float
    text: str
    source: str = ""


@dataclass(slots=True)
class Transcript:
    """A video's transcript: segments in time order, what they were read from (e.g.
    "subtitle stream 2 (mov_text, eng)", "sidecar movie.en.srt", "asr pocketsphinx") and notes on
    what could not be read (no audio track, a broken sidecar file, undecodable audio packets)."""

    segments: list[TranscriptSegment] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"segments": segments_to_json(self.segments), "sources": list(self.sources),
                "warnings": list(self.warnings)}

    @classmethod
    def from_dict(cls, data: dict) -> Transcript:
        return cls(segments_from_json(data["segments"]), list(data.get("sources", [])),
                   list(data.get("warnings", [])))


def segments_to_json(segments: Sequence[TranscriptSegment]) -> list[dict]:
    return [{"start": s.start, "end": s.end, "text": s.text, "source": s.source} for s in segments]


def segments_from_json(rows: Sequence[dict]) -> list[TranscriptSegment]:
    return [TranscriptSegment(float(r["start"]), float(r["end"]), str(r["text"]), str(r.get("source", "")))
            for r in rows]


@dataclass(slots=True, eq=False)
class CoarseFrames:
    """What ingest keeps of a run of coarse frames (one shard, or a whole video): no pixels
    beyond a small thumbnail, so it travels between processes cheaply.

    times: (N,) float64 PTS, seconds, ascending.
    embeddings: the embedder's view of the N frames (visual, text, descriptions).
    thumbnails: N JPEG images (bytes), longest side core.files.THUMBNAIL_MAX_SIDE: a list while
        a shard travels, read from disk on demand once the memory is stored.
    """

    times: np.ndarray
    embeddings: FrameEmbeddings
    thumbnails: Sequence[bytes] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.times.size)

    @classmethod
    def concat(cls, parts: list[CoarseFrames]) -> CoarseFrames:
        """Shards in time order -> one run (parts must not overlap). `parts` is emptied as it
        is copied, so the peak is the result plus one shard, not two copies of a video's worth."""
        sizes = [len(p) for p in parts]
        if not any(sizes):
            raise ValueError("CoarseFrames.concat: no frames")
        first = next(p for p in parts if len(p))
        times = np.empty(sum(sizes), first.times.dtype)
        visual = np.empty((len(times), first.embeddings.visual.shape[1]), first.embeddings.visual.dtype)
        text = np.empty((len(times), first.embeddings.text.shape[1]), first.embeddings.text.dtype)
        descriptions: list[str] = []
        thumbnails: list[bytes] = []
        at = 0
        while parts:
            part = parts.pop(0)
            if not len(part):
                continue
            end = at + len(part)
            times[at:end] = part.times
            visual[at:end] = part.embeddings.visual
            text[at:end] = part.embeddings.text
            descriptions.extend(part.embeddings.descriptions)
            thumbnails.extend(part.thumbnails)
            at = end
        return cls(times, FrameEmbeddings(visual, text, descriptions), thumbnails)


@dataclass(slots=True, eq=False)
class VideoMemory:
    """Everything ingest learned about one video's content, stored once and reused by every
    later ask, index and caption job on it.

    content_hash: SHA-256 of the file. key: Config.memory_key() of the settings it was made with.
    embedder: the embedder's space id. info: the probe. frames: the coarse frames' results.
    transcript: what is said (core.transcript.Transcript), when the job that read this memory
    asked for speech (speech.mode); stored apart, per speech settings, and attached by ingest.
    """

    content_hash: str
    key: str
    embedder: str
    info: VideoInfo
    frames: CoarseFrames
    transcript: Transcript | None = None
