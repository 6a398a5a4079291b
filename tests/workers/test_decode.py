"""Every decode backend returns the exact frames asked for, with the container's PTS."""

from __future__ import annotations

import numpy as np
import pytest

from tests.pipeline.test_probe import ffprobe_frames
from tests.videos import make_coded_video, read_code
from vidsift.core.errors import CorruptVideoError, EmptyVideoError, NotAVideoError, VideoNotFoundError
from vidsift.workers.decode import get_decoder

BACKENDS = ["pyav", "decord", "ffmpeg"]


@pytest.fixture(params=BACKENDS)
def decoder(request):
    return get_decoder(request.param)


def codes(frames) -> list[int]:
    return [read_code(f.image) for f in frames]


def test_frames_at_returns_the_frame_showing_at_each_time(decoder, coded_video):
    times = [-1.0, 0.0, 0.039, 0.04, 1.0, 3.999, 7.52, 9.97, 50.0]
    frames = decoder.frames_at(coded_video, times)
    expected = [0, 0, 0, 1, 25, 99, 188, 249, 249]
    assert codes(frames) == expected
    assert [f.index for f in frames] == expected
    assert [f.pts for f in frames] == pytest.approx([i / 25 for i in expected])


def test_frames_at_exact_on_vfr(decoder, vfr_video):
    container_pts = [t for t, _ in ffprobe_frames(vfr_video)]
    # frame 22 shows from 0.96 s to 1.04 s, frame 23 from 1.04 s
    frames = decoder.frames_at(vfr_video, [0.81, 0.96, 1.03, 1.04, 3.95])
    assert codes(frames) == [20, 22, 22, 23, 59]
    assert [f.pts for f in frames] == pytest.approx([container_pts[i] for i in (20, 22, 22, 23, 59)])


def test_sample_pts_equal_container_pts(decoder, vfr_video):
    container_pts = [t for t, _ in ffprobe_frames(vfr_video)]
    frames = decoder.sample(vfr_video, fps=20, max_side=160)
    assert [f.index for f in frames] == codes(frames)
    assert [f.pts for f in frames] == pytest.approx([container_pts[f.index] for f in frames])
    # 20 fps over 3.96 s: 80 targets; where frames last 80 ms two targets share a frame, kept once
    targets = np.arange(80) / 20
    shown = np.searchsorted(np.asarray(container_pts) - 1e-9, targets, side="right") - 1
    assert [f.index for f in frames] == sorted(set(shown.tolist()))
    assert len(frames) < 80
    assert frames[0].image.shape == (120, 160, 3)


def test_keyframes_are_exactly_the_keyframes(decoder, coded_video):
    frames = decoder.keyframes(coded_video, max_side=64)
    assert codes(frames) == [f.index for f in frames] == list(range(0, 250, 25))
    assert frames[0].image.shape == (48, 64, 3)


def test_sample_and_clip_counts_and_times(decoder, coded_video):
    frames = decoder.sample(coded_video, fps=2, size=(60, 80))
    assert codes(frames) == [int(k * 12.5) for k in range(20)]  # targets k * 0.5 s
    assert frames[0].image.shape == (60, 80, 3)
    clip = decoder.clip(coded_video, start=2.0, end=4.0, fps=5, max_side=80)
    assert codes(clip) == list(range(50, 100, 5))
    assert [f.pts for f in clip] == pytest.approx([2.0 + k * 0.2 for k in range(10)])


def test_coarse_fills_long_keyframe_gaps(decoder, coded_video):
    # keyframes every 1 s; gaps longer than 0.5 s get 4 fps fills at +0.25, +0.5, +0.75 s
    frames = decoder.coarse(coded_video, max_side=64, max_gap_s=0.5, fill_fps=4)
    indices = [f.index for f in frames]
    assert codes(frames) == indices  # whatever frame a fill lands on, its index is exact
    assert [i for i in indices if i % 25 == 0] == list(range(0, 250, 25))
    fills = [i for i in indices if i % 25]
    if decoder.name == "pyav":
        # PyAV skips non-reference frames for fills: each lands on the first decodable frame
        # at or after its target, within the encoder's B-frame run (<= 3 frames here).
        targets = [25 * s + offset for s in range(10) for offset in (6, 12, 18)]
        assert len(fills) == len(targets)
        assert all(0 <= got - want <= 3 for got, want in zip(fills, targets))
    else:
        assert fills == [25 * s + offset for s in range(10) for offset in (6, 12, 18)]
    only_keys = decoder.coarse(coded_video, max_side=64, max_gap_s=2.0, fill_fps=4)
    assert [f.index for f in only_keys] == list(range(0, 250, 25))


def test_coarse_mixes_short_and_filled_keyframe_gaps(decoder, tmp_path):
    # keyframes at 0, 1, 4, 5 s of 8 s: the 1-4 s and 5-8 s gaps are filled at 1 fps, the
    # keyframes at 0 s and 4 s open no filled gap and still come back
    video = make_coded_video(tmp_path / "irregular.mp4", n_frames=200, gop=None,
                             output_args=("-x264-params", "keyint=1000:scenecut=0",
                                          "-force_key_frames", "0,1,4,5"))
    assert [f.index for f in decoder.keyframes(str(video), max_side=64)] == [0, 25, 100, 125]
    frames = decoder.coarse(str(video), max_side=64, max_gap_s=2.0, fill_fps=1)
    indices = [f.index for f in frames]
    assert codes(frames) == indices
    assert [i for i in indices if i in (0, 25, 100, 125)] == [0, 25, 100, 125]
    fills = [i for i in indices if i not in (0, 25, 100, 125)]
    assert len(fills) == 4  # 2 s, 3 s; 6 s, 7 s
    assert all(0 <= got - want <= 3 for got, want in zip(fills, (50, 75, 150, 175)))


def test_coarse_fill_images_stay_close_to_the_exact_decode(decoder, coded_video):
    frames = decoder.coarse(coded_video, max_side=320, max_gap_s=0.5, fill_fps=4)
    exact = decoder.frames_at(coded_video, [f.pts for f in frames], max_side=320)
    errors = np.array([np.mean((f.image.astype(float) - e.image) ** 2) for f, e in zip(frames, exact)])
    assert [e.index for e in exact] == [f.index for f in frames]
    # PyAV's fills skip the deblocking filter (faster; drift stays small until the next
    # keyframe); the other backends decode exactly.
    assert 10 * np.log10(255**2 / max(errors.max(), 1e-9)) > 35
    assert (errors.max() > 0) == (decoder.name == "pyav")


def test_rotation_applied(decoder, rotated_video, coded_video):
    frames = decoder.frames_at(rotated_video, [1.0, 2.0], max_side=160)
    assert frames[0].image.shape == (160, 120, 3)
    # ffmpeg's autorotate shows this file turned a quarter counter-clockwise
    assert [read_code(np.rot90(f.image, k=-1)) for f in frames] == [25, 50]
    upright = decoder.frames_at(coded_video, [1.0], max_side=160)[0].image
    assert np.abs(np.rot90(upright, k=1).astype(int) - frames[0].image).mean() < 2.0


def test_vp9_webm(decoder, vp9_video):
    frames = decoder.frames_at(vp9_video, [0.0, 1.0, 1.5, 2.96])
    assert codes(frames) == [0, 25, 37, 74]
    assert codes(decoder.keyframes(vp9_video)) == [0, 25, 50]


def test_truncated_file_decodes_readable_part_then_names_the_break(decoder, truncated_video):
    if decoder.name == "decord":  # decord reads the whole file on open: all or nothing
        with pytest.raises(CorruptVideoError):
            decoder.frames_at(truncated_video, [0.0, 0.5])
    else:
        assert codes(decoder.frames_at(truncated_video, [0.0, 0.5])) == [0, 12]
    with pytest.raises(CorruptVideoError) as err:
        decoder.frames_at(truncated_video, [3.5])
    assert err.value.path == str(truncated_video) and err.value.readable_until is not None
    with pytest.raises(CorruptVideoError):
        decoder.keyframes(truncated_video)


@pytest.mark.parametrize(
    ("fixture", "error"),
    [("empty_video", EmptyVideoError), ("text_file_video", NotAVideoError), ("audio_only_file", NotAVideoError)],
)
def test_bad_input_is_typed(decoder, request, fixture, error):
    path = request.getfixturevalue(fixture)
    with pytest.raises(error) as err:
        decoder.sample(path, fps=1)
    assert err.value.path == str(path)


def test_missing_file(decoder, tmp_path):
    with pytest.raises(VideoNotFoundError):
        decoder.keyframes(tmp_path / "missing.mp4")


def test_size_and_max_side_are_exclusive(coded_video):
    with pytest.raises(ValueError):
        get_decoder("pyav").frames_at(coded_video, [0.0], size=(10, 10), max_side=10)
