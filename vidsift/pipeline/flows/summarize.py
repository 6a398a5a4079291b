"""The summarize flow without a VLM: the video's memory (the shared ingest chain: stored once per
content, so a second summary of the same video decodes nothing) -> chapters cut from its coarse
frames and, with speech.mode set, its transcript (pipeline.plan.chapters) -> each chapter's
title from what was read or heard in it, and its thumbnail from the stored thumbnails.

Extractive and honest: no prose is written, `summary` is None and `highlights` empty; a
chapter's title is on-screen text, spoken keywords or labels, and its evidence says which.
The VLM map-reduce over chapters (titles and summaries written by the model) is not built yet:
a configured VLM is refused with a clear error rather than ignored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidsift.core.config import Config
from vidsift.core.errors import ConfigError


@dataclass
class SummaryResult:
    """video: the resolved path; duration: seconds; chapters: {start, end (seconds), title,
    summary (None: extractive), thumbnail (a JPEG path), evidence: {source ("text" | "speech" |
    "labels" | ""), text (on-screen texts read, in order), keywords (spoken), labels, frames
    (coarse frames in the chapter), speech (what is said in it, with speech on)}}."""

    video: str
    duration: float
    chapters: list[dict]
    timings: dict[str, float]
    reused: bool = False  # the memory was read: no coarse pass ran
    speech_sources: list[str] = field(default_factory=list)
    speech_warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "video": self.video, "duration": self.duration, "chapters": self.chapters,
            "summary": None, "highlights": [], "extractive": True, "model": "none",
            "tokens": 0, "timings": self.timings, "reused_memory": self.reused,
            "speech": {"sources": self.speech_sources, "warnings": self.speech_warnings},
        }

    def lines(self) -> list[str]:
        """One line per chapter: its span, title and where the title came from."""
        from vidsift.core.timeline import hms

        return [f"{hms(c['start'])}-{hms(c['end'])}  {c['title'] or '(nothing read or heard)'}"
                + (f"  [{c['evidence']['source']}]" if c["evidence"]["source"] else "")
                for c in self.chapters]


class Summarizer:
    """The ingest pool (lent, or started on first use) and the memory store, reused across
    summaries."""

    def __init__(self, cfg: Config, pool=None) -> None:
        from vidsift.index.memory import MemoryStore

        if cfg.vlm.enabled:
            raise ConfigError(f"summarize with a VLM (vlm.model={cfg.vlm.model}) is not built "
                              "yet: use --model none for extractive chapters")
        self.cfg = cfg
        self._owns_pool = pool is None
        self._pool = pool
        self.memory = MemoryStore(cfg.index.dir)

    @property
    def pool(self):
        if self._pool is None:
            from vidsift.pipeline.flows.index import start_pool

            self._pool = start_pool(self.cfg)
        return self._pool

    def close(self) -> None:
        if self._owns_pool and self._pool is not None:
            self._pool.close()
            self._pool = None

    def summarize(self, video: str, thumbnails_dir: str | Path | None = None,
                  progress=None) -> SummaryResult:
        """Chapters of `video` (see the module doc). thumbnails_dir: where each chapter's
        thumbnail is written (NN.jpg); None: index.dir/chapters/<content hash>/. progress:
        called with each pipeline.flows.ingest.IngestProgress. A file that is no readable
        video fails first, by name, before any pool starts."""
        from vidsift.core.media import resolve_path
        from vidsift.core.probe import check_video
        from vidsift.pipeline.flows.ingest import ingest_one

        check_video(video)
        video = str(resolve_path(video))
        cfg, timings, started, reused = self.cfg, {}, time.perf_counter(), []

        def track(event) -> None:
            reused.append(event.reused)
            if progress is not None:
                progress(event)

        memory = ingest_one(video, cfg, self.pool, self.memory, track)
        timings["ingest"] = round(time.perf_counter() - started, 4)
        speech = self._speech(memory)
        timings["speech"] = round(time.perf_counter() - started - timings["ingest"], 4)
        mark = time.perf_counter()
        chapters = chapters_of(memory, cfg, speech)
        timings["chapters"] = round(time.perf_counter() - mark, 4)
        folder = (Path(thumbnails_dir) if thumbnails_dir is not None else
                  Path(cfg.index.dir).expanduser() / "chapters" / memory.content_hash)
        _write_thumbnails(chapters, memory, folder, named_by_frame=thumbnails_dir is None)
        timings["total"] = round(time.perf_counter() - started, 4)
        transcript = memory.transcript
        return SummaryResult(
            video=video, duration=memory.info.duration, chapters=chapters, timings=timings,
            reused=all(reused),
            speech_sources=list(transcript.sources) if transcript else [],
            speech_warnings=list(transcript.warnings) if transcript else [],
        )

    def _speech(self, memory):
        """plan.chapters.SpeechLines of the memory's transcript with speech.mode set and
        something said, else None. The lines' vectors are stored beside the
        transcript (flows.speech.transcript_vectors): a second summary embeds nothing."""
        from vidsift.pipeline.flows.speech import transcript_vectors
        from vidsift.pipeline.plan.chapters import SpeechLines

        transcript = memory.transcript
        if transcript is None or not transcript.segments:
            return None
        vectors = transcript_vectors(transcript, memory.content_hash, self.cfg,
                                     self.pool.embed_text)
        spans = np.array([(s.start, s.end) for s in transcript.segments], dtype=np.float64)
        return SpeechLines(spans, vectors)


def chapters_of(memory, cfg: Config, speech=None) -> list[dict]:
    """The chapter dicts of a memory (core.types.VideoMemory) under cfg.summary, without their
    thumbnails: {start, end, title, summary: None, thumbnail: frame index (replaced by a path
    when written), evidence}. speech: its plan.chapters.SpeechLines, or None."""
    from vidsift.pipeline.plan.chapters import (chapter_titles, plan_chapters,
                                                representative_frame)
    from vidsift.pipeline.plan.clips import frames_in_clips, speech_in_clips

    info, frames = memory.info, memory.frames
    times, embeddings = frames.times, frames.embeddings
    start = min(info.start_time, float(times[0]))
    end = max(info.end_time, float(times[-1]) + 1e-3)
    spans = plan_chapters(
        times, embeddings.visual, embeddings.text, start, end, cfg.summary.min_chapter_s,
        cfg.summary.max_chapter_s, cfg.summary.count, speech=speech,
        keyframe_times=info.keyframe_times, cut_threshold=cfg.index.cut_threshold,
    )
    members = frames_in_clips(times, spans)
    said = (speech_in_clips(spans, memory.transcript.segments)
            if speech is not None else [""] * len(spans))
    titles = chapter_titles(embeddings.descriptions, members, said)
    chapters = []
    for (lo, hi), idx, title, words in zip(spans, members, titles, said):
        evidence = {"source": title.source, "text": list(title.text),
                    "keywords": list(title.keywords), "labels": list(title.labels),
                    "frames": len(idx)}
        if speech is not None:
            evidence["speech"] = words
        chapters.append({"start": round(float(lo), 3), "end": round(float(hi), 3),
                         "title": title.title, "summary": None,
                         "thumbnail": representative_frame(embeddings.visual, idx),
                         "evidence": evidence})
    return chapters


def _write_thumbnails(chapters: list[dict], memory, folder: Path, named_by_frame: bool) -> None:
    """Each chapter's thumbnail frame (an index) -> the stored JPEG written into folder, its
    path in the chapter. Named by the memory key and frame when the folder is the shared one
    (the same frame of the same memory is the same file), else by chapter number."""
    from vidsift.core.files import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    for number, chapter in enumerate(chapters):
        frame = int(chapter["thumbnail"])
        path = folder / (f"{memory.key}-{frame:06d}.jpg" if named_by_frame else f"{number:02d}.jpg")
        if not (named_by_frame and path.is_file()):
            write_atomic(path, bytes(memory.frames.thumbnails[frame]))
        chapter["thumbnail"] = str(path)


def summarize(cfg: Config, video: str, **options) -> SummaryResult:
    """One summary from the command line: start the pool, summarize, release it."""
    summarizer = Summarizer(cfg)
    try:
        return summarizer.summarize(video, **options)
    finally:
        summarizer.close()
