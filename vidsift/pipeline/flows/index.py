"""The index flow: video files -> probe -> coarse frames -> embeddings -> clips -> ClipIndex; and
search_clips(), a text query against that index.

Decoding and embedding run in this process (one machine: Ray would only add startup time for a
sequential per-video pipeline). Resumable: a video whose content hash is already in the index is
skipped, and the index is committed at least every COMMIT_EVERY_S seconds and at the end, so an
interrupted run loses at most that much work. A video that fails (unreadable, corrupt, no
frames) is reported and skipped; the run goes on.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidsift.pipeline.config import Config
from vidsift.pipeline.errors import VideoNotFoundError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts", ".flv", ".wmv"}
)
COMMIT_EVERY_S = 30.0
THUMBNAIL_MAX_SIDE = 256


@dataclass(frozen=True, slots=True)
class IndexEvent:
    """One step of an index run, for progress display.

    kind: "start" (a video begins), "indexed", "skipped" (already indexed) or "failed".
    done: videos finished so far (indexed + skipped + failed), of total.
    """

    kind: str
    path: str
    done: int
    total: int
    clips: int = 0  # clips this video added
    frames: int = 0  # coarse frames this video decoded and embedded
    error: str = ""


@dataclass(slots=True)
class IndexSummary:
    index_dir: str
    indexed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, error)
    clips: int = 0
    frames: int = 0
    video_seconds: float = 0.0  # duration of the videos indexed in this run
    wall_s: float = 0.0

    def to_dict(self) -> dict:
        return {
            "index_dir": self.index_dir, "indexed": list(self.indexed), "skipped": list(self.skipped),
            "failed": [{"path": p, "error": e} for p, e in self.failed], "clips": self.clips,
            "frames": self.frames, "video_seconds": round(self.video_seconds, 3),
            "wall_s": round(self.wall_s, 3),
        }


def find_videos(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Files as given (any extension; missing ones too, so they are reported), and the video
    files (by extension) under each directory, recursively, sorted. Absolute, de-duplicated."""
    found: dict[str, None] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in VIDEO_EXTENSIONS:
                    found.setdefault(str(child.resolve()), None)
        else:
            found.setdefault(str(path.resolve()), None)
    return list(found)


def content_hash(path: str) -> str:
    """SHA-256 of the file's bytes, hex: the same video at another path is the same content."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise VideoNotFoundError(path) from None
    return digest.hexdigest()


_EMBEDDERS: dict[str, object] = {}


def shared_embedder(cfg: Config):
    """One embedder per embed config in this process: loading the models costs seconds, and a
    service answers many searches."""
    key = cfg.embed.model_dump_json()
    if key not in _EMBEDDERS:
        from vidsift.workers.embed import get_embedder

        _EMBEDDERS[key] = get_embedder(cfg.embed)
    return _EMBEDDERS[key]


def embedder_id(cfg: Config) -> str:
    """Names the vector spaces an index holds: vectors of another embedder are not comparable."""
    return cfg.embed.backend + (f":{cfg.embed.model}" if cfg.embed.model else "")


def save_thumbnail(image: np.ndarray, path: Path) -> None:
    """Write an (H, W, 3) uint8 RGB frame as the small JPEG that the index, ask and caption
    results point to (longest side THUMBNAIL_MAX_SIDE)."""
    from PIL import Image

    thumb = Image.fromarray(image)
    thumb.thumbnail((THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE))
    path.parent.mkdir(parents=True, exist_ok=True)
    thumb.save(path, format="JPEG", quality=80)


def clip_video(path: str, digest: str, cfg: Config, embedder, index):
    """Probe, decode coarse frames, embed them, cut clips, write thumbnails.
    Returns (VideoClips for index.add_video, number of coarse frames)."""
    from vidsift.index.clip_index import VideoClips
    from vidsift.index.store import NewClip
    from vidsift.pipeline.clips import (
        clip_texts,
        clip_vectors,
        frames_in_clips,
        middle_frame,
        segment_clips,
    )
    from vidsift.pipeline.errors import CorruptVideoError
    from vidsift.pipeline.probe import probe
    from vidsift.workers.decode import get_decoder

    info = probe(path, max_pixels=cfg.decode.max_pixels)
    decoder = get_decoder(cfg.decode.backend, threads=cfg.decode.threads, max_pixels=cfg.decode.max_pixels)
    frames = decoder.coarse(
        path, cfg.decode.coarse_max_side, cfg.selection.max_coarse_gap_s, cfg.selection.coarse_fps
    )
    if not frames:
        raise CorruptVideoError(path, "no frame decoded")
    visual, text, descriptions = [], [], []
    batch = cfg.embed.batch_size
    for lo in range(0, len(frames), batch):
        emb = embedder.encode_frames([f.image for f in frames[lo : lo + batch]])
        visual.append(emb.visual)
        text.append(emb.text)
        descriptions.extend(emb.descriptions or [""] * len(emb.visual))
    visual_all, text_all = np.concatenate(visual), np.concatenate(text)
    times = np.array([f.pts for f in frames], dtype=np.float64)
    start = min(info.start_time, float(times[0]))
    end = max(info.end_time, float(times[-1]) + 1e-3)
    spans = segment_clips(
        times, visual_all, start, end, cfg.index.min_clip_s, cfg.index.max_clip_s,
        cfg.index.cut_threshold, info.keyframe_times,
    )
    members = frames_in_clips(times, spans)
    texts = clip_texts(descriptions, members)
    clips = []
    for number, (span, idx) in enumerate(zip(spans, members)):
        absolute, relative = index.thumbnail_path(digest, number)
        save_thumbnail(frames[middle_frame(times, idx, span)].image, absolute)
        clips.append(NewClip(span[0], span[1], relative, texts[number]))
    record = VideoClips(
        path=path, content_hash=digest, duration=info.duration, clips=clips,
        visual=clip_vectors(visual_all, members), text=clip_vectors(text_all, members),
    )
    return record, len(frames)


def index_videos(
    paths: Sequence[str | os.PathLike],
    cfg: Config,
    progress: Callable[[IndexEvent], None] | None = None,
) -> IndexSummary:
    """Index every video under paths into the clip index at cfg.index.dir (see module doc)."""
    from vidsift.index.clip_index import ClipIndex

    started = time.perf_counter()
    videos = find_videos(paths)
    summary = IndexSummary(index_dir=str(Path(cfg.index.dir).expanduser()))
    notify = progress or (lambda event: None)
    embedder = None  # loaded on the first video that needs it: a resumed run may need none
    with ClipIndex(cfg.index.dir, cfg.index, embedder=embedder_id(cfg)) as index:
        last_commit = time.monotonic()
        for number, path in enumerate(videos):
            notify(IndexEvent("start", path, number, len(videos)))
            try:
                digest = content_hash(path)
                if index.has_video(digest):
                    summary.skipped.append(path)
                    notify(IndexEvent("skipped", path, number + 1, len(videos)))
                    continue
                if embedder is None:
                    embedder = shared_embedder(cfg)
                record, n_frames = clip_video(path, digest, cfg, embedder, index)
                index.add_video(record)
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop an archive run
                error = str(exc) if str(path) in str(exc) else f"{path}: {type(exc).__name__}: {exc}"
                log.warning("skipping %s", error)
                summary.failed.append((path, error))
                notify(IndexEvent("failed", path, number + 1, len(videos), error=error))
                continue
            summary.indexed.append(path)
            summary.clips += len(record.clips)
            summary.frames += n_frames
            summary.video_seconds += record.duration
            notify(IndexEvent("indexed", path, number + 1, len(videos), len(record.clips), n_frames))
            if time.monotonic() - last_commit > COMMIT_EVERY_S:
                index.commit()
                last_commit = time.monotonic()
    summary.wall_s = time.perf_counter() - started
    return summary


def search_clips(
    query: str,
    cfg: Config,
    k: int = 10,
    videos: Sequence[str] | None = None,
    embedder=None,
):
    """The k clips of the index at cfg.index.dir best matching a text query (ClipHit list,
    best first). videos: restrict to these video paths or content hashes."""
    from vidsift.index.clip_index import ClipIndex

    with ClipIndex(cfg.index.dir, cfg.index, readonly=True, embedder=embedder_id(cfg)) as index:
        embedder = embedder or shared_embedder(cfg)
        vector = embedder.embed_text([query])[0]
        resolved = [str(Path(v).expanduser().resolve()) if Path(v).expanduser().exists() else v
                    for v in videos] if videos else None
        return index.search(text=vector, k=k, videos=resolved)
