"""Chapter boundaries of `vidsift summarize --model none` against the known joins of two videos,
beside a uniform split with the same number of chapters.

1. stitched: PARTS (bbb.mp4 scenes, bikes.mp4, ffmpeg test patterns, a slide with a title, a
   photo, a spoken part over a plain background) of different lengths, 640x360 at 25 fps, joined
   end to end; the truth is the join times.
2. lecture: one slide (the same text throughout) while espeak-ng talks about TOPICS in turn;
   the topics change only in what is said; the truth is the first sentence of each topic.

Both run through the real flow (default preset, speech.mode=asr: Moonshine hears the speech, so
the lecture's chapters come from the transcript's vectors) with the index under bench/work/. A
predicted boundary matches a true one within +/-TOLERANCE_S seconds (each used once, nearest
first); precision, recall and F1 over the interior boundaries. The uniform split cuts the same
video into as many equal chapters as vidsift made.

    .venv/bin/python bench/summary.py      # -> bench/results/summary.json
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.videos / tests.speech_videos run ffmpeg and espeak-ng
RESULTS = ROOT / "bench" / "results" / "summary.json"
WORK = ROOT / "bench" / "work" / "summary"
DATA = ROOT.parent / "shared" / "data"
TOLERANCE_S = 5.0
SIZE, FPS = "640x360", 25

# (kind, source, seconds[, start in the source]); lengths differ so that equal chapters miss
PARTS = [
    ("file", "bbb.mp4", 34, 20),
    ("lavfi", "testsrc2", 22),
    ("slide", "QUARTERLY RESULTS", 27),
    ("file", "bikes.mp4", 30, 0),  # 10 s looped
    ("file", "bbb.mp4", 45, 330),
    ("lavfi", "smptehdbars", 21),
    ("speech", "The volcano erupted at dawn and the lava reached the village by noon. "
               "Scientists measured the ash cloud from a small plane above the crater. "
               "The eruption was the largest on the island in forty years.", 30),
    ("lavfi", "mandelbrot", 26),
    ("photo", "astronaut", 40),
    ("file", "bbb.mp4", 38, 480),
]

SLIDE_TITLE = "Lecture notes: five short talks"
TOPICS = {
    "cooking": [
        "To cook pasta well, bring a large pot of salted water to a rolling boil.",
        "Add the spaghetti and stir it so the noodles do not stick together.",
        "Taste the pasta after eight minutes; it should be tender but still firm.",
        "Meanwhile warm olive oil in a pan and fry sliced garlic until golden.",
        "Add chopped tomatoes, basil and a pinch of salt to make the sauce.",
        "Drain the pasta, keep a cup of the cooking water, and toss it with the sauce.",
        "Finish the dish with grated parmesan cheese and black pepper.",
    ],
    "planets": [
        "Jupiter is the largest planet in our solar system, a giant made of gas.",
        "Its great red spot is a storm wider than the whole Earth.",
        "Saturn is famous for its bright rings of ice and rock.",
        "Mars is a cold desert planet with red dust and huge extinct volcanoes.",
        "Venus is covered in thick clouds and its surface is hot enough to melt lead.",
        "Mercury is the smallest planet and the closest to the sun.",
        "Astronomers use telescopes and space probes to study the planets and their moons.",
        "Neptune and Uranus are ice giants far out in the dark outer solar system.",
        "A probe needs many years to travel from Earth to the outer planets.",
        "Each planet orbits the sun on its own path, some fast and some slow.",
    ],
    "football": [
        "In football, each team has eleven players on the field, including a goalkeeper.",
        "The striker passed the ball to the winger, who crossed it into the box.",
        "The referee blew the whistle and showed the defender a yellow card.",
        "A penalty kick is taken from the spot, twelve yards from the goal.",
        "The goalkeeper dived to the left and saved the shot with his gloves.",
        "The match ended in a draw after ninety minutes and extra time.",
    ],
    "computers": [
        "A computer program is a list of instructions that the processor executes.",
        "Programmers write code in languages such as Python, Java or C.",
        "The compiler translates the source code into machine instructions.",
        "A bug is a mistake in the code that makes the program behave wrongly.",
        "Software engineers test their programs and fix bugs before each release.",
        "Memory holds the data and the variables while the program runs.",
        "The keyboard, the mouse and the screen let people use the computer.",
        "Databases store records that programs can search and update quickly.",
        "Networks connect computers so that they can send data to each other.",
    ],
    "gardening": [
        "In spring, plant tomato seeds in small pots on a sunny windowsill.",
        "Water the seedlings gently every morning and keep the soil moist.",
        "When the plants are strong, move them into the garden bed with compost.",
        "Pull the weeds by hand so they do not steal water from the roots.",
        "Bees visit the flowers and pollinate them, and soon the fruit appears.",
        "Pick the tomatoes when they are red and soft, in late summer.",
        "Save a few seeds from the best fruit to plant next year.",
        "Cover the beds with straw in autumn to protect the soil over winter.",
    ],
}
SENTENCE_GAP_S = 0.6


def _run_ffmpeg(*args: str) -> None:
    from tests.videos import run_ffmpeg

    run_ffmpeg(*args)


def _still(path: Path, draw_text: str | None = None, photo: str | None = None) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    width, height = map(int, SIZE.split("x"))
    if photo:
        from skimage import data

        image = Image.fromarray(getattr(data, photo)()).convert("RGB").resize((width, height))
    else:
        image = Image.new("RGB", (width, height), (250, 250, 245))
    if draw_text:
        draw = ImageDraw.Draw(image)
        draw.text((40, 140), draw_text, fill=(10, 10, 10), font=ImageFont.load_default(size=44))
    image.save(path)
    return path


def _part(spec, number: int) -> tuple[Path, float]:
    """One part as H.264 + AAC (a silent track unless it speaks), its length in seconds."""
    from tests.speech_videos import speak

    kind, source, seconds = spec[:3]
    out = WORK / f"part{number:02d}.mp4"
    scale = f"scale={SIZE.replace('x', ':')},setsar=1,fps={FPS},format=yuv420p"
    silence = ["-f", "lavfi", "-t", str(seconds), "-i", "anullsrc=r=22050:cl=mono"]
    audio_map = ["-map", "1:a"]
    if kind == "file":
        video = ["-stream_loop", "-1", "-ss", str(spec[3]), "-t", str(seconds), "-i",
                 str(DATA / source)]
    elif kind == "lavfi":
        video = ["-f", "lavfi", "-t", str(seconds), "-i", f"{source}=s={SIZE}:r={FPS}"]
    elif kind in ("slide", "photo"):
        still = _still(WORK / f"part{number:02d}.png", draw_text=source if kind == "slide" else None,
                       photo=source if kind == "photo" else None)
        video = ["-loop", "1", "-framerate", str(FPS), "-t", str(seconds), "-i", str(still)]
    else:  # speech over a plain background
        wav = WORK / f"part{number:02d}.wav"
        speak(source, wav)
        video = ["-f", "lavfi", "-t", str(seconds), "-i", f"color=c=0x203050:s={SIZE}:r={FPS}"]
        silence = ["-i", str(wav), *silence]
        audio_map = ["-filter_complex", "[1:a][2:a]amix=inputs=2:duration=longest[a]",
                     "-map", "[a]"]
    _run_ffmpeg(*video, *silence, "-map", "0:v", *audio_map, "-vf", scale, "-t", str(seconds),
                "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", "-ar", "22050",
                "-ac", "1", str(out))
    return out, float(seconds)


def _concat(parts: list[Path], out: Path) -> None:
    inputs = [arg for part in parts for arg in ("-i", str(part))]
    graph = "".join(f"[{i}:v][{i}:a]" for i in range(len(parts)))
    graph += f"concat=n={len(parts)}:v=1:a=1[v][a]"
    _run_ffmpeg(*inputs, "-filter_complex", graph, "-map", "[v]", "-map", "[a]",
                "-c:v", "libx264", "-preset", "veryfast", "-g", "250", "-c:a", "aac", str(out))


def build_stitched() -> tuple[Path, list[float]]:
    out = WORK / "stitched.mp4"
    joins, at, parts = [], 0.0, []
    for number, spec in enumerate(PARTS):
        path, seconds = _part(spec, number)
        parts.append(path)
        at += seconds
        joins.append(at)
    if not out.is_file():
        _concat(parts, out)
    return out, joins[:-1]


def build_lecture() -> tuple[Path, list[float]]:
    """The slide for the whole talk, the sentences one after another; -> (video, the start
    second of each topic after the first)."""
    from tests.speech_videos import speak

    out = WORK / "lecture.mp4"
    slide = _still(WORK / "slide.png", draw_text=SLIDE_TITLE)
    wavs, delays, starts, at = [], [], [], 1.0
    for topic, sentences in TOPICS.items():
        starts.append(at)
        for number, sentence in enumerate(sentences):
            wav = WORK / f"{topic}{number}.wav"
            length = speak(sentence, wav)
            wavs.append(wav)
            delays.append(at)
            at += length + SENTENCE_GAP_S
    duration = at + 1.0
    if not out.is_file():
        inputs = [arg for wav in wavs for arg in ("-i", str(wav))]
        delayed = "".join(f"[{n + 1}:a]adelay={int(d * 1000)}:all=1[d{n}];"
                          for n, d in enumerate(delays))
        mixed = "".join(f"[d{n}]" for n in range(len(wavs)))
        silence = len(wavs) + 1
        graph = (f"{delayed}[{silence}:a]{mixed}amix=inputs={len(wavs) + 1}:normalize=0:"
                 "duration=first[a]")
        _run_ffmpeg("-loop", "1", "-framerate", str(FPS), "-t", f"{duration:.2f}", "-i",
                    str(slide), *inputs, "-f", "lavfi", "-t", f"{duration:.2f}", "-i",
                    "anullsrc=r=22050:cl=mono", "-filter_complex", graph, "-map", "0:v",
                    "-map", "[a]", "-vf", "format=yuv420p", "-c:v", "libx264", "-preset",
                    "veryfast", "-c:a", "aac", "-t", f"{duration:.2f}", str(out))
    return out, starts[1:]


def boundary_scores(predicted: list[float], truth: list[float], tolerance: float) -> dict:
    """Precision, recall, F1 of predicted boundaries (seconds) against the true ones: pairs
    within tolerance, nearest first, each boundary used once."""
    pairs = sorted((abs(p - t), i, j) for i, p in enumerate(predicted)
                   for j, t in enumerate(truth) if abs(p - t) <= tolerance)
    used_p, used_t = set(), set()
    for _, i, j in pairs:
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
    matched = len(used_p)
    precision = matched / len(predicted) if predicted else float(not truth)
    recall = matched / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3),
            "matched": matched}


def main() -> None:
    from vidsift.core.config import load_config
    from vidsift.pipeline.flows.summarize import Summarizer
    from vidsift.pipeline.plan.chapters import uniform_chapters

    WORK.mkdir(parents=True, exist_ok=True)
    videos = {"stitched": build_stitched(), "lecture": build_lecture()}
    cfg = load_config("default", [f"index.dir={WORK / 'index'}", "speech.mode=asr"])
    summarizer = Summarizer(cfg)
    results = {"tolerance_s": TOLERANCE_S, "config": {
        "preset": "default", "speech.mode": "asr", **cfg.summary.model_dump()}, "videos": {}}
    try:
        for name, (path, truth) in videos.items():
            started = time.perf_counter()
            summary = summarizer.summarize(str(path))
            first_s = time.perf_counter() - started
            started = time.perf_counter()
            again = summarizer.summarize(str(path))  # reads the stored memory
            again_s = time.perf_counter() - started
            chapters = summary.chapters
            predicted = [c["start"] for c in chapters[1:]]
            spans = uniform_chapters(chapters[0]["start"], chapters[-1]["end"], len(chapters))
            uniform = [lo for lo, _ in spans[1:]]
            row = {
                "duration_s": round(summary.duration, 2), "truth": [round(t, 2) for t in truth],
                "chapters": [{k: c[k] for k in ("start", "end", "title")}
                             | {"source": c["evidence"]["source"]} for c in chapters],
                "vidsift": boundary_scores(predicted, truth, TOLERANCE_S),
                "uniform": boundary_scores(uniform, truth, TOLERANCE_S),
                "first_run_s": round(first_s, 2), "second_run_s": round(again_s, 2),
                "second_run_reused_memory": again.reused,
                "second_run_chapters_s": again.timings["chapters"],
                "same_chapters_again": [c["start"] for c in again.chapters] ==
                                       [c["start"] for c in chapters],
            }
            results["videos"][name] = row
            print(f"{name}: {len(chapters)} chapters, vidsift F1 {row['vidsift']['f1']}, "
                  f"uniform F1 {row['uniform']['f1']} (first run {first_s:.1f} s, second "
                  f"{again_s:.1f} s)")
            for c in row["chapters"]:
                print(f"  {c['start']:8.2f} {c['end']:8.2f}  {c['title']}  [{c['source']}]")
    finally:
        summarizer.close()
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
