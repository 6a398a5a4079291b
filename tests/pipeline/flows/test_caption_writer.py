"""The caption writer, without Ray: a video is committed once all its clips are in, exactly once
whatever rows repeat; a failure is recorded and outlives no later success; the OUT layout."""

from __future__ import annotations

import json

from vidsift.core.media import video_key
from vidsift.pipeline.flows.caption import CaptionOutput, CaptionWriter


def _row(video, clip, n_clips=2, error=""):
    return {"video": video, "clip": clip, "n_clips": n_clips, "start": 3.0 * clip,
            "end": 3.0 * clip + 3.0, "caption": f"clip {clip}", "model": "m", "tokens": 24,
            "speech": "", "error": error}


def test_a_video_commits_once_when_its_last_clip_lands(tmp_path):
    output = CaptionOutput(tmp_path / "out")
    writer = CaptionWriter(output, {})
    assert writer.add(_row("/v/a.mp4", 1)) is None
    assert writer.add(_row("/v/a.mp4", 1)) is None  # a retried batch repeats a row
    assert not output.is_done("/v/a.mp4")
    assert writer.add(_row("/v/a.mp4", 0)) == "done"
    assert output.is_done("/v/a.mp4")
    assert writer.add(_row("/v/a.mp4", 0)) is None  # after the commit: ignored, not re-committed
    rows = output.read_rows().to_pylist()
    assert [(r["clip"], r["start"], r["caption"]) for r in rows] == [(0, 0.0, "clip 0"),
                                                                     (1, 3.0, "clip 1")]
    key = video_key("/v/a.mp4")
    assert json.loads((output.root / "done" / f"{key}.json").read_text())["clips"] == 2
    assert (output.root / "subtitles" / f"{key}.srt").read_text().startswith(
        "1\n00:00:00,000 --> 00:00:03,000\nclip 0\n")


def test_failures_are_recorded_and_cleared_by_a_later_success(tmp_path):
    output = CaptionOutput(tmp_path / "out")
    writer = CaptionWriter(output, {"/v/a.mp4": "an earlier run's error"})
    writer.add(_row("/v/b.mp4", 0))
    assert writer.add(_row("/v/b.mp4", -1, error="CorruptVideoError: b.mp4")) == "failed"
    assert writer.add(_row("/v/b.mp4", 1)) is None  # the failed video's other clips: ignored
    assert output.read_failures() == {"/v/a.mp4": "an earlier run's error",
                                      "/v/b.mp4": "CorruptVideoError: b.mp4"}
    assert writer.add(_row("/v/a.mp4", 0, n_clips=1)) == "done"
    writer.close()
    assert output.read_failures() == {"/v/b.mp4": "CorruptVideoError: b.mp4"}
    assert not output.is_done("/v/b.mp4")
    assert [r["video"] for r in output.read_rows().to_pylist()] == ["/v/a.mp4"]


def test_an_output_folder_from_before_the_speech_column_reads_back_whole(tmp_path):
    """Resuming a run whose earlier videos were committed without the speech column: every row
    reads back, the new videos' speech kept, the old ones' null (a dataset read dropped it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    output = CaptionOutput(tmp_path / "out")
    writer = CaptionWriter(output, {})
    writer.add(_row("/v/b.mp4", 0, n_clips=1) | {"speech": "said in b"})
    old = pa.table({"video": ["/v/a.mp4"], "clip": pa.array([0], pa.int32()), "start": [0.0], "end": [3.0],
                    "caption": ["old"], "model": ["m"], "tokens": pa.array([24], pa.int32())})
    first = sorted((output.root / "captions").glob("*.parquet"))[0]
    pq.write_table(old, first.with_name("0" + first.name))  # sorts first, as its schema would lead
    rows = {r["video"]: r for r in output.read_rows().to_pylist()}
    assert rows["/v/a.mp4"]["caption"] == "old" and rows["/v/a.mp4"]["speech"] is None
    assert rows["/v/b.mp4"]["speech"] == "said in b"


def test_a_committed_caption_reads_back_identical_through_webvtt_py_and_pysrt(tmp_path):
    """The issue's caption: WebVTT wrote '<b> & </b>' unescaped, and webvtt-py read it as ' & '."""
    import html

    import pysrt
    import webvtt

    output = CaptionOutput(tmp_path / "out")
    CaptionWriter(output, {}).add(_row("/v/a.mp4", 0, n_clips=1) | {"caption": "<b> & </b>"})
    stem = output.root / "subtitles" / video_key("/v/a.mp4")
    assert [html.unescape(c.text) for c in webvtt.read(f"{stem}.vtt")] == ["<b> & </b>"]
    assert [c.text for c in pysrt.open(f"{stem}.srt")] == ["<b> & </b>"]
