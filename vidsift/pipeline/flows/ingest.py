"""The one ingest chain every job shares: video -> content hash -> stored memory, or probe ->
keyframe-aligned shards -> coarse decode + embed on the ingest pool -> memory (stored) -> clips.
With speech.mode set the chain also gives the video's transcript, attached to its memory:
stored (index.transcripts, per speech settings) or read from subtitles here, or recognised on
the pool in the same shards as the coarse pass (a video whose memory exists gets speech-only
shards), then stored.

ask, index, caption and the HTTP service all call ingest_videos(); each video is decoded at most
once per (content, settings): a later job reads its memory (index/memory.py). Shards of one video
and of many videos share the pool, so a long video or an archive keeps every actor of the cluster
busy, and the driver holds only the small per-shard results of the videos in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from vidsift.core.config import Config
from vidsift.core.errors import CorruptVideoError, VidsiftError
from vidsift.core.media import content_hash
from vidsift.core.shards import plan_shards
from vidsift.core.types import Transcript
from vidsift.core.types import VideoMemory
from vidsift.pipeline.flows.speech import store_transcript

log = logging.getLogger(__name__)

# A shard's audio is heard this far past its end (seconds), so that a sentence said across the
# boundary is recognised whole by the shard it began in (workers.speech.add_heard keeps it once):
# ~3% more audio at 5-minute shards, against a sentence cut in two at every boundary.
SPEECH_OVERRUN_S = 8.0


@dataclass(frozen=True, slots=True)
class IngestProgress:
    """One step of an ingest run: a shard finished (or a memory was found) for `path`.
    shards_done / shards_total count this video's shards; reused means no decode was needed."""

    path: str
    shards_done: int
    shards_total: int
    reused: bool = False


@dataclass(slots=True)
class _InFlight:
    """A video being ingested: which shards have landed. Their frames wait on disk in `stage`
    (index.memory.ShardStage; None when the memory was stored before, and only speech is
    recognised), so the driver holds one shard at a time; their speech (text) waits in `heard`.
    transcript: what subtitles gave, to be completed by the shards' speech (None: no speech)."""

    digest: str | None
    info: object
    shards: list[tuple[float, float]]
    stage: object | None
    memory: VideoMemory | None = None
    transcript: Transcript | None = None
    heard: dict = field(default_factory=dict)
    done: set = field(default_factory=set)
    failed: bool = False
    # A remote video with no strong version on its first ingest: digest is None until its
    # pieces' digests (hashed by the driver's probe and every shard) make it (_finish).
    source: object | None = None
    pieces: dict | None = None

    def discard(self) -> None:
        if self.stage is not None:
            self.stage.discard()


def ingest_videos(
    paths: Iterable[str],
    cfg: Config,
    pool,
    store,
    progress: Callable[[IngestProgress], None] | None = None,
) -> Iterator[tuple[str, VideoMemory | Exception]]:
    """Yield (path, VideoMemory) for every video, or (path, the error) for one that cannot be
    ingested; the rest go on. Memories found in `store` (index.memory.MemoryStore) are reused;
    new ones are made on `pool` (workers.ingest.IngestPool) and stored before they are yielded.
    With cfg.speech.mode set each memory carries its transcript (see module doc). Videos are
    yielded as they complete, not in input order."""
    from vidsift.core import sources
    from vidsift.core.probe import probe, scan_video
    from vidsift.index.transcripts import TranscriptStore
    from vidsift.workers.ingest import ShardTask, SpeechShard

    sources.configure(cfg.decode.source_block_kib, cfg.decode.source_cache_blocks)
    notify = progress or (lambda event: None)
    key = cfg.memory_key()
    shard_s = cfg.ingest.shard_minutes * 60.0
    transcripts = TranscriptStore(cfg.index.dir)
    flights: dict[str, _InFlight] = {}
    ready: list[tuple[str, VideoMemory | Exception]] = []

    def tasks() -> Iterator[ShardTask]:
        # Drawn lazily by the pool: a video is hashed and probed only when an actor is free.
        for path in paths:
            try:
                # A remote video is asked about once: its digest, probe and shards are of that
                # version (core.sources.SourceInfo; the actors read it pinned).
                source = sources.stat_source(path) if sources.is_url(path) else None
                hashing = source is not None and not _seen_unchanged(store, source)
                if hashing:  # the probe's reads and the shards' hash it: digest at the end
                    digest, memory = None, None
                    sources.start_pieces(source.url, source.size)
                else:
                    digest = sources.source_digest(source) if source else content_hash(path)
                    memory = store.get(digest, key)
                try:
                    info = memory.info if memory is not None else probe(
                        path, max_pixels=cfg.decode.max_pixels, source=source)
                    transcript, needs_asr = _known_transcript(path, digest, info, cfg,
                                                              transcripts)
                    if memory is not None and not needs_asr:
                        notify(IngestProgress(path, 1, 1, reused=True))
                        memory.transcript = transcript
                        ready.append((path, memory))
                        continue
                    shards = plan_shards(info.keyframe_times, info.start_time, info.end_time,
                                         shard_s)
                    # A remote video's scan (its header, read by the probe above) goes with its
                    # shards, so each actor reads only its shard's byte ranges.
                    scan = (scan_video(path, cfg.decode.max_pixels, source)
                            if memory is None and source else None)
                finally:
                    pieces = sources.take_pieces(source.url) if hashing else None
            except (VidsiftError, OSError, ValueError) as exc:
                ready.append((path, exc))
                continue
            flights[path] = _InFlight(digest, info, shards,
                                      store.stage(digest or STAGING, key)
                                      if memory is None else None,
                                      memory, transcript, source=source, pieces=pieces)
            notify(IngestProgress(path, 0, len(shards)))
            last = len(shards) - 1
            for number, (start, end) in enumerate(shards):
                speech = None
                if needs_asr:  # the last shard's audio runs to the track's end, not past a share
                    ends = (end + SPEECH_OVERRUN_S, end) if number < last else (None, None)
                    speech = SpeechShard(cfg.speech, start if number else None, *ends)
                yield ShardTask(path, start, end, tag=number, frames=memory is None, speech=speech,
                                scan=scan)

    try:
        for task, outcome in pool.run_shards(tasks()):
            yield from _drain(ready)
            flight = flights.get(task.path)
            if flight is None or flight.failed:
                continue  # another shard of this video already failed it
            if isinstance(outcome, Exception):
                flight.failed = True
                flights.pop(task.path).discard()
                yield task.path, outcome
                continue
            try:
                if outcome.frames is not None:
                    flight.stage.add(task.tag, outcome.frames)
            except (OSError, ValueError) as exc:  # a full disk fails this video, not the run
                flight.failed = True
                flights.pop(task.path).discard()
                yield task.path, exc
                continue
            if outcome.heard is not None:
                flight.heard[task.tag] = outcome.heard
            if flight.pieces is not None and outcome.pieces:
                flight.pieces.update(outcome.pieces)
            flight.done.add(task.tag)
            del outcome
            notify(IngestProgress(task.path, len(flight.done), len(flight.shards)))
            if len(flight.done) == len(flight.shards):
                flights.pop(task.path)
                yield task.path, _finish(task.path, flight, cfg, key, store, transcripts)
        yield from _drain(ready)
    finally:  # a failed run or a caller that stopped early leaves no staged files
        for flight in flights.values():
            flight.discard()


def _drain(ready: list) -> Iterator:
    while ready:
        yield ready.pop(0)


def _known_transcript(path: str, digest: str, info, cfg: Config,
                      transcripts) -> tuple[Transcript | None, bool]:
    """(the video's transcript as far as it is known without recognition: stored, or read from
    its subtitles (and then stored); whether speech recognition must still fill it in).
    (None, False) when the job asks for no speech."""
    from vidsift.workers.speech import subtitles_first

    if not cfg.speech.enabled:
        return None, False
    stored = transcripts.get(digest, cfg.speech.key()) if digest else None
    if stored is not None:
        return stored, False
    transcript, needs_asr = subtitles_first(path, cfg.speech)
    if needs_asr and not info.has_audio:
        transcript.warnings.append(f"{path}: no audio track")
        needs_asr = False
    if not needs_asr and digest:  # digest None: stored once the shards have made it (_finish)
        store_transcript(transcript, digest, cfg, transcripts)
    return transcript, needs_asr


def _finish(path: str, flight: _InFlight, cfg: Config, key: str, store,
            transcripts) -> VideoMemory | Exception:
    from vidsift.workers.ingest import release_freed_memory
    from vidsift.workers.speech import add_heard

    from vidsift.core import sources

    order = range(len(flight.shards))
    try:
        hashed = flight.pieces is not None
        if hashed:  # the pieces no shard fetched are read now (gaps between their ranges)
            flight.digest = sources.hash_pieces(flight.source, flight.pieces)
        memory = flight.memory
        if memory is None:
            if flight.stage.frame_count(order) == 0:
                return CorruptVideoError(path, "the coarse pass decoded no frames")
            memory = store.put_staged(flight.digest, key, cfg.embed.space_id, flight.info,
                                      flight.stage, order)
        if flight.heard:
            add_heard(flight.transcript, path, cfg.speech, [flight.heard[i] for i in order])
        if flight.heard or (hashed and flight.transcript is not None):
            store_transcript(flight.transcript, flight.digest, cfg, transcripts)
        if flight.source is not None and flight.source.hashed_in_pieces:
            _remember_seen(store, flight.source)
        memory.transcript = flight.transcript
        return memory
    except (OSError, VidsiftError) as exc:  # a full index dir, a gap that cannot be read
        return exc
    finally:
        flight.discard()
        release_freed_memory()  # the write's buffers


# Where a video whose digest is not known yet collects its shards (MemoryStore.stage); they are
# copied under the digest once it is made.
STAGING = "0" * 64


def _seen_path(store, url: str):
    import hashlib

    return store.root / "sources" / f"{hashlib.sha256(url.encode()).hexdigest()}.json"


def _seen_unchanged(store, source) -> bool:
    """Whether a remote video's memory must be looked up by reading it whole to hash it first.

    An object whose store gives a checksum or a strong version is looked up by it (no read):
    True. One with none (core.sources.SourceInfo.hashed_in_pieces) is keyed by the digest of
    its bytes, which only a read gives. The rule: where this store has ingested the URL before
    and the store says of it now what it said then (SourceInfo.weak: a weak ETag,
    Last-Modified, the size), it is likely unchanged, so it is read once and hashed
    (source_digest) and its memory looked up: a re-ask of an unchanged object reads it once and
    decodes nothing; one changed with the same validators is then decoded, read a second time.
    Otherwise (never ingested here, or its validators changed: it changed) there is no memory
    to find under its new bytes but by chance, so it is decoded at once and hashed by the probe
    and the shards as they read it (the first ingest reads it once): False."""
    if not source.hashed_in_pieces:
        return True
    import json

    try:
        seen = json.loads(_seen_path(store, source.url).read_text())
    except (OSError, ValueError):
        return False
    return seen.get("weak") == list(source.weak)


def known_digest(path: str, store) -> str | None:
    """content_hash of path, or None for a remote video with no strong version that `store`
    has not ingested as it is now described (_seen_unchanged): hashing that one here would read
    it once more than its ingest, which hashes it as it decodes it."""
    from vidsift.core import sources

    if sources.is_url(path):
        source = sources.stat_source(path)
        return sources.source_digest(source) if _seen_unchanged(store, source) else None
    return content_hash(path)


def _remember_seen(store, source) -> None:
    """Note that this store has ingested source's URL, as its store described it (for
    _seen_unchanged)."""
    import json

    from vidsift.core.files import write_atomic
    from vidsift.core.sources import redact

    path = _seen_path(store, source.url)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"url": redact(source.url), "weak": list(source.weak)}))


def ingest_one(path: str, cfg: Config, pool, store,
               progress: Callable[[IngestProgress], None] | None = None) -> VideoMemory:
    """ingest_videos for one video: its memory, or its error raised."""
    for _, outcome in ingest_videos([path], cfg, pool, store, progress):
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    raise CorruptVideoError(path, "ingest returned nothing")


@dataclass(slots=True)
class Clips:
    """A video cut into clips from its memory: spans (start, end) seconds, middles[i] the index
    of the coarse frame nearest clip i's middle (its thumbnail), texts[i] its frames'
    descriptions, visual/text (C, D) unit mean vectors of its frames."""

    spans: list[tuple[float, float]]
    middles: list[int]
    texts: list[str]
    visual: np.ndarray
    text: np.ndarray


def cut_clips(memory: VideoMemory, cfg: Config) -> Clips:
    """The one clip rule: scene cuts on the coarse frames (cfg.index settings), bounds snapped to
    keyframes and stretched to cover every coarse frame, so index and caption clips line up."""
    from vidsift.pipeline.plan.clips import segment_clips

    info, times = memory.info, memory.frames.times
    start = min(info.start_time, float(times[0]))
    end = max(info.end_time, float(times[-1]) + 1e-3)
    spans = segment_clips(
        times, memory.frames.embeddings.visual, start, end, cfg.index.min_clip_s,
        cfg.index.max_clip_s, cfg.index.cut_threshold, info.keyframe_times,
    )
    return clips_of(memory, spans)


def clips_of(memory: VideoMemory, spans: list[tuple[float, float]]) -> Clips:
    """Clips with the given (start, end) spans, summarised from the memory's coarse frames: the
    frames inside each, its middle frame (thumbnail), its text and its mean vectors."""
    from vidsift.pipeline.plan.clips import clip_texts, clip_vectors, frames_in_clips, middle_frame

    frames = memory.frames
    members = frames_in_clips(frames.times, spans)
    return Clips(
        spans=list(spans),
        middles=[middle_frame(frames.times, idx, span) for idx, span in zip(members, spans)],
        texts=clip_texts(frames.embeddings.descriptions, members),
        visual=clip_vectors(frames.embeddings.visual, members),
        text=clip_vectors(frames.embeddings.text, members),
    )
