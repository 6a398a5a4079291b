"""The ingest pool: Ray actors that each host a decoder and the embedder, on any node.

A video is ingested shard by shard (core.shards.plan_shards): an actor decodes one time shard
coarsely and embeds it where it decoded it, so only the small results (times, vectors, text,
JPEG thumbnails) leave the actor, and the pool keeps every actor busy with the shards of one
long video or of a whole archive. The same actors serve probes, fine decodes (frames_at) and
query embeddings, so a question needs no other worker before the VLM.

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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidsift.core.config import Config
from vidsift.core.errors import CorruptVideoError, DecodeTimeoutError, VidsiftError
from vidsift.core.files import THUMBNAIL_MAX_SIDE
from vidsift.core.types import CoarseFrames, Frame, FrameEmbeddings, VideoInfo

log = logging.getLogger(__name__)


def jpeg_thumbnail(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG bytes, longest side at most THUMBNAIL_MAX_SIDE."""
    from PIL import Image

    thumb = Image.fromarray(image)
    thumb.thumbnail((THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE))
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=80)
    return out.getvalue()


class IngestActor:
    """Hosts one decoder and (unless embed is None) one embedder in its own process (wrapped
    with ray.remote by IngestPool)."""

    def __init__(self, factory: Callable[..., Any], cfg: Config, embed: bool = True) -> None:
        self.cfg = cfg
        self.decoder = factory(threads=cfg.decode.threads, max_pixels=cfg.decode.max_pixels)
        self.embedder = None
        if embed:
            from vidsift.workers.embed import get_embedder

            self.embedder = get_embedder(cfg.embed)

    def ready(self) -> str:
        return self.decoder.name

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def call(self, method: str, args: tuple, kwargs: dict):
        if method == "probe":
            from vidsift.core.probe import probe

            return probe(*args, max_pixels=self.cfg.decode.max_pixels)
        if method == "embed_text":
            return self.embedder.embed_text(*args)
        if method == "shard":
            return self.shard(*args)
        return getattr(self.decoder, method)(*args, **kwargs)

    def shard(self, path: str, start: float, end: float) -> CoarseFrames:
        """Coarse-decode [start, end) of path and embed it in batches; the frames' pixels never
        leave this process (only a JPEG thumbnail of each)."""
        cfg = self.cfg
        frames: list[Frame] = self.decoder.coarse(
            path, cfg.decode.coarse_max_side, cfg.selection.max_coarse_gap_s,
            cfg.selection.coarse_fps, start=start, end=end,
        )
        visual, text, descriptions = [], [], []
        batch = cfg.embed.batch_size
        for lo in range(0, len(frames), batch):
            emb = self.embedder.encode_frames([f.image for f in frames[lo : lo + batch]])
            visual.append(emb.visual)
            text.append(emb.text)
            descriptions.extend(emb.descriptions or [""] * len(emb.visual))
        dims = (self.embedder.visual_dim, self.embedder.text_dim)
        return CoarseFrames(
            times=np.array([f.pts for f in frames], dtype=np.float64),
            embeddings=FrameEmbeddings(
                visual=np.concatenate(visual) if visual else np.zeros((0, dims[0]), np.float32),
                text=np.concatenate(text) if text else np.zeros((0, dims[1]), np.float32),
                descriptions=descriptions,
            ),
            thumbnails=[jpeg_thumbnail(f.image) for f in frames],
        )


@dataclass(frozen=True, slots=True)
class ShardTask:
    """One shard to ingest: [start, end) seconds of path; tag is the caller's key for it."""

    path: str
    start: float
    end: float
    tag: Any = None


@dataclass(slots=True)
class _Running:
    task: ShardTask
    slot: int
    actor: Any
    started: float
    attempt: int


class IngestPool:
    """cfg.ingest.num_actors IngestActors spread over the cluster's nodes."""

    def __init__(self, cfg: Config, embed: bool = True) -> None:
        import ray

        from vidsift.core.registry import lookup
        from vidsift.workers.decode import DECODERS

        self.cfg = cfg
        self._factory = lookup(DECODERS, cfg.decode.backend, "decoder")
        ingest = cfg.ingest
        self._remote = ray.remote(
            num_cpus=ingest.num_cpus_per_actor,
            num_gpus=ingest.num_gpus_per_actor if embed else 0,
            max_restarts=0,
            scheduling_strategy="SPREAD",
        )(IngestActor)
        self._embed = embed
        self._lock = threading.Lock()
        self._turn = 0
        self._actors = [self._start() for _ in range(ingest.num_actors)]
        self.shards_done = [0] * ingest.num_actors  # shards each slot finished: how work spread
        self.shards_rerun = 0  # shards run again after their actor died or timed out
        ray.get([actor.ready.remote() for actor in self._actors])  # constructor errors surface here

    def _start(self):
        return self._remote.remote(self._factory, self.cfg, self._embed)

    @property
    def size(self) -> int:
        return len(self._actors)

    def _replace(self, slot: int, actor) -> None:
        import ray

        ray.kill(actor, no_restart=True)
        with self._lock:
            if self._actors[slot] is actor:
                self._actors[slot] = self._start()

    def _next_slot(self) -> tuple[int, Any]:
        with self._lock:
            slot = self._turn % len(self._actors)
            self._turn += 1
            return slot, self._actors[slot]

    def _call(self, method: str, path, *args, timeout_s: float | None = None, **kwargs):
        """One call on the next actor in turn, with the timeout and replacement rules."""
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
        import ray

        _, actor = self._next_slot()
        return ray.get(actor.call.remote("embed_text", (list(texts),), {}))

    def run_shards(self, tasks: Iterable[ShardTask]) -> Iterator[tuple[ShardTask, CoarseFrames | Exception]]:
        """Ingest every task on the pool's actors, one shard in flight per actor, and yield
        (task, CoarseFrames) as each finishes, or (task, the error) for a shard that failed for
        good. Tasks are drawn lazily, so a caller can stream an archive through without holding
        its task list."""
        import ray

        pending = iter(tasks)
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
            ref = actor.call.remote("shard", (task.path, task.start, task.end), {})
            running[ref] = _Running(task, slot, actor, time.monotonic(), attempt)
            return True

        def lost(job: _Running, why: str):
            self._replace(job.slot, job.actor)
            if job.attempt < self.cfg.ingest.max_retries:
                log.warning("shard %s [%.1f, %.1f) lost (%s); running it again",
                            job.task.path, job.task.start, job.task.end, why)
                retry.append((job.task, job.attempt + 1))
                self.shards_rerun += 1
                return None
            if why == "timeout":
                return DecodeTimeoutError(
                    job.task.path, f"shard [{job.task.start:.1f}, {job.task.end:.1f}) s took over "
                    f"{timeout_s:g} s, {job.attempt + 1} times")
            return CorruptVideoError(job.task.path, f"worker died on shard [{job.task.start:.1f}, "
                                     f"{job.task.end:.1f}) s, {job.attempt + 1} times: {why}")

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
            for ref in done:
                job = running.pop(ref)
                try:
                    outcome: CoarseFrames | Exception | None = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    outcome = lost(job, f"{type(exc).__name__}")
                except ray.exceptions.RayTaskError as exc:
                    outcome = exc.cause if isinstance(exc.cause, VidsiftError) else CorruptVideoError(
                        job.task.path, f"shard [{job.task.start:.1f}, {job.task.end:.1f}) s: {exc.cause!r}")
                free.append(job.slot)
                if isinstance(outcome, CoarseFrames):
                    self.shards_done[job.slot] += 1
                if outcome is not None:
                    yield job.task, outcome
            now = time.monotonic()
            for ref, job in list(running.items()):
                if now - job.started > timeout_s:
                    running.pop(ref)
                    outcome = lost(job, "timeout")
                    free.append(job.slot)
                    if outcome is not None:
                        yield job.task, outcome

    def nodes(self) -> list[str]:
        """The node id of every actor (to see the pool spread over a cluster)."""
        import ray

        return ray.get([actor.node.remote() for actor in self._actors])

    def close(self) -> None:
        import ray

        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []
