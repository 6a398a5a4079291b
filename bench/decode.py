"""Decode benchmark: every backend and the plain ffmpeg CLI doing the same work on one long video.

Work items (448 px longest side): every keyframe; 1 frame/s over the whole video; 8 clips of
4 s at 2 fps; and vidsift's coarse pass (keyframes + 1 fps fills in keyframe gaps over 2 s; no
CLI equivalent). Each (runner, work) runs in a fresh subprocess so its peak RSS is its own.
Prints wall time (median of --runs), frames/s, video-seconds per wall-second, peak RSS and the
ratio to the ffmpeg CLI; writes bench/results/decode.json.

    .venv/bin/python bench/decode.py [--video ../shared/data/bbb.mp4] [--runs 3] [--long-runs 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

MAX_SIDE = 448
CLIP_SECONDS, CLIP_FPS, N_CLIPS = 4.0, 2.0, 8
RUNNERS = ["pyav", "decord", "ffmpeg", "ffmpeg-cli"]
WORKS = ["keyframes", "fps1", "clips", "coarse"]


def clip_starts(duration: float) -> list[float]:
    step = (duration - CLIP_SECONDS) / N_CLIPS
    return [round(step * (k + 0.5), 3) for k in range(N_CLIPS)]


def run_backend(backend: str, work: str, video: str) -> int:
    from vidsift.core.probe import probe
    from vidsift.workers.decode import get_decoder

    info = probe(video)
    decoder = get_decoder(backend)
    if work == "keyframes":
        return len(decoder.keyframes(video, max_side=MAX_SIDE))
    if work == "fps1":
        return len(decoder.sample(video, 1.0, max_side=MAX_SIDE))
    if work == "clips":
        return sum(len(decoder.clip(video, s, s + CLIP_SECONDS, CLIP_FPS, max_side=MAX_SIDE))
                   for s in clip_starts(info.duration))
    if work == "coarse":
        return len(decoder.coarse(video, max_side=MAX_SIDE, max_gap_s=2.0, fill_fps=1.0))
    raise ValueError(work)


def run_cli(work: str, video: str) -> int:
    """The ffmpeg CLI producing the same frames as raw RGB into a pipe we drain."""
    from vidsift.core.probe import probe

    info = probe(video)
    scale = f"scale={MAX_SIDE}:-2:flags=bilinear"
    base = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"]
    out = ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    jobs = []
    if work == "keyframes":
        jobs.append(base + ["-skip_frame", "nokey", "-i", video, "-vf", scale, "-fps_mode", "passthrough"] + out)
    elif work == "fps1":
        jobs.append(base + ["-i", video, "-vf", f"fps=1,{scale}"] + out)
    elif work == "clips":
        for s in clip_starts(info.duration):
            jobs.append(base + ["-ss", str(s), "-t", str(CLIP_SECONDS), "-i", video, "-vf", f"fps={CLIP_FPS},{scale}"] + out)
    else:
        return -1
    frame_bytes = MAX_SIDE * round(MAX_SIDE * info.height / info.width / 2) * 2 * 3
    total = 0
    for cmd in jobs:
        proc = subprocess.run(cmd, capture_output=True, check=True)
        total += len(proc.stdout) // frame_bytes
    return total


def worker(runner: str, work: str, video: str) -> None:
    import av  # noqa: F401  imports are not the work being timed
    import vidsift.workers.decode  # noqa: F401

    started = time.perf_counter()
    frames = run_cli(work, video) if runner == "ffmpeg-cli" else run_backend(runner, work, video)
    wall = time.perf_counter() - started
    rss_kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                 resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(json.dumps({"wall_s": wall, "frames": frames, "peak_rss_mb": rss_kb / 1024}))


def measure(runner: str, work: str, video: str, runs: int) -> dict | None:
    results = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, __file__, "--worker", runner, work, "--video", video],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"  {runner}/{work} failed: {proc.stderr.strip().splitlines()[-1:]}")
            return None
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    if results[0]["frames"] < 0:
        return None
    return {
        "wall_s": statistics.median(r["wall_s"] for r in results),
        "frames": results[0]["frames"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--video", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bbb.mp4"))
    parser.add_argument("--runs", type=int, default=3, help="runs of the short work items")
    parser.add_argument("--long-runs", type=int, default=1, help="runs of the 1 fps and coarse passes")
    parser.add_argument("--runners", default=",".join(RUNNERS))
    parser.add_argument("--works", default=",".join(WORKS))
    parser.add_argument("--worker", nargs=2, metavar=("RUNNER", "WORK"))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "decode.json"))
    args = parser.parse_args()
    video = str(Path(args.video).resolve())
    if args.worker:
        worker(*args.worker, video)
        return

    from vidsift.core.probe import probe

    info = probe(video)
    video_seconds = {"keyframes": info.duration, "fps1": info.duration,
                     "clips": N_CLIPS * CLIP_SECONDS, "coarse": info.duration}
    # A run of some (work, runner) pairs replaces only those rows of an existing result file.
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    table: dict[str, dict[str, dict]] = (
        previous.get("results", {}) if previous.get("video") == video else {})
    for work in args.works.split(","):
        runs = args.long_runs if work in ("fps1", "coarse") else args.runs
        table.setdefault(work, {})
        for runner in args.runners.split(","):
            row = measure(runner, work, video, runs)
            if row is None:
                continue
            row["fps"] = row["frames"] / row["wall_s"]
            row["realtime_x"] = video_seconds[work] / row["wall_s"]
            table[work][runner] = row
        cli = table[work].get("ffmpeg-cli")
        for runner, row in table[work].items():
            row["vs_ffmpeg_cli"] = row["wall_s"] / cli["wall_s"] if cli else None
            ratio = f"{row['vs_ffmpeg_cli']:.2f}x" if cli else "-"
            print(f"{work:10s} {runner:11s} {row['wall_s']:8.2f} s {row['frames']:6d} fr "
                  f"{row['fps']:8.1f} fr/s {row['realtime_x']:7.1f}x rt {row['peak_rss_mb']:7.0f} MB "
                  f"cli-ratio {ratio}", flush=True)
    result = {"video": video, "duration_s": info.duration, "size": [info.width, info.height],
              "max_side": MAX_SIDE, "results": table,
              "note": "wall_s medians; vs_ffmpeg_cli = wall / CLI wall (lower is better); shared 2-core host"}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
