import numpy as np
import pytest

from vidsift.pipeline.plan.clips import (
    clip_texts,
    clip_vectors,
    cut_strengths,
    frames_in_clips,
    middle_frame,
    segment_clips,
)


def scenes(times, changes, dim=8):
    """Unit vectors: one basis direction per scene; a scene starts at each time in changes."""
    times = np.asarray(times, dtype=np.float64)
    scene = np.searchsorted(np.asarray(changes), times, side="right")
    visual = np.zeros((len(times), dim), np.float32)
    visual[np.arange(len(times)), scene % dim] = 1.0
    return visual


def assert_tiles(clips, start, end):
    assert clips[0][0] == start and clips[-1][1] == end
    for (_, a_end), (b_start, _) in zip(clips[:-1], clips[1:]):
        assert a_end == b_start


def test_cut_strengths_are_cosine_distances():
    v = np.array([[1, 0], [1, 0], [0, 1]], np.float32)
    np.testing.assert_allclose(cut_strengths(v), [0.0, 1.0])


def test_cuts_at_scene_changes():
    times = np.arange(0, 30, 1.0)  # 1 fps coarse frames, video 0..30 s
    visual = scenes(times, changes=[10.0, 20.0])
    clips = segment_clips(times, visual, 0.0, 30.0, min_s=2, max_s=30, cut_threshold=0.3)
    assert clips == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]


def test_cut_snaps_to_keyframe_between_coarse_frames():
    times = np.arange(0, 30, 2.0)  # frames at 0, 2, ..., 28
    visual = scenes(times, changes=[10.0])
    # the change happened between the frames at 8 and 10: the keyframe at 9.5 is the exact cut
    clips = segment_clips(times, visual, 0.0, 30.0, 2, 30, 0.3, keyframe_times=[0.0, 9.5, 20.0])
    assert clips == [(0.0, 9.5), (9.5, 30.0)]


def test_short_scenes_merge_strongest_cut_wins():
    times = np.arange(0, 20, 0.5)
    visual = np.zeros((len(times), 3), np.float32)
    visual[:, 0] = 1
    visual[times >= 10.0] = [0, 1, 0]  # strong cut at 10
    weak = (times >= 11.0) & (times < 12.0)  # a 1 s flash, a weaker change, too short to keep
    visual[weak] = np.array([0, 0.8, 0.6], np.float32)
    clips = segment_clips(times, visual, 0.0, 20.0, min_s=3, max_s=30, cut_threshold=0.1)
    assert clips == [(0.0, 10.0), (10.0, 20.0)]
    assert all(b - a >= 3 for a, b in clips)


def test_long_scene_split_evenly_and_at_keyframes():
    times = np.arange(0, 100, 1.0)
    visual = scenes(times, changes=[])  # one 100 s scene
    clips = segment_clips(times, visual, 0.0, 100.0, min_s=2, max_s=30, cut_threshold=0.3)
    assert clips == [(0.0, 25.0), (25.0, 50.0), (50.0, 75.0), (75.0, 100.0)]
    snapped = segment_clips(times, visual, 0.0, 100.0, 2, 30, 0.3, keyframe_times=[24.0, 52.0, 80.0])
    assert snapped == [(0.0, 24.0), (24.0, 52.0), (52.0, 80.0), (80.0, 100.0)]


@pytest.mark.parametrize("seed", range(5))
def test_random_inputs_always_tile_within_bounds(seed):
    rng = np.random.default_rng(seed)
    start, end = 0.04, float(rng.uniform(20, 400))
    times = np.sort(rng.uniform(start, end, size=200))
    visual = rng.normal(size=(200, 16)).astype(np.float32)
    visual /= np.linalg.norm(visual, axis=1, keepdims=True)
    keyframes = np.sort(rng.uniform(start, end, size=30))
    clips = segment_clips(times, visual, start, end, 2.0, 30.0, 0.9, keyframes)
    assert_tiles(clips, start, end)
    lengths = np.array([b - a for a, b in clips])
    assert lengths.min() >= 2.0 - 1e-9 and lengths.max() <= 30.0 + 1e-9


def test_video_shorter_than_min_is_one_clip():
    times = np.array([0.0, 0.5, 1.0])
    clips = segment_clips(times, scenes(times, [0.5]), 0.0, 1.2, 2, 30, 0.3)
    assert clips == [(0.0, 1.2)]


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        segment_clips(np.zeros(1), np.zeros((1, 2)), 5.0, 5.0, 2, 30, 0.3)
    with pytest.raises(ValueError):
        segment_clips(np.zeros(1), np.zeros((1, 2)), 0.0, 5.0, 3, 2, 0.3)
    with pytest.raises(ValueError):
        segment_clips(np.zeros(2), np.zeros((1, 2)), 0.0, 5.0, 2, 30, 0.3)


def test_members_vectors_texts_and_thumbnail_frame():
    times = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    clips = [(0.0, 3.0), (3.0, 6.0)]
    members = frames_in_clips(times, clips)
    assert [m.tolist() for m in members] == [[0, 1, 2], [3, 4, 5]]
    vectors = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, 1], [0, 1]], np.float32)
    out = clip_vectors(vectors, members)
    np.testing.assert_allclose(out[0], np.array([2, 1]) / np.sqrt(5), rtol=1e-6)
    np.testing.assert_allclose(out[1], [0, 1])
    texts = clip_texts(["cat", "cat", "", "STOP sign", "dog", "STOP sign"], members)
    assert texts == ["cat", "STOP sign; dog"]
    assert middle_frame(times, members[0], clips[0]) == 1


def test_clip_without_frames_takes_nearest_frame():
    times = np.array([0.0, 10.0])
    members = frames_in_clips(times, [(0.0, 4.0), (4.0, 8.0), (8.0, 12.0)])
    assert [m.tolist() for m in members] == [[0], [1], [1]]
