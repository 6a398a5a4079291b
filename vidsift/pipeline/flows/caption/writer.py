"""Batch captioning on Ray Data: every video of a folder tree or a manifest, cut into clips, each
clip captioned by a VLM hosted in an actor-pool stage, written as Parquet rows plus per-video SRT
and WebVTT files.

Stages:
  videos (one row per path)
  -> flat_map (CPU tasks): probe, cut into clips, decode each clip's frames at the size its token
     budget allows; a video that cannot be read becomes one failure row instead
  -> map_batches (actor pool, num_gpus / num_cpus from PoolConfig): the VLM captions a batch of
     clips; Ray restarts a dead actor and retries its batch, so no clip is lost
  -> the driver groups rows per video and commits a video once all its clips are in.

Output under OUT:
  captions/<key>.parquet  one file per video: video, clip, start, end, caption, model, tokens
  subtitles/<key>.srt, subtitles/<key>.vtt
  done/<key>.json         the commit marker, written last: a re-run skips these videos
  failures.jsonl          one line per video that could not be captioned (latest error)
A video's files are written to a temp dir and renamed into place, so a crash leaves either
nothing or a complete video; rows are keyed by (video, clip), so none can be duplicated.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidsift.core.config import Config
from vidsift.core.errors import ConfigError, VidsiftError
from vidsift.core.files import save_thumbnail, write_atomic
from vidsift.core.media import content_hash, find_videos, video_key
from vidsift.pipeline.subtitles import Cue, write_subtitles

CAPTION_COLUMNS = ("video", "clip", "start", "end", "caption", "model", "tokens")


def fixed_clips(start: float, end: float, clip_s: float) -> list[tuple[float, float]]:
    """[start, end] cut into ceil(length / clip_s) equal clips (seconds), tiling it exactly."""
    count = max(1, math.ceil((end - start) / clip_s - 1e-9))
    bounds = [start + (end - start) * i / count for i in range(count)] + [end]
    return list(zip(bounds[:-1], bounds[1:]))


def clip_timestamps(start: float, end: float, count: int) -> tuple[float, ...]:
    """`count` sample times inside [start, end): the centres of equal sub-intervals (seconds)."""
    step = (end - start) / count
    return tuple(start + step * (i + 0.5) for i in range(count))


def clip_frame_size(height: int, width: int, frames: int, tokens_per_clip: int) -> tuple[int, int]:
    """The largest (h, w) the VLM's arithmetic allows for `frames` frames of a height x width video
    within tokens_per_clip visual tokens (aspect ratio kept)."""
    from vidsift.pipeline import budget

    temporal = math.ceil(frames / budget.TEMPORAL_PATCH_SIZE)
    per_frame = max(1, tokens_per_clip // temporal)
    area = budget.FACTOR * budget.FACTOR
    return budget.smart_resize(height, width, min_pixels=area, max_pixels=per_frame * area)


class ClipDecoder:
    """flat_map stage: one video row -> one row per clip with its frames, or one failure row."""

    def __init__(self, cfg_json: str) -> None:
        from vidsift.workers.decode import get_decoder

        self.cfg = Config.model_validate_json(cfg_json)
        decode = self.cfg.decode
        self.decoder = get_decoder(decode.backend, decode.threads, decode.max_pixels)
        self._embedder = None  # loaded on the first video cut at scene changes

    def segment(self, info) -> list[tuple[float, float]]:
        """Clips of one video (VideoInfo): scene cuts on the coarse pass (the clip index's
        settings, so captions line up with indexed clips), or fixed length."""
        cfg = self.cfg
        if cfg.caption.clips == "fixed":
            return fixed_clips(info.start_time, info.end_time, cfg.caption.clip_s)
        from vidsift.pipeline.clips import segment_clips
        from vidsift.workers.embed import get_embedder

        frames = self.decoder.coarse(
            info.path, cfg.decode.coarse_max_side, cfg.selection.max_coarse_gap_s,
            cfg.selection.coarse_fps,
        )
        if self._embedder is None:
            self._embedder = get_embedder(cfg.embed)
        visual = self._embedder.embed_images([f.image for f in frames])
        return segment_clips(
            np.array([f.pts for f in frames]), visual, info.start_time, info.end_time,
            cfg.index.min_clip_s, cfg.index.max_clip_s, cfg.index.cut_threshold,
            info.keyframe_times,
        )

    def __call__(self, row: dict) -> list[dict]:
        from vidsift.pipeline import budget
        from vidsift.core.probe import probe

        path = row["video"]
        cap = self.cfg.caption
        try:
            info = probe(path, self.cfg.decode.max_pixels)
            clips = self.segment(info)
            n = cap.frames_per_clip
            height, width = clip_frame_size(info.height, info.width, n, cap.tokens_per_clip)
            rows = []
            for number, (start, end) in enumerate(clips):
                times = clip_timestamps(start, end, n)
                frames = self.decoder.frames_at(path, times, size=(height, width))
                stack = np.stack([f.image for f in frames])
                rows.append({
                    "video": path, "clip": number, "n_clips": len(clips),
                    "start": float(start), "end": float(end),
                    "pts": json.dumps([f.pts for f in frames]),
                    "frames": stack.tobytes(), "shape": json.dumps(stack.shape),
                    "tokens": budget.tokens_for(len(frames), height, width), "error": "",
                })
            return rows
        except (VidsiftError, OSError, ValueError) as exc:
            return [{
                "video": path, "clip": -1, "n_clips": 0, "start": 0.0, "end": 0.0, "pts": "[]",
                "frames": b"", "shape": "[]", "tokens": 0,
                "error": f"{type(exc).__name__}: {exc}",
            }]


class CaptionActor:
    """map_batches stage on an actor pool: hosts one VLM backend and captions batches of clips."""

    def __init__(self, cfg_json: str) -> None:
        from vidsift.workers.vlm import get_vlm

        self.cfg = Config.model_validate_json(cfg_json)
        self.vlm = get_vlm(self.cfg.vlm)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from vidsift.core.types import (
            Frame, PlannedSegment, SegmentKind, TokenSet, VLMRequest,
        )

        cap = self.cfg.caption
        size = len(batch["video"])
        captions = [""] * size
        models = [""] * size
        requests, where = [], []
        for i in range(size):
            if batch["error"][i]:
                continue
            shape = tuple(json.loads(batch["shape"][i]))
            stack = np.frombuffer(batch["frames"][i], dtype=np.uint8).reshape(shape)
            pts = json.loads(batch["pts"][i])
            frames = tuple(Frame(image=stack[k], pts=pts[k], index=k) for k in range(len(pts)))
            kind = SegmentKind.IMAGE if len(frames) == 1 else SegmentKind.CLIP
            segment = PlannedSegment(
                kind=kind, start=float(batch["start"][i]), end=float(batch["end"][i]),
                timestamps=tuple(pts), height=shape[1], width=shape[2],
                tokens=int(batch["tokens"][i]), frames=frames,
            )
            token_set = TokenSet(video=str(batch["video"][i]), segments=[segment],
                                 budget=cap.tokens_per_clip)
            requests.append(VLMRequest(token_set=token_set, question=cap.prompt,
                                       max_new_tokens=cap.max_new_tokens,
                                       request_id=f"{batch['video'][i]}#{batch['clip'][i]}"))
            where.append(i)
        errors = list(batch["error"])
        for i, outcome in zip(where, self._generate(requests)):
            if isinstance(outcome, Exception):
                errors[i] = f"{batch['video'][i]}: clip {batch['clip'][i]}: {outcome}"
            else:
                captions[i] = outcome.text.strip()
                models[i] = outcome.model
        return {
            "video": batch["video"], "clip": batch["clip"], "n_clips": batch["n_clips"],
            "start": batch["start"], "end": batch["end"], "tokens": batch["tokens"],
            "error": np.array(errors, dtype=object),
            "caption": np.array(captions, dtype=object), "model": np.array(models, dtype=object),
        }

    def _generate(self, requests: list) -> list:
        """One batched call; if it fails, each request alone, so one bad clip fails only its
        own video. Returns a VLMResult or the exception, per request."""
        if not requests:
            return []
        try:
            return self.vlm.generate(requests)
        except (VidsiftError, RuntimeError, ValueError):
            outcomes = []
            for request in requests:
                try:
                    outcomes.append(self.vlm.generate([request])[0])
                except (VidsiftError, RuntimeError, ValueError) as exc:
                    outcomes.append(exc)
            return outcomes


@dataclass
class CaptionReport:
    videos: int = 0  # videos found
    skipped: int = 0  # already captioned by an earlier run
    captioned: int = 0  # committed by this run
    failed: int = 0
    clips: int = 0  # rows written by this run
    seconds: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)  # video -> error

    def to_dict(self) -> dict:
        return {
            "videos": self.videos, "skipped": self.skipped, "captioned": self.captioned,
            "failed": self.failed, "clips": self.clips, "seconds": round(self.seconds, 3),
            "failures": self.failures,
        }


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
        """Every committed caption row as a pyarrow Table; None before any video is committed."""
        import pyarrow.parquet as pq

        files = sorted((self.root / "captions").glob("*.parquet"))
        if not files:
            return None
        return pq.ParquetDataset([str(f) for f in files]).read()


ProgressFn = Callable[[CaptionReport, str, str], None]  # (report so far, video, "done" | "failed")


def run_caption(
    source: str | Path,
    out: str | Path,
    cfg: Config,
    progress: ProgressFn | None = None,
) -> CaptionReport:
    """Caption every video of `source` into `out`; see the module doc. Returns counts."""
    from vidsift.workers.ray_runtime import ensure_ray

    if not cfg.vlm.enabled:
        raise ConfigError("caption needs a VLM: set --model (or vlm.model) to a Qwen2.5-VL "
                          "checkpoint path or hub id")
    started = time.perf_counter()
    output = CaptionOutput(out)
    videos = find_videos([source])
    report = CaptionReport(videos=len(videos))
    todo = [v for v in videos if not output.is_done(v)]
    report.skipped = len(videos) - len(todo)
    pending_videos = set(todo)
    failures = {v: e for v, e in output.read_failures().items() if v in pending_videos}
    if todo:
        ray = ensure_ray(cfg.ray)
        import ray.data

        cfg_json = cfg.model_dump_json()
        pool = cfg.pool
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        # Ray Data restarts a dead actor and retries its batch itself (its defaults: restart and
        # retry without limit), which is what makes a killed caption actor lose nothing.
        dataset = (
            ray.data.from_items([{"video": v} for v in todo], override_num_blocks=len(todo))
            .flat_map(
                ClipDecoder,
                fn_constructor_args=(cfg_json,),
                compute=ray.data.ActorPoolStrategy(size=cfg.ingest.num_actors),
                num_cpus=cfg.ingest.num_cpus_per_actor,
            )
            .map_batches(
                CaptionActor,
                fn_constructor_args=(cfg_json,),
                batch_size=pool.max_batch_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=pool.num_actors),
                num_cpus=pool.num_cpus_per_actor,
                num_gpus=pool.num_gpus_per_actor,
            )
        )
        pending: dict[str, dict[int, dict]] = {}
        failed_now: set[str] = set()
        for row in dataset.iter_rows():
            video = str(row["video"])
            if video in failed_now:
                continue  # another clip of it already failed: the video is not committed
            if row["error"]:
                failed_now.add(video)
                failures[video] = str(row["error"])
                pending.pop(video, None)
                report.failed += 1
                output.write_failures(failures)
                if progress:
                    progress(report, video, "failed")
                continue
            clip_rows = pending.setdefault(video, {})
            clip_rows[int(row["clip"])] = {k: _plain(row[k]) for k in (*CAPTION_COLUMNS, "n_clips")}
            if len(clip_rows) == int(row["n_clips"]):
                output.commit(video, list(pending.pop(video).values()))
                failures.pop(video, None)  # failed in an earlier run, captioned now
                report.captioned += 1
                report.clips += int(row["n_clips"])
                if progress:
                    progress(report, video, "done")
    output.write_failures(failures)
    report.failures = failures
    report.seconds = time.perf_counter() - started
    return report


def _plain(value):
    """numpy scalars from Ray rows -> Python values for pyarrow."""
    return value.item() if isinstance(value, np.generic) else value


CAPTION_HASH_SUFFIX = ":captions"  # caption clips sit beside the video's own clips in the index


def add_captions_to_index(out: str | Path, cfg: Config) -> dict:
    """Feed committed captions to the clip index at cfg.index.dir (Goldfish: search over
    captions). Each captioned video becomes one more index entry whose clips are the caption
    clips: text vectors embed the captions (the space text queries are embedded in), visual
    vectors embed each clip's middle frame, which is also its thumbnail. Videos already fed are
    skipped, so this is resumable like the caption run. Returns {"added", "skipped", "clips"}."""
    from vidsift.index.clip_index import ClipIndex, VideoClips
    from vidsift.index.store import NewClip
    from vidsift.workers.decode import get_decoder
    from vidsift.workers.embed import get_embedder

    table = CaptionOutput(out).read_rows()
    rows = table.to_pylist() if table is not None else []
    by_video: dict[str, list[dict]] = {}
    for row in rows:
        by_video.setdefault(row["video"], []).append(row)
    counts = {"added": 0, "skipped": 0, "clips": 0}
    embedder = None
    decoder = get_decoder(cfg.decode.backend, cfg.decode.threads, cfg.decode.max_pixels)
    with ClipIndex(cfg.index.dir, cfg.index, embedder=cfg.embed.space_id) as index:
        for video, clips in sorted(by_video.items()):
            clips.sort(key=lambda r: r["clip"])
            digest = content_hash(video) + CAPTION_HASH_SUFFIX
            if index.has_video(digest):
                counts["skipped"] += 1
                continue
            embedder = embedder or get_embedder(cfg.embed)
            middles = [(r["start"] + r["end"]) / 2 for r in clips]
            frames = decoder.frames_at(video, middles, max_side=cfg.decode.coarse_max_side)
            new_clips = []
            for number, (row, frame) in enumerate(zip(clips, frames)):
                absolute, relative = index.thumbnail_path(digest, number)
                save_thumbnail(frame.image, absolute)
                new_clips.append(NewClip(row["start"], row["end"], relative, row["caption"]))
            index.add_video(VideoClips(
                path=video, content_hash=digest, duration=clips[-1]["end"] - clips[0]["start"],
                clips=new_clips,
                visual=embedder.embed_images([f.image for f in frames]),
                text=embedder.embed_text([r["caption"] for r in clips]),
            ))
            counts["added"] += 1
            counts["clips"] += len(clips)
    return counts
