import numpy as np
import pytest
import torch

from vidsift.workers.vlm.pruning import get_pruner
from vidsift.workers.vlm.pruning_evs import evs_retention_mask
from vidsift.workers.vlm.pruning_vidcom2 import (
    vidcom2_frame_counts,
    vidcom2_retained_count,
    vidcom2_retention_mask,
)


@pytest.mark.parametrize(
    ("frames", "rows", "cols", "ratio", "expected"),
    [(4, 3, 5, 0.25, 15), (4, 3, 5, 1.0, 60), (1, 1, 1, 0.01, 1), (10, 2, 2, 0.1, 4), (3, 1, 7, 0.5, 10)],
)
def test_count_hand_cases(frames, rows, cols, ratio, expected):
    assert vidcom2_retained_count(frames, rows, cols, ratio) == expected


@pytest.mark.parametrize(
    ("args", "name"),
    [((0, 2, 2, 0.5), "frames"), ((2, 0, 2, 0.5), "rows"), ((2, 2, 0, 0.5), "cols"),
     ((2, 2, 2, 0.0), "ratio"), ((2, 2, 2, 1.5), "ratio")],
)
def test_bad_arguments_name_the_argument(args, name):
    with pytest.raises(ValueError, match=name):
        vidcom2_retained_count(*args)
    with pytest.raises(ValueError, match="embeddings"):
        vidcom2_retention_mask(np.zeros((2, 2, 8)), 0.5)


def planted(frames=20, rows=4, cols=4, dim=16, distinct=(7, 15), seed=0):
    """Near-duplicate frames (one scene plus small noise) and a few frames of another scene."""
    rng = np.random.default_rng(seed)
    scene = rng.normal(size=(rows, cols, dim))
    grid = scene[None] + 0.05 * rng.normal(size=(frames, rows, cols, dim))
    for t in distinct:
        grid[t] = rng.normal(size=(rows, cols, dim))
    return grid


@pytest.mark.parametrize("shape", [(1, 3, 3, 8), (6, 1, 1, 8), (5, 4, 1, 8), (9, 3, 4, 8)])
@pytest.mark.parametrize("ratio", [0.01, 0.1, 0.5, 0.99, 1.0])
def test_exact_count_per_frame_caps_and_determinism(shape, ratio):
    grid = np.random.default_rng(1).normal(size=shape)
    counts = vidcom2_frame_counts(grid, ratio)
    mask = vidcom2_retention_mask(grid, ratio)
    assert counts.sum() == mask.sum() == vidcom2_retained_count(*shape[:3], ratio)
    assert (counts <= shape[1] * shape[2]).all()
    assert mask.reshape(shape[0], -1).sum(axis=1).tolist() == counts.tolist()
    assert np.array_equal(mask, vidcom2_retention_mask(grid.copy(), ratio))


def test_distinct_frames_keep_tokens_where_evs_loses_them():
    grid = planted()  # 20 frames x 16 tokens; frames 7 and 15 differ from the rest
    mask = vidcom2_retention_mask(grid, 0.1)  # 32 tokens
    counts = mask.reshape(20, -1).sum(axis=1)
    assert counts[7] >= counts.max() - 1 and counts[15] == counts.max() > np.median(counts)
    # a distinct frame's quota is bounded by about twice the mean (1 + sigma - 1/T <= 2)
    assert counts.max() <= 2 * 32 / 20 + 1
    # EVS at about the same count (rate 0.9: int(320 * 0.0999...98) = 31) spends 16 of them on
    # the first frame, a near-duplicate of 17 others; VidCom² gives it less than a distinct frame
    evs = evs_retention_mask(grid, 0.9).reshape(20, -1).sum(axis=1)
    assert evs.sum() == 31 and evs[0] == 16
    assert counts[0] < counts[15]


def test_registered_pruner_per_segment_positions_kept():
    grid = planted()
    t, h, w = np.meshgrid(np.arange(20), np.arange(4), np.arange(4), indexing="ij")
    thw = torch.from_numpy(np.stack([t, h, w], -1).reshape(-1, 3))
    x = torch.from_numpy(grid.reshape(-1, 16).astype(np.float32))
    kept = get_pruner("vidcom2")(x, 32, token_thw=thw)
    expected = np.nonzero(vidcom2_retention_mask(grid.astype(np.float32), 32 / 320).reshape(-1))[0]
    assert kept.tolist() == expected.tolist()
    perm = torch.from_numpy(np.random.default_rng(2).permutation(320))
    shuffled = get_pruner("vidcom2")(x[perm], 32, token_thw=thw[perm])
    assert sorted(perm[shuffled].tolist()) == kept.tolist()
