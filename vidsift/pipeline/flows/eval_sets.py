"""The long-video benchmarks' annotation files as their authors publish them, read into EvalItems,
with each set's multiple-choice prompt and answer extraction as lmms-eval has them.

Formats (ANNOTATIONS is the file or folder a user downloads; ROOT the folder holding its videos):
- videomme: Video-MME's parquet (lmms-lab/Video-MME, videomme/test-00000-of-00001.parquet), a
  row per question: video_id, duration (short | medium | long), domain, sub_category, url,
  videoID, question_id, task_type, question, options (["A. ...", "B. ...", ...]), answer (a
  letter). Video: ROOT/<videoID>.mp4 (also .MP4, .mkv; also under ROOT/data/, as the set unpacks).
- longvideobench: LongVideoBench's lvb_val.json, a list of {video_id, question, candidates,
  correct_choice (0-based index), duration_group (15 | 60 | 600 | 3600, the upper bound of the
  group in seconds), question_category, id, video_path, duration, ...}; or the same rows as the
  set's parquet (option0..option4, "N/A" past the last). Video: ROOT/<video_path> (or
  ROOT/videos/<video_path>).
- mlvu: MLVU's json/ folder (or one of its files, 1_plotQA.json ...), each a list of {video,
  duration (seconds), question, candidates, answer (the option's text), question_type}; entries
  with no candidates (the generation tasks 8_sub_scene, 9_summary) are skipped. Video:
  ROOT/<file stem>/<video> (MLVU's video/1_plotQA/... given ROOT=video), or ROOT/<video>.
- lvbench: LVBench's video_info.meta.jsonl, a line per video: {key, type, video_info:
  {duration_minutes, fps, resolution}, qa: [{uid, question (its options inside it, "(A) ..."
  lines), answer (a letter), question_type: [...], time_reference}]}. Video: the line's
  video_path when it has one (lmms-eval's copy), else ROOT/<key>.mp4 (or ROOT/videos/<key>.mp4).

Duration buckets: Video-MME's own short/medium/long; LongVideoBench's duration groups, named by
their ranges in the paper; MLVU and LVBench (no buckets of their own) by the video's length in
BUCKETS_S. A path that exists nowhere is kept as its first candidate, so the run records that
item's "file not found" by name.

Prompts and extraction follow lmms-eval's task files (lmms_eval/tasks/<set>/utils.py and its
yaml), read at EvolvingLMMs-Lab/lmms-eval: videomme/utils.py (videomme_doc_to_text,
extract_characters_regex), longvideobench/utils.py with longvideobench_val_v.yaml
(longvideobench_doc_to_text, parse_multi_choice_response), mlvu/utils.py with mlvu_dev.yaml
(mlvu_doc_to_text, extract_characters_regex) and lvbench/utils.py (lvbench_doc_to_text,
extract_characters_regex). Written here from those rules; the differences are noted where they
are.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vidsift.core.errors import ConfigError

FORMATS = ("videomme", "longvideobench", "mlvu", "lvbench")

# Buckets by a video's length (seconds) where a set has none of its own: (upper bound, name).
BUCKETS_S = ((180.0, "< 3 min"), (600.0, "3-10 min"), (1800.0, "10-30 min"),
             (3600.0, "30-60 min"), (float("inf"), "> 60 min"))

# LongVideoBench's duration groups (the group's upper bound, s) by the ranges its paper gives.
LVB_GROUPS = {15: "8-15 s", 60: "15-60 s", 600: "180-600 s", 3600: "900-3600 s"}

# Tokens each set lets the model answer in (lmms-eval's generation_kwargs.max_new_tokens).
MAX_NEW_TOKENS = {"videomme": 16, "longvideobench": 32, "mlvu": 16, "lvbench": 16}

VIDEOMME_INSTRUCTION = ("Select the best answer to the following multiple-choice question based "
                        "on the video. Respond with only the letter (A, B, C, or D) of the "
                        "correct option.")
LVB_POST_PROMPT = "Answer with the option's letter from the given choices directly.\n"
MLVU_POST_PROMPT = "\nOnly give the best option.\n"
LVBENCH_POST_PROMPT = "\nAnswer the question with the option letter"

_LETTERED = re.compile(r"^\s*\(?([A-Z])[.):]\s*(.*)$", re.S)
_LVBENCH_OPTION = re.compile(r"^\(([A-Z])\)\s*(.*)$")


@dataclass(frozen=True, slots=True)
class EvalItem:
    """One multiple-choice question of a set.

    id: unique within the set (the set's own question id where it has one). video: the video's
    path. prompt: what the VLM is asked, in the set's lmms-eval format. query: the question and
    its options alone, what the frames are scored against. options: the options' texts (no
    letters), in order; letter i is chr(ord("A") + i). answer: the correct letter. bucket: the
    duration bucket. category: the set's question type. duration_s: the video's length where
    the annotation gives it (else None)."""

    format: str
    id: str
    video: str
    prompt: str
    query: str
    options: tuple[str, ...]
    answer: str
    bucket: str
    category: str
    duration_s: float | None = None

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(chr(ord("A") + i) for i in range(len(self.options)))


def read_set(fmt: str, annotations: str | Path, videos: str | Path) -> list[EvalItem]:
    """The items of `annotations` in format `fmt` (FORMATS), videos under `videos`, in the
    file's order. Raises ConfigError for an unknown format or a file that is not one."""
    readers = {"videomme": read_videomme, "longvideobench": read_longvideobench,
               "mlvu": read_mlvu, "lvbench": read_lvbench}
    if fmt not in readers:
        raise ConfigError(f"eval format {fmt!r}: choose one of {' | '.join(FORMATS)}")
    path = Path(annotations).expanduser()
    if not path.exists():
        raise ConfigError(f"{path}: annotations not found")
    try:
        items = readers[fmt](path, Path(videos).expanduser())
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ConfigError(f"{path}: not {fmt} annotations ({type(exc).__name__}: {exc})") from None
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: question ids repeat")
    return items


def length_bucket(seconds: float | None) -> str:
    """A video's bucket by its length in seconds (BUCKETS_S); "unknown" without one."""
    if seconds is None:
        return "unknown"
    return next(name for bound, name in BUCKETS_S if seconds <= bound)


def _video(root: Path, *names: str | Path) -> str:
    """The first of root/name that exists, else root/names[0] (its error names it)."""
    for name in names:
        if (root / name).is_file():
            return str(root / name)
    return str(root / names[0])


def _unlettered(option: str) -> str:
    """"A. a red car" -> "a red car"; an option without a letter as it is."""
    match = _LETTERED.match(option)
    return match.group(2).strip() if match else option.strip()


def _lettered(options: Iterable[str], style: str) -> list[str]:
    """Options with their letters: style "A. {}" or "({}) " forms, as each set prints them."""
    return [style.format(chr(ord("A") + i), text) for i, text in enumerate(options)]


def _rows(path: Path) -> list[dict]:
    """A parquet file's rows (pyarrow), or a JSON list, or JSON lines."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    rows = json.loads(text)
    if not isinstance(rows, list):
        raise ValueError("expected a list of questions")
    return rows


def read_videomme(path: Path, root: Path) -> list[EvalItem]:
    """Video-MME's parquet -> items. Prompt (videomme_doc_to_text, frames only):
    "<instruction>\\n<question>\\n<A. ...>\\n<B. ...>...\\nThe best answer is:", the options one a
    line as published (lmms-eval has printed them joined by newlines and, in one version, as the
    list's str(); the lines are what its prompt comments show)."""
    items = []
    for row in _rows(path):
        options = [str(option) for option in row["options"]]
        question = str(row["question"])
        name = f"{row['videoID']}.mp4"
        items.append(EvalItem(
            format="videomme", id=str(row["question_id"]),
            video=_video(root, name, f"{row['videoID']}.MP4", f"{row['videoID']}.mkv",
                         Path("data") / name),
            prompt=f"{VIDEOMME_INSTRUCTION}\n{question}\n" + "\n".join(options)
                   + "\nThe best answer is:",
            query=question + "\n" + "\n".join(options),
            options=tuple(_unlettered(option) for option in options),
            answer=str(row["answer"]).strip(), bucket=str(row["duration"]),
            category=str(row.get("task_type") or "")))
    return items


def _lvb_options(row: dict) -> list[str]:
    if "candidates" in row:
        return [str(c) for c in row["candidates"]]
    options = []
    for i in range(5):  # the parquet's option0..option4, "N/A" past the last
        option = row.get(f"option{i}")
        if option is None or option == "N/A":
            break
        options.append(str(option))
    return options


def read_longvideobench(path: Path, root: Path) -> list[EvalItem]:
    """LongVideoBench's lvb_val.json (or its parquet) -> items. Prompt
    (longvideobench_doc_to_text, no subtitles): "<question>\\nA. ...\\nB. ...\\n<post_prompt>" with
    the yaml's post_prompt "Answer with the option's letter from the given choices directly.\\n".
    The correct letter is chr(ord("A") + correct_choice)."""
    items = []
    for row in _rows(path):
        options = _lvb_options(row)
        question = str(row["question"])
        lines = "\n".join(_lettered(options, "{}. {}"))
        group = int(row["duration_group"])
        duration = row.get("duration")
        items.append(EvalItem(
            format="longvideobench", id=str(row["id"]),
            video=_video(root, row["video_path"], Path("videos") / row["video_path"]),
            prompt=f"{question}\n{lines}\n{LVB_POST_PROMPT}", query=f"{question}\n{lines}",
            options=tuple(options), answer=chr(ord("A") + int(row["correct_choice"])),
            bucket=LVB_GROUPS.get(group, f"{group} s"),
            category=str(row.get("question_category") or ""),
            duration_s=float(duration) if duration is not None else None))
    return items


def read_mlvu(path: Path, root: Path) -> list[EvalItem]:
    """MLVU's json folder (every *.json in it, by name) or one task's json -> items. Prompt
    (mlvu_doc_to_text with mlvu_dev.yaml): "\\n<question>\\n(A) ...\\n(B) ...\\nOnly give the best
    option.\\n\\nBest option: (" (the question with its options as MLVU's own qa_template letters
    them). The correct letter is the candidate equal to the answer text."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    items = []
    for file in files:
        for number, row in enumerate(_rows(file)):
            candidates = [str(c) for c in row.get("candidates") or ()]
            if not candidates:  # MLVU's generation tasks: no multiple choice
                continue
            answer = candidates.index(str(row["answer"]))
            question = str(row["question"]) + "\n" + "\n".join(_lettered(candidates, "({}) {}"))
            duration = row.get("duration")
            items.append(EvalItem(
                format="mlvu", id=str(row.get("question_id") or f"{file.stem}/{number}"),
                video=_video(root, Path(file.stem) / row["video"], row["video"]),
                prompt=f"\n{question}{MLVU_POST_PROMPT}\nBest option: (", query=question,
                options=tuple(candidates), answer=chr(ord("A") + answer),
                bucket=length_bucket(float(duration) if duration is not None else None),
                category=str(row.get("question_type") or file.stem),
                duration_s=float(duration) if duration is not None else None))
    return items


def read_lvbench(path: Path, root: Path) -> list[EvalItem]:
    """LVBench's video_info.meta.jsonl -> items. Prompt (lvbench_doc_to_text): "<question><post
    prompt>" with "\\nAnswer the question with the option letter"; the options are the question's
    "(A) ..." lines."""
    items = []
    for line in _rows(path):
        key = str(line["key"])
        minutes = (line.get("video_info") or {}).get("duration_minutes")
        seconds = float(minutes) * 60 if minutes is not None else None
        video = _video(root, line["video_path"]) if line.get("video_path") else _video(
            root, f"{key}.mp4", Path("videos") / f"{key}.mp4")
        for qa in line["qa"]:
            question = str(qa["question"])
            options = [m.group(2).strip() for m in map(_LVBENCH_OPTION.match,
                                                       question.splitlines()) if m]
            if not options:
                raise ValueError(f"question {qa['uid']} has no (A) ... option lines")
            kinds = qa.get("question_type") or []
            items.append(EvalItem(
                format="lvbench", id=str(qa["uid"]), video=video,
                prompt=question + LVBENCH_POST_PROMPT, query=question, options=tuple(options),
                answer=str(qa["answer"]).strip(), bucket=length_bucket(seconds),
                category=", ".join(kinds) if isinstance(kinds, list) else str(kinds),
                duration_s=seconds))
    return items


# ---- answer extraction -------------------------------------------------------------------

# lmms-eval's videomme/lvbench extract_characters_regex strips these phrases first. Its list
# writes two pairs without a comma between them ("The best option is" "The correct option is"),
# which Python joins into one string that never occurs; here each phrase is stripped on its own,
# as the list means (so "Best answer: C" is C here, where lmms-eval reads the B of "Best").
ANSWER_PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer",
                   "The best option is", "The correct option is", "Best answer:", "Best option:")


def letter_regex_choice(response: str) -> str:
    """Video-MME's and LVBench's rule (lmms-eval extract_characters_regex): strip the answer
    phrases, then the first capital A, B, C or D anywhere in what is left (so "A man waves"
    reads A, as lmms-eval reads it); "" when there is none. (lmms-eval also returns "" for a
    reply of more than 10 words with no such capital, which the search returns anyway.)"""
    text = response.strip()
    for prefix in ANSWER_PREFIXES:
        text = text.replace(prefix, "")
    match = re.search(r"[ABCD]", text)
    return match.group(0) if match else ""


def multi_choice_choice(response: str, options: tuple[str, ...], seed: str = "") -> str:
    """LongVideoBench's rule (lmms-eval parse_multi_choice_response, from MMMU's eval_utils):
    strip , . ! ? ; : ' from the ends and pad with spaces; candidates are the letters written
    "(A)", else "A " (a letter then a space), else "A."; failing those, in a reply of more than
    5 words, the options whose text it contains. Several candidates: the one mentioned last.
    None: a random letter, as lmms-eval picks one, here drawn from random.Random(seed) (the
    item's id) so a rerun scores the same."""
    letters = [chr(ord("A") + i) for i in range(len(options))]
    text = response
    for char in ",.!?;:'":
        text = text.strip(char)
    text = f" {text} "
    bracketed = [c for c in letters if f"({c})" in text]
    candidates = bracketed or [c for c in letters if f"{c} " in text] or [
        c for c in letters if f"{c}." in text]
    by_content = False
    if not candidates and len(text.split()) > 5:
        candidates = [c for c, option in zip(letters, options) if option.lower() in text.lower()]
        by_content = bool(candidates)
    if not candidates:
        return random.Random(seed).choice(letters) if letters else ""
    if len(candidates) == 1:
        return candidates[0]
    if by_content:
        where = {c: text.lower().rfind(options[letters.index(c)].lower()) for c in candidates}
    elif bracketed:
        where = {c: text.rfind(f"({c})") for c in candidates}
    else:
        where = {c: text.rfind(f" {c} ") for c in candidates}
    return max(candidates, key=lambda c: (where[c], -candidates.index(c)))


def paren_choice(response: str) -> str:
    """MLVU's rule (lmms-eval mlvu extract_characters_regex): the prompt ends "Best option: (",
    so the reply is expected as "B) ..."; with a ")" in it, the one character before the first
    ")" ("" when it opens the reply); without, the whole stripped reply (right only when it is
    the bare letter)."""
    text = response.strip()
    if ")" in text:
        index = text.index(")")
        return text[index - 1:index] if index else ""
    return text


def extract_choice(item: EvalItem, response: str) -> str:
    """The letter `response` chooses, by the rule of the item's set."""
    if item.format == "longvideobench":
        return multi_choice_choice(response, item.options, seed=item.id)
    if item.format == "mlvu":
        return paren_choice(response)
    return letter_regex_choice(response)
