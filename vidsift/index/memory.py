"""The per-video memory: what ingest learned about a video, stored once per content hash beside
the clip index, so every later ask, index and caption job on that video reads it instead of
decoding the video again.

Layout under the index dir:
    memory/<hash[:2]>/<hash>/<key>.npz   one file per (content, settings); key =
                                         Config.memory_key(), so a changed coarse or embedder
                                         setting never reads a memory made with other settings
    memory/<hash[:2]>/<hash>/<key>.visual.npy, <key>.text.npy
                                         the coarse frames' (N, D) vectors, memory-mapped
                                         when read: a plan touches the rows it needs, so a
                                         long video's memory costs little resident memory
    memory/<hash[:2]>/<hash>/<key>.jpg   the coarse frames' JPEG thumbnails, end to end, in
                                         frame order (the npz holds their offsets)
Each file is written whole to a temp name, fsynced and renamed (core.files.write_atomic), the
npz last: it is the commit point, and it records the other files' sizes, so a crash leaves the
old memory or the new one, and readers never see half of one. Arrays only: no pickle is ever
loaded.

Thumbnails are never all in memory: ingest appends each shard's to a ThumbnailStage as the shard
lands (in any order), put() copies them into frame order a shard at a time, and a stored memory
reads one thumbnail from disk when it is asked for (ThumbnailFile). At 2 hours of video they are
about 80 MB; everything else in a memory (times, vectors, descriptions) is about 60 MB.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vidsift.core.files import write_atomic
from vidsift.core.types import CoarseFrames, FrameEmbeddings, VideoInfo, VideoMemory

log = logging.getLogger(__name__)

FORMAT = 2
_stage_numbers = itertools.count()


class ThumbnailFile(Sequence):
    """A stored memory's thumbnails: item i is frame i's JPEG bytes, read from disk on demand.

    offsets: (N + 1,) int64 byte offsets into path; frame i is [offsets[i], offsets[i + 1])."""

    def __init__(self, path: Path, offsets: np.ndarray) -> None:
        self.path = path
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = range(len(self))[i]  # negative indices count from the end; IndexError past it
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        with open(self.path, "rb") as handle:
            handle.seek(start)
            return handle.read(end - start)


class ThumbnailStage:
    """One video's thumbnails while it is ingested: each shard's are appended to a temp file as
    the shard lands, whatever the order, so the driver never holds a video's worth of them."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._handle = open(path, "w+b")
        self._runs: dict[object, tuple[int, list[int]]] = {}  # shard tag -> (offset, sizes)

    def add(self, tag, thumbnails: Sequence[bytes]) -> None:
        self._handle.seek(0, os.SEEK_END)
        self._runs[tag] = (self._handle.tell(), [len(t) for t in thumbnails])
        for thumbnail in thumbnails:
            self._handle.write(thumbnail)

    def write_in_order(self, tags: Sequence, out: Path) -> np.ndarray:
        """Copy the shards' thumbnails into `out` in the order of tags, a shard at a time;
        returns their (N + 1,) offsets in `out`."""
        self._handle.flush()
        sizes = [size for tag in tags for size in self._runs[tag][1]]

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as target:
                for tag in tags:
                    offset, run = self._runs[tag]
                    self._handle.seek(offset)
                    target.write(self._handle.read(sum(run)))

        write_atomic(out, write)
        return np.cumsum([0] + sizes).astype(np.int64)

    def discard(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)


class MemoryStore:
    """Video memories under `index_dir`/memory (created on the first write)."""

    def __init__(self, index_dir: str | Path) -> None:
        self.root = Path(index_dir).expanduser() / "memory"

    def path(self, content_hash: str, key: str) -> Path:
        return self.root / content_hash[:2] / content_hash / f"{key}.npz"

    def thumbnails_path(self, content_hash: str, key: str) -> Path:
        return self.path(content_hash, key).with_suffix(".jpg")

    def vectors_path(self, content_hash: str, key: str, space: str) -> Path:
        """space: "visual" or "text"."""
        return self.path(content_hash, key).with_suffix(f".{space}.npy")

    def stage(self, content_hash: str, key: str) -> ThumbnailStage:
        """A temp file beside the memory to collect a video's thumbnails in during ingest."""
        final = self.thumbnails_path(content_hash, key)
        return ThumbnailStage(final.with_name(
            f".{final.name}.stage{os.getpid()}-{next(_stage_numbers)}"))

    def has(self, content_hash: str, key: str) -> bool:
        return self.path(content_hash, key).is_file()

    def get(self, content_hash: str, key: str) -> VideoMemory | None:
        """The memory of this content made with these settings, or None. A damaged file is
        logged and treated as absent (ingest then makes it anew)."""
        path = self.path(content_hash, key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("format") != FORMAT:
                    return None
                offsets = data["thumbnail_offsets"]
                times = data["times"]
                keyframe_times = data["keyframe_times"]
            thumbnails = self.thumbnails_path(content_hash, key)
            if thumbnails.stat().st_size != int(offsets[-1]):
                raise ValueError(f"{thumbnails.name} holds {thumbnails.stat().st_size} bytes, "
                                 f"the memory expects {int(offsets[-1])}")
            vectors = {}
            for space in ("visual", "text"):
                vectors[space] = np.load(self.vectors_path(content_hash, key, space),
                                         mmap_mode="r", allow_pickle=False)
                if vectors[space].shape != (len(times), meta["dims"][space]):
                    raise ValueError(f"{space} vectors {vectors[space].shape} for "
                                     f"{len(times)} frames of {meta['dims'][space]} dims")
            info = meta["info"]
            info["keyframe_times"] = tuple(keyframe_times.tolist())
            return VideoMemory(
                content_hash=content_hash, key=key, embedder=meta["embedder"],
                info=VideoInfo(**info),
                frames=CoarseFrames(
                    times=times,
                    embeddings=FrameEmbeddings(
                        visual=vectors["visual"], text=vectors["text"],
                        descriptions=list(meta["descriptions"]),
                    ),
                    thumbnails=ThumbnailFile(thumbnails, offsets),
                ),
            )
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            log.warning("%s: unreadable video memory, ingesting again (%s)", path, exc)
            return None

    def put(self, memory: VideoMemory, staged: tuple[ThumbnailStage, Sequence] | None = None
            ) -> VideoMemory:
        """Store (or replace) a memory; returns it as stored: vectors memory-mapped, thumbnails
        read from disk on demand (the caller's arrays can then be freed).

        staged: (stage, shard tags in frame order) when the thumbnails were collected in a
        ThumbnailStage during ingest (memory.frames.thumbnails is then ignored)."""
        path = self.path(memory.content_hash, memory.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        thumbnails_path = self.thumbnails_path(memory.content_hash, memory.key)
        if staged is not None:
            stage, tags = staged
            offsets = stage.write_in_order(tags, thumbnails_path)
        else:
            thumbnails = memory.frames.thumbnails
            write_atomic(thumbnails_path, b"".join(thumbnails))
            offsets = np.cumsum([0] + [len(t) for t in thumbnails]).astype(np.int64)
        frames = memory.frames
        if len(offsets) - 1 != len(frames):
            raise ValueError(f"{len(offsets) - 1} thumbnails for {len(frames)} frames")
        for space, vectors in (("visual", frames.embeddings.visual),
                               ("text", frames.embeddings.text)):
            write_atomic(self.vectors_path(memory.content_hash, memory.key, space),
                         lambda tmp, vectors=vectors: _save_npy(tmp, vectors))
        info = dataclasses.asdict(memory.info)
        keyframe_times = np.asarray(info.pop("keyframe_times"), dtype=np.float64)
        meta = {"format": FORMAT, "embedder": memory.embedder, "info": info,
                "descriptions": list(frames.embeddings.descriptions),
                "dims": {"visual": int(frames.embeddings.visual.shape[1]),
                         "text": int(frames.embeddings.text.shape[1])}}

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, meta=np.array(json.dumps(meta)), times=frames.times,
                         keyframe_times=keyframe_times, thumbnail_offsets=offsets)

        write_atomic(path, write)
        stored = self.get(memory.content_hash, memory.key)
        if stored is None:
            raise OSError(f"{path}: the memory just written does not read back")
        return stored


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, np.asarray(array, dtype=np.float32), allow_pickle=False)
