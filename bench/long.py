"""Long videos and archives: sharded ingest, the per-video memory, flat memory use.

Builds (once, cached in bench/work/) a 2-hour video by concatenating ../shared/data/bbb.mp4
twelve times (stream copy, no re-encode: 7158 s, 720p H.264) and uses bbb.mp4 itself as the
10-minute video. For each video and for 1 shard worker vs one per core it reports, in one run:
- the first evidence-only ask (empty memory: sharded coarse decode + embed, then plan and the
  fine decode) wall time and x-realtime;
- the second ask on the same video (memory reused): timings.total, median of --repeats;
- the peak summed RSS of the vidsift processes (the driver + its ingest actors, sampled every
  0.25 s), with Ray's own daemons (raylet, GCS, idle workers) listed apart;
and the second ask over the HTTP service (uvicorn on 127.0.0.1, service warm), end to end.
Then archive ingest throughput (video-seconds per wall-second) on a folder of bbb cut into four
150 s parts: the in-process path (decode + embed in this process, one video after another: what
`vidsift index` did before the ingest pool) against the ingest pool with 1 and 2 actors.

    .venv/bin/python bench/long.py                  # everything; writes bench/results/long.json
    .venv/bin/python bench/long.py --skip-long      # the 10-minute video and the archive only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "bbb.mp4"
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results" / "long.json"
QUESTION = "Which scene shows a butterfly?"
OLD_SINGLE_ACTOR_FIRST_ASK_S = 413.0  # measured before sharded ingest (issue 10), same video


def build_long_video(copies: int = 12) -> Path:
    out = WORK / f"bbb_x{copies}.mp4"
    if out.exists():
        return out
    WORK.mkdir(parents=True, exist_ok=True)
    listing = WORK / "concat.txt"
    listing.write_text("".join(f"file '{SOURCE}'\n" for _ in range(copies)))
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "concat",
                    "-safe", "0", "-i", str(listing), "-c", "copy", str(out)], check=True)
    return out


def build_archive(parts: int = 4, part_s: float = 150.0) -> Path:
    folder = WORK / "archive"
    if folder.is_dir() and len(list(folder.glob("*.mp4"))) == parts:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(parts):
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                        "-ss", str(number * part_s), "-t", str(part_s), "-i", str(SOURCE),
                        "-c", "copy", "-an", str(folder / f"part{number}.mp4")], check=True)
    return folder


class RssSampler:
    """Peak summed RSS of this process + the given pids (vidsift), and of every other
    descendant of this process (Ray's daemons and idle workers), sampled in a thread."""

    def __init__(self, pids_of=lambda: []) -> None:
        import psutil

        self._psutil = psutil
        self._pids_of = pids_of
        self.peak_vidsift = 0
        self.peak_ray = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self, pid: int) -> int:
        try:
            return self._psutil.Process(pid).memory_info().rss
        except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
            return 0

    def _run(self) -> None:
        me = self._psutil.Process()
        while not self._stop.is_set():
            ours = {os.getpid(), *self._pids_of()}
            try:
                others = {p.pid for p in me.children(recursive=True)} - ours
            except self._psutil.NoSuchProcess:
                others = set()
            self.peak_vidsift = max(self.peak_vidsift, sum(self._rss(p) for p in ours))
            self.peak_ray = max(self.peak_ray, sum(self._rss(p) for p in others))
            self._stop.wait(0.25)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def fresh_ray():
    from vidsift.core.config import RayConfig
    from vidsift.workers.ray_runtime import ensure_ray

    temp = tempfile.mkdtemp(prefix="vsbench")
    ray = ensure_ray(RayConfig(num_cpus=2, temp_dir=temp, namespace="vidsift-bench"))
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def config(index_dir: Path, actors: int, *extra: str):
    from vidsift.core.config import load_config

    return load_config("default", [f"index.dir={index_dir}", f"ingest.num_actors={actors}",
                                   "vlm.model=none", *extra])


def measure_asks(video: Path, actors: int, repeats: int) -> dict:
    """First ask (empty memory) and `repeats` second asks, in a fresh Ray with `actors` actors."""
    from vidsift.pipeline.flows.ask import Asker

    index_dir = Path(tempfile.mkdtemp(prefix="vsmem", dir=WORK))
    cfg = config(index_dir, actors)
    with fresh_ray():
        asker = Asker(cfg)
        pids = [pid for _, pid in asker.pool.processes()]
        try:
            with RssSampler(lambda: pids) as rss:
                started = time.perf_counter()
                first = asker.ask(str(video), QUESTION)
                first_wall = time.perf_counter() - started
                seconds = [asker.ask(str(video), QUESTION).timings["total"] for _ in range(repeats)]
        finally:
            asker.close()
    duration = _duration(video)
    row = {
        "video": video.name, "video_s": round(duration, 1), "actors": actors,
        "first_ask_s": round(first_wall, 1), "first_ask_x_realtime": round(duration / first_wall, 1),
        "first_ask_timings": first.timings,
        "second_ask_s_median": round(statistics.median(seconds), 3),
        "second_ask_s_runs": [round(s, 3) for s in seconds],
        "peak_rss_vidsift_mb": round(rss.peak_vidsift / 2**20),
        "peak_rss_ray_daemons_mb": round(rss.peak_ray / 2**20),
        "index_dir": str(index_dir),
    }
    print(json.dumps(row), flush=True)
    return row


def measure_http_second_ask(video: Path, index_dir: Path, repeats: int) -> dict:
    """Ask over the HTTP service (uvicorn on 127.0.0.1) on a video whose memory exists: one
    warm-up request (pools start), then `repeats` timed requests, submit to result."""
    import socket

    import httpx
    import uvicorn

    from vidsift.pipeline.http import create_app
    from vidsift.pipeline.jobs import FINAL_STATUSES

    cfg = config(index_dir, 2, f"serve.media_roots=[{video.parent}]",
                 f"serve.data_dir={index_dir / 'service'}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with fresh_ray():
        server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        seconds = []
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                for attempt in range(repeats + 1):
                    started = time.perf_counter()
                    job = client.post("/v1/jobs", json={"video": str(video), "question": QUESTION}).json()
                    while (state := client.get(f"/v1/jobs/{job['id']}").json())["status"] not in FINAL_STATUSES:
                        time.sleep(0.05)
                    if state["status"] != "succeeded":
                        raise RuntimeError(state)
                    if attempt:
                        seconds.append(time.perf_counter() - started)
        finally:
            server.should_exit = True
            thread.join(timeout=60)
    row = {"video": video.name, "http_second_ask_s_median": round(statistics.median(seconds), 3),
           "http_second_ask_s_runs": [round(s, 3) for s in seconds]}
    print(json.dumps(row), flush=True)
    return row


def _duration(video: Path) -> float:
    from vidsift.core.probe import probe

    return probe(str(video)).duration


def measure_archive(folder: Path) -> dict:
    """Video-seconds ingested per wall-second: in-process vs the ingest pool with 1 and 2 actors."""
    from vidsift.core.media import find_videos
    from vidsift.pipeline.flows.index import index_videos
    from vidsift.workers.decode import get_decoder
    from vidsift.workers.embed import get_embedder

    videos = find_videos([folder])
    total_s = sum(_duration(Path(v)) for v in videos)
    cfg = config(WORK / "unused", 1)
    decoder, embedder = get_decoder(cfg.decode.backend), get_embedder(cfg.embed)
    started = time.perf_counter()
    for video in videos:  # the old `vidsift index` path: one process, one video at a time
        frames = decoder.coarse(video, cfg.decode.coarse_max_side, cfg.selection.max_coarse_gap_s,
                                cfg.selection.coarse_fps)
        for lo in range(0, len(frames), cfg.embed.batch_size):
            embedder.encode_frames([f.image for f in frames[lo : lo + cfg.embed.batch_size]])
    in_process = time.perf_counter() - started
    del embedder
    rows = {"videos": len(videos), "video_s": round(total_s, 1),
            "in_process_video_s_per_s": round(total_s / in_process, 2)}
    for actors in (1, 2):
        index_dir = Path(tempfile.mkdtemp(prefix="vsarch", dir=WORK))
        with fresh_ray():
            from vidsift.pipeline.flows.index import start_pool

            pool = start_pool(config(index_dir, actors))
            try:
                started = time.perf_counter()
                summary = index_videos([folder], config(index_dir, actors), pool=pool)
                wall = time.perf_counter() - started
            finally:
                pool.close()
        assert len(summary.indexed) == len(videos), summary.failed
        rows[f"pool_{actors}_video_s_per_s"] = round(total_s / wall, 2)
        shutil.rmtree(index_dir, ignore_errors=True)
    rows["speedup_1_to_2_actors"] = round(rows["pool_2_video_s_per_s"] / rows["pool_1_video_s_per_s"], 2)
    rows["pool_2_vs_in_process"] = round(rows["pool_2_video_s_per_s"] / rows["in_process_video_s_per_s"], 2)
    print(json.dumps(rows), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="second asks to take the median of")
    parser.add_argument("--skip-long", action="store_true", help="leave out the 2-hour video")
    parser.add_argument("--skip-archive", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if not SOURCE.exists():
        sys.exit(f"{SOURCE} is missing (see ../shared/data/README.md)")
    WORK.mkdir(parents=True, exist_ok=True)
    report: dict = {"machine": f"{os.cpu_count()} cores", "question": QUESTION, "asks": []}
    videos = [SOURCE] + ([] if args.skip_long else [build_long_video()])
    for video in videos:
        for actors in (1, 2):
            row = measure_asks(video, actors, args.repeats)
            report["asks"].append(row)
        last = report["asks"][-1]
        report["asks"][-1].update(measure_http_second_ask(video, Path(last["index_dir"]), args.repeats))
    for row in report["asks"]:
        shutil.rmtree(row.pop("index_dir"), ignore_errors=True)
    if not args.skip_archive:
        report["archive"] = measure_archive(build_archive())
    long_rows = [r for r in report["asks"] if r["video_s"] > 3600]
    if long_rows:
        best = min(long_rows, key=lambda r: r["first_ask_s"])
        short_peak = max(r["peak_rss_vidsift_mb"] for r in report["asks"] if r["video_s"] < 3600)
        report["targets"] = {
            "first_ask_vs_old_single_actor": round(best["first_ask_s"] / OLD_SINGLE_ACTOR_FIRST_ASK_S, 2),
            "second_ask_s": best["second_ask_s_median"],
            "http_second_ask_s": long_rows[-1].get("http_second_ask_s_median"),
            "peak_rss_vidsift_mb": max(r["peak_rss_vidsift_mb"] for r in long_rows),
            "peak_rss_long_vs_short": round(
                max(r["peak_rss_vidsift_mb"] for r in long_rows) / short_peak, 2),
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous.update(report)
    RESULTS.write_text(json.dumps(previous, indent=1) + "\n")
    print(json.dumps(report.get("targets", {}), indent=1))


if __name__ == "__main__":
    main()
