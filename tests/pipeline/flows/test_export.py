"""Clip export: the written MP4 probed with ffprobe and decoded (coded test videos show their
frame number), exact and fast, and every bad request refused with nothing written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import av
import pytest

from tests.videos import (
    add_tone,
    ffmpeg_available,
    make_coded_video,
    make_scene_cut_video,
    make_vfr_video,
    read_code,
    run_ffmpeg,
)
from vidsift.core.config import ExportConfig
from vidsift.core.errors import VideoNotFoundError
from vidsift.pipeline.flows.export import ExportError, export_clip, parse_time

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg not installed")

FPS = 25
FRAME_S = 1 / FPS


@pytest.fixture(scope="module")
def coded(tmp_path_factory) -> Path:
    """10 s, 250 frames at 25 fps, a keyframe every 25 frames, with audio."""
    folder = tmp_path_factory.mktemp("export")
    return add_tone(make_coded_video(folder / "silent.mp4", n_frames=250, fps=FPS, gop=25),
                    folder / "coded.mp4", 10)


def ffprobe_streams(path: Path) -> dict[str, float]:
    """{codec_type: duration} of the file's streams."""
    streams = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,duration", "-of", "json",
         str(path)], capture_output=True, text=True, check=True).stdout)["streams"]
    return {s["codec_type"]: float(s["duration"]) for s in streams}


def frame_codes(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [read_code(frame.to_ndarray(format="rgb24"))
                for frame in container.decode(video=0)]


@pytest.mark.parametrize(("start", "end", "first", "last"), [
    (2.2, 5.0, 55, 124),  # on frame boundaries
    (2.21, 4.79, 55, 119),  # inside frames: from the frame on screen at start
    (0.0, 10.0, 0, 249),  # the whole video
])
def test_exact_clip_is_the_asked_frames_with_audio(coded, tmp_path, start, end, first, last):
    out = tmp_path / "clip.mp4"
    clip = export_clip(coded, start, end, out, ExportConfig())
    streams = ffprobe_streams(out)
    span = (last + 1 - first) * FRAME_S
    assert abs(streams["video"] - (end - start)) <= FRAME_S + 1e-6
    assert streams["video"] == pytest.approx(span, abs=1e-3)
    assert streams["audio"] == pytest.approx(span, abs=0.03)  # an AAC frame is 23 ms
    codes = frame_codes(out)
    assert codes == list(range(first, last + 1))
    assert (clip.start, clip.end, clip.frames, clip.audio, clip.fast) == \
        (pytest.approx(first * FRAME_S), pytest.approx((last + 1) * FRAME_S), last + 1 - first,
         True, False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no temp file left


def test_fast_clip_starts_at_the_keyframe_before_the_start(coded, tmp_path):
    out = tmp_path / "fast.mp4"
    clip = export_clip(coded, 2.6, 5.0, out, ExportConfig(), fast=True)
    codes = frame_codes(out)
    assert codes[0] == 50  # the keyframe at 2.0 s
    assert codes == list(range(50, 50 + len(codes))) and codes[-1] >= 124
    assert (clip.fast, clip.start, clip.audio) == (True, 2.0, True)
    assert clip.duration == pytest.approx(ffprobe_streams(out)["video"], abs=1e-3)


def test_fast_clip_of_irregular_keyframes(tmp_path):
    video = make_scene_cut_video(tmp_path / "cuts.mp4", cut_frames=(37, 140), n_frames=200)
    out = tmp_path / "fast.mp4"
    clip = export_clip(video, 120 * FRAME_S, 150 * FRAME_S, out, ExportConfig(), fast=True)
    assert frame_codes(out)[0] == 37
    assert clip.start == pytest.approx(37 * FRAME_S)


def test_exact_clip_of_a_variable_frame_rate_video(tmp_path):
    video = make_vfr_video(tmp_path / "vfr.mp4")  # frame N at N/25 s to 20, then 80 ms apart
    out = tmp_path / "clip.mp4"
    clip = export_clip(video, 0.9, 1.9, out, ExportConfig())
    assert frame_codes(out) == list(range(21, 34))  # 21 is on screen at 0.9 s (0.88-0.96)
    assert clip.frames == 13 and not clip.audio


def test_exact_clip_of_a_transport_stream_with_a_late_start(coded, tmp_path):
    # MPEG-TS has no index (a seek lands only near a time) and this one starts at 11.4 s
    video = tmp_path / "late.ts"
    run_ffmpeg("-i", str(coded), "-c", "copy", "-output_ts_offset", "10", "-f", "mpegts",
               str(video))
    out = tmp_path / "clip.mp4"
    clip = export_clip(video, 11.4 + 2.2, 11.4 + 3.0, out, ExportConfig())
    assert frame_codes(out) == list(range(55, 75))
    assert clip.start == pytest.approx(13.6)


@pytest.mark.parametrize(("start", "end", "message"), [
    (5.0, 4.0, "clip 5.000-4.000 s: the end must be after the start"),
    (3.0, 3.0, "clip 3.000-3.000 s: the end must be after the start"),
    (8.0, 12.0, "{video}: clip 8.000-12.000 s is outside the video (0.000-10.000 s)"),
    (-1.0, 2.0, "{video}: clip -1.000-2.000 s is outside the video (0.000-10.000 s)"),
    (0.0, 9.5, ("clip 0.000-9.500 s: 9.500 s is longer than export.max_s=5 s (raise it with "
                "--set export.max_s=SECONDS)")),
    (float("nan"), 2.0, "clip nan-2.0 s: start and end must be finite seconds"),
])
def test_bad_spans_are_refused_and_nothing_is_written(coded, tmp_path, start, end, message):
    with pytest.raises(ExportError) as caught:
        export_clip(coded, start, end, tmp_path / "clip.mp4", ExportConfig(max_s=5))
    assert str(caught.value) == message.format(video=coded)
    assert list(tmp_path.iterdir()) == []


def test_bad_outputs_are_refused(coded, tmp_path):
    cfg = ExportConfig()
    cases = {tmp_path / "clip.mkv": f"{tmp_path / 'clip.mkv'}: a clip is written as MP4: name it .mp4",
             tmp_path / "no" / "clip.mp4": f"{tmp_path / 'no' / 'clip.mp4'}: no folder {tmp_path / 'no'}",
             coded: f"{coded}: is the video being cut: write the clip elsewhere"}
    for out, message in cases.items():
        with pytest.raises(ExportError) as caught:
            export_clip(coded, 1, 2, out, cfg)
        assert str(caught.value) == message
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(VideoNotFoundError):
        export_clip(tmp_path / "missing.mp4", 1, 2, tmp_path / "clip.mp4", cfg)


def test_a_failing_ffmpeg_leaves_the_old_file_and_no_temp_file(tmp_path):
    # PCM audio cannot be copied into MP4: --fast fails, the old clip stays
    video = tmp_path / "pcm.mkv"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=4", "-f", "lavfi",
               "-i", "sine=duration=4", "-c:v", "libx264", "-c:a", "pcm_s16le", str(video))
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"the previous clip")
    with pytest.raises(ExportError) as caught:
        export_clip(video, 1, 2, out, ExportConfig(), fast=True)
    assert str(caught.value).startswith(f"{video}: ffmpeg could not write the clip: ")
    assert str(caught.value).endswith("(--fast copies the streams, whose codecs must fit MP4: "
                                      "export without --fast to re-encode)")
    assert out.read_bytes() == b"the previous clip"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "pcm.mkv"]
    export_clip(video, 1, 2, out, ExportConfig())  # re-encoded: fine
    assert set(ffprobe_streams(out)) == {"video", "audio"}


@pytest.mark.parametrize(("text", "seconds"), [
    ("75.5", 75.5), ("1:15.5", 75.5), ("0:01:15.5", 75.5), ("2:00:00", 7200.0), (" 3 ", 3.0)])
def test_parse_time(text, seconds):
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["1x", "", "1:75", "1:60:00", "inf", "nan", "-"])
def test_parse_time_refuses_what_is_not_a_time(text):
    with pytest.raises(ExportError) as caught:
        parse_time(text, "--start")
    assert str(caught.value) == f"--start {text!r}: not a time (seconds, M:SS or H:MM:SS)"
