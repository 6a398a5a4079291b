"""Needle-in-a-video benchmark: does the selected evidence contain the short moment a question
needs?

Builds a needle video from ../shared/data/bbb.mp4 (Big Buck Bunny, 596 s): short (2-4 s) inserts
at seeded random times, either on-screen text (a caption band: "the password is TANGERINE") or a
picture-in-picture photo of something ImageNet knows (scikit-image's sample photos). The video is
encoded with a fixed keyframe interval (-g 250 -sc_threshold 0), as streaming sites do, so no
needle gets a keyframe of its own: the coarse pass must fill keyframe gaps to see them.

For each needle one question whose answer needs it. Evidence recall = share of questions whose
TokenSet holds at least one frame timestamp inside the needle's interval. Reported for selectors
uniform, query, keyclips and balanced at budgets of 4, 8, 16 and 32 frame-equivalents (x256
tokens), with the offline embedder; plus the selection time (coarse decode + embed + plan) and
per-needle diagnostics that say where a miss comes from (coarse pass, embedder or selection).

    .venv/bin/python bench/needles.py            # 3 timed runs, writes bench/results/needles.json
    .venv/bin/python bench/needles.py --height 720   # full resolution (slower to build/decode)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "bbb.mp4"
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results" / "needles.json"
SELECTORS = ("uniform", "query", "keyclips", "balanced")
FUSED_ONLY = "balanced_fused_only"
BUDGETS = (4, 8, 16, 32)  # frame-equivalents of 256 tokens
TOKENS_PER_FRAME = 256

# (on-screen text, question). Each question shares words with its text and no other needle.
TEXT_NEEDLES = [
    ("the code word is PELICAN", "What is the code word shown on screen?"),
    ("the password is TANGERINE", "Which password appears in the video?"),
    ("meeting at 7 pm in room 42", "At what time and in which room is the meeting?"),
    ("next stop: Lisbon airport", "Which airport is the next stop?"),
    ("final score: red team 3, blue team 5", "What was the final score of the red and blue teams?"),
    ("flight BA 287 is delayed", "Which flight is delayed?"),
]
# (scikit-image photo, question): photos whose ImageNet labels name what the question asks about.
PHOTO_NEEDLES = [
    ("chelsea", "What colour is the cat in the inset photo?"),
    ("coffee", "Is there a cup of coffee shown in a small picture?"),
    ("rocket", "When does a picture of a rocket or missile appear?"),
    ("camera", "What is the man with the camera on a tripod doing in the inset photo?"),
]


@dataclass
class Needle:
    kind: str  # "text" | "photo"
    content: str  # the text, or the scikit-image photo name
    question: str
    start: float
    end: float


def place_needles(duration: float, seed: int) -> list[Needle]:
    """Seeded random, non-overlapping intervals of 2-4 s, at least 15 s apart, away from the ends."""
    rng = random.Random(seed)
    items = [("text", t, q) for t, q in TEXT_NEEDLES] + [("photo", p, q) for p, q in PHOTO_NEEDLES]
    rng.shuffle(items)
    needles: list[Needle] = []
    while len(needles) < len(items):
        start = rng.uniform(10.0, duration - 15.0)
        length = rng.uniform(2.0, 4.0)
        if all(abs(start - n.start) > 15.0 for n in needles):
            kind, content, question = items[len(needles)]
            needles.append(Needle(kind, content, question, round(start, 2), round(start + length, 2)))
    return sorted(needles, key=lambda n: n.start)


def _photo(name: str) -> np.ndarray:
    from skimage import data

    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return image[..., :3].astype(np.uint8)


def render_overlay(needle: Needle, width: int, height: int, rng: random.Random) -> Image.Image:
    """A full-frame RGBA layer: a caption band with the text, or a bordered photo in a corner."""
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    if needle.kind == "text":
        font_px = max(12, round(height * 0.075))  # 27 px at 360p, 54 px at 720p
        font = ImageFont.load_default(size=font_px)
        left, top, right, bottom = draw.textbbox((0, 0), needle.content, font=font)
        x = (width - (right - left)) // 2
        y = int(height * rng.choice([0.12, 0.72]))
        draw.rectangle((x - 12, y - 8, x + (right - left) + 12, y + (bottom - top) + 14),
                       fill=(0, 0, 0, 170))
        draw.text((x, y - top), needle.content, font=font, fill=(255, 255, 255, 255))
    else:
        photo = Image.fromarray(_photo(needle.content))
        pw, ph = int(width * 0.45), int(height * 0.45)
        photo = photo.resize((pw, ph), Image.BICUBIC)
        margin = int(height * 0.04)
        x = margin if rng.random() < 0.5 else width - pw - margin
        y = margin if rng.random() < 0.5 else height - ph - margin
        draw.rectangle((x - 3, y - 3, x + pw + 2, y + ph + 2), fill=(255, 255, 255, 255))
        layer.paste(photo.convert("RGBA"), (x, y))
    return layer


def build_video(height: int, seed: int) -> tuple[Path, list[Needle]]:
    """The needle video (cached by its parameters) and its needles."""
    WORK.mkdir(parents=True, exist_ok=True)
    width = round(height * 16 / 9 / 2) * 2
    duration = float(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(SOURCE)], capture_output=True, text=True, check=True).stdout)
    needles = place_needles(duration, seed)
    video = WORK / f"needles_{height}p_seed{seed}.mp4"
    meta = video.with_suffix(".json")
    if video.exists() and meta.exists():
        return video, [Needle(**n) for n in json.loads(meta.read_text())]
    rng = random.Random(seed + 1)
    inputs, chain = ["-i", str(SOURCE)], [f"[0:v]scale={width}:{height}[v0]"]
    for i, needle in enumerate(needles):
        png = WORK / f"needle_{height}p_{i}.png"
        render_overlay(needle, width, height, rng).save(png)
        inputs += ["-i", str(png)]
        chain.append(f"[v{i}][{i + 1}:v]overlay=0:0:enable='between(t,{needle.start},{needle.end})'"
                     f"[v{i + 1}]")
    cmd = ["ffmpeg", "-y", "-v", "error", *inputs, "-filter_complex", ";".join(chain),
           "-map", f"[v{len(needles)}]", "-an", "-c:v", "libx264", "-preset", "veryfast",
           "-crf", "23", "-g", "250", "-keyint_min", "250", "-sc_threshold", "0",
           "-pix_fmt", "yuv420p", str(video)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"built {video.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    meta.write_text(json.dumps([n.__dict__ for n in needles], indent=1))
    return video, needles


def hit(token_set, needle: Needle) -> bool:
    return any(needle.start <= t <= needle.end
               for segment in token_set.segments for t in segment.timestamps)


def stage_costs(embedder, images: list[np.ndarray], n: int = 16) -> dict[str, float]:
    """Per-frame milliseconds of each offline stage on n coarse frames spread over the video:
    EfficientNet (+ label bridge), the OCR gate, OCR on every frame, MiniLM per text."""
    from vidsift.workers.embed.offline import text_strokes

    picks = [images[i] for i in np.linspace(0, len(images) - 1, n).astype(int)]
    t0 = time.perf_counter()
    embedder.embed_images(picks)
    t1 = time.perf_counter()
    gate = [text_strokes(image).likelihood for image in picks]
    t2 = time.perf_counter()
    for image in picks:
        embedder.read_text(image)
    t3 = time.perf_counter()
    embedder.embed_text([f"what happens at minute {i} of the video" for i in range(n)])
    t4 = time.perf_counter()
    passed = sum(g >= embedder.cfg.ocr_gate for g in gate)
    return {
        "efficientnet": round(1000 * (t1 - t0) / n, 1),
        "ocr_gate_test": round(1000 * (t2 - t1) / n, 2),
        "ocr_every_frame": round(1000 * (t3 - t2) / n, 1),
        "ocr_gate_pass_share": round(passed / n, 3),
        "minilm_per_text": round(1000 * (t4 - t3) / n, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--height", type=int, default=360, help="needle video height, pixels")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fill-fps", type=float, default=None,
                        help="coarse gap-fill rate (default: the config's selection.coarse_fps)")
    parser.add_argument("--runs", type=int, default=3,
                        help="timed repeats of coarse decode + embed; the median is reported")
    args = parser.parse_args()

    from vidsift.core.config import load_config
    from vidsift.pipeline.plan.evidence import (
        frame_relevance,
        on_screen_texts,
        plan_evidence,
        text_relevance,
    )
    from vidsift.core.probe import probe
    from vidsift.workers.decode import get_decoder
    from vidsift.workers.embed import get_embedder

    cfg = load_config("default")
    fill_fps = args.fill_fps or cfg.selection.coarse_fps
    video, needles = build_video(args.height, args.seed)
    info = probe(str(video))
    print(f"{video.name}: {info.duration:.0f} s, {info.width}x{info.height}, "
          f"{len(info.keyframe_times)} keyframes, {len(needles)} needles", file=sys.stderr)

    load_before = os.getloadavg()
    started = time.perf_counter()
    embedder = get_embedder(cfg.embed)
    load_s = time.perf_counter() - started

    # Each run is what one question costs a warm embedder: decode the coarse pass, embed it.
    coarse_runs, embed_runs = [], []
    for _ in range(max(1, args.runs)):
        started = time.perf_counter()
        frames = get_decoder(cfg.decode.backend).coarse(
            str(video), cfg.decode.coarse_max_side, cfg.selection.max_coarse_gap_s, fill_fps)
        coarse_runs.append(time.perf_counter() - started)
        started = time.perf_counter()
        embedded = embedder.encode_frames([f.image for f in frames])
        embed_runs.append(time.perf_counter() - started)
    totals = np.add(coarse_runs, embed_runs)
    median_run = int(np.argsort(totals)[len(totals) // 2])
    coarse_s, embed_s = coarse_runs[median_run], embed_runs[median_run]
    times = np.array([f.pts for f in frames])
    queries = embedder.embed_text([n.question for n in needles])
    # as ask plans: each distinct on-screen text scored on its own, put on the fused scale, and
    # each picture apart from the text fused into it
    on_screen = on_screen_texts(embedded.descriptions, embedder.embed_text)

    recall: dict[str, dict[str, float]] = {}
    plan_s: list[float] = []
    hits: dict[str, dict[str, list[bool]]] = {}
    # each selector as ask plans now, and balanced on the fused vectors alone (no sentence
    # matching, no peaks: the plan before issue 25), on the same memory
    variants = {name: (cfg.selection.model_copy(update={"selector": name}), on_screen)
                for name in SELECTORS}
    variants[FUSED_ONLY] = (cfg.selection.model_copy(update={
        "selector": "balanced", "sentence_match": False, "max_peaks": 0, "counting_peaks": 0}),
        None)
    for selector, (selection, shown) in variants.items():
        recall[selector], hits[selector] = {}, {}
        for frames_eq in BUDGETS:
            budget = cfg.budget.model_copy(update={"tokens": frames_eq * TOKENS_PER_FRAME})
            found = []
            for needle, query in zip(needles, queries):
                t0 = time.perf_counter()
                token_set = plan_evidence(
                    times, embedded.visual, embedded.text, query, info.start_time,
                    info.end_time, selection, budget, (info.height, info.width),
                    texts=shown, question=needle.question)
                plan_s.append(time.perf_counter() - t0)
                found.append(hit(token_set, needle))
            hits[selector][str(frames_eq)] = found
            recall[selector][str(frames_eq)] = round(float(np.mean(found)), 3)
    load_after = os.getloadavg()

    # Where does a miss come from? coarse: a coarse frame inside the needle at all; embedder: the
    # best such frame's relevance rank among all coarse frames (1 = the question's top frame).
    # scored: the relevance the plan ranks by (fused vectors, each text on its own, each picture
    # apart from its text: plan.evidence.text_relevance), the rank of the best frame inside
    diagnostics = []
    for i, (needle, query) in enumerate(zip(needles, queries)):
        relevance = frame_relevance(embedded.text, query)
        scored = (relevance if on_screen is None else text_relevance(
            relevance, on_screen, query, reference=relevance, fused_vectors=embedded.text))
        inside = np.flatnonzero((times >= needle.start) & (times <= needle.end))
        rank = scored_rank = None
        if inside.size:
            best = inside[np.argmax(relevance[inside])]
            rank = int((relevance > relevance[best]).sum()) + 1
            scored_rank = int((scored > scored[inside].max()).sum()) + 1
        diagnostics.append({
            **needle.__dict__,
            "coarse_frames_inside": int(inside.size),
            "best_inside_description": embedded.descriptions[best] if inside.size else None,
            "best_inside_relevance": round(float(relevance[best]), 3) if inside.size else None,
            "relevance_rank": rank,
            "scored_rank": scored_rank,
            "top_relevance": round(float(relevance.max()), 3),
            "balanced_hit_at_16": hits["balanced"]["16"][i],
        })

    costs = stage_costs(embedder, [f.image for f in frames])
    per_plan = float(np.median(plan_s))
    result = {
        "video": {"source": "bbb.mp4 (Big Buck Bunny, CC BY 3.0)", "file": video.name,
                  "duration_s": round(info.duration, 1), "size": [info.width, info.height],
                  "keyframes": len(info.keyframe_times), "encode": "libx264 -g 250 -sc_threshold 0"},
        "config": {"embed": cfg.embed.backend, "ocr": cfg.embed.ocr, "ocr_gate": cfg.embed.ocr_gate,
                   "decoder": cfg.decode.backend, "coarse_max_side": cfg.decode.coarse_max_side,
                   "max_coarse_gap_s": cfg.selection.max_coarse_gap_s, "fill_fps": fill_fps},
        "coarse_frames": len(frames),
        "frames_with_ocr_text": sum("text:" in d for d in embedded.descriptions),
        "recall": recall,
        "selection_time_s": {
            "coarse_decode": round(coarse_s, 2), "embed": round(embed_s, 2),
            "embed_per_frame_ms": round(1000 * embed_s / max(1, len(frames)), 1),
            "plan_median": round(per_plan, 4),
            "total": round(coarse_s + embed_s + per_plan, 2),
            "runs_total": [round(float(t + per_plan), 2) for t in totals],
            "note": "the median run of runs_total; each run is coarse decode + embed + plan",
            "embedder_load_once": round(load_s, 2),
        },
        "offline_stage_costs_ms_per_frame": costs,
        "load_average_1m": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        "cpu_cores": os.cpu_count(),
        "needles": diagnostics,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1))

    print(f"\ncoarse frames {len(frames)}; selection time, median of "
          f"{result['selection_time_s']['runs_total']}: {result['selection_time_s']['total']} s "
          f"(coarse {coarse_s:.1f} + embed {embed_s:.1f} + plan {per_plan * 1000:.0f} ms), "
          f"load avg {load_before[0]:.1f}->{load_after[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'recall':<10}" + "".join(f"{b:>8}" for b in BUDGETS))
    for selector in variants:
        print(f"{selector:<10}" + "".join(f"{recall[selector][str(b)]:>8.2f}" for b in BUDGETS))
    uniform16, balanced16 = recall["uniform"]["16"], recall["balanced"]["16"]
    ratio = f"{balanced16 / uniform16:.1f}x" if uniform16 else "inf (uniform found none)"
    print(f"balanced / uniform recall at 16 frame-equivalents: {balanced16:.2f} / {uniform16:.2f}"
          f" = {ratio}")
    for d in diagnostics:
        print(f"  {d['start']:7.1f}-{d['end']:6.1f} {d['kind']:5} inside={d['coarse_frames_inside']}"
              f" rank={d['relevance_rank']}/{d['scored_rank']}"
              f" hit16={d['balanced_hit_at_16']} :: {d['question']}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
