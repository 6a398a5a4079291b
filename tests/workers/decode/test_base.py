"""vidsift.workers.decode.base: the semantics every backend shares (each test runs over all three
backends), and its pure helpers. Backend-specific behaviour is in test_<backend>_backend.py."""

from __future__ import annotations

import numpy as np
import pytest

from tests.core.test_probe import ffprobe_frames
from tests.videos import make_coded_video, make_scene_cut_video, read_code
from vidsift.core.errors import CorruptVideoError, EmptyVideoError, NotAVideoError, VideoNotFoundError
from vidsift.core.probe import probe, scan_video
from vidsift.core.shards import plan_shards
from vidsift.workers.decode import get_decoder
from vidsift.workers.decode.base import gap_fill_times, output_size, sample_times

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


def test_a_frame_too_elongated_for_the_vlm_is_letterboxed_at_the_planned_size(decoder, tmp_path):
    """16000 x 16 (aspect 1000; Qwen-VL takes 200), asked for the 28 x 5600 the plan sized from
    its letterboxed 80 x 16000: each frame comes back 28 x 5600, the frame itself in the middle
    6 rows (16 * 28 / 80), black bars above and below; frames_at and clip alike."""
    wide = str(make_coded_video(tmp_path / "wide.mp4", n_frames=10, fps=5, size=(16000, 16),
                                gop=5))
    shown = decoder.frames_at(wide, [0.6, 1.4], size=(28, 5600))
    clip = decoder.clip(wide, 0.2, 1.2, fps=5, size=(28, 5600))
    for frames, expected in [(shown, [3, 7]), (clip, [1, 2, 3, 4, 5])]:
        assert [f.image.shape for f in frames] == [(28, 5600, 3)] * len(expected)
        assert [read_code(f.image[11:17]) for f in frames] == expected
        assert not any(f.image[:11].any() or f.image[17:].any() for f in frames)


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
    # where each fill lands (exact, or a few frames late for PyAV) is tested per backend
    targets = [25 * s + offset for s in range(10) for offset in (6, 12, 18)]
    assert len(fills) == len(targets)
    assert all(0 <= got - want <= 3 for got, want in zip(fills, targets))
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
    # PyAV's fills skip the deblocking filter (test_pyav_backend); the drift stays small
    assert 10 * np.log10(255**2 / max(errors.max(), 1e-9)) > 35


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


def test_truncated_file_names_the_break(decoder, truncated_video):
    # whether the readable part decodes differs per backend (see the backend test files)
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


def test_size_and_max_side_are_exclusive(decoder, coded_video):
    with pytest.raises(ValueError):
        decoder.frames_at(coded_video, [0.0], size=(10, 10), max_side=10)


# --- the coarse pass shard by shard equals the whole pass ------------------------------------

SCENE_CUTS = (10, 59, 65, 128, 195, 200, 238)  # keyframes at 0, 0.4, 2.36, 2.6, 5.12, 7.8, 8, 9.52 s


@pytest.fixture(scope="module")
def scene_cut_video(tmp_path_factory) -> str:
    """10 s coded video cut into scenes at irregular frames, a keyframe at every cut only."""
    return str(make_scene_cut_video(tmp_path_factory.mktemp("scenes") / "scenes.mp4", SCENE_CUTS))


def assert_same_frames(sharded, whole):
    assert [f.index for f in sharded] == [f.index for f in whole]
    assert [f.pts for f in sharded] == [f.pts for f in whole]
    for part, full in zip(sharded, whole):
        assert part.image.shape == full.image.shape
        assert np.array_equal(part.image, full.image), f"frame {full.index} pixels differ"


def coarse_by_shards(decoder, path, shard_s, **coarse_args):
    info = probe(path)
    shards = plan_shards(info.keyframe_times, info.start_time, info.end_time, shard_s)
    per_shard = [decoder.coarse(path, start=start, end=end, **coarse_args) for start, end in shards]
    for (start, end), frames in zip(shards, per_shard):
        assert all(start - 1e-9 <= f.pts < end - 1e-9 for f in frames)
    return shards, [f for frames in per_shard for f in frames]


def test_coarse_by_shards_equals_whole_pass_on_streaming_video(decoder, coded_video):
    path = str(coded_video)
    args = dict(max_side=64, max_gap_s=0.5, fill_fps=4)  # every 1 s keyframe gap is filled
    shards, sharded = coarse_by_shards(decoder, path, 3.0, **args)
    assert shards == [(0.0, 3.0), (3.0, 6.0), (6.0, 9.0), (9.0, 10.0)]
    whole = decoder.coarse(path, **args)
    assert len(whole) == 40  # 10 keyframes + 3 fills each
    assert_same_frames(sharded, whole)
    assert len({f.index for f in sharded}) == len(sharded)  # nothing doubled at a bound
    assert codes(sharded) == [f.index for f in sharded]


@pytest.mark.parametrize("shard_s", [2.5, 1.0])
def test_coarse_by_shards_equals_whole_pass_on_scene_cuts(decoder, scene_cut_video, shard_s):
    # gaps of 0.24-2.68 s: with max_gap_s=0.5 some are filled and some are keyframes only
    args = dict(max_side=64, max_gap_s=0.5, fill_fps=4)
    assert [f.index for f in decoder.keyframes(scene_cut_video, max_side=64)] == [0, *SCENE_CUTS]
    shards, sharded = coarse_by_shards(decoder, scene_cut_video, shard_s, **args)
    if shard_s == 2.5:
        assert shards == [(0.0, 2.6), (2.6, 5.12), (5.12, 7.8), (7.8, 10.0)]
    else:  # a 0.24 s scene is too short to start a shard; the 0.48 s tail is a shard of its own
        assert shards == [(0.0, 2.36), (2.36, 5.12), (5.12, 7.8), (7.8, 9.52), (9.52, 10.0)]
    whole = decoder.coarse(scene_cut_video, **args)
    indices = [f.index for f in whole]
    assert set(SCENE_CUTS) <= set(indices) and len(indices) > len(SCENE_CUTS) + 1
    assert_same_frames(sharded, whole)
    assert codes(sharded) == [f.index for f in sharded]


def test_coarse_shard_without_keyframe_is_empty_and_bounds_filter_frames(decoder, coded_video):
    path = str(coded_video)
    assert decoder.coarse(path, max_side=64, max_gap_s=0.5, fill_fps=4, start=1.2, end=1.9) == []
    frames = decoder.coarse(path, max_side=64, max_gap_s=0.5, fill_fps=4, start=2.0, end=4.0)
    assert [f.index for f in frames if f.index % 25 == 0] == [50, 75]
    assert all(50 <= f.index < 100 for f in frames)


# --- pure helpers ------------------------------------------------------------------------------

def test_output_size():
    assert output_size((240, 320), None, None) == (240, 320)
    assert output_size((240, 320), (60, 80), None) == (60, 80)
    assert output_size((240, 320), None, 64) == (48, 64)
    assert output_size((320, 240), None, 64) == (64, 48)  # portrait: height is the longest side
    assert output_size((240, 320), None, 1000) == (240, 320)  # never enlarges
    assert output_size((10, 2000), None, 100) == (1, 100)  # never rounds a side to 0
    with pytest.raises(ValueError):
        output_size((240, 320), (60, 80), 64)
    with pytest.raises(ValueError):
        output_size((240, 320), (0, 80), None)
    with pytest.raises(ValueError):
        output_size((240, 320), None, 0)


def test_gap_fill_times():
    keys = np.array([0.0, 1.0, 1.2, 4.0])
    fills = gap_fill_times(keys, 5.0, max_gap_s=0.5, fill_fps=2)
    # gaps 0-1 (1 s), 1.2-4 (2.8 s), 4-5 (to the end, 1 s) are filled; 1-1.2 is not
    assert fills == pytest.approx([0.5, 1.7, 2.2, 2.7, 3.2, 3.7, 4.5])
    assert np.all(np.diff(fills) > 0)
    assert gap_fill_times(keys, 5.0, max_gap_s=3.0, fill_fps=2).size == 0
    # strictly inside: a gap of exactly k steps gets k - 1 fills, never the keyframe itself
    assert gap_fill_times(np.array([0.0]), 1.0, max_gap_s=0.5, fill_fps=4) == pytest.approx([0.25, 0.5, 0.75])
    for bad in [dict(max_gap_s=0, fill_fps=1), dict(max_gap_s=1, fill_fps=0)]:
        with pytest.raises(ValueError):
            gap_fill_times(keys, 5.0, **bad)


def test_sample_times(coded_video):
    scan = scan_video(str(coded_video))
    assert sample_times(scan, 2, None, None) == pytest.approx(np.arange(20) / 2)
    assert sample_times(scan, 5, 2.0, 4.0) == pytest.approx(2.0 + np.arange(10) / 5)
    assert sample_times(scan, 1, -3.0, 2.5) == pytest.approx([0.0, 1.0, 2.0])  # clamped to the video
    assert sample_times(scan, 1, 9.5, 50.0) == pytest.approx([9.5])
    assert sample_times(scan, 1, 4.0, 4.0).size == 0
    assert sample_times(scan, 1, 12.0, 15.0).size == 0
    for fps in (0, -1, float("nan"), float("inf"), None):
        with pytest.raises(ValueError):
            sample_times(scan, fps, None, None)


@pytest.mark.parametrize("backend", ["pyav", "ffmpeg"])  # decord refuses such files
def test_a_stream_copy_cut_decodes_its_leading_frames(copy_cut_video, backend):
    # The frames before the first visible keyframe decode from the keyframe the edit list hides.
    frames = get_decoder(backend).frames_at(str(copy_cut_video), [0.0, 0.2, 2.0], max_side=160)
    first = read_code(frames[0].image)
    assert codes(frames) == [first, first + 5, first + 50]
    assert [f.index for f in frames] == [0, 5, 50]
    assert [f.pts for f in frames] == pytest.approx([0.0, 0.2, 2.0], abs=1e-6)


@pytest.mark.parametrize("backend", ["decord", "ffmpeg"])  # pyav's fills skip work: its own file
def test_coarse_fills_are_exact(backend, coded_video):
    decoder = get_decoder(backend)
    frames = decoder.coarse(coded_video, max_side=64, max_gap_s=0.5, fill_fps=4)
    fills = [f.index for f in frames if f.index % 25]
    assert fills == [25 * s + offset for s in range(10) for offset in (6, 12, 18)]
    assert codes(frames) == [f.index for f in frames]
    frames = decoder.coarse(coded_video, max_side=320, max_gap_s=0.5, fill_fps=4)
    exact = decoder.frames_at(coded_video, [f.pts for f in frames], max_side=320)
    assert [e.index for e in exact] == [f.index for f in frames]
    assert all(np.array_equal(f.image, e.image) for f, e in zip(frames, exact))
