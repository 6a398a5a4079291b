"""A 2-hour video's summary from its stored memory, evidence-only (`vidsift summarize --model
none`: chapters, extractive titles and highlights, thumbnails, and every chapter's token set
planned as a VLM would be shown it), beside the 10-minute video it is made of, in one run.

The 2-hour video is bench/long.py's (bbb.mp4 twelve times, stream copy, cached in bench/work/);
both memories are kept under bench/work/summary_long/index, so only the first run ingests
(about 12 minutes on 2 cores, reported as build_s). Then, in a fresh Ray with the ingest pool
started, `--repeats` summaries of each video from the memory, reporting:
- wall time (median) and timings.plan (planning every chapter), the per-chapter plan time;
- the peak summed RSS of the vidsift processes (driver + ingest actors), Ray's daemons apart;
- that each chapter's token total is its plan's: the sum of its segments' tokens, each segment
  counted again by the model's own arithmetic (core.vision.tokens_for), within
  summary.chapter_tokens;
and the ratios 2-hour / 10-minute for wall time and peak memory.

    nice -n 10 .venv/bin/python bench/summary_long.py    # -> bench/results/summary_long.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from long import SOURCE, WORK, RssSampler, build_long_video, fresh_ray  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "summary_long.json"
INDEX = WORK / "summary_long" / "index"


def config():
    from vidsift.core.config import load_config

    return load_config("default", [f"index.dir={INDEX}", "vlm.model=none"])


def check_tokens(result, cfg) -> dict:
    """Each chapter's tokens against its plan, recounted by the model's arithmetic."""
    from vidsift.core.vision import tokens_for

    spec = cfg.vision_spec()
    equal = 0
    for chapter in result.chapters:
        plan = chapter["evidence"]["plan"]
        recount = sum(tokens_for(s["frames"] if s["kind"] == "clip" else 1, s["height"],
                                 s["width"], spec) for s in plan)
        stated = chapter["evidence"]["tokens"]
        equal += stated == recount == sum(s["tokens"] for s in plan) and \
            stated <= cfg.summary.chapter_tokens
    return {"chapters": len(result.chapters), "tokens_equal_plan": equal,
            "tokens_total": result.tokens,
            "tokens_per_chapter": [c["evidence"]["tokens"] for c in result.chapters]}


def measure(video: Path, repeats: int) -> dict:
    from vidsift.pipeline.flows.summarize import Summarizer

    cfg = config()
    with fresh_ray():
        summarizer = Summarizer(cfg)
        try:
            started = time.perf_counter()
            pool = summarizer.pool
            pool_s = time.perf_counter() - started
            roles = {pid: ("decode" if n < pool.size else "embed") + str(n)
                     for n, (_, pid) in enumerate(pool.processes())}
            walls, results = [], []
            with RssSampler(roles) as rss:
                for _ in range(repeats):
                    began = time.perf_counter()
                    results.append(summarizer.summarize(str(video)))
                    walls.append(time.perf_counter() - began)
        finally:
            summarizer.close()
    last = results[-1]
    plan_s = [c["evidence"]["plan_s"] for c in last.chapters]
    row = {
        "video": video.name, "video_s": round(last.duration, 1),
        "memory_reused": all(r.reused for r in results), "pool_start_s": round(pool_s, 2),
        "wall_s_median": round(statistics.median(walls), 3),
        "wall_s_runs": [round(w, 3) for w in walls],
        "plan_s_median": round(statistics.median(r.timings["plan"] for r in results), 3),
        "plan_per_chapter_s_median": round(statistics.median(plan_s), 4),
        "plan_per_chapter_s_max": round(max(plan_s), 4),
        "timings": last.timings,
        "highlights": len(last.highlights),
        **check_tokens(last, cfg),
        "peak_rss_vidsift_mb": round(rss.peak_vidsift / 2**20),
        "peak_pss_vidsift_mb": round(rss.peak_vidsift_pss / 2**20),
        "peak_rss_ray_daemons_mb": round(rss.peak_ray / 2**20),
        "peak_rss_by_process_mb": {k: round(v / 2**20) for k, v in rss.peak_by_role.items()},
    }
    print(json.dumps(row), flush=True)
    return row


def build_memory(video: Path) -> float | None:
    """Ingest `video` into INDEX unless its memory is there; seconds spent, None when cached."""
    from vidsift.core.media import content_hash
    from vidsift.index.memory import MemoryStore
    from vidsift.pipeline.flows.summarize import Summarizer

    cfg = config()
    if MemoryStore(INDEX).get(content_hash(str(video)), cfg.memory_key()) is not None:
        return None
    started = time.perf_counter()
    with fresh_ray():
        summarizer = Summarizer(cfg)
        try:
            summarizer.summarize(str(video))
        finally:
            summarizer.close()
    return round(time.perf_counter() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    long_video = build_long_video()
    rows, built = [], {}
    for video in (SOURCE, long_video):
        built[video.name] = build_memory(video)
        rows.append(measure(video, args.repeats))
    short, long_row = rows
    payload = {
        "machine": "2 cores", "build_s": built, "runs": rows,
        "long_vs_short": {
            "video_s": round(long_row["video_s"] / short["video_s"], 1),
            "wall_s": round(long_row["wall_s_median"] / short["wall_s_median"], 2),
            "peak_rss_vidsift": round(long_row["peak_rss_vidsift_mb"]
                                      / short["peak_rss_vidsift_mb"], 2),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload["long_vs_short"]))


if __name__ == "__main__":
    main()
