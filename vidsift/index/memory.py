"""The per-video memory: what ingest learned about a video, stored once per content hash beside
the clip index, so every later ask, index and caption job on that video reads it instead of
decoding the video again.

Layout under the index dir:
    memory/<hash[:2]>/<hash>/<key>.npz   one file per (content, settings); key =
                                         Config.memory_key(), so a changed coarse or embedder
                                         setting never reads a memory made with other settings
A file is written whole to a temp name, fsynced and renamed (core.files.write_atomic), so a
crash leaves the old memory or the new one, and readers never see half of one. Arrays only: no
pickle is ever loaded.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import zipfile
from pathlib import Path

import numpy as np

from vidsift.core.files import write_atomic
from vidsift.core.types import CoarseFrames, FrameEmbeddings, VideoInfo, VideoMemory

log = logging.getLogger(__name__)

FORMAT = 1


class MemoryStore:
    """Video memories under `index_dir`/memory (created on the first write)."""

    def __init__(self, index_dir: str | Path) -> None:
        self.root = Path(index_dir).expanduser() / "memory"

    def path(self, content_hash: str, key: str) -> Path:
        return self.root / content_hash[:2] / content_hash / f"{key}.npz"

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
                blob, offsets = data["thumbnails"], data["thumbnail_offsets"]
                info = meta["info"]
                info["keyframe_times"] = tuple(data["keyframe_times"].tolist())
                return VideoMemory(
                    content_hash=content_hash, key=key, embedder=meta["embedder"],
                    info=VideoInfo(**info),
                    frames=CoarseFrames(
                        times=data["times"],
                        embeddings=FrameEmbeddings(
                            visual=data["visual"], text=data["text"],
                            descriptions=list(meta["descriptions"]),
                        ),
                        thumbnails=[blob[a:b].tobytes() for a, b in zip(offsets[:-1], offsets[1:])],
                    ),
                )
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            log.warning("%s: unreadable video memory, ingesting again (%s)", path, exc)
            return None

    def put(self, memory: VideoMemory) -> Path:
        """Store (or replace) a memory; returns its path."""
        path = self.path(memory.content_hash, memory.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = memory.frames
        info = dataclasses.asdict(memory.info)
        keyframe_times = np.asarray(info.pop("keyframe_times"), dtype=np.float64)
        meta = {"format": FORMAT, "embedder": memory.embedder, "info": info,
                "descriptions": list(frames.embeddings.descriptions)}
        offsets = np.cumsum([0] + [len(t) for t in frames.thumbnails]).astype(np.int64)
        blob = np.frombuffer(b"".join(frames.thumbnails), dtype=np.uint8)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(
                    handle, meta=np.array(json.dumps(meta)), times=frames.times,
                    visual=frames.embeddings.visual, text=frames.embeddings.text,
                    keyframe_times=keyframe_times, thumbnails=blob, thumbnail_offsets=offsets,
                )

        write_atomic(path, write)
        return path
