"""Small synthetic benchmark sets written in each released annotation format (Video-MME parquet,
LongVideoBench lvb_val.json, MLVU json folder, LVBench video_info.meta.jsonl), their videos laid
out under a root as each set unpacks them (some in the sub-folders the readers also look in),
all cut from two tiny coded videos so every set shares one ingest per video content."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.videos import make_coded_video

VIDEOMME_ROWS = [
    {"video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "Astronomy",
     "url": "https://www.youtube.com/watch?v=vidA0000001", "videoID": "vidA0000001",
     "question_id": "001-1", "task_type": "Counting Problem",
     "question": "How many bars are on screen?",
     "options": ["A. One.", "B. Two.", "C. Three.", "D. Four."], "answer": "B"},
    {"video_id": "001", "duration": "short", "domain": "Knowledge", "sub_category": "Astronomy",
     "url": "https://www.youtube.com/watch?v=vidA0000001", "videoID": "vidA0000001",
     "question_id": "001-2", "task_type": "OCR Problems",
     "question": "What colour is the top bar?",
     "options": ["A. Red.", "B. Green.", "C. Blue.", "D. White."], "answer": "D"},
    {"video_id": "002", "duration": "medium", "domain": "Sports Competition",
     "sub_category": "Football", "url": "https://www.youtube.com/watch?v=vidB0000002",
     "videoID": "vidB0000002", "question_id": "002-1", "task_type": "Action Recognition",
     "question": "What moves across the screen?",
     "options": ["A. A ball.", "B. A bar.", "C. A car.", "D. Nothing."], "answer": "A"},
]

LVB_ROWS = [
    {"video_id": "vidA", "question": "Which colour is the widest bar?",
     "question_wo_referring_query": "Which colour is the widest bar?",
     "candidates": ["red", "green", "blue", "white"], "correct_choice": 2,
     "position": [10], "topic_category": "NP-News-Programs", "question_category": "S2E",
     "level": "L1-Perception", "id": "vidA_0", "video_path": "vidA.mp4",
     "subtitle_path": "vidA_en.json", "duration_group": 15,
     "starting_timestamp_for_subtitles": 0, "duration": 1.52, "view_count": 10},
    {"video_id": "vidB", "question": "What happens after the bars appear?",
     "question_wo_referring_query": "What happens after the bars appear?",
     "candidates": ["they fade", "they split", "they stay", "they turn", "they vanish"],
     "correct_choice": 0, "position": [20], "topic_category": "KC-Knowledge",
     "question_category": "T3E", "level": "L2-Relation", "id": "vidB_0",
     "video_path": "vidB.mp4", "subtitle_path": "vidB_en.json", "duration_group": 60,
     "starting_timestamp_for_subtitles": 0, "duration": 2.0, "view_count": 20},
]

MLVU_FILES = {
    "1_plotQA": [{"video": "movie_a.mp4", "duration": 1.52, "question": "What does the screen "
                  "show?", "candidates": ["bars", "a face", "a car", "text"], "answer": "bars",
                  "question_type": "plotQA"}],
    "4_count": [{"video": "count_b.mp4", "duration": 700, "question": "How many bars appear?",
                 "candidates": ["1", "2", "3", "4"], "answer": "3", "question_type": "count"}],
    # a generation task: no candidates, no multiple choice; the reader skips it
    "9_summary": [{"video": "sum_a.mp4", "duration": 1.52, "question": "Summarize the video.",
                   "answer": "Bars.", "question_type": "summary"}],
}

LVBENCH_LINES = [
    {"key": "vidA", "type": "cartoon", "video_info": {
        "duration_minutes": 0.025, "fps": 25.0, "resolution": {"width": 320, "height": 240}},
     "qa": [{"uid": "101", "question": "What is shown?\n(A) bars\n(B) a dog\n(C) the sea\n"
             "(D) a car", "answer": "A", "question_type": ["entity recognition"],
             "time_reference": "00:00-00:01"}]},
    {"key": "vidB", "type": "documentary", "video_info": {
        "duration_minutes": 12.0, "fps": 25.0, "resolution": {"width": 320, "height": 240}},
     "qa": [{"uid": "102", "question": "Why do the bars move?\n(A) wind\n(B) a cut\n"
             "(C) a code\n(D) music", "answer": "C",
             "question_type": ["key information retrieval", "reasoning"],
             "time_reference": "00:01-00:02"}]},
    # its video was never downloaded: the run records the item's error by name
    {"key": "vidGone", "type": "sport", "video_info": {
        "duration_minutes": 45.0, "fps": 25.0, "resolution": {"width": 320, "height": 240}},
     "qa": [{"uid": "103", "question": "Who wins?\n(A) red\n(B) blue\n(C) nobody\n(D) both",
             "answer": "B", "question_type": ["event understanding"],
             "time_reference": "00:10-00:20"}]},
]


def _place(video: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(video, path)
    except OSError:
        shutil.copyfile(video, path)


def write_sets(root: Path, clip_a: Path, clip_b: Path) -> dict[str, tuple[Path, Path]]:
    """Write the four sets under root -> {format: (annotations, videos root)}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sets = {}
    videomme = root / "videomme"
    (videomme / "videomme").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(VIDEOMME_ROWS),
                   videomme / "videomme" / "test-00000-of-00001.parquet")
    _place(clip_a, videomme / "data" / "vidA0000001.mp4")  # as the set's zips unpack
    _place(clip_b, videomme / "vidB0000002.mp4")
    sets["videomme"] = (videomme / "videomme" / "test-00000-of-00001.parquet", videomme)

    lvb = root / "longvideobench"
    lvb.mkdir()
    (lvb / "lvb_val.json").write_text(json.dumps(LVB_ROWS))
    _place(clip_a, lvb / "vidA.mp4")
    _place(clip_b, lvb / "videos" / "vidB.mp4")
    sets["longvideobench"] = (lvb / "lvb_val.json", lvb)

    mlvu = root / "MLVU"
    (mlvu / "json").mkdir(parents=True)
    for stem, rows in MLVU_FILES.items():
        (mlvu / "json" / f"{stem}.json").write_text(json.dumps(rows))
    _place(clip_a, mlvu / "video" / "1_plotQA" / "movie_a.mp4")
    _place(clip_b, mlvu / "video" / "4_count" / "count_b.mp4")
    sets["mlvu"] = (mlvu / "json", mlvu / "video")

    lvbench = root / "LVBench"
    lvbench.mkdir()
    (lvbench / "video_info.meta.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in LVBENCH_LINES))
    _place(clip_a, lvbench / "vidA.mp4")
    _place(clip_b, lvbench / "videos" / "vidB.mp4")
    sets["lvbench"] = (lvbench / "video_info.meta.jsonl", lvbench)
    return sets


@pytest.fixture(scope="session")
def eval_sets(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """The four synthetic sets over two coded videos (1.5 s and 2 s, 320x240, 25 fps)."""
    media = tmp_path_factory.mktemp("eval_media")
    clip_a = make_coded_video(media / "a.mp4", n_frames=38, fps=25, gop=25)
    clip_b = make_coded_video(media / "b.mp4", n_frames=50, fps=25, gop=25)
    return write_sets(tmp_path_factory.mktemp("eval_sets"), clip_a, clip_b)
