"""The OCR gate: how much on-screen text it keeps, and what it saves.

The offline embedder runs rapidocr only on frames whose text_strokes() likelihood reaches
embed.ocr_gate. A gate that judges a frame text-free loses that text for good (no search, no
evidence), so its recall is measured against ungated OCR on the same frames: of the needle frames
whose text ungated OCR reads (a line sharing a word with what was drawn), the share the gate lets
through. Its gain is measured on Big Buck Bunny's coarse frames (448 px, keyframes plus 2 s gap
fill, as ingest decodes them): frames OCR'd and OCR seconds per 10 minutes of video, gated and
ungated, in the same process.

Needles: 1280x720 frames scaled to the coarse 448x252 as the decoder would, text drawn in 9
colours (white, yellow, red, blue, green, orange, cyan, magenta, black) at 14-140 px, in the
corners, the lower third and the centre, on dark and light boxes and on bare pictures (Big Buck
Bunny frames, else scikit-image photos), plus white and yellow rolling credits.

    .venv/bin/python bench/ocr_gate.py           # writes bench/results/ocr_gate.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SOURCE = ROOT.parent / "shared" / "data" / "bbb.mp4"
RESULTS = ROOT / "bench" / "results" / "ocr_gate.json"

COLOURS = {
    "white": (255, 255, 255), "yellow": (255, 220, 0), "red": (220, 20, 20), "blue": (30, 60, 230),
    "green": (20, 180, 40), "orange": (255, 130, 0), "cyan": (0, 200, 220),
    "magenta": (210, 0, 200), "black": (0, 0, 0),
}
SIZES = (14, 20, 28, 40, 48, 60, 90, 140)  # font px on the 1280x720 source: captions to titles
BACKDROPS = ("dark box", "light box", "bare")
PLACES = ("top left", "top right", "bottom left", "bottom right", "lower third", "centre")
WORDS = ("STOP", "EXIT 12", "Meeting at nine", "PASSWORD falcon", "Gate B 42", "Live from Lisbon",
         "Chapter 3", "SALE 50%", "Next: the weather")
CREDITS = ("Directed by Sacha Goedegebure", "Music by Jan Morgenstern", "Produced by Ton Roosendaal",
           "Art direction Andreas Goralczyk", "Animation Nathan Vegdahl", "Lighting Pablo Vazquez")
SOURCE_SIZE, COARSE_SIZE = (1280, 720), (448, 252)


def pictures(count: int) -> list[np.ndarray]:
    """Backdrops: Big Buck Bunny frames spread over the film, else scikit-image photos."""
    if SOURCE.exists():
        from vidsift.workers.decode import get_decoder

        frames = get_decoder("pyav").frames_at(str(SOURCE), np.linspace(20, 560, count),
                                               size=(SOURCE_SIZE[1], SOURCE_SIZE[0]))
        return [frame.image for frame in frames]
    from skimage import data

    photos = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket(), data.cat()]
    return [np.asarray(Image.fromarray(p).resize(SOURCE_SIZE)) for p in photos[:count]]


def needle(picture: np.ndarray, text: str, colour: tuple, size: int, backdrop: str,
           place: str) -> np.ndarray:
    """One 1280x720 frame with `text` drawn on it, scaled to the coarse 448x252 (RGB uint8)."""
    frame = Image.fromarray(picture).convert("RGB")
    draw = ImageDraw.Draw(frame)
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    width, height = right - left, bottom - top
    margin = 40
    x = {"left": margin, "right": SOURCE_SIZE[0] - width - margin}.get(
        place.split()[-1], (SOURCE_SIZE[0] - width) // 2)
    y = {"top": margin, "bottom": SOURCE_SIZE[1] - height - margin,
         "third": int(SOURCE_SIZE[1] * 0.75), "centre": (SOURCE_SIZE[1] - height) // 2}[
        place.split()[0] if place.split()[0] in ("top", "bottom") else place.split()[-1]]
    if backdrop != "bare":
        shade = (20, 20, 24) if backdrop == "dark box" else (235, 235, 228)
        pad = max(6, size // 3)
        draw.rectangle((x - pad, y - pad, x + width + pad, y + height + pad), fill=shade)
    draw.text((x - left, y - top), text, font=font, fill=colour)
    return np.asarray(frame.resize(COARSE_SIZE, Image.BILINEAR))


def credits_frame(lines: list[str], colour: tuple, size: int, offset: int) -> np.ndarray:
    frame = Image.new("RGB", SOURCE_SIZE, (0, 0, 0))
    draw = ImageDraw.Draw(frame)
    font = ImageFont.load_default(size=size)
    for number, line in enumerate(lines):
        width = draw.textlength(line, font=font)
        draw.text(((SOURCE_SIZE[0] - width) / 2, offset + number * size * 2), line, font=font,
                  fill=colour)
    return np.asarray(frame.resize(COARSE_SIZE, Image.BILINEAR))


def needle_set() -> list[tuple[dict, np.ndarray]]:
    """Every colour x size x backdrop once, words and places cycling; then credits."""
    backdrops = pictures(6)
    cases = []
    for number, (colour, size, backdrop) in enumerate(itertools.product(COLOURS, SIZES, BACKDROPS)):
        text, place = WORDS[number % len(WORDS)], PLACES[number % len(PLACES)]
        picture = backdrops[number % len(backdrops)]
        meta = {"text": text, "colour": colour, "size": size, "backdrop": backdrop, "place": place}
        cases.append((meta, needle(picture, text, COLOURS[colour], size, backdrop, place)))
    for colour, size, offset in itertools.product(("white", "yellow"), (20, 28, 40), (80, 300)):
        lines = list(CREDITS[:3] if offset == 80 else CREDITS[3:])
        meta = {"text": " ".join(lines), "colour": colour, "size": size, "backdrop": "credits",
                "place": f"from y={offset}"}
        cases.append((meta, credits_frame(lines, COLOURS[colour], size, offset)))
    return cases


def read(embedder, image: np.ndarray) -> tuple[str, float]:
    started = time.perf_counter()
    text = embedder.read_text(image)
    return text, time.perf_counter() - started


def words_of(text: str) -> set[str]:
    return {w.strip(".,:%").lower() for w in text.split() if len(w.strip(".,:%")) >= 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coarse-minutes", type=float, default=10.0,
                        help="minutes of Big Buck Bunny whose coarse frames measure the cost")
    args = parser.parse_args()

    from vidsift.core.config import EmbedConfig
    from vidsift.workers.embed import get_embedder
    from vidsift.workers.embed.offline import text_strokes

    cfg = EmbedConfig(backend="offline")
    embedder = get_embedder(cfg)
    gate = cfg.ocr_gate

    rows, read_by_ocr, kept = [], 0, 0
    for meta, image in needle_set():
        text, _ = read(embedder, image)
        readable = bool(words_of(text) & words_of(meta["text"]))
        likelihood = text_strokes(image).likelihood
        passes = likelihood >= gate
        read_by_ocr += readable
        kept += readable and passes
        rows.append({**meta, "ocr": text, "readable": readable, "likelihood": round(likelihood, 3),
                     "passes": passes})
    recall = kept / read_by_ocr if read_by_ocr else 0.0
    lost = [r for r in rows if r["readable"] and not r["passes"]]
    by_colour = {c: [sum(r["readable"] and r["passes"] for r in rows if r["colour"] == c),
                     sum(r["readable"] for r in rows if r["colour"] == c)] for c in COLOURS}
    by_size = {s: [sum(r["readable"] and r["passes"] for r in rows if r["size"] == s),
                   sum(r["readable"] for r in rows if r["size"] == s)] for s in SIZES}
    captions = [sum(by_size[s][i] for s in SIZES if s <= 60) for i in (0, 1)]
    print(f"needles: {len(rows)}, read by ungated OCR {read_by_ocr}, kept by the gate {kept}: "
          f"recall {recall:.3f}; 14-60 px {captions[0]}/{captions[1]}")
    for size, (k, n) in by_size.items():
        print(f"  {size:3d} px   {k}/{n}")
    for colour, (k, n) in by_colour.items():
        print(f"  {colour:8s} {k}/{n}")

    cost = {}
    if SOURCE.exists():
        from vidsift.workers.decode import get_decoder

        frames = get_decoder("pyav").coarse(str(SOURCE), max_side=448, max_gap_s=2.0, fill_fps=1.0,
                                            end=60 * args.coarse_minutes)
        images = [frame.image for frame in frames]
        likelihoods = [text_strokes(image).likelihood for image in images]
        seconds = [read(embedder, image)[1] for image in images]
        gated = [s for s, lk in zip(seconds, likelihoods) if lk >= gate]
        scale = 10.0 / args.coarse_minutes
        strokes_s = time.perf_counter()
        for image in images:
            text_strokes(image)
        strokes_s = time.perf_counter() - strokes_s
        cost = {
            "coarse_frames": len(images), "minutes": args.coarse_minutes,
            "ungated": {"frames_ocrd": len(images), "ocr_s_per_10min": round(sum(seconds) * scale, 2)},
            "gated": {"frames_ocrd": len(gated),
                      "ocr_s_per_10min": round((sum(gated) + strokes_s) * scale, 2)},
            "median_ocr_s_per_frame": round(statistics.median(seconds), 4),
            "text_strokes_s_per_frame": round(strokes_s / len(images), 5),
        }
        print(f"coarse frames of {args.coarse_minutes:g} min of bbb: {len(images)}; OCR'd gated "
              f"{len(gated)}, OCR s per 10 min: gated {cost['gated']['ocr_s_per_10min']}, "
              f"ungated {cost['ungated']['ocr_s_per_10min']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "gate": gate, "needles": len(rows), "read_by_ungated_ocr": read_by_ocr, "kept": kept,
        "recall": round(recall, 4), "recall_14_60px": round(captions[0] / max(1, captions[1]), 4),
        "by_colour": by_colour, "by_size": by_size, "cost": cost,
        "lost": lost, "rows": rows,
    }, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
