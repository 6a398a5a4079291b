"""Remote sources benchmark: the coarse pass of one video from the local file, from an S3 server
(moto's, on loopback) and from nginx (loopback), in one run.

For each source: the probe (the driver's scan: a remote MP4 from its header and index only,
its packets' payloads never fetched; a local file demuxed whole) and the coarse
pass decoded shard by shard in ~20 s pieces as the ingest pool's actors do (the driver's scan
handed over, so a shard reads only its byte ranges), in this process, one after another. Prints
wall times (median of --runs, the runs interleaved across sources), the ratio to the local file
(goal: within 1.3x on loopback) and the bytes read from the server per video against the file's
size, and the machine's load average; writes bench/results/remote.json.

nginx_weak is the same file served with no ETag (Last-Modified only: no strong version), so its
identity is the digest of its bytes: each shard hashes the pieces it fetches
(core.sources.start_pieces, as a decode actor does) and the pieces no shard fetched are read
after (hash_pieces: hash_bytes); hash_whole_bytes is what hashing it ahead of the coarse pass,
the way before, reads (source_digest); before_bytes_per_size that plus the probe and the pass.

    .venv/bin/python bench/remote.py [--video ../shared/data/bbb.mp4] [--runs 1]

Needs nginx (make nginx) and the test extra (moto[server], s3fs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.remote_stores import moto_s3, nginx_serving, s3_client  # noqa: E402

MAX_SIDE, MAX_GAP_S, FILL_FPS = 448, 2.0, 1.0


def coarse_pass(video: str, shard_minutes: float) -> tuple[float, float, int, int, int, dict]:
    """(probe seconds, coarse seconds, frames, bytes the probe read, bytes the coarse pass
    read, the pieces hashed) of the video, shard by shard (bytes: from a server; 0 for a
    file; pieces: of a remote video with no strong version, else {})."""
    from vidsift.core import probe as probing
    from vidsift.core import sources

    def fetched() -> int:
        return sources.bytes_fetched().get(sources.normalise_url(video), 0) \
            if sources.is_url(video) else 0

    sources._fetched.clear()
    sources._blocks.clear()
    import numpy as np

    from vidsift.core.shards import plan_shards
    from vidsift.workers.decode import get_decoder
    from vidsift.workers.ingest import PIECE_S

    probing._cached_scan.cache_clear()
    probing._REMOTE_SCANS.clear()
    source = sources.stat_source(video) if sources.is_url(video) else None
    hashing = source is not None and source.hashed_in_pieces
    pieces: dict = {}

    def recorded(run):  # as ingest's driver and DecodeActor.shard record such an object
        if not hashing:
            return run()
        sources.start_pieces(source.url, source.size)
        try:
            return run()
        finally:
            pieces.update(sources.take_pieces(source.url))

    started = time.perf_counter()
    info = recorded(lambda: probing.probe(video))
    probed = time.perf_counter() - started
    probe_bytes = fetched()
    decoder = get_decoder("pyav", threads=1)
    frames = 0
    started = time.perf_counter()
    keys = np.asarray(info.keyframe_times)
    for start, end in plan_shards(keys, info.start_time, info.end_time, shard_minutes * 60):
        # as a decode actor does (DecodeActor._pieces): the shard in ~PIECE_S keyframe pieces
        inside = keys[(keys > start) & (keys < end)]

        def shard(start=start, end=end, inside=inside) -> int:
            return sum(len(decoder.coarse(video, MAX_SIDE, MAX_GAP_S, FILL_FPS, start=lo, end=hi))
                       for lo, hi in plan_shards(inside, start, end, PIECE_S))

        frames += recorded(shard)
    return (probed, time.perf_counter() - started, frames, probe_bytes,
            fetched() - probe_bytes, pieces)


def weak_hash(url: str, pieces: dict, size: int, read: int) -> dict:
    """The digest of a video with no strong version from the pieces its probe and shards
    hashed plus the pieces they did not fetch, against hashing it whole first (the way
    before); read: the bytes the probe and the coarse pass read."""
    from vidsift.core import sources

    def fetched() -> int:
        return sources.bytes_fetched().get(url, 0)

    info = sources.stat_source(url)
    before, started = fetched(), time.perf_counter()
    digest = sources.hash_pieces(info, pieces)
    gaps, gap_s = fetched() - before, time.perf_counter() - started
    before, started = fetched(), time.perf_counter()
    whole = sources.source_digest(info)
    whole_bytes, whole_s = fetched() - before, time.perf_counter() - started
    return {"pieces": sources.piece_count(size), "pieces_hashed_by_shards": len(pieces),
            "hash_bytes": gaps, "hash_s": round(gap_s, 3), "digest_matches": digest == whole,
            "hash_whole_bytes": whole_bytes, "hash_whole_s": round(whole_s, 3),
            "before_bytes_per_size": round((whole_bytes + read) / size, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=str(ROOT.parent / "shared/data/bbb.mp4"))
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--shard-minutes", type=float, default=5.0)
    args = parser.parse_args()

    video = Path(args.video).resolve()
    size = video.stat().st_size
    results: dict = {"video": video.name, "size_bytes": size, "runs": args.runs,
                     "cpu_cores": os.cpu_count(),
                     "note": "moto's S3 server runs in this process, on the same cores",
                     "load_average_1m": {"start": round(os.getloadavg()[0], 2)}, "sources": {}}
    with tempfile.TemporaryDirectory(prefix="vsbench") as work:
        served = Path(work) / "served"
        (served / "weak").mkdir(parents=True)  # nginx serves /weak/ with no ETag
        os.symlink(video, served / video.name)
        os.symlink(video, served / "weak" / video.name)
        with moto_s3() as endpoint, nginx_serving(served, Path(work) / "nginx") as web:
            s3 = s3_client(endpoint)
            s3.create_bucket(Bucket="bench")
            s3.upload_file(str(video), "bench", video.name)
            urls = {"local": str(video), "s3": f"s3://bench/{video.name}",
                    "nginx": web.url + video.name, "nginx_weak": f"{web.url}weak/{video.name}"}
            # Runs interleaved (each run passes over every source in turn), so a change in the
            # machine's load during the benchmark falls on all sources alike.
            probes, passes, last = {n: [] for n in urls}, {n: [] for n in urls}, {}
            for _ in range(args.runs):
                for name, url in urls.items():
                    probed, decoded, *last[name] = coarse_pass(url, args.shard_minutes)
                    probes[name].append(probed)
                    passes[name].append(decoded)
            for name, url in urls.items():
                frames, probe_read, coarse_read, pieces = last[name]
                if name == "nginx_weak":
                    results["sources"][name] = weak_hash(url, pieces, size,
                                                         probe_read + coarse_read)
                else:
                    results["sources"][name] = {}
                results["sources"][name] |= {
                    "probe_s": round(statistics.median(probes[name]), 3),
                    "coarse_s": round(statistics.median(passes[name]), 3),
                    "coarse_runs_s": [round(t, 2) for t in passes[name]],
                    "frames": frames, "probe_bytes": probe_read, "coarse_bytes": coarse_read,
                    "coarse_bytes_per_size": round(coarse_read / size, 3),
                    "probe_bytes_per_size": round(probe_read / size, 4),
                    "total_bytes_per_size": round(
                        (probe_read + coarse_read + results["sources"][name].get("hash_bytes", 0))
                        / size, 3),
                }
    results["load_average_1m"]["end"] = round(os.getloadavg()[0], 2)
    print(f"load average (1 min, 2 cores): {results['load_average_1m']}")
    local = results["sources"]["local"]
    for name, row in results["sources"].items():
        row["coarse_vs_local"] = round(row["coarse_s"] / local["coarse_s"], 3)
        row["probe_vs_local"] = round(row["probe_s"] / local["probe_s"], 3)
        print(f"{name:6s} probe {row['probe_s']:7.2f} s ({row['probe_vs_local']:.2f}x)  coarse "
              f"{row['coarse_s']:7.2f} s ({row['coarse_vs_local']:.2f}x local)  frames "
              f"{row['frames']}  read: probe {row['probe_bytes'] / 1e6:6.1f} MB, coarse "
              f"{row['coarse_bytes'] / 1e6:6.1f} MB ({row['coarse_bytes_per_size']:.2f}x the file)")
        if "hash_bytes" in row:
            print(f"       hashed while read: {row['pieces_hashed_by_shards']}/{row['pieces']} "
                  f"pieces, then {row['hash_bytes'] / 1e6:.1f} MB of gaps: "
                  f"{row['total_bytes_per_size']:.2f}x the file in all (hashing it whole "
                  f"first: {row['before_bytes_per_size']:.2f}x); digests equal: "
                  f"{row['digest_matches']}")
    out = ROOT / "bench/results/remote.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
