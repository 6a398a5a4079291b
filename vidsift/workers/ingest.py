"""The ingest pool: Ray actors that each host a decoder and the embedder, on any node.

A video is ingested shard by shard (core.shards.plan_shards): an actor decodes one time shard
coarsely and embeds it where it decoded it, so only the small results (times, vectors, text,
JPEG thumbnails) leave the actor, and the pool keeps every actor busy with the shards of one
long video or of a whole archive. When the job asks for speech recognition, each shard's audio
is decoded and recognised in the same shard (on its decode actor, or on an embed actor for a
recogniser that wants the GPU: speech.asr_actor), so a long lecture's speech is recognised on
every actor at once and only its text leaves the worker. The same actors serve probes, fine
decodes (frames_at) and query embeddings, so a question needs no other worker before the VLM.

Failure rules: every call has a timeout (decode.timeout_s for probes and fine decodes,
ingest.shard_timeout_s per shard, never per video). A call past its timeout, or whose actor died
(a crash, a node removed from the cluster), gets a fresh actor in that slot; a shard is then run
again, up to ingest.max_retries times, so a lost node loses no shard and doubles none (results
are keyed by shard). Typed errors about the input (VideoError) arrive as themselves.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidsift.core.config import Config, IngestConfig, SpeechConfig
from vidsift.core.errors import CorruptVideoError, DecodeTimeoutError, VidsiftError
from vidsift.core.files import THUMBNAIL_MAX_SIDE
from vidsift.core.types import CoarseFrames, Frame, FrameEmbeddings, VideoInfo
from vidsift.workers.speech import Heard

log = logging.getLogger(__name__)

# A shard is decoded and embedded in pieces of about this many seconds (cut at keyframes): the
# decode actor's memory is bounded by a piece, not by the shard (5 min of 448 px frames would be
# ~100 MB in the actor and as much again in flight to the embedder).
PIECE_S = 20.0
# Pieces a decode actor keeps in flight to the embed actors before it waits for the oldest: deep
# enough that an embed actor finishing a costly (text-heavy) piece finds the next one waiting,
# small enough to bound what is in flight (about 7 MB of 448 px frames a piece).
PIECES_IN_FLIGHT = 3


def jpeg_thumbnail(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG bytes, longest side at most THUMBNAIL_MAX_SIDE."""
    from PIL import Image

    thumb = Image.fromarray(image)
    thumb.thumbnail((THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE))
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=80)
    return out.getvalue()


def release_freed_memory() -> None:
    """Hand the C heap's freed pages back to the OS (glibc malloc_trim). A long-lived worker that
    embeds batch after batch otherwise keeps every batch's freed buffers: the embed actor's
    resident memory grew by ~300 MB over one 10-minute video without it. No-op off glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name:
        trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
        if trim is not None:
            trim(0)


def _identity() -> tuple[str, int]:
    """(Ray node id, process id) of the calling actor."""
    import os

    import ray

    return ray.get_runtime_context().get_node_id(), os.getpid()


LOAD_GROUP = "load"  # EmbedActor's concurrency group for its backlog count


@dataclass(frozen=True, slots=True)
class SpeechShard:
    """Speech recognition of one shard under cfg: [start, end) seconds of the audio track, None
    for the video's first shard's start and last shard's end (speech before the first picture
    or after the last one belongs to them); until: where the shard's share ends when its audio
    runs on past it (workers.speech.hear)."""

    cfg: SpeechConfig
    start: float | None
    end: float | None
    until: float | None = None


@dataclass(slots=True)
class ShardResult:
    """What one shard gave: its coarse frames (None when only its speech was asked for), its
    recognised speech (None when not asked for), and for a remote video with no strong version
    the digests of the pieces it fetched whole (core.sources.take_pieces; None otherwise)."""

    frames: CoarseFrames | None
    heard: Heard | None
    pieces: dict[int, bytes] | None = None


def asr_on_embed_actors(ingest: IngestConfig, speech: SpeechConfig) -> bool:
    """Whether the embed actors recognise speech (speech.asr_actor; auto: whisper when the embed
    actors hold GPUs, since the decode actors are CPU-only)."""
    if speech.asr_actor != "auto":
        return speech.asr_actor == "embed"
    return speech.asr_backend == "whisper" and ingest.embed_gpus_per_actor > 0


class _Listener:
    """An actor's speech recogniser: loaded on its first shard with speech, again only when a
    job's speech settings differ (the pool serves jobs with different speech modes). One
    stretch is heard at a time: an embed actor runs ingest.embed_concurrency calls at once, and
    neither loading a recogniser (two threads importing transformers at once fail) nor every
    recogniser (pocketsphinx's decoder keeps state) may be shared between threads."""

    _asr = None
    _asr_settings: str | None = None
    _asr_lock = threading.Lock()  # one actor per process

    def _hear(self, path: str, speech: SpeechShard) -> Heard:
        with self._asr_lock:
            return self._hear_alone(path, speech)

    def _hear_alone(self, path: str, speech: SpeechShard) -> Heard:
        from vidsift.workers.speech import get_asr, hear

        def load():
            settings = speech.cfg.model_dump_json()
            if self._asr_settings != settings:
                self._asr, self._asr_settings = None, None  # the old one's memory goes first
                self._asr, self._asr_settings = get_asr(speech.cfg), settings
            return self._asr

        return hear(path, speech.cfg, load, speech.start, speech.end, until=speech.until)


class EmbedActor(_Listener):
    """Hosts the embedder (its models load once per actor: most of an ingest worker's memory),
    fed frames by the decode actors (wrapped with ray.remote by IngestPool)."""

    def __init__(self, cfg: Config) -> None:
        from vidsift.workers.embed import get_embedder

        self.embedder = get_embedder(cfg.embed)
        self._queued = 0  # pieces announced by reserve() and not yet encoded
        self._count_lock = threading.Lock()
        release_freed_memory()  # what loading and the ONNX export freed

    # queued() and reserve() run in their own concurrency group (LOAD_GROUP), so a decode actor
    # learns this actor's backlog at once, not after the pieces ahead of it are encoded.
    def queued(self) -> int:
        return self._queued

    def reserve(self) -> None:
        """Announce one encode_frames call (every call is announced by one reserve)."""
        with self._count_lock:
            self._queued += 1

    def ready(self) -> tuple[int, int]:
        return self.embedder.visual_dim, self.embedder.text_dim

    def identity(self) -> tuple[str, int]:
        return _identity()

    def encode_frames(self, images: list[np.ndarray]) -> FrameEmbeddings:
        try:
            return self.embedder.encode_frames(images)
        finally:
            with self._count_lock:
                self._queued -= 1
            release_freed_memory()

    def embed_text(self, texts: list[str]) -> np.ndarray:
        return self.embedder.embed_text(texts)

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        return self.embedder.embed_images(images)

    def hear(self, path: str, speech: SpeechShard) -> Heard:
        """A shard's speech, recognised here (announced by one reserve, like a piece)."""
        try:
            return self._hear(path, speech)
        finally:
            with self._count_lock:
                self._queued -= 1
            release_freed_memory()


class DecodeActor(_Listener):
    """Hosts one decoder in its own process (wrapped with ray.remote by IngestPool): probes,
    fine decodes, and the coarse pass of a shard, streamed to an EmbedActor piece by piece."""

    def __init__(self, factory: Callable[..., Any], cfg: Config) -> None:
        from vidsift.core import sources

        self.cfg = cfg
        self.decoder = factory(threads=cfg.decode.threads, max_pixels=cfg.decode.max_pixels)
        sources.configure(cfg.decode.source_block_kib, cfg.decode.source_cache_blocks)

    def ready(self) -> str:
        return self.decoder.name

    def identity(self) -> tuple[str, int]:
        return _identity()

    def bytes_read(self) -> dict[str, int]:
        """Bytes this actor has read from each remote video (core.sources.bytes_fetched)."""
        from vidsift.core.sources import bytes_fetched

        return bytes_fetched()

    def call(self, method: str, args: tuple, kwargs: dict):
        if method == "probe":
            from vidsift.core.probe import probe

            return probe(*args, max_pixels=self.cfg.decode.max_pixels)
        return getattr(self.decoder, method)(*args, **kwargs)

    def shard(self, path: str, start: float, end: float, embedders: list, first: int = 0,
              frames: bool = True, speech: SpeechShard | None = None, scan=None) -> ShardResult:
        """Coarse-decode [start, end) of path (when `frames`) in keyframe-aligned pieces of about
        PIECE_S seconds, each piece's frames going to an EmbedActor while the next piece
        decodes; and recognise the shard's speech (when `speech`: here, after the pieces are
        sent, so it overlaps their embedding, or on an embed actor; asr_on_embed_actors). A piece
        goes to the embed actor with the fewest pieces queued (from every decode actor; ties
        taken in turn from index `first`): what a piece costs to embed varies a lot (frames
        with text pay for OCR), and a fixed pairing left one embed actor idle while another
        worked through a text-heavy shard. At most PIECES_IN_FLIGHT
        pieces' pixels (or one window of audio) are alive at once, whatever the shard's length,
        and only times, vectors, text, JPEG thumbnails and transcript lines leave this process.
        scan: a remote video's scan made by the driver (core.probe.remember_scan), so this
        actor reads only its shard's byte ranges, of the version the driver scanned
        (core.probe.pinned); one with no strong version has the pieces of every block this
        actor fetches hashed on the way (core.sources.start_pieces), returned with the result,
        so the driver hashes the object without reading it again."""
        from vidsift.core import sources
        from vidsift.core.probe import pinned, remember_scan

        source = scan.source if scan is not None else None
        if scan is not None:
            remember_scan(scan, self.cfg.decode.max_pixels)
        hashing = source is not None and source.hashed_in_pieces
        if hashing:
            sources.start_pieces(source.url, source.size)
        try:
            with pinned(scan):
                result = self._shard(path, start, end, embedders, first, frames, speech)
        finally:
            pieces = sources.take_pieces(source.url) if hashing else None
        result.pieces = pieces
        return result

    def _shard(self, path: str, start: float, end: float, embedders: list, first: int,
               frames: bool, speech: SpeechShard | None) -> ShardResult:
        import ray

        cfg = self.cfg
        parts: list[CoarseFrames] = []
        in_flight: deque = deque()  # (times, thumbnails, embedding ref) of pieces being embedded
        turn = first

        def least_queued():
            queued = ray.get([e.queued.options(concurrency_group=LOAD_GROUP).remote()
                              for e in embedders])
            count = len(embedders)
            pick = min(range(count), key=lambda i: (queued[i], (i - turn) % count))
            ray.get(embedders[pick].reserve.options(concurrency_group=LOAD_GROUP).remote())
            return embedders[pick]

        def collect(piece) -> None:
            times, thumbnails, ref = piece
            parts.append(CoarseFrames(times=times, embeddings=ray.get(ref), thumbnails=thumbnails))

        heard_ref = heard = None
        if speech is not None and asr_on_embed_actors(cfg.ingest, speech.cfg):
            heard_ref = least_queued().hear.remote(path, speech)
            turn += 1
        if frames:
            for times, thumbnails, images in self._pieces(path, start, end):
                in_flight.append((times, thumbnails, least_queued().encode_frames.remote(images)))
                turn += 1
                del images
                if len(in_flight) >= PIECES_IN_FLIGHT:
                    collect(in_flight.popleft())
        if speech is not None and heard_ref is None:
            heard = self._hear(path, speech)
        while in_flight:
            collect(in_flight.popleft())
        if heard_ref is not None:
            heard = ray.get(heard_ref)
        release_freed_memory()
        if not frames:
            return ShardResult(None, heard)
        if not parts:
            empty = np.zeros((0, 0), np.float32)
            return ShardResult(CoarseFrames(np.zeros(0), FrameEmbeddings(empty, empty, []), []), heard)
        return ShardResult(CoarseFrames.concat(parts), heard)

    def _pieces(self, path: str, start: float,
                end: float) -> Iterator[tuple[np.ndarray, list[bytes], list[np.ndarray]]]:
        """(times, JPEG thumbnails, images) of each keyframe-aligned piece of [start, end)
        that decodes to any coarse frame, one piece decoded at a time."""
        from vidsift.core.probe import scan_video
        from vidsift.core.shards import plan_shards

        cfg = self.cfg
        scan = scan_video(path, cfg.decode.max_pixels)  # cached: coarse() reads the same scan
        keys = scan.times[scan.is_key]
        for lo, hi in plan_shards(keys[(keys > start) & (keys < end)], start, end, PIECE_S):
            decoded: list[Frame] = self.decoder.coarse(
                path, cfg.decode.coarse_max_side, cfg.selection.max_coarse_gap_s,
                cfg.selection.coarse_fps, start=lo, end=hi,
            )
            if decoded:
                yield (np.array([f.pts for f in decoded], dtype=np.float64),
                       [jpeg_thumbnail(f.image) for f in decoded], [f.image for f in decoded])
            del decoded


def _read_ahead(items: Iterable, depth: int) -> Iterator:
    """items, drawn up to `depth` ahead in a thread: the caller's task source hashes and probes
    each video as it draws it, and that should not keep a free actor waiting. Stops drawing
    when the returned iterator is closed or dropped; an exception in the source is re-raised
    where its item would have been."""
    import queue

    slots: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    end = object()

    def draw() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((end, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer below
            slots.put((end, exc))

    threading.Thread(target=draw, name="ingest-read-ahead", daemon=True).start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is end:
                return
            yield item
    finally:
        stop.set()


@dataclass(frozen=True, slots=True)
class ShardTask:
    """One shard to ingest: [start, end) seconds of path; tag is the caller's key for it.
    frames: decode and embed its coarse frames; speech: recognise its speech too (or only).
    scan: a remote video's core.probe.StreamScan, handed to the actor (None for local files)."""

    path: str
    start: float
    end: float
    tag: Any = None
    frames: bool = True
    speech: SpeechShard | None = None
    scan: Any = None


@dataclass(slots=True)
class _Running:
    task: ShardTask
    slot: int
    actor: Any
    started: float
    attempt: int


class IngestPool:
    """cfg.ingest.num_actors DecodeActors and cfg.ingest.embed_actors EmbedActors, spread over
    the cluster's nodes. Decode actors stream the pieces of their shards to whichever embed actor
    has the fewest pieces queued.
    embed=False starts no embed actors (probes and fine decodes only)."""

    def __init__(self, cfg: Config, embed: bool = True) -> None:
        import ray

        from vidsift.core.registry import lookup
        from vidsift.workers.decode import DECODERS

        self.cfg = cfg
        ingest = cfg.ingest
        factory = lookup(DECODERS, cfg.decode.backend, "decoder")
        decode = ray.remote(num_cpus=ingest.num_cpus_per_actor, max_restarts=0,
                            scheduling_strategy="SPREAD")(DecodeActor)
        self._start_decoder = lambda: decode.remote(factory, cfg)
        embedder = ray.remote(num_cpus=ingest.embed_cpus_per_actor,
                              num_gpus=ingest.embed_gpus_per_actor, max_restarts=0,
                              scheduling_strategy="SPREAD",
                              max_concurrency=ingest.embed_concurrency,
                              concurrency_groups={LOAD_GROUP: 1})(EmbedActor)
        self._start_embedder = lambda: embedder.remote(cfg)
        self._lock = threading.Lock()
        self._turn = 0
        self._actors = [self._start_decoder() for _ in range(ingest.num_actors)]
        self._embedders = [self._start_embedder() for _ in range(ingest.embed_actors if embed else 0)]
        self.shards_done = [0] * ingest.num_actors  # shards each slot finished: how work spread
        self.shards_rerun = 0  # shards run again after an actor died or timed out
        # Constructor errors (a missing checkpoint, an unknown decoder) surface here.
        ray.get([a.ready.remote() for a in self._actors + self._embedders])

    @property
    def size(self) -> int:
        return len(self._actors)

    def _replace(self, slot: int, actor) -> None:
        import ray

        ray.kill(actor, no_restart=True)
        with self._lock:
            if self._actors[slot] is actor:
                self._actors[slot] = self._start_decoder()

    def _heal_embedders(self) -> None:
        """Replace every embed actor that no longer answers (its process or node is gone)."""
        import ray

        for number, actor in enumerate(list(self._embedders)):
            try:
                ray.get(actor.ready.remote(), timeout=self.cfg.decode.timeout_s)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                ray.kill(actor, no_restart=True)
                self._embedders[number] = self._start_embedder()

    def _next_slot(self) -> tuple[int, Any]:
        with self._lock:
            slot = self._turn % len(self._actors)
            self._turn += 1
            return slot, self._actors[slot]

    def _call(self, method: str, path, *args, timeout_s: float | None = None, **kwargs):
        """One call on the next decode actor in turn, with the timeout and replacement rules."""
        import ray

        path = str(path)
        timeout_s = self.cfg.decode.timeout_s if timeout_s is None else timeout_s
        slot, actor = self._next_slot()
        ref = actor.call.remote(method, (path, *args), kwargs)
        try:
            return ray.get(ref, timeout=timeout_s)
        except ray.exceptions.GetTimeoutError:
            self._replace(slot, actor)
            raise DecodeTimeoutError(path, f"{method} took over {timeout_s:g} s; worker restarted") from None
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, VidsiftError):
                raise exc.cause from None
            raise
        except ray.exceptions.RayActorError as exc:
            self._replace(slot, actor)
            raise CorruptVideoError(path, f"worker process died during {method}: {exc}") from None

    def probe(self, path, timeout_s: float | None = None) -> VideoInfo:
        return self._call("probe", path, timeout_s=timeout_s)

    def frames_at(self, path, timestamps, size=None, max_side=None, timeout_s: float | None = None) -> list[Frame]:
        return self._call("frames_at", path, list(timestamps), size=size, max_side=max_side,
                          timeout_s=timeout_s)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        return self._ask_an_embedder("embed_text", list(texts))

    def embed_images(self, images: list[np.ndarray]) -> np.ndarray:
        """Query images (a photo alert) as visual unit vectors, (N, visual_dim)."""
        return self._ask_an_embedder("embed_images", list(images))

    def _ask_an_embedder(self, method: str, items: list):
        """method(items) on the first embed actor, healed and asked again if it died."""
        import ray

        try:
            return ray.get(getattr(self._embedders[0], method).remote(items))
        except ray.exceptions.RayActorError:
            self._heal_embedders()
            return ray.get(getattr(self._embedders[0], method).remote(items))

    def encode_frames(self, images: list[np.ndarray]) -> FrameEmbeddings:
        """Frames decoded elsewhere (a live stream's shard) embedded on the embed actor with the
        fewest pieces queued, beside the shards the decode actors feed it."""
        import ray

        def encode() -> FrameEmbeddings:
            queued = ray.get([actor.queued.remote() for actor in self._embedders])
            actor = self._embedders[int(np.argmin(queued))]
            ray.get(actor.reserve.remote())  # every encode_frames call is announced by one
            return ray.get(actor.encode_frames.remote(list(images)))

        try:
            return encode()
        except ray.exceptions.RayActorError:
            self._heal_embedders()
            return encode()

    def run_shards(self, tasks: Iterable[ShardTask]) -> Iterator[tuple[ShardTask, ShardResult | Exception]]:
        """Ingest every task on the pool's actors, one shard in flight per decode actor, and
        yield (task, ShardResult) as each finishes, or (task, the error) for a shard that
        failed for good. Tasks are drawn lazily, so a caller can stream an archive through
        without holding its task list."""
        import ray

        if not self._embedders:
            raise RuntimeError("this IngestPool was started with embed=False")
        pending = _read_ahead(tasks, depth=len(self._actors))
        retry: list[tuple[ShardTask, int]] = []
        running: dict[Any, _Running] = {}
        timeout_s = self.cfg.ingest.shard_timeout_s
        free = list(range(len(self._actors)))

        def submit(slot: int) -> bool:
            if retry:
                task, attempt = retry.pop(0)
            else:
                task = next(pending, None)
                if task is None:
                    return False
                attempt = 0
            actor = self._actors[slot]
            ref = actor.shard.remote(task.path, task.start, task.end, list(self._embedders), slot,
                                     task.frames, task.speech, task.scan)
            running[ref] = _Running(task, slot, actor, time.monotonic(), attempt)
            return True

        def lost(job: _Running, why: str, replace_decoder: bool = True):
            if replace_decoder:
                self._replace(job.slot, job.actor)
            self._heal_embedders()
            if job.attempt < self.cfg.ingest.max_retries:
                log.warning("shard %s [%.1f, %.1f) lost (%s); running it again",
                            job.task.path, job.task.start, job.task.end, why)
                retry.append((job.task, job.attempt + 1))
                self.shards_rerun += 1
                return None
            span = f"shard [{job.task.start:.1f}, {job.task.end:.1f}) s"
            if why == "timeout":
                return DecodeTimeoutError(
                    job.task.path, f"{span} took over {timeout_s:g} s, {job.attempt + 1} times")
            return CorruptVideoError(
                job.task.path, f"a worker died on {span}, {job.attempt + 1} times: {why}")

        while True:
            while free and submit(free[0]):
                free.pop(0)
            if not running:
                if retry and free:
                    continue
                return
            now = time.monotonic()
            wait_s = max(0.05, min(j.started + timeout_s for j in running.values()) - now)
            done, _ = ray.wait(list(running), num_returns=1, timeout=wait_s)
            finished: list[tuple[ShardTask, ShardResult | Exception]] = []
            for ref in done:
                job = running.pop(ref)
                try:
                    outcome: ShardResult | Exception | None = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    outcome = lost(job, type(exc).__name__)
                except ray.exceptions.RayTaskError as exc:
                    if isinstance(exc.cause, VidsiftError):
                        outcome = exc.cause
                    elif isinstance(exc.cause, ray.exceptions.RayActorError):
                        # The decode actor lived; the embed actor it streamed to did not.
                        outcome = lost(job, f"embedder {type(exc.cause).__name__}",
                                       replace_decoder=False)
                    else:
                        outcome = CorruptVideoError(
                            job.task.path, f"shard [{job.task.start:.1f}, {job.task.end:.1f}) s: "
                            f"{exc.cause!r}")
                free.append(job.slot)
                if isinstance(outcome, ShardResult):
                    self.shards_done[job.slot] += 1
                if outcome is not None:
                    finished.append((job.task, outcome))
            now = time.monotonic()
            for ref, job in list(running.items()):
                if now - job.started > timeout_s:
                    running.pop(ref)
                    outcome = lost(job, "timeout")
                    free.append(job.slot)
                    if outcome is not None:
                        finished.append((job.task, outcome))
            # Refill the freed actors before the caller gets the results: whatever it does with
            # them (store a memory, write an index) overlaps the next shards' decoding.
            while free and submit(free[0]):
                free.pop(0)
            yield from finished

    def processes(self) -> list[tuple[str, int]]:
        """(node id, pid) of every actor, decode actors first: where the pool runs, and what
        to measure."""
        import ray

        return ray.get([a.identity.remote() for a in self._actors + self._embedders])

    def bytes_read(self) -> list[dict[str, int]]:
        """What each decode actor has read from each remote video, bytes (DecodeActor.bytes_read)."""
        import ray

        return ray.get([a.bytes_read.remote() for a in self._actors])

    def nodes(self) -> list[str]:
        """The node id of every decode actor (to see the pool spread over a cluster)."""
        return [node for node, _ in self.processes()[: len(self._actors)]]

    def close(self) -> None:
        import ray

        for actor in self._actors + self._embedders:
            ray.kill(actor, no_restart=True)
        self._actors, self._embedders = [], []
