"""probe(): container facts, exact on CFR, VFR and rotated files; typed errors on bad input."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from vidsift.core.errors import (
    AbsurdDimensionsError,
    CorruptVideoError,
    EmptyVideoError,
    NotAFileError,
    NotAVideoError,
    SymlinkLoopError,
    VideoNotFoundError,
)
from vidsift.core.probe import check_video, probe, scan_video


def ffprobe_frames(path) -> list[tuple[float, bool]]:
    """(pts seconds, is keyframe) of every decoded frame, by ffprobe, in presentation order."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "frame=pts_time,key_frame", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    rows = [line.split(",")[:2] for line in out.splitlines() if line.strip()]
    return sorted((float(t), k == "1") for k, t in rows)


def test_probe_constant_rate_video(coded_video):
    info = probe(coded_video)
    assert info.frame_count == 250
    assert info.duration == pytest.approx(10.0)
    assert info.start_time == pytest.approx(0.0)
    assert info.avg_fps == pytest.approx(25.0)
    assert info.real_fps == pytest.approx(25.0)
    assert (info.width, info.height, info.rotation) == (320, 240, 0)
    assert info.codec == "h264"
    assert not info.is_vfr and not info.has_audio
    assert info.keyframe_times == pytest.approx([float(s) for s in range(10)])
    assert info.size_bytes == coded_video.stat().st_size


def test_probe_keyframes_match_ffprobe(vp9_video):
    frames = ffprobe_frames(vp9_video)
    info = probe(vp9_video)
    assert info.codec == "vp9"
    assert info.frame_count == len(frames) == 75
    assert info.keyframe_times == pytest.approx([t for t, key in frames if key])


def test_probe_vfr_video(vfr_video):
    info = probe(vfr_video)
    assert info.is_vfr
    assert info.frame_count == 60
    # last frame (N=59) at (59+39)/25 = 3.92 s; its packet says it lasts 40 ms
    assert info.duration == pytest.approx(3.96)
    assert info.avg_fps == pytest.approx(60 / 3.96, rel=0.05)


def test_probe_rotated_swaps_dimensions(rotated_video):
    info = probe(rotated_video)
    assert (info.width, info.height) == (240, 320)
    assert info.rotation in (90, 270)


def test_probe_absurd_dimensions(coded_video):
    with pytest.raises(AbsurdDimensionsError) as err:
        probe(coded_video, max_pixels=320 * 240 - 1)
    assert str(coded_video) in str(err.value)


@pytest.mark.parametrize(
    ("fixture", "error"),
    [
        ("empty_video", EmptyVideoError),
        ("text_file_video", NotAVideoError),
        ("audio_only_file", NotAVideoError),
        ("truncated_video", CorruptVideoError),
    ],
)
def test_probe_bad_input_is_typed(request, fixture, error):
    path = request.getfixturevalue(fixture)
    with pytest.raises(error) as err:
        probe(path)
    assert err.value.path == str(path)


def test_probe_missing_file(tmp_path):
    with pytest.raises(VideoNotFoundError):
        probe(tmp_path / "nope.mp4")


def test_probe_truncated_says_where_it_breaks(truncated_video):
    with pytest.raises(CorruptVideoError) as err:
        probe(truncated_video)
    assert 0.5 < err.value.readable_until < 3.0
    assert "readable until" in str(err.value)


def test_frames_an_edit_list_hides_are_not_frames(copy_cut_video):
    scan = scan_video(copy_cut_video)
    assert scan.hidden_frames > 0 and scan.lead_in_pts is not None
    assert scan.start_time == pytest.approx(0.0, abs=1e-6) and not scan.is_key[0]
    assert scan.frame_count == len(ffprobe_frames(copy_cut_video))
    # Frames before the first keyframe start their decode at the hidden lead-in.
    first_key = int(scan.key_indices[0])
    starts = scan.decode_starts(np.array([0, first_key - 1, first_key, first_key + 1]))
    assert starts.tolist() == [-1, -1, first_key, first_key]
    assert scan.seek_pts(-1) == scan.lead_in_pts and scan.seek_pts(first_key) == scan.pts[first_key]


@pytest.fixture()
def loop_pair(tmp_path):
    os.symlink(tmp_path / "b.mp4", tmp_path / "a.mp4")
    os.symlink(tmp_path / "a.mp4", tmp_path / "b.mp4")
    return tmp_path / "a.mp4"


def test_probe_of_a_symlink_loop_or_a_directory_names_the_problem(loop_pair, tmp_path):
    with pytest.raises(SymlinkLoopError) as err:
        probe(loop_pair)
    assert str(err.value) == f"{loop_pair}: symlink loop (too many levels of symbolic links)"
    (tmp_path / "clip.mp4").mkdir()
    with pytest.raises(NotAFileError) as err:
        probe(tmp_path / "clip.mp4")
    assert str(err.value) == f"{tmp_path / 'clip.mp4'}: not a regular file (a directory with no videos in it: none named .avi, .flv, .m2ts, .m4v, .mkv, .mov, .mp4, .mpeg, .mpg, .ts, .webm, .wmv)"


@pytest.mark.parametrize(
    ("fixture", "error"),
    [
        ("empty_video", EmptyVideoError),
        ("text_file_video", NotAVideoError),
        ("audio_only_file", NotAVideoError),
        ("loop_pair", SymlinkLoopError),
    ],
)
def test_check_video_refuses_what_probe_refuses_without_scanning(request, fixture, error):
    path = request.getfixturevalue(fixture)
    with pytest.raises(error) as err:
        check_video(path)
    assert err.value.path == str(path)


def test_check_video_gives_the_resolved_path_of_a_video(coded_video, tmp_path):
    os.symlink(coded_video, tmp_path / "alias.mp4")
    assert check_video(tmp_path / "alias.mp4") == coded_video.resolve()
