"""Asking across many videos: one question over the clip index against asking every video.

The needle video of bench/needles.py (596 s of bbb.mp4 at 360p with ten 2-4 s needles: six
on-screen captions, four inset photos; built by `bench/needles.py` first, cached in bench/work/)
is cut by stream copy into ten ~60 s videos at its keyframes (every 10 s) and indexed once into
bench/work/many_index. For every needle question, at 4, 8 and 16 frame-equivalents (x256 visual
tokens), it compares, evidence-only with the default config and the offline embedder:
- across: one `ask` with no video (the index's best clips, grouped by video, one token set
  within the budget: evidence.plan_across_videos), and
- every video: one `ask` per video with the budget split evenly (the same total), the
  evidence put together: what one would do without a clip index (not possible when the even
  share cannot hold one image at min_pixels: reported as null).
Evidence recall = share of questions whose evidence holds a frame timestamp inside the needle,
in the needle's video. Times: the median per question, memories warm (stored by the index run),
so both sides pay only retrieval, planning and the fine decode. Results:
bench/results/ask_many.json.

    .venv/bin/python bench/ask_many.py [--height 360] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from needles import WORK, Needle, build_video  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ask_many.json"
BUDGETS = (4, 8, 16)  # frame-equivalents of 256 tokens
TOKENS_PER_FRAME = 256
PIECE_S = 60


def cut_pieces(video: Path) -> list[tuple[Path, float]]:
    """The video cut at its keyframes into ~PIECE_S s files (cached): [(path, offset s)]."""
    folder = WORK / f"many_{video.stem}"
    if not folder.is_dir() or not any(folder.glob("*.mp4")):
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-y", "-v", "error", "-i", str(video), "-c", "copy", "-f",
                        "segment", "-segment_time", str(PIECE_S), "-reset_timestamps", "1",
                        str(folder / "part%02d.mp4")], check=True)
    pieces, offset = [], 0.0
    for path in sorted(folder.glob("part*.mp4")):
        pieces.append((path.resolve(), offset))
        offset += float(subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
             str(path)], capture_output=True, text=True, check=True).stdout)
    return pieces


def needle_home(needle: Needle, pieces) -> tuple[str, float, float]:
    """(video, start, end) of the needle in the piece holding its start, in that piece's time."""
    path, offset = max((p for p in pieces if p[1] <= needle.start), key=lambda p: p[1])
    return str(path), needle.start - offset, needle.end - offset


def found(segments: list[dict], home: tuple[str, float, float]) -> bool:
    video, start, end = home
    return any(seg["video"] == video and any(start <= t <= end for t in seg["timestamps"])
               for seg in segments)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from vidsift.core.config import load_config
    from vidsift.core.errors import BudgetError
    from vidsift.pipeline.flows.ask import Asker
    from vidsift.pipeline.flows.index import index_videos

    video, needles = build_video(args.height, args.seed)
    pieces = cut_pieces(video)
    index_dir = WORK / f"many_index_{video.stem}"
    cfg = load_config("default", [f"index.dir={index_dir}", "vlm.model=none"])
    started = time.perf_counter()
    summary = index_videos([str(p) for p, _ in pieces], cfg)
    index_s = time.perf_counter() - started
    assert not summary.failed, summary.failed
    asker = Asker(cfg)
    rows, per_budget = [], {}
    try:
        for frames in BUDGETS:
            tokens = frames * TOKENS_PER_FRAME
            across_hits = every_hits = 0
            across_s, every_s = [], []
            for needle in needles:
                home = needle_home(needle, pieces)
                began = time.perf_counter()
                across = asker.ask(None, needle.question, budget=tokens)
                across_s.append(time.perf_counter() - began)
                began = time.perf_counter()
                share = tokens // len(pieces)
                try:
                    segments = [seg for path, _ in pieces for seg in
                                asker.ask(str(path), needle.question, budget=share).segments]
                except BudgetError:  # the even share is below one image
                    segments = None
                every_s.append(time.perf_counter() - began)
                hit_across = found(across.segments, home)
                hit_every = found(segments, home) if segments is not None else None
                across_hits += hit_across
                every_hits += bool(hit_every)
                rows.append({
                    "frames": frames, "question": needle.question, "kind": needle.kind,
                    "video": Path(home[0]).name, "across_hit": hit_across,
                    "every_video_hit": hit_every,
                    "across_videos": [Path(v).name for v in across.videos],
                    "across_tokens": across.tokens, "every_video_tokens": sum(
                        seg["tokens"] for seg in segments) if segments is not None else None,
                    "across_s": round(across_s[-1], 3),
                    "every_video_s": round(every_s[-1], 3) if segments is not None else None,
                })
            possible = rows[-1]["every_video_tokens"] is not None
            per_budget[frames] = {
                "tokens": tokens,
                "recall_across": across_hits / len(needles),
                "recall_every_video": every_hits / len(needles) if possible else None,
                "median_s_across": round(statistics.median(across_s), 3),
                "median_s_every_video": round(statistics.median(every_s), 3) if possible else None,
            }
            print(f"{frames:>3} frames ({tokens} tokens): recall across {across_hits}/"
                  f"{len(needles)}, median {per_budget[frames]['median_s_across']:.2f} s; every "
                  + (f"video {every_hits}/{len(needles)}, median "
                     f"{per_budget[frames]['median_s_every_video']:.2f} s" if possible
                     else "video: the even share holds no image"))
    finally:
        asker.close()
    RESULTS.write_text(json.dumps({
        "video": video.name, "pieces": len(pieces), "piece_s": PIECE_S,
        "index_s": round(index_s, 1), "indexed": len(summary.indexed),
        "budgets": per_budget, "questions": rows,
    }, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
