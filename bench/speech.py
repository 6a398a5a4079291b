"""Speech benchmark: how well and how fast the offline recogniser hears, and whether facts that
are only said are found.

1. Word error rate of each offline recogniser (pocketsphinx and moonshine: their models ship in
   their wheels) on espeak-ng speech: SENTENCES spoken by several voices at several speeds, each
   sentence a window of its own; WER = (substitutions + deletions + insertions) / reference
   words, summed over the sentences of a voice/speed, after lower-casing, dropping punctuation
   and spelling out numerals (Moonshine writes "7:30" for "seven thirty"; pocketsphinx never
   writes digits). Speed: audio seconds per second of recognition, pinned to one core, the
   median over the sentences and the total (load average reported: the machine is shared).
   --parts tune: pocketsphinx's decoder settings compared on TUNING_SENTENCES, which the
   benchmark's sentences are not (the settings PocketsphinxASR uses were chosen there).
2. Needles: a NEEDLE_VIDEO_S-second video where FACTS are said at seeded times (espeak-ng speech
   and a mov_text subtitle track holding the same lines) and a copy with the lines in a sidecar
   .srt instead of a track. Transcript recall: share of facts read back with exact text and exact
   times (ms) from the track and from the sidecar. Search recall: share of facts whose clip (the
   one containing the fact's time) is among the top 3 hits of `vidsift search` for the fact's
   words, with speech off, from subtitles, and from each offline recogniser.
3. Spoken needles through ask: for each fact a question (ASK_QUESTIONS) asked of the track
   video in evidence-only mode at ASK_FRAMES frame-equivalents (x256 visual tokens), the whole
   video planned (no clip index). Evidence recall = share of questions whose evidence holds a
   frame timestamp inside the fact's spoken interval, with speech off, from the subtitle track,
   and from each offline recogniser; and the share whose prompt would hold a transcript line
   said during the fact (whatever the recogniser heard), with each prompt's speech tokens.

    .venv/bin/python bench/speech.py             # all parts; merged into bench/results/speech.json
    .venv/bin/python bench/speech.py --parts ask # only part 3 (builds the needle video anew)
    .venv/bin/python bench/speech.py --parts wer # only part 1's word error rates and speed
    .venv/bin/python bench/speech.py --parts tune # pocketsphinx settings on the tuning sentences
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.speech_videos builds the espeak-ng videos
RESULTS = ROOT / "bench" / "results" / "speech.json"

SENTENCES = [
    "The delivery truck arrives at the north gate at seven thirty",
    "Please send the quarterly report to the finance team",
    "The meeting has been moved to the large room on the second floor",
    "Turn left at the bridge and follow the river for two miles",
    "Our new product will be available in stores next month",
    "The weather will be cold and windy with rain in the evening",
]
# pocketsphinx's decoder settings were compared on these (--parts tune), never on SENTENCES
TUNING_SENTENCES = [
    "The library opens at nine in the morning and closes at six",
    "Remember to water the plants before you leave for the airport",
    "The train to the city was delayed by twenty minutes today",
    "She bought three apples and a loaf of bread at the market",
    "The children played football in the park after school",
    "Please call me back when you have finished reading the letter",
    "The hotel is next to the museum near the old church",
    "He forgot his keys in the car and had to walk home",
    "The price of the ticket went up by five dollars last week",
    "We need more chairs for the guests in the dining room",
]
# pocketsphinx decoder settings compared on TUNING_SENTENCES: its packaged defaults (the two
# that PocketsphinxASR.DECODER_SETTINGS changes, spelled out), one change at a time, then the
# best two together
PS_PACKAGED = {"topn": 4, "wip": 0.65}
PS_SETTINGS = {
    "packaged defaults": PS_PACKAGED,
    "lw 10": {**PS_PACKAGED, "lw": 10.0},
    "wip 0.2": {**PS_PACKAGED, "wip": 0.2},
    "wider beams": {**PS_PACKAGED, "beam": 1e-80, "wbeam": 1e-60, "pbeam": 1e-80, "maxhmmpf": -1},
    "remove_noise": {**PS_PACKAGED, "remove_noise": True},
    "cmn batch": {**PS_PACKAGED, "cmn": "batch"},
    "topn 8": {**PS_PACKAGED, "topn": 8},
    "topn 16": {**PS_PACKAGED, "topn": 16},
    "topn 32": {**PS_PACKAGED, "topn": 32},
    "topn 16, wip 1.0": {"topn": 16, "wip": 1.0},
}
VOICES = ("en-us", "en", "en-us+f3")  # espeak-ng American, British, American female variant
SPEEDS = (130, 175)  # words per minute (espeak-ng's default is 175)

NEEDLE_VIDEO_S = 600
ASK_FRAMES = 16  # frame-equivalents of 256 visual tokens
FACTS = [
    ("The vault code is seven four two nine", "vault code seven four two nine"),
    ("The boat leaves from pier number twelve", "boat leaves from pier twelve"),
    ("Doctor Martin moved to the green building", "doctor martin green building"),
    ("The winning horse was called silver arrow", "winning horse silver arrow"),
    ("Bring your passport and two photographs", "passport and two photographs"),
]
# one question per fact, in FACTS' order: what someone who did not hear it would ask
ASK_QUESTIONS = [
    "What is the code of the vault?",
    "From which pier does the boat leave?",
    "Where did Doctor Martin move?",
    "What was the name of the winning horse?",
    "What should I bring along with my passport?",
]


_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_ORDINALS = {"1st": "first", "2nd": "second", "3rd": "third", "4th": "fourth", "5th": "fifth"}


def spelled(number: str) -> str:
    """A numeral as said: up to 99 as a number ("20" -> "twenty"), longer ones digit by digit
    ("7429" -> "seven four two nine"), as the benchmark's sentences and facts say them."""
    value = int(number)
    if len(number) > 2:
        return " ".join(_ONES[int(d)] for d in number)
    if value < 20:
        return _ONES[value]
    return _TENS[value // 10] + ("" if value % 10 == 0 else " " + _ONES[value % 10])


def words(text: str) -> list[str]:
    """Lower-case words without punctuation, numerals spelled out ("7:30" -> seven thirty)."""
    text = re.sub(r"\b(1st|2nd|3rd|[45]th)\b", lambda m: _ORDINALS[m.group(1)], text.lower())
    text = re.sub(r"\d+", lambda m: f" {spelled(m.group())} ", text)
    return re.sub(r"[^a-z' ]", " ", text).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions + deletions + insertions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


OFFLINE_ASR = ("pocketsphinx", "moonshine")  # the backends whose models ship in their wheels


def speak_all(work: Path, sentences: list[str]) -> list[tuple[str, int, int, str, Path, float]]:
    """Each sentence said by each voice at each speed: (voice, wpm, number, sentence, wav, seconds)."""
    from tests.speech_videos import speak

    said = []
    for voice in VOICES:
        for speed in SPEEDS:
            for number, sentence in enumerate(sentences):
                wav = work / f"{voice}-{speed}-{hash(sentence) & 0xffffff:x}.wav"
                said.append((voice, speed, number, sentence, wav, speak(sentence, wav, voice, speed)))
    return said


def word_error_rate(asr, said, examples: bool = True) -> dict:
    """WER and speed of one loaded backend over `said` (speak_all's rows): each sentence's
    audio is one window (read as the pipeline reads audio)."""
    import statistics

    from vidsift.workers.speech.audio import AudioReader

    per_setting: dict[str, list[int]] = {}
    speeds, heard_examples = [], []
    audio_s = recognise_s = 0.0
    for voice, speed, number, sentence, wav, seconds in said:
        windows = list(AudioReader(str(wav), window_s=30).windows())
        started = time.perf_counter()
        heard = " ".join(s.text for _, segs in asr.transcribe(windows) for s in segs)
        spent = time.perf_counter() - started
        audio_s, recognise_s = audio_s + seconds, recognise_s + spent
        speeds.append(seconds / spent)
        ref = words(sentence)
        counts = per_setting.setdefault(f"{voice} {speed}wpm", [0, 0])
        counts[0] += edit_distance(ref, words(heard))
        counts[1] += len(ref)
        if examples and number == 0:
            heard_examples.append({"voice": voice, "wpm": speed, "said": sentence, "heard": heard})
    edits, total = (sum(c[i] for c in per_setting.values()) for i in (0, 1))
    result = {
        "wer": round(edits / total, 3),
        "wer_by_voice_and_speed": {k: round(e / n, 3) for k, (e, n) in per_setting.items()},
        "reference_words": total,
        "audio_s": round(audio_s, 1),
        "recognise_s": round(recognise_s, 1),
        "x_realtime_one_core_median": round(statistics.median(speeds), 2),
        "x_realtime_one_core_total": round(audio_s / recognise_s, 2),
    }
    if examples:
        result["examples"] = heard_examples
    return result


def bench_wer(work: Path) -> dict:
    """Part 1 for each offline backend, on SENTENCES."""
    from vidsift.core.config import SpeechConfig
    from vidsift.workers.speech import get_asr
    from vidsift.workers.speech.pocketsphinx_backend import PocketsphinxASR

    said = speak_all(work, SENTENCES)
    result = {name: word_error_rate(get_asr(SpeechConfig(asr_backend=name)), said) for name in OFFLINE_ASR}
    # before tuning: what pocketsphinx's own defaults score on the same sentences
    result["pocketsphinx_packaged_defaults"] = word_error_rate(
        PocketsphinxASR(SpeechConfig(), **PS_PACKAGED), said, examples=False)
    return result


def bench_tune(work: Path) -> dict:
    """pocketsphinx's decoder settings (PS_SETTINGS) on TUNING_SENTENCES said by every voice at
    every speed, never on SENTENCES."""
    from vidsift.core.config import SpeechConfig
    from vidsift.workers.speech.pocketsphinx_backend import PocketsphinxASR

    said = speak_all(work, TUNING_SENTENCES)
    cfg = SpeechConfig(asr_backend="pocketsphinx")
    return {"rows": len(said), **{name: word_error_rate(PocketsphinxASR(cfg, **settings), said, examples=False)
                                  for name, settings in PS_SETTINGS.items()}}


def build_needle_videos(work: Path, seed: int) -> tuple[Path, Path, list[dict]]:
    from tests.speech_videos import Line, make_speech_video, speak, srt

    rng = random.Random(seed)
    slots = sorted(rng.sample(range(1, NEEDLE_VIDEO_S // 30 - 1), len(FACTS)))
    lines = [Line(float(slot * 30 + rng.randint(0, 20)), said) for slot, (said, _) in zip(slots, FACTS)]
    # cue times: when each sentence is spoken, to the millisecond, as a captioner would write them
    cues = []
    for number, line in enumerate(lines):
        length = speak(line.text, work / f"len{number}.wav")
        cues.append((line.start, round(line.start + length, 3), line.text))
    track = work / "needles.mp4"
    make_speech_video(track, NEEDLE_VIDEO_S, lines, cues=cues, subtitle_codec="mov_text", size="320x240")
    folder = work / "sidecar"
    folder.mkdir(exist_ok=True)
    sidecar = folder / "needles-sidecar.mp4"
    make_speech_video(sidecar, NEEDLE_VIDEO_S, lines, size="320x240")
    (folder / "needles-sidecar.srt").write_text(srt(cues))
    needles = [{"said": said, "query": query, "start": start, "end": end}
               for (start, end, said), (_, query) in zip(cues, FACTS)]
    return track, sidecar, needles


def transcript_recall(video: Path, needles: list[dict], index_dir: Path) -> float:
    from vidsift.core.config import load_config
    from vidsift.pipeline.flows.speech import video_transcript

    cfg = load_config("default", [f"index.dir={index_dir}", "speech.mode=subtitles"])
    segments = {(s.start, s.end, s.text) for s in video_transcript(str(video), cfg).segments}
    return sum((n["start"], n["end"], n["said"]) in segments for n in needles) / len(needles)


def search_recall(video: Path, needles: list[dict], index_dir: Path, speech: list[str], pool) -> dict:
    from vidsift.core.config import load_config
    from vidsift.pipeline.flows.index import index_videos, search_clips

    cfg = load_config("default", [f"index.dir={index_dir}", *speech])
    started = time.perf_counter()
    summary = index_videos([video], cfg, pool=pool)
    hits_found = []
    for needle in needles:
        middle = (needle["start"] + needle["end"]) / 2
        hits = search_clips(needle["query"], cfg, k=3)
        hits_found.append(any(h.start <= middle < h.end for h in hits))
    return {"recall_at_3": sum(hits_found) / len(needles), "index_s": round(time.perf_counter() - started, 1),
            "notes": summary.notes}


def ask_recall(video: Path, needles: list[dict], index_dir: Path, speech: str, pool,
               asr_backend: str = "pocketsphinx") -> dict:
    """Evidence recall of evidence-only asks of `video` with speech.mode `speech` (see the
    module docstring), per-question hits, the speech lines and tokens the prompt would hold,
    and the median seconds per ask (the first ask also ingests and transcribes: reported apart)."""
    import statistics

    from vidsift.core.config import load_config
    from vidsift.pipeline.flows.ask import Asker

    cfg = load_config("default", [f"index.dir={index_dir}", "vlm.model=none",
                                  f"budget.tokens={ASK_FRAMES * 256}", f"speech.mode={speech}",
                                  f"speech.asr_backend={asr_backend}"])
    asker = Asker(cfg, pool=pool)
    hits, seconds, said, tokens = [], [], [], []
    for needle, question in zip(needles, ASK_QUESTIONS):
        started = time.perf_counter()
        result = asker.ask(str(video), question, use_index=False)
        seconds.append(time.perf_counter() - started)
        hits.append(any(needle["start"] <= t <= needle["end"]
                        for seg in result.segments for t in seg["timestamps"]))
        said.append(any(line["start"] < needle["end"] and line["end"] > needle["start"]
                        for line in result.speech))
        tokens.append(result.speech_info.get("tokens", 0))
    return {"recall": sum(hits) / len(needles), "hits": hits,
            "line_at_fact_in_prompt": sum(said) / len(needles), "speech_tokens": tokens,
            "first_ask_s": round(seconds[0], 2),
            "median_ask_s": round(statistics.median(seconds[1:]), 3)}


def bench_ask(track: Path, needles: list[dict], index_dir: Path, pool) -> dict:
    """Part 3 with speech off, from subtitles and from each offline recogniser, sharing one
    memory of the video (index_dir)."""
    settings = [("speech_off", "none", "pocketsphinx"), ("subtitles", "subtitles", "pocketsphinx"),
                *((f"asr_{name}", "asr", name) for name in OFFLINE_ASR)]
    return {"frame_equivalents": ASK_FRAMES, "questions": ASK_QUESTIONS,
            **{label: ask_recall(track, needles, index_dir, mode, pool, backend)
               for label, mode, backend in settings}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--parts", choices=("all", "ask", "wer", "tune"), default="all",
                        help="ask: only the spoken needles through ask (part 3); wer: only part 1; "
                             "tune: pocketsphinx's settings on the tuning sentences")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core for the WER/speed part
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="vidsift-speech-"))
    try:
        from importlib.metadata import version

        result = {"asr": {"pocketsphinx": f"pocketsphinx {version('pocketsphinx')} (en-us model from its wheel)",
                          "moonshine": f"Moonshine base from moonshine-cpp {version('moonshine-cpp')}'s wheel"},
                  "speech_from": "espeak-ng 1.51"}
        if args.parts in ("wer", "tune"):
            key = "asr_on_espeak" if args.parts == "wer" else "pocketsphinx_tuning"
            result[key] = bench_wer(work) if args.parts == "wer" else bench_tune(work)
            result[key]["load_average_1m"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
            return write_results(result)
        if args.parts == "all":
            result["asr_on_espeak"] = bench_wer(work)
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        track, sidecar, needles = build_needle_videos(work, args.seed)
        result["needle_video"] = {"duration_s": NEEDLE_VIDEO_S, "facts": len(needles), "seed": args.seed}
        if args.parts == "all":
            result["transcript_recall"] = {
                "subtitle_track": transcript_recall(track, needles, work / "t1"),
                "sidecar_srt": transcript_recall(sidecar, needles, work / "t2")}
        from vidsift.core.config import load_config
        from vidsift.pipeline.flows.index import start_pool

        pool = start_pool(load_config("default"))
        try:
            if args.parts == "all":
                result["search"] = {
                    "speech_off": search_recall(track, needles, work / "i0", [], pool),
                    "subtitles": search_recall(track, needles, work / "i1", ["speech.mode=subtitles"], pool),
                    **{f"asr_{name}": search_recall(track, needles, work / f"i-{name}",
                                                    ["speech.mode=asr", f"speech.asr_backend={name}"], pool)
                       for name in OFFLINE_ASR},
                }
            # i-pocketsphinx holds the video's memory and its pocketsphinx transcript when search ran
            result["ask"] = bench_ask(track, needles, work / "i-pocketsphinx", pool)
        finally:
            pool.close()
        result["needles"] = needles
        load = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
        result["ask"]["load_average_1m"] = load
        if args.parts == "all":
            result["load_average_1m"] = load
        result["cpu_cores"] = os.cpu_count()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_results(result)


def write_results(result: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    # merged: a partial run keeps the other parts' last results
    merged = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    merged.pop("pocketsphinx_on_espeak", None)  # part 1 before moonshine: now asr_on_espeak
    merged.update(result)
    RESULTS.write_text(json.dumps(merged, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "needles"}, indent=1))


if __name__ == "__main__":
    main()
