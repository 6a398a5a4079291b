"""vidsift.core.shards: cutting [start, end) into keyframe-bounded time shards."""

from __future__ import annotations

import numpy as np
import pytest

from vidsift.core.shards import plan_shards


def check_tiling(shards, keys, start, end, shard_s):
    assert shards[0][0] == start and shards[-1][1] == end
    for (_, a_end), (b_start, _) in zip(shards[:-1], shards[1:]):
        assert a_end == b_start  # contiguous: nothing missing or doubled
    for s, e in shards:
        assert e > s
    for s, e in shards[:-1]:
        assert e - s >= shard_s - 1e-12
    interior = [s for s, _ in shards[1:]]
    assert all(b in set(keys) for b in interior)  # every interior bound is a keyframe


def test_regular_keyframes():
    keys = [float(t) for t in range(10)]
    shards = plan_shards(keys, 0.0, 10.0, 3.0)
    assert shards == [(0.0, 3.0), (3.0, 6.0), (6.0, 9.0), (9.0, 10.0)]
    check_tiling(shards, keys, 0.0, 10.0, 3.0)


def test_bound_is_the_first_keyframe_at_or_after_the_length():
    keys = [0.0, 0.4, 2.36, 2.6, 5.12, 7.8, 8.0, 9.52]
    shards = plan_shards(keys, 0.0, 10.0, 2.5)
    assert shards == [(0.0, 2.6), (2.6, 5.12), (5.12, 7.8), (7.8, 10.0)]
    check_tiling(shards, keys, 0.0, 10.0, 2.5)


@pytest.mark.parametrize("seed", range(5))
def test_random_keyframes_tile_exactly(seed):
    rng = np.random.default_rng(seed)
    keys = np.sort(rng.uniform(0.0, 600.0, 80)).tolist()
    start, end = keys[0], 600.0
    for shard_s in (5.0, 30.0, 120.0):
        check_tiling(plan_shards(keys, start, end, shard_s), keys, start, end, shard_s)


def test_sparse_keyframes_give_fewer_longer_shards():
    dense = [float(t) for t in range(0, 100, 2)]
    sparse = [0.0, 45.0, 80.0]
    assert len(plan_shards(dense, 0.0, 100.0, 10.0)) == 10
    shards = plan_shards(sparse, 0.0, 100.0, 10.0)
    assert shards == [(0.0, 45.0), (45.0, 80.0), (80.0, 100.0)]
    assert plan_shards([0.0], 0.0, 100.0, 10.0) == [(0.0, 100.0)]  # one keyframe: one shard
    assert plan_shards([], 0.0, 100.0, 10.0) == [(0.0, 100.0)]


def test_keyframes_outside_the_range_and_at_the_end_are_ignored():
    keys = [-5.0, 0.0, 5.0, 10.0, 12.0]
    assert plan_shards(keys, 0.0, 10.0, 4.0) == [(0.0, 5.0), (5.0, 10.0)]
    assert plan_shards(keys, 2.0, 10.0, 1.0) == [(2.0, 5.0), (5.0, 10.0)]  # start not a keyframe


def test_shard_longer_than_the_video():
    assert plan_shards([0.0, 1.0, 2.0], 0.0, 3.0, 60.0) == [(0.0, 3.0)]


@pytest.mark.parametrize(("start", "end"), [(5.0, 5.0), (6.0, 5.0)])
def test_empty_range_raises(start, end):
    with pytest.raises(ValueError, match="empty range"):
        plan_shards([0.0], start, end, 1.0)


@pytest.mark.parametrize("shard_s", [0.0, -1.0, float("nan")])
def test_non_positive_length_raises(shard_s):
    with pytest.raises(ValueError, match="positive"):
        plan_shards([0.0], 0.0, 10.0, shard_s)
