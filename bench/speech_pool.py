"""Speech recognition on the ingest pool against recognition in the asking process.

Input: a LECTURE_S-second video where bench/speech.py's SENTENCES are said in turn every
LINE_EVERY_S seconds (espeak-ng over a lavfi picture, a keyframe every 2 s), ingested with
`speech.mode=asr` (the default recogniser, moonshine) and 1-minute shards:

- old path (before speech moved onto the pool): the pool ingests the frames, then the driver
  recognises the whole audio track in its own process (workers.speech.transcribe);
- vidsift: the pool ingests the frames and recognises each shard's audio in the same shard, on
  the decode actors (pipeline.flows.ingest.ingest_one with speech on).

Both run on the same Ray (2 decode actors, 1 embed actor, this machine's cores), each time with a
fresh index dir. Reported: wall seconds (median of --repeats), the ratio, peak summed RSS of the
driver and the actors (bench/long.py's sampler), and the word error rate of each transcript
against what was said: shards cut the audio at their ends, and what that costs in accuracy is
measured here rather than assumed.

    .venv/bin/python bench/speech_pool.py [--repeats 3] [--seconds 300]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))  # long.py's sampler and Ray set-up, speech.py's WER
sys.path.insert(0, str(ROOT))  # tests.speech_videos builds the espeak-ng video
RESULTS = ROOT / "bench" / "results" / "speech_pool.json"
WORK = ROOT / "bench" / "work"
LINE_EVERY_S = 10.0
SHARD_MINUTES = 1.0


def build_lecture(seconds: int) -> tuple[Path, list[str]]:
    """The lecture video (made once per length) and the sentences said in it, in order."""
    from speech import SENTENCES

    from tests.speech_videos import Line, make_speech_video

    said = [SENTENCES[n % len(SENTENCES)] for n in range(int(seconds // LINE_EVERY_S))]
    path = WORK / f"lecture_{seconds}s.mp4"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        lines = [Line(1.0 + n * LINE_EVERY_S, text) for n, text in enumerate(said)]
        make_speech_video(path, seconds, lines, keyframe_every_s=2)
    return path, said


def word_error_rate(said: list[str], transcript) -> float:
    from speech import edit_distance, words

    reference = [w for sentence in said for w in words(sentence)]
    heard = [w for segment in transcript.segments for w in words(segment.text)]
    return edit_distance(reference, heard) / len(reference)


def run_once(video: Path, pool, on_pool: bool) -> dict:
    from long import RssSampler, config

    from vidsift.index.memory import MemoryStore
    from vidsift.pipeline.flows.ingest import ingest_one
    from vidsift.workers.speech import transcribe

    index_dir = Path(tempfile.mkdtemp(prefix="vsspeech", dir=WORK))
    speech = ["speech.mode=asr"] if on_pool else []
    cfg = config(index_dir, 2, f"ingest.shard_minutes={SHARD_MINUTES}", *speech)
    roles = {pid: "decode" if n < pool.size else "embed" for n, (_, pid) in enumerate(pool.processes())}
    try:
        with RssSampler(roles) as rss:
            started = time.perf_counter()
            memory = ingest_one(str(video), cfg, pool, MemoryStore(cfg.index.dir))
            transcript = (memory.transcript if on_pool else
                          transcribe(str(video), cfg.with_speech_mode("asr").speech))
            wall = time.perf_counter() - started
    finally:
        shutil.rmtree(index_dir, ignore_errors=True)
    return {"wall_s": wall, "peak_rss_mb": rss.peak_vidsift / 2**20, "transcript": transcript}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=300)
    args = parser.parse_args()

    from long import config, fresh_ray

    from vidsift.pipeline.flows.index import start_pool

    video, said = build_lecture(args.seconds)
    runs: dict[str, list[dict]] = {"old_driver_asr": [], "pool_asr": []}
    with fresh_ray():
        pool = start_pool(config(WORK / "unused", 2))
        try:
            for _ in range(args.repeats):
                for name, on_pool in (("old_driver_asr", False), ("pool_asr", True)):
                    run = run_once(video, pool, on_pool)
                    runs[name].append(run)
                    print(name, round(run["wall_s"], 1), "s", round(run["peak_rss_mb"]), "MB",
                          flush=True)
        finally:
            pool.close()

    def summary(name: str) -> dict:
        return {"wall_s_median": round(statistics.median(r["wall_s"] for r in runs[name]), 1),
                "wall_s_all": [round(r["wall_s"], 1) for r in runs[name]],
                "peak_rss_mb_median": round(statistics.median(r["peak_rss_mb"] for r in runs[name])),
                "wer": round(word_error_rate(said, runs[name][0]["transcript"]), 3),
                "segments": len(runs[name][0]["transcript"].segments)}

    old, new = summary("old_driver_asr"), summary("pool_asr")
    report = {
        "video": {"seconds": args.seconds, "sentences": len(said), "shard_minutes": SHARD_MINUTES,
                  "decode_actors": 2, "embed_actors": 1},
        "old_driver_asr": old, "pool_asr": new,
        "speedup": round(old["wall_s_median"] / new["wall_s_median"], 2),
        "cores": len(os.sched_getaffinity(0)), "load_average_at_end": os.getloadavg()[0],
        "repeats": args.repeats,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
