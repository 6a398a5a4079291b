"""Live-stream benchmark: `vidsift watch` on MPEG-TS over UDP published by the ffmpeg CLI on
loopback, with a standing alert and a needle (drawn text) shown at known times.

Two runs of the same watcher command, one process tree each (the watcher and everything it
starts; the publisher is not counted):
- real time (`--realtime-minutes`, default 4): ffmpeg publishes at 1x, the needle is shown every
  `--every` seconds; alert latency = the event's JSON line read on the watcher's stdout minus
  the moment the needle's first frame was sent (the publisher's start + its PTS);
- long (`--minutes`, default 30 stream minutes), published `--readrate` times faster than real
  time (ffmpeg -readrate; UDP takes it on loopback): CPU seconds per stream-minute, the process
  tree's summed RSS sampled each second and reported per stream-minute (flat: the mean of the
  last 10 minutes against minutes 5-15), and whether each needle raised its alert once and
  nothing else did.
How many streams this machine holds in real time follows from the real-time run's CPU figure:
cores x 60 / (CPU seconds per stream-minute), stated as derived, not run. The watcher's model
loading (before the first packet) is left out of the CPU figures. Writes bench/results/live.json.

    .venv/bin/python bench/live.py [--minutes 30] [--readrate 4] [--realtime-minutes 4]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDSIFT = str(ROOT / ".venv" / "bin" / "vidsift")
NEEDLE = "FIRE IN AISLE FOUR"
ALERT = "fire in aisle four"
NEEDLE_S = 6.0  # seconds the needle stays on screen


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def needle_times(seconds: float, every: float) -> list[float]:
    """Stream seconds at which the needle appears: every `every` s, the first at every/2."""
    times, t = [], every / 2
    while t + NEEDLE_S < seconds - 15:
        times.append(t)
        t += every
    return times


def publish(port: int, seconds: float, needles: list[float], readrate: float) -> subprocess.Popen:
    """ffmpeg sending a 640x360 25 fps moving pattern (a keyframe a second), the needle drawn
    on a box at each of `needles` for NEEDLE_S seconds, at `readrate` x real time."""
    shown = "+".join(f"between(t,{t:.1f},{t + NEEDLE_S:.1f})" for t in needles) or "0"
    draw = (f"drawtext=text='{NEEDLE}':fontsize=40:fontcolor=white:box=1:boxcolor=black@0.8:"
            f"boxborderw=12:x=(w-text_w)/2:y=h-90:enable='{shown}'")
    return subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-readrate", str(readrate), "-f", "lavfi", "-i",
         f"life=size=640x360:rate=25:mold=10:ratio=0.1:death_color=#203040:life_color=#80a0c0,"
         f"format=yuv420p,{draw}", "-t", str(seconds), "-c:v", "libx264", "-preset",
         "ultrafast", "-g", "25", "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"],
        stdin=subprocess.DEVNULL)


class TreeSampler:
    """Summed RSS and CPU seconds of a process and all its descendants, sampled each second."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._psutil, self._root = psutil, psutil.Process(pid)
        self.samples: list[tuple[float, int]] = []  # (monotonic s, summed RSS bytes)
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tree = [self._root, *self._root.children(recursive=True)]
            except self._psutil.NoSuchProcess:
                return
            rss = 0
            for process in tree:
                try:
                    rss += process.memory_info().rss
                    times = process.cpu_times()
                    self._cpu[process.pid] = times.user + times.system
                except self._psutil.NoSuchProcess:
                    pass
            self.samples.append((time.monotonic(), rss))
            self._stop.wait(1.0)

    def cpu_s(self) -> float:
        """CPU seconds the tree has used so far (each process's latest sample)."""
        return sum(self._cpu.values())

    def stop(self) -> float:
        """Stops sampling; the CPU seconds the tree used."""
        self._stop.set()
        self._thread.join()
        return self.cpu_s()


def watch(port: int, seconds_wall: float, index_dir: Path, publisher_seconds: float,
          needles: list[float], readrate: float) -> dict:
    """Runs the watcher for `seconds_wall` and the publisher meanwhile; the events with the
    monotonic time each line was read, the publisher's start, and the tree's samples."""
    watcher = subprocess.Popen(
        [VIDSIFT, "watch", f"udp://127.0.0.1:{port}", "--name", "bench", "--alert", ALERT,
         "--json", "--duration", str(seconds_wall), "--index-dir", str(index_dir),
         "--set", "watch.read_timeout_s=30", "--set", f"alert.cooldown_s={NEEDLE_S * 2}"],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    sampler = TreeSampler(watcher.pid)
    time.sleep(8.0)  # the watcher's models load before the first packet is sent
    loading_cpu_s = sampler.cpu_s()  # not the stream's: left out of the per-minute figure
    published, published_wall = time.monotonic(), time.time()
    publisher = publish(port, publisher_seconds, needles, readrate)
    lines = []
    for line in watcher.stdout:
        lines.append((time.monotonic(), json.loads(line)))
    watcher.wait()
    publisher.wait()
    cpu_s = sampler.stop() - loading_cpu_s
    if watcher.returncode != 0:
        raise SystemExit(f"vidsift watch exited {watcher.returncode}")
    return {"lines": lines, "published": published, "published_wall": published_wall,
            "samples": sampler.samples, "cpu_s": cpu_s}


def match_events(lines, needles: list[float], readrate: float, published: float,
                 published_wall: float) -> dict:
    """Each needle's event and its latency in wall seconds from the needle's first frame being
    sent; events matching no needle are false alarms. An event's stream time is its wall-clock
    start minus the publisher's start (the reader's clock is the first packet's arrival plus
    PTS, and the first packet leaves as the publisher starts)."""
    latencies, raised, false_alarms = [], [0] * len(needles), 0
    for read, event in lines:
        if "alert" not in event:
            continue
        at = event["start"] - published_wall
        hits = [n for n, t in enumerate(needles) if t - 2 <= at <= t + NEEDLE_S + 2]
        if not hits:
            false_alarms += 1
            continue
        raised[hits[0]] += 1
        if raised[hits[0]] == 1:
            latencies.append(read - (published + needles[hits[0]] / readrate))
    return {"needles": len(needles), "raised_once": sum(r == 1 for r in raised),
            "raised_twice_or_more": sum(r > 1 for r in raised), "false_alarms": false_alarms,
            "latency_s": latencies}


def rss_by_minute(samples, published: float, readrate: float, stream_minutes: float
                  ) -> list[float]:
    """Mean summed RSS (MB) per stream-minute, over the samples taken while it was published."""
    minutes: dict[int, list[int]] = {}
    for at, rss in samples:
        minute = int((at - published) * readrate // 60)
        if at >= published and minute < stream_minutes:
            minutes.setdefault(minute, []).append(rss)
    return [round(statistics.mean(minutes[m]) / 1e6, 1) for m in sorted(minutes)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="stream minutes, long run")
    parser.add_argument("--readrate", type=float, default=4.0)
    parser.add_argument("--realtime-minutes", type=float, default=4.0)
    parser.add_argument("--every", type=float, default=60.0, help="seconds between needles")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "live.json"))
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    result: dict = {"machine": f"{cores} cores",
                    "load_average_1m_start": round(os.getloadavg()[0], 2),
                    "source": "640x360 25 fps x264 MPEG-TS over UDP on loopback, a keyframe a "
                              "second; default watch.* (shard_s 10, coarse_fps 1) and embedder"}
    with tempfile.TemporaryDirectory(prefix="vslive") as tmp:
        seconds = args.realtime_minutes * 60
        needles = needle_times(seconds, args.every)
        run = watch(free_udp_port(), seconds + 30, Path(tmp) / "realtime", seconds, needles, 1.0)
        matched = match_events(run["lines"], needles, 1.0, run["published"],
                               run["published_wall"])
        lat = matched.pop("latency_s")
        result["realtime"] = {
            "stream_minutes": args.realtime_minutes, **matched,
            "alert_latency_s": {"median": round(statistics.median(lat), 2) if lat else None,
                                "worst": round(max(lat), 2) if lat else None,
                                "each": [round(x, 2) for x in lat]},
            "cpu_s_per_stream_minute": round(run["cpu_s"] / args.realtime_minutes, 1)}
        print("real time:", json.dumps(result["realtime"]))

        seconds = args.minutes * 60
        needles = needle_times(seconds, args.every * 5)
        run = watch(free_udp_port(), seconds / args.readrate + 40, Path(tmp) / "long", seconds,
                    needles, args.readrate)
        matched = match_events(run["lines"], needles, args.readrate, run["published"],
                               run["published_wall"])
        matched.pop("latency_s")  # at readrate x, wall latency is not the real-time figure
        per_minute = rss_by_minute(run["samples"], run["published"], args.readrate,
                                   args.minutes)
        early = per_minute[5:15]
        late = per_minute[-10:]
        cpu_per_minute = run["cpu_s"] / args.minutes
        result["long"] = {
            "stream_minutes": args.minutes, "readrate": args.readrate, **matched,
            "cpu_s_per_stream_minute": round(cpu_per_minute, 1),
            "rss_mb_by_stream_minute": per_minute,
            "rss_peak_mb": round(max(r for _, r in run["samples"]) / 1e6, 1),
            "rss_last10_vs_5to15": round(statistics.mean(late) / statistics.mean(early), 3)
            if len(early) >= 5 and len(late) >= 5 else None}
        # from the real-time run's CPU: at readrate x the watcher idles less between shards
        realtime_cpu = result["realtime"]["cpu_s_per_stream_minute"]
        result["streams_in_real_time_derived"] = int(cores * 60 // realtime_cpu) \
            if realtime_cpu > 0 else None
        print("long:", json.dumps({k: v for k, v in result["long"].items()
                                   if k != "rss_mb_by_stream_minute"}))
    print("streams this machine holds in real time (derived from CPU):",
          result["streams_in_real_time_derived"])
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
