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
Then archive ingest throughput (video-seconds per wall-second) on a folder of twelve ~150 s parts
of bbb.mp4 three times over: the in-process path (decode + embed in this process, one video after another: what
`vidsift index` did before the ingest pool) against `vidsift index` on the ingest pool with one
worker set (a decode and an embed actor) and the whole system pinned to one core, and two sets on
both cores.

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


def build_archive(parts: int = 12, part_s: float = 150.0) -> Path:
    """A folder of `parts` videos of about part_s seconds: bbb.mp4 three times over (30 minutes,
    so the end credits, where OCR is costly, come three times and not only as the last shard)
    cut by stream copy, each cut at a keyframe (a copy cut elsewhere leaves leading frames that
    only an edit list hides)."""
    from vidsift.core.probe import probe

    folder = WORK / f"archive{parts}"
    if folder.is_dir() and len(list(folder.glob("*.mp4"))) == parts:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    source = build_long_video(copies=3)
    keys = probe(str(source)).keyframe_times
    cuts = [min(keys, key=lambda t: abs(t - number * part_s)) for number in range(parts + 1)]
    for number in range(parts):
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                        "-ss", f"{cuts[number]:.6f}", "-to", f"{cuts[number + 1]:.6f}",
                        "-i", str(source), "-c", "copy", "-an",
                        str(folder / f"part{number:02d}.mp4")], check=True)
    return folder


class RssSampler:
    """Peak summed RSS of this process + the given pids (vidsift), and of every other
    descendant of this process (Ray's daemons and idle workers), sampled in a thread; and each
    role's own peak (roles: pid -> name, e.g. "decode", "embed"). Also the peak summed PSS of the
    vidsift processes: RSS counts a page of Ray's shared object store in every process that
    touched it, PSS splits it among them."""

    def __init__(self, roles: dict[int, str]) -> None:
        import psutil

        self._psutil = psutil
        self._roles = {os.getpid(): "driver", **roles}
        self.peak_vidsift = 0
        self.peak_vidsift_pss = 0
        self.peak_ray = 0
        self.peak_by_role: dict[str, int] = {}
        # CPU seconds: pid -> (at first sight, latest); a process started meanwhile from 0
        self._cpu: dict[int, tuple[float, float]] = {}
        self._started = 0.0
        self._cpu_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self, pid: int) -> int:
        try:
            return self._psutil.Process(pid).memory_info().rss
        except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
            return 0

    def _pss(self, pid: int) -> int:
        try:
            return self._psutil.Process(pid).memory_full_info().pss
        except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
            return 0

    def _cpu_seconds(self, pid: int) -> float | None:
        try:
            times = self._psutil.Process(pid).cpu_times()
        except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
            return None
        return times.user + times.system

    def _sample_cpu(self, pids: set[int], first: bool) -> None:
        with self._cpu_lock:
            for pid in pids:
                seconds = self._cpu_seconds(pid)
                if seconds is None:
                    continue
                start = self._cpu[pid][0] if pid in self._cpu else (seconds if first else 0.0)
                self._cpu[pid] = (start, seconds)

    def cpu_cores(self) -> dict:
        """Mean cores busy since sampling began: CPU seconds of every process (this one, the
        actors, Ray's daemons) / wall seconds, in all and by role."""
        with self._cpu_lock:
            pids = set(self._cpu)
        self._sample_cpu(pids, first=False)
        wall = time.perf_counter() - self._started
        with self._cpu_lock:
            used = {pid: last - start for pid, (start, last) in self._cpu.items()}
        by_role: dict[str, float] = {}
        for pid, seconds in used.items():
            role = self._roles.get(pid, "ray")
            by_role[role] = by_role.get(role, 0.0) + seconds
        return {"all": round(sum(used.values()) / wall, 2),
                **{role: round(s / wall, 2) for role, s in sorted(by_role.items())}}

    def _run(self) -> None:
        me = self._psutil.Process()
        ours = set(self._roles)
        first = True
        while not self._stop.is_set():
            try:
                others = {p.pid for p in me.children(recursive=True)} - ours
            except self._psutil.NoSuchProcess:
                others = set()
            self._sample_cpu(ours | others, first)
            first = False
            sizes = {pid: self._rss(pid) for pid in ours}
            self.peak_vidsift = max(self.peak_vidsift, sum(sizes.values()))
            self.peak_vidsift_pss = max(self.peak_vidsift_pss, sum(map(self._pss, ours)))
            for pid, size in sizes.items():
                role = self._roles[pid]
                self.peak_by_role[role] = max(self.peak_by_role.get(role, 0), size)
            self.peak_ray = max(self.peak_ray, sum(self._rss(p) for p in others))
            self._stop.wait(0.25)

    def __enter__(self) -> RssSampler:
        self._started = time.perf_counter()
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
        roles = {pid: ("decode" if n < asker.pool.size else "embed") + str(n)
                 for n, (_, pid) in enumerate(asker.pool.processes())}
        try:
            with RssSampler(roles) as rss:
                started = time.perf_counter()
                first = asker.ask(str(video), QUESTION)
                first_wall = time.perf_counter() - started
                cores = rss.cpu_cores()
                seconds = [asker.ask(str(video), QUESTION).timings["total"] for _ in range(repeats)]
        finally:
            asker.close()
    duration = _duration(video)
    row = {
        "video": video.name, "video_s": round(duration, 1), "actors": actors,
        "first_ask_s": round(first_wall, 1), "first_ask_x_realtime": round(duration / first_wall, 1),
        "first_ask_timings": first.timings,
        "first_ask_cpu_cores": cores,
        "second_ask_s_median": round(statistics.median(seconds), 3),
        "second_ask_s_runs": [round(s, 3) for s in seconds],
        "peak_rss_vidsift_mb": round(rss.peak_vidsift / 2**20),
        "peak_pss_vidsift_mb": round(rss.peak_vidsift_pss / 2**20),
        "peak_rss_ray_daemons_mb": round(rss.peak_ray / 2**20),
        "peak_rss_by_process_mb": {k: round(v / 2**20) for k, v in rss.peak_by_role.items()},
        "index_dir": str(index_dir),
    }
    print(json.dumps(row), flush=True)
    return row


def measure_old_path(video: Path) -> dict:
    """The ask path before sharded ingest, on the same machine and input: one decode actor runs
    the whole coarse pass and returns every frame to the driver, which sends them all to the
    embed actor in one call (what issue 10 measured at 413 s for the 2-hour video)."""
    import ray

    from vidsift.core.probe import probe

    cfg = config(WORK / "unused", 1)
    with fresh_ray():
        pool = IngestPoolForOldPath(cfg)
        try:
            started = time.perf_counter()
            probe(str(video))
            frames = pool.decoder.call.remote(
                "coarse", (str(video), cfg.decode.coarse_max_side, cfg.selection.max_coarse_gap_s,
                           cfg.selection.coarse_fps), {})
            frames = ray.get(frames)
            coarse_s = time.perf_counter() - started
            ray.get(pool.embedder.encode_frames.remote([f.image for f in frames]))
            total = time.perf_counter() - started
        finally:
            pool.close()
    row = {"video": video.name, "old_path_coarse_embed_s": round(total, 1),
           "old_path_coarse_s": round(coarse_s, 1), "old_path_frames": len(frames)}
    print(json.dumps(row), flush=True)
    return row


def measure_old_path_apart(video: Path) -> dict:
    """measure_old_path in a child process: the whole coarse pass it holds in its driver (2.6 GB
    of frames for the 2-hour video) stays in that process's heap after it returns, and counted
    in this driver's RSS it made the asks measured after it look 420 MB heavier."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as child:
        return child.apply(measure_old_path, (video,))


class IngestPoolForOldPath:
    """One decode actor and one embed actor, used the old way (whole video per call)."""

    def __init__(self, cfg) -> None:
        import ray

        from vidsift.workers.decode import DECODERS
        from vidsift.workers.ingest import DecodeActor, EmbedActor

        self.decoder = ray.remote(num_cpus=0.5)(DecodeActor).remote(DECODERS[cfg.decode.backend], cfg)
        self.embedder = ray.remote(num_cpus=0.5)(EmbedActor).remote(cfg)
        ray.get([self.decoder.ready.remote(), self.embedder.ready.remote()])

    def close(self) -> None:
        import ray

        ray.kill(self.decoder)
        ray.kill(self.embedder)


def measure_http_second_ask(video: Path, index_dir: Path, repeats: int) -> dict:
    """Ask over the HTTP service (uvicorn on 127.0.0.1) on a video whose memory exists: one
    warm-up request (pools start), then `repeats` timed requests, submit to result."""
    import socket

    import httpx
    import uvicorn

    from vidsift.pipeline.service.http import create_app
    from vidsift.pipeline.service.jobs import FINAL_STATUSES

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


def measure_ffmpeg_keyframes(video: Path, repeats: int) -> dict:
    """The ffmpeg CLI's keyframe pass over the same file (decode only the keyframes, scale to
    the coarse size, discard): the floor any coarse pass is measured against, on this machine,
    so the first ask / this time is a ratio that holds across machines."""
    command = ["ffmpeg", "-hide_banner", "-loglevel", "fatal", "-skip_frame", "nokey", "-i",
               str(video), "-vf", "scale=448:-2", "-f", "null", "-"]
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True)
        seconds.append(time.perf_counter() - started)
    return {"ffmpeg_keyframe_pass_s_median": round(statistics.median(seconds), 2),
            "ffmpeg_keyframe_pass_s_runs": [round(s, 2) for s in seconds],
            "ffmpeg_command": " ".join(command[:1] + command[4:])}


def _duration(video: Path) -> float:
    from vidsift.core.probe import probe

    return probe(str(video)).duration


def pin_threads(cores: set[int]) -> None:
    """Set the CPU affinity of every thread of this process (what it starts inherits it)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except (ProcessLookupError, PermissionError):
            pass  # a thread that ended meanwhile


def measure_archive(folder: Path) -> dict:
    """Video-seconds ingested per wall-second over an archive folder: the in-process path (decode
    + embed in this process, one video after another: `vidsift index` before the ingest pool)
    against `vidsift index` on the ingest pool with W worker sets (W decode + W embed actors) with
    the whole system (driver, Ray's daemons, actors) on W cores, for W = 1 and 2: how throughput
    scales with cores, as it would with nodes on a cluster."""
    from vidsift.core.media import find_videos
    from vidsift.pipeline.flows.index import index_videos, start_pool
    from vidsift.workers.decode import get_decoder
    from vidsift.workers.embed import get_embedder

    videos = find_videos([folder])
    total_s = sum(_duration(Path(v)) for v in videos)
    cfg = config(WORK / "unused", 1)
    decoder, embedder = get_decoder(cfg.decode.backend), get_embedder(cfg.embed)
    started = time.perf_counter()
    for video in videos:
        frames = decoder.coarse(video, cfg.decode.coarse_max_side, cfg.selection.max_coarse_gap_s,
                                cfg.selection.coarse_fps)
        for lo in range(0, len(frames), cfg.embed.batch_size):
            embedder.encode_frames([f.image for f in frames[lo : lo + cfg.embed.batch_size]])
    in_process = time.perf_counter() - started
    del embedder
    rows = {"videos": len(videos), "video_s": round(total_s, 1),
            "in_process_video_s_per_s": round(total_s / in_process, 2)}
    every_core = os.sched_getaffinity(0)
    for sets in (1, 2):
        index_dir = Path(tempfile.mkdtemp(prefix="vsarch", dir=WORK))
        cfg = config(index_dir, sets, f"ingest.embed_actors={sets}")
        # The whole system on `sets` cores: this process's threads are pinned before Ray starts,
        # so Ray's daemons and the actors (started by them) inherit the mask, every thread of
        # them included (pinning a running process moves only its main thread).
        pin_threads(set(range(sets)))
        try:
            with fresh_ray():
                pool = start_pool(cfg)
                try:
                    started = time.perf_counter()
                    summary = index_videos([folder], cfg, pool=pool)
                    wall = time.perf_counter() - started
                finally:
                    pool.close()
        finally:
            pin_threads(every_core)
        assert len(summary.indexed) == len(videos), summary.failed
        rows[f"pool_{sets}_cores_video_s_per_s"] = round(total_s / wall, 2)
        shutil.rmtree(index_dir, ignore_errors=True)
    rows["speedup_1_to_2_cores"] = round(
        rows["pool_2_cores_video_s_per_s"] / rows["pool_1_cores_video_s_per_s"], 2)
    rows["pool_2_cores_vs_in_process"] = round(
        rows["pool_2_cores_video_s_per_s"] / rows["in_process_video_s_per_s"], 2)
    print(json.dumps(rows), flush=True)
    return rows


def save(update: dict) -> dict:
    """Merge `update` into bench/results/long.json (a partial run replaces only its rows) and
    recompute the targets from the rows there."""
    report = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    rows = {(r["video"], r["actors"]): r for r in report.get("asks", [])}
    rows.update({(r["video"], r["actors"]): r for r in update.pop("asks", [])})
    report.update(update)
    report["asks"] = sorted(rows.values(), key=lambda r: (r["video_s"], r["actors"]))
    long_rows = [r for r in report["asks"] if r["video_s"] > 3600]
    short_rows = [r for r in report["asks"] if r["video_s"] < 3600]
    if long_rows and short_rows:
        # the default set-up (a decode actor per core), as a first ask runs it
        best = max(long_rows, key=lambda r: (r["actors"], -r["first_ask_s"]))
        old = report.get(f"old_path_{best['video']}")
        report["targets"] = {
            "first_ingest_vs_old_path_same_run": round(
                best["first_ask_timings"]["ingest"] / old["old_path_coarse_embed_s"], 2) if old else None,
            "first_ask_vs_old_single_actor": round(best["first_ask_s"] / OLD_SINGLE_ACTOR_FIRST_ASK_S, 2),
            "first_ask_vs_ffmpeg_keyframe_pass": best.get("first_ask_vs_ffmpeg_keyframe_pass"),
            "first_ask_cpu_cores": best.get("first_ask_cpu_cores", {}).get("all"),
            "second_ask_s": best["second_ask_s_median"],
            "http_second_ask_s": best.get("http_second_ask_s_median"),
            "peak_rss_vidsift_mb": max(r["peak_rss_vidsift_mb"] for r in long_rows),
            "peak_rss_long_vs_short": {
                str(actors): round(
                    max(r["peak_rss_vidsift_mb"] for r in long_rows if r["actors"] == actors)
                    / max(r["peak_rss_vidsift_mb"] for r in short_rows if r["actors"] == actors), 2)
                for actors in sorted({r["actors"] for r in long_rows})},
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="second asks to take the median of")
    parser.add_argument("--skip-long", action="store_true", help="leave out the 2-hour video")
    parser.add_argument("--skip-archive", action="store_true")
    parser.add_argument("--only-archive", action="store_true", help="the archive rows only")
    parser.add_argument("--skip-short", action="store_true", help="leave out the 10-minute video")
    parser.add_argument("--skip-old-path", action="store_true",
                        help="leave out the ingest path before sharding (kept from an earlier run)")
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2],
                        help="decode-actor counts to measure the asks with")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if not SOURCE.exists():
        sys.exit(f"{SOURCE} is missing (see ../shared/data/README.md)")
    WORK.mkdir(parents=True, exist_ok=True)
    save({"machine": f"{os.cpu_count()} cores", "question": QUESTION})
    videos = [] if args.only_archive else (
        ([] if args.skip_short else [SOURCE]) + ([] if args.skip_long else [build_long_video()]))
    for video in videos:
        if not args.skip_old_path:
            save({f"old_path_{video.name}": measure_old_path_apart(video)})
        for actors in args.actors:
            row = measure_asks(video, actors, args.repeats)
            row.update(measure_ffmpeg_keyframes(video, args.repeats))
            row["first_ask_vs_ffmpeg_keyframe_pass"] = round(
                row["first_ask_s"] / row["ffmpeg_keyframe_pass_s_median"], 2)
            if actors == 2:
                row.update(measure_http_second_ask(video, Path(row["index_dir"]), args.repeats))
            shutil.rmtree(row.pop("index_dir"), ignore_errors=True)
            save({"asks": [row]})
    if not args.skip_archive:
        save({"archive": measure_archive(build_archive())})
    print(json.dumps(save({}).get("targets", {}), indent=1))


if __name__ == "__main__":
    main()
