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
    memory/<hash[:2]>/<hash>/texts-<space>.npz
                                         on-screen texts (strings) and their vectors in one
                                         embedder's text space (space: 16 hex of the space id's
                                         SHA-256), so asking again in a new process embeds only
                                         texts it has not seen
Each file is written whole to a temp name, fsynced and renamed (core.files.write_atomic), the
npz last: it is the commit point, and it records the other files' sizes, so a crash leaves the
old memory or the new one, and readers never see half of one. Arrays only: no pickle is ever
loaded.

A video's results are never all in memory: ingest appends each shard's thumbnails and vectors to
a ShardStage as the shard lands (in any order), put_staged() copies them into frame order a
shard at a time, and a stored memory maps its vectors and reads one thumbnail from disk when it
is asked for (ThumbnailFile). At 2 hours of video the thumbnails are about 80 MB and the vectors
about 50 MB.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
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


class ShardStage:
    """One video's shard results while it is ingested. Each shard's thumbnails and vectors are
    appended to temp files beside the memory as the shard lands, whatever the order; only its
    times and descriptions (about 100 bytes a frame) stay in RAM. So the driver holds one shard,
    not a video's worth of vectors, and the memory files are then written in frame order a
    shard at a time (MemoryStore.put_staged)."""

    STREAMS = ("jpg", "visual", "text")

    def __init__(self, paths: dict[str, Path]) -> None:
        self.paths = paths
        self._files = {}
        for stream, path in paths.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            self._files[stream] = open(path, "w+b")
        # shard tag -> {stream: (offset, bytes)}, thumbnail sizes, times, descriptions
        self._runs: dict[object, dict[str, tuple[int, int]]] = {}
        self._thumbnail_sizes: dict[object, list[int]] = {}
        self._small: dict[object, tuple[np.ndarray, list[str]]] = {}
        self.dims: dict[str, int] = {}

    def _append(self, stream: str, chunks: Sequence[bytes]) -> tuple[int, int]:
        handle = self._files[stream]
        handle.seek(0, os.SEEK_END)
        offset = handle.tell()
        for chunk in chunks:
            handle.write(chunk)
        return offset, handle.tell() - offset

    def add(self, tag, frames: CoarseFrames) -> None:
        """Stage one shard's result (its arrays are copied: they may be views into Ray's object
        store, which can then free them)."""
        runs = {"jpg": self._append("jpg", frames.thumbnails)}
        if len(frames):
            for space in ("visual", "text"):
                vectors = np.ascontiguousarray(getattr(frames.embeddings, space), np.float32)
                if self.dims.setdefault(space, vectors.shape[1]) != vectors.shape[1]:
                    raise ValueError(f"shard {tag!r}: {space} vectors of {vectors.shape[1]} "
                                     f"dims after {self.dims[space]}")
                runs[space] = self._append(space, [vectors.tobytes()])
        self._runs[tag] = runs
        self._thumbnail_sizes[tag] = [len(t) for t in frames.thumbnails]
        self._small[tag] = (np.array(frames.times, dtype=np.float64),
                            list(frames.embeddings.descriptions))

    def frame_count(self, tags: Sequence) -> int:
        return sum(len(self._small[tag][0]) for tag in tags)

    def copy(self, stream: str, tags: Sequence, target) -> None:
        """Write the stream's staged bytes of the shards in `tags` order to a file object."""
        source = self._files[stream]
        source.flush()
        for tag in tags:
            offset, size = self._runs[tag].get(stream, (0, 0))
            source.seek(offset)
            target.write(source.read(size))

    def times(self, tags: Sequence) -> np.ndarray:
        return np.concatenate([self._small[tag][0] for tag in tags])

    def descriptions(self, tags: Sequence) -> list[str]:
        return [d for tag in tags for d in self._small[tag][1]]

    def thumbnail_offsets(self, tags: Sequence) -> np.ndarray:
        """(N + 1,) int64 offsets of the thumbnails in `tags` order."""
        sizes = [size for tag in tags for size in self._thumbnail_sizes[tag]]
        return np.cumsum([0] + sizes).astype(np.int64)

    def discard(self) -> None:
        for stream, handle in self._files.items():
            handle.close()
            self.paths[stream].unlink(missing_ok=True)


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

    def texts_path(self, content_hash: str, space: str) -> Path:
        name = hashlib.sha256(space.encode()).hexdigest()[:16]
        return self.root / content_hash[:2] / content_hash / f"texts-{name}.npz"

    def get_text_vectors(self, content_hash: str, space: str) -> dict[str, np.ndarray]:
        """The text vectors stored for this content in embedder space `space`: {text: (D,)
        float32}; empty when none are (or the file is damaged: logged, embedded anew)."""
        path = self.texts_path(content_hash, space)
        if not path.is_file():
            return {}
        try:
            with np.load(path, allow_pickle=False) as data:
                texts = json.loads(str(data["texts"]))
                vectors = np.asarray(data["vectors"], dtype=np.float32)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("%s: stored text vectors unreadable, embedding anew (%s)", path, exc)
            return {}
        if vectors.ndim != 2 or len(vectors) != len(texts):
            return {}
        return dict(zip(texts, vectors))

    def put_text_vectors(self, content_hash: str, space: str,
                         vectors: dict[str, np.ndarray]) -> Path:
        """Store {text: (D,) vector} for this content in embedder space `space`, replacing
        what was stored (pass the union to add to it)."""
        path = self.texts_path(content_hash, space)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        rows = np.asarray(list(vectors.values()), dtype=np.float32)
        np.savez(buffer, texts=np.array(json.dumps(list(vectors), ensure_ascii=False)),
                 vectors=rows.reshape(len(vectors), -1))
        write_atomic(path, buffer.getvalue())
        return path

    def stage(self, content_hash: str, key: str) -> ShardStage:
        """Temp files beside the memory to collect a video's shard results in during ingest."""
        final = self.path(content_hash, key)
        number = f"{os.getpid()}-{next(_stage_numbers)}"
        return ShardStage({stream: final.with_name(f".{key}.{stream}.stage{number}")
                           for stream in ShardStage.STREAMS})

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

    def put(self, memory: VideoMemory) -> VideoMemory:
        """Store (or replace) a whole memory; returns it as stored (see put_staged)."""
        stage = self.stage(memory.content_hash, memory.key)
        try:
            stage.add(0, memory.frames)
            return self.put_staged(memory.content_hash, memory.key, memory.embedder, memory.info,
                                   stage, [0])
        finally:
            stage.discard()

    def put_staged(self, content_hash: str, key: str, embedder: str, info: VideoInfo,
                   stage: ShardStage, tags: Sequence) -> VideoMemory:
        """Store (or replace) the memory whose frames are the staged shards `tags`, in that
        order, copying a shard at a time; returns it as stored: vectors memory-mapped,
        thumbnails read from disk on demand."""
        path = self.path(content_hash, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        count = stage.frame_count(tags)
        if count == 0 or len(stage.dims) < 2:
            raise ValueError(f"{path}: no frames to store")
        write_atomic(self.thumbnails_path(content_hash, key),
                     lambda tmp: _write_stream(tmp, stage, "jpg", tags))
        for space, dims in stage.dims.items():
            header = {"descr": np.dtype(np.float32).str, "fortran_order": False,
                      "shape": (count, dims)}
            write_atomic(self.vectors_path(content_hash, key, space),
                         lambda tmp, space=space, header=header:
                         _write_stream(tmp, stage, space, tags, npy_header=header))
        fields = dataclasses.asdict(info)
        keyframe_times = np.asarray(fields.pop("keyframe_times"), dtype=np.float64)
        meta = {"format": FORMAT, "embedder": embedder, "info": fields,
                "descriptions": stage.descriptions(tags), "dims": dict(stage.dims)}
        times, offsets = stage.times(tags), stage.thumbnail_offsets(tags)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, meta=np.array(json.dumps(meta)), times=times,
                         keyframe_times=keyframe_times, thumbnail_offsets=offsets)

        write_atomic(path, write)
        stored = self.get(content_hash, key)
        if stored is None:
            raise OSError(f"{path}: the memory just written does not read back")
        return stored


def _write_stream(path: Path, stage: ShardStage, stream: str, tags: Sequence,
                  npy_header: dict | None = None) -> None:
    with open(path, "wb") as handle:
        if npy_header is not None:
            np.lib.format.write_array_header_1_0(handle, npy_header)
        stage.copy(stream, tags, handle)
