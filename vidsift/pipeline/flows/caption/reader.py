"""What to caption: the videos a source names that OUT has not committed yet, and each video's
clips with the frame times and size the VLM is shown.

Scene clips come from the shared ingest chain (pipeline.flows.ingest): a video's stored memory is read
(nothing decoded), else it is ingested on the pool and its memory kept; cut_clips then gives the
same spans the clip index uses, so captions line up with indexed clips. Fixed clips tile the
probe's [start, end].
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from vidsift.core.config import Config
from vidsift.core.errors import VidsiftError
from vidsift.core.media import find_videos
from vidsift.core.timeline import bin_centres
from vidsift.core.types import VideoInfo
from vidsift.core.vision import (
    MAX_ASPECT_RATIO, QWEN2_5_VL, VisionSpec, padded_size, smart_resize, tokens_for,
)

log = logging.getLogger(__name__)


def fixed_clips(start: float, end: float, clip_s: float) -> list[tuple[float, float]]:
    """[start, end] cut into ceil(length / clip_s) equal clips (seconds), tiling it exactly."""
    count = max(1, math.ceil((end - start) / clip_s - 1e-9))
    bounds = [start + (end - start) * i / count for i in range(count)] + [end]
    return list(zip(bounds[:-1], bounds[1:]))


def clip_frame_size(height: int, width: int, frames: int, tokens_per_clip: int,
                    spec: VisionSpec = QWEN2_5_VL) -> tuple[int, int]:
    """The largest (h, w) the VLM's arithmetic allows for `frames` frames of a height x width video
    within tokens_per_clip visual tokens (aspect ratio kept; a video too elongated for the VLM
    letterboxed, core.vision.padded_size, as the decoders then pad its frames)."""
    temporal = math.ceil(frames / spec.temporal_patch_size)
    per_frame = max(1, tokens_per_clip // temporal)
    area = spec.factor * spec.factor
    height, width = smart_resize(*padded_size(height, width), spec.factor, min_pixels=area,
                                 max_pixels=per_frame * area)
    # a short side held at one patch row can leave the size more elongated than a processor
    # takes (a remote VLM would refuse the frames): the long side is cut to the most it allows
    return min(height, MAX_ASPECT_RATIO * width), min(width, MAX_ASPECT_RATIO * height)


@dataclass(frozen=True, slots=True)
class ClipPlan:
    """One video's captioning work: clip i spans spans[i] (seconds) and is shown the frames at
    times[i], each height x width pixels, costing `tokens` visual tokens; speech[i] is what is
    said during it (empty without speech.mode)."""

    video: str
    spans: list[tuple[float, float]]
    times: list[list[float]]
    height: int
    width: int
    tokens: int
    speech: list[str] = field(default_factory=list)

    def to_row(self) -> dict:
        """A Ray Data row (nested lists as JSON: one column type whatever the clip count)."""
        return {"video": self.video, "spans": json.dumps(self.spans),
                "times": json.dumps(self.times), "height": self.height, "width": self.width,
                "tokens": self.tokens, "speech": json.dumps(self.speech or [""] * len(self.spans))}


def plan_clips(video: str, info: VideoInfo, spans: list[tuple[float, float]],
               cfg: Config) -> ClipPlan:
    """The frames each clip of `video` is shown: caption.frames_per_clip at the centres of equal
    bins, at the largest size caption.tokens_per_clip pays for under the VLM's arithmetic."""
    cap = cfg.caption
    spec = cfg.vision_spec()
    height, width = clip_frame_size(info.height, info.width, cap.frames_per_clip,
                                    cap.tokens_per_clip, spec)
    return ClipPlan(
        video=video, spans=[(float(a), float(b)) for a, b in spans],
        times=[bin_centres(a, b, cap.frames_per_clip).tolist() for a, b in spans],
        height=height, width=width,
        tokens=tokens_for(cap.frames_per_clip, height, width, spec),
    )


def videos_to_caption(source: str | os.PathLike,
                      is_done: Callable[[str], bool]) -> tuple[list[str], list[str]]:
    """(every video `source` names: a folder tree, a manifest or a file; those of them not
    committed yet, by is_done(video))."""
    videos = find_videos([source])
    return videos, [v for v in videos if not is_done(v)]


def read_clips(videos: Iterable[str], cfg: Config,
               pool=None) -> Iterator[tuple[str, ClipPlan | Exception]]:
    """(video, its ClipPlan) for each video, or (video, the error) for one that cannot be read;
    the rest go on. Scene clips need `pool` (an IngestPool): a video without a stored memory is
    ingested on it."""
    if cfg.caption.clips == "fixed":
        from vidsift.core.probe import probe

        for video in videos:
            try:
                info = probe(video, cfg.decode.max_pixels)
                spans = fixed_clips(info.start_time, info.end_time, cfg.caption.clip_s)
                outcome = with_speech(plan_clips(video, info, spans, cfg), cfg, _transcript(video, cfg))
            except (VidsiftError, OSError, ValueError) as exc:
                outcome = exc
            yield video, outcome
        return
    from vidsift.index.memory import MemoryStore
    from vidsift.pipeline.flows.ingest import cut_clips, ingest_videos

    for video, memory in ingest_videos(videos, cfg, pool, MemoryStore(cfg.index.dir)):
        if isinstance(memory, Exception):
            yield video, memory
            continue
        try:
            outcome = with_speech(plan_clips(video, memory.info, cut_clips(memory, cfg).spans, cfg), cfg,
                                  memory.transcript)
        except (VidsiftError, OSError, ValueError) as exc:
            outcome = exc
        yield video, outcome


def _transcript(video: str, cfg: Config):
    """The transcript of a video captioned in fixed clips (no ingest, so no pool: made here)."""
    if not (cfg.speech.enabled and cfg.caption.speech_chars):
        return None
    from vidsift.pipeline.flows.speech import video_transcript

    return video_transcript(video, cfg)


def with_speech(plan: ClipPlan, cfg: Config, transcript) -> ClipPlan:
    """The plan with each clip's speech (its overlapping transcript lines, from `transcript`:
    a core.transcript.Transcript or None) when speech.mode is set and captions use it
    (caption.speech_chars); the transcript's notes are logged."""
    if transcript is None or not (cfg.speech.enabled and cfg.caption.speech_chars):
        return plan
    import dataclasses

    from vidsift.pipeline.plan.clips import speech_in_clips

    for note in transcript.warnings:
        log.warning("captions without speech: %s", note)
    return dataclasses.replace(plan, speech=speech_in_clips(plan.spans, transcript.segments))
