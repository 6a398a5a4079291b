"""Where captions go: the OUT folder (per-video Parquet, SRT and WebVTT, done markers,
failures.jsonl), and from there the clip index.

Output under OUT:
  captions/<key>.parquet  one file per video: video, clip, start, end, caption, model, tokens,
                          speech (what is said during the clip; empty without speech.mode)
  subtitles/<key>.srt, subtitles/<key>.vtt
  done/<key>.json         the commit marker, written last: a re-run skips these videos
  failures.jsonl          one line per video that could not be captioned (latest error)
A video's files are written to a temp dir and renamed into place, so a crash leaves either
nothing or a complete video; rows are keyed by (video, clip), so none can be duplicated.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from vidsift.core.config import Config
from vidsift.core.files import write_atomic
from vidsift.core.media import content_hash, video_key
from vidsift.pipeline.flows.subtitles import Cue, write_subtitles

CAPTION_COLUMNS = ("video", "clip", "start", "end", "caption", "model", "tokens", "speech")


class CaptionOutput:
    """The OUT folder: commit markers, per-video Parquet and subtitles, failures.jsonl."""

    def __init__(self, out: str | Path) -> None:
        self.root = Path(out).expanduser()
        for sub in ("captions", "subtitles", "done", ".tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.failures_path = self.root / "failures.jsonl"

    def is_done(self, video: str) -> bool:
        return (self.root / "done" / f"{video_key(video)}.json").exists()

    def commit(self, video: str, rows: list[dict]) -> None:
        """Write the video's Parquet and subtitles, then its done marker (the commit point)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        key = video_key(video)
        rows = sorted(rows, key=lambda r: r["clip"])
        table = pa.table({
            "video": pa.array([r["video"] for r in rows], pa.string()),
            "clip": pa.array([r["clip"] for r in rows], pa.int32()),
            "start": pa.array([r["start"] for r in rows], pa.float64()),
            "end": pa.array([r["end"] for r in rows], pa.float64()),
            "caption": pa.array([r["caption"] for r in rows], pa.string()),
            "model": pa.array([r["model"] for r in rows], pa.string()),
            "tokens": pa.array([r["tokens"] for r in rows], pa.int32()),
            "speech": pa.array([r["speech"] for r in rows], pa.string()),
        })
        tmp = self.root / ".tmp" / f"{key}.parquet"
        pq.write_table(table, tmp)
        cues = [Cue(r["start"], r["end"], r["caption"]) for r in rows]
        write_subtitles(self.root / "subtitles" / key, cues, ("srt", "vtt"))
        os.replace(tmp, self.root / "captions" / f"{key}.parquet")
        marker = {"video": video, "clips": len(rows), "committed_at": time.time()}
        write_atomic(self.root / "done" / f"{key}.json", json.dumps(marker))

    def read_failures(self) -> dict[str, str]:
        if not self.failures_path.exists():
            return {}
        lines = self.failures_path.read_text().splitlines()
        return {rec["video"]: rec["error"] for rec in map(json.loads, filter(None, lines))}

    def write_failures(self, failures: dict[str, str]) -> None:
        text = "".join(json.dumps({"video": v, "error": e}) + "\n" for v, e in failures.items())
        write_atomic(self.failures_path, text)

    def read_rows(self):
        """Every committed caption row as a pyarrow Table; None before any video is committed.
        Files written before a column existed (speech) have it as nulls: a dataset read would
        take the first file's schema and drop the column from every file."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = sorted((self.root / "captions").glob("*.parquet"))
        if not files:
            return None
        return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")


class CaptionWriter:
    """Collects a run's clip rows per video into `output`: a video is committed once all its
    clips are in, or failed on its first error; rows of a finished video (a retried batch's
    repeats, a failed video's other clips) are ignored. failures: the videos to caption that
    earlier runs failed, kept until captioned; failures.jsonl is rewritten on each failure."""

    def __init__(self, output: CaptionOutput, failures: dict[str, str]) -> None:
        self.output = output
        self.failures = failures
        self._pending: dict[str, dict[int, dict]] = {}
        self._finished: set[str] = set()

    def fail(self, video: str, error: str) -> None:
        self._finished.add(video)
        self._pending.pop(video, None)
        self.failures[video] = error
        self.output.write_failures(self.failures)

    def add(self, row: dict) -> str | None:
        """Take one output row: "done" when it completed its video (now committed), "failed"
        when it failed it, else None."""
        video = str(row["video"])
        if video in self._finished:
            return None
        if row["error"]:
            self.fail(video, str(row["error"]))
            return "failed"
        clips = self._pending.setdefault(video, {})
        clips[int(row["clip"])] = {k: _plain(row[k]) for k in CAPTION_COLUMNS}
        if len(clips) < int(row["n_clips"]):
            return None
        self.output.commit(video, list(self._pending.pop(video).values()))
        self._finished.add(video)
        self.failures.pop(video, None)  # failed in an earlier run, captioned now
        return "done"

    def close(self) -> None:
        self.output.write_failures(self.failures)


def _plain(value):
    """numpy scalars from Ray rows -> Python values for pyarrow."""
    return value.item() if isinstance(value, np.generic) else value


CAPTION_HASH_SUFFIX = ":captions"  # caption clips sit beside the video's own clips in the index


def add_captions_to_index(out: str | Path, cfg: Config) -> dict:
    """Feed committed captions to the clip index at cfg.index.dir (Goldfish: search over
    captions). Each captioned video becomes one more index entry whose clips are the caption
    clips: text vectors embed the captions (the space text queries are embedded in). Visual
    vectors and thumbnails come from the video's memory (its coarse frames inside each clip,
    the one nearest the middle as thumbnail) when one is stored for cfg, else from each clip's
    middle frame, decoded. Videos already fed are skipped, so this is resumable like the caption
    run. Returns {"added", "skipped", "clips"}."""
    from vidsift.index.clip_index import ClipIndex, VideoClips
    from vidsift.index.memory import MemoryStore
    from vidsift.index.store import NewClip
    from vidsift.workers.decode import get_decoder
    from vidsift.workers.embed import get_embedder
    from vidsift.pipeline.flows.ingest import clips_of

    table = CaptionOutput(out).read_rows()
    rows = table.to_pylist() if table is not None else []
    by_video: dict[str, list[dict]] = {}
    for row in rows:
        by_video.setdefault(row["video"], []).append(row)
    counts = {"added": 0, "skipped": 0, "clips": 0}
    store = MemoryStore(cfg.index.dir)
    embedder = decoder = None
    with ClipIndex(cfg.index.dir, cfg.index, embedder=cfg.embed.space_id) as index:
        for video, clips in sorted(by_video.items()):
            clips.sort(key=lambda r: r["clip"])
            video_hash = content_hash(video)
            digest = video_hash + CAPTION_HASH_SUFFIX
            if index.has_video(digest):
                counts["skipped"] += 1
                continue
            embedder = embedder or get_embedder(cfg.embed)
            spans = [(r["start"], r["end"]) for r in clips]
            memory = store.get(video_hash, cfg.memory_key())
            if memory is not None:
                clips_seen = clips_of(memory, spans)  # nothing decoded
                thumbnails = [memory.frames.thumbnails[m] for m in clips_seen.middles]
                visual = clips_seen.visual
            else:
                decoder = decoder or get_decoder(cfg.decode.backend, cfg.decode.threads,
                                                 cfg.decode.max_pixels)
                thumbnails, visual = _pictures_decoded(video, spans, cfg, decoder, embedder)
            new_clips = []
            for number, (row, thumbnail) in enumerate(zip(clips, thumbnails)):
                absolute, relative = index.thumbnail_path(digest, number)
                absolute.parent.mkdir(parents=True, exist_ok=True)
                absolute.write_bytes(thumbnail)
                new_clips.append(NewClip(row["start"], row["end"], relative, row["caption"]))
            index.add_video(VideoClips(
                path=video, content_hash=digest, duration=clips[-1]["end"] - clips[0]["start"],
                clips=new_clips, visual=visual,
                text=embedder.embed_text([r["caption"] for r in clips]),
            ))
            counts["added"] += 1
            counts["clips"] += len(clips)
    return counts


def _pictures_decoded(video, spans, cfg: Config, decoder, embedder) -> tuple[list[bytes], np.ndarray]:
    """JPEG thumbnails and (C, D) visual vectors of clips from each clip's middle frame, decoded
    at the coarse pass's size (a video without a stored memory)."""
    from vidsift.workers.ingest import jpeg_thumbnail

    frames = decoder.frames_at(video, [(a + b) / 2 for a, b in spans],
                               max_side=cfg.decode.coarse_max_side)
    images = [f.image for f in frames]
    return [jpeg_thumbnail(image) for image in images], embedder.embed_images(images)

