"""Clip index benchmark.

synthetic: clustered unit vectors (D = 512) at 100k and 1M. For the factory vidsift chooses
(vidsift.index.factory with the default IndexConfig) and for exact search (faiss IndexFlatIP, the
competitor, in the same process on the same vectors): build time, recall@10 against exact
search, and single-query (batch 1) latency p50/p99.
video: `vidsift index` end to end on ../shared/data/bbb.mp4: clips indexed per minute of video.

    .venv/bin/python bench/index.py synthetic [--cases clustered:100000 uniform:100000 clustered:1000000]
    .venv/bin/python bench/index.py video [--video ../shared/data/bbb.mp4]

Results are merged into bench/results/index.json (each part replaces its own key).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "index.json"
DIM = 512
# Real clip embeddings are clustered (shots of one scene, one kind of content): "clustered" draws
# each vector around one of n / VECTORS_PER_CLUSTER random unit centres, with noise of norm NOISE
# (cosine ~0.7 to its centre, ~0.5 to a sibling). "uniform" (no structure at all) is the worst
# case for any inverted file and is reported beside it.
VECTORS_PER_CLUSTER = 200
NOISE = 1.0
QUERIES = 1000


def unit_vectors(n: int, seed: int, distribution: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clusters = max(n // VECTORS_PER_CLUSTER, 1)
    centers = rng.standard_normal((clusters, DIM), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    out = np.empty((n, DIM), dtype=np.float32)
    for lo in range(0, n, 100_000):
        hi = min(n, lo + 100_000)
        noise = rng.standard_normal((hi - lo, DIM), dtype=np.float32)
        if distribution == "clustered":
            x = centers[rng.integers(0, clusters, hi - lo)] + noise * (NOISE / np.sqrt(DIM))
        else:
            x = noise
        out[lo:hi] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def latencies_ms(index, queries: np.ndarray, k: int = 10) -> np.ndarray:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q[None, :], k)
        times.append((time.perf_counter() - t0) * 1000)
    return np.array(times)


def summary(lat: np.ndarray) -> dict:
    return {"p50_ms": round(float(np.median(lat)), 3), "p99_ms": round(float(np.percentile(lat, 99)), 3),
            "queries_timed": len(lat)}


def run_synthetic(cases: list[tuple[str, int]]) -> dict:
    import faiss
    import psutil

    from vidsift.index.factory import build_index, choose_index, recall_at_k
    from vidsift.core.config import IndexConfig

    cfg = IndexConfig()
    memory_per_space = cfg.memory_mb * 1024 * 1024 // 2
    out = {"dim": DIM, "vectors_per_cluster": VECTORS_PER_CLUSTER, "noise": NOISE, "faiss": faiss.__version__,
           "faiss_threads": faiss.omp_get_max_threads(), "cpus": os.cpu_count(), "runs": []}
    for distribution, n in cases:
        data = unit_vectors(n + QUERIES, seed=n, distribution=distribution)
        base, queries = data[:n], np.ascontiguousarray(data[n:])
        del data
        ids = np.arange(n, dtype=np.int64)
        load_before = os.getloadavg()[0]

        t0 = time.perf_counter()
        flat = faiss.IndexFlatIP(DIM)
        flat.add(base)
        flat_build = time.perf_counter() - t0
        _, truth = flat.search(queries, 10)  # batched: the ground truth
        flat_lat = latencies_ms(flat, queries[: 50 if n > 200_000 else 300])  # ~n/1e6 s each
        print(f"{distribution} {n}: exact done", flush=True)
        del flat

        choice = choose_index(n, DIM, cfg.flat_max_vectors, memory_per_space)
        t0 = time.perf_counter()
        index, params = build_index(choice, base, ids, cfg.target_recall)
        build = time.perf_counter() - t0
        print(f"{distribution} {n}: {choice.factory} built in {build:.0f} s", flush=True)
        _, found = index.search(queries, 10)
        recall = recall_at_k(found, truth)
        lat = latencies_ms(index, queries)
        del index
        run = {
            "n": n,
            "distribution": distribution,
            "vidsift": {"factory": choice.factory, "params": params, "build_s": round(build, 2),
                        "recall_at_10": round(recall, 4), **summary(lat)},
            "exact_flat": {"factory": "Flat", "build_s": round(flat_build, 2), "recall_at_10": 1.0,
                           **summary(flat_lat)},
            "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "rss_gb": round(psutil.Process().memory_info().rss / 1e9, 2),
        }
        run["p50_speedup_vs_exact"] = round(run["exact_flat"]["p50_ms"] / run["vidsift"]["p50_ms"], 1)
        print(json.dumps(run), flush=True)
        out["runs"].append(run)
        del base
    return out


def run_video(video: Path) -> dict:
    from vidsift.core.config import load_config
    from vidsift.pipeline.flows.index import index_videos, search_clips
    from vidsift.core.probe import probe

    info = probe(str(video))
    work = Path(tempfile.mkdtemp(prefix="vsidx"))
    try:
        cfg = load_config("default", [f"index.dir={work / 'index'}"])
        t0 = time.perf_counter()
        result = index_videos([str(video)], cfg)
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        hits = search_clips("a rabbit in a forest", cfg, k=5)
        search_s = time.perf_counter() - t0
        return {
            "video": str(video), "duration_s": round(info.duration, 2),
            "clips": result.clips, "frames": result.frames, "wall_s": round(wall, 1),
            "minutes_of_video_per_minute": round(info.duration / wall, 2),
            "clips_per_minute_of_video": round(result.clips / (info.duration / 60), 2),
            "frames_per_s": round(result.frames / wall, 2),
            "search_s": round(search_s, 2),  # the embedder is already loaded by the index run
            "top_hit": hits[0].to_dict() if hits else None,
            "embedder": cfg.embed.backend, "load_avg_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=["synthetic", "video"])
    parser.add_argument("--cases", nargs="+", default=["clustered:100000", "uniform:100000", "clustered:1000000"],
                        help="distribution:n pairs (clustered | uniform)")
    parser.add_argument("--video", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/bbb.mp4")
    args = parser.parse_args()
    if args.part == "synthetic":
        cases = [(c.split(":")[0], int(c.split(":")[1])) for c in args.cases]
        part = run_synthetic(cases)
    else:
        part = run_video(args.video)
    # read just before writing: the other part may have finished meanwhile
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    old = results.get("synthetic", {})
    if args.part == "synthetic" and all(old.get(key) == part[key] for key in ("dim", "vectors_per_cluster", "noise")):
        # a run of some cases replaces those cases and keeps the others' last numbers
        fresh = {(r["distribution"], r["n"]) for r in part["runs"]}
        kept = [r for r in old.get("runs", []) if (r["distribution"], r["n"]) not in fresh]
        part["runs"] = sorted(kept + part["runs"], key=lambda r: (r["n"], r["distribution"]))
    results[args.part] = part
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(json.dumps(part, indent=2, default=str))


if __name__ == "__main__":
    main()
