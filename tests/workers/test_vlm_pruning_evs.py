import math

import numpy as np
import pytest
import torch

from vidsift.workers.vlm.pruning import get_pruner
from vidsift.workers.vlm.pruning_evs import evs_retained_count, evs_retention_mask


@pytest.mark.parametrize(
    ("frames", "rows", "cols", "rate", "expected"),
    [
        (2, 2, 2, 0.0, 8),  # rate 0 keeps all
        (2, 2, 2, 0.9, 4),  # int(0.8) = 0, floored at one step
        (2, 1, 5, 0.25, 7),  # int(7.5) = 7
        (8, 16, 16, 0.7, 614),  # int(2048 * 0.3000...04) = 614
        (10, 1, 1, 0.9, 1),  # float: 10 * 0.0999...98 < 1, then the one-step floor
        (1, 3, 4, 0.99, 12),  # one step: always whole
        (4, 1, 1, 0.5, 2),
        (100, 7, 9, 0.999, 63),
    ],
)
def test_count_hand_cases(frames, rows, cols, rate, expected):
    assert evs_retained_count(frames, rows, cols, rate) == expected


def test_count_is_the_rule_formula_over_a_sweep():
    for frames in (1, 2, 3, 16, 33):
        for rows, cols in ((1, 1), (1, 7), (12, 20)):
            for rate in np.linspace(0.0, 0.99, 23):
                per_step = rows * cols
                formula = max(per_step, math.floor(per_step * frames * (1 - float(rate))))
                assert evs_retained_count(frames, rows, cols, float(rate)) == formula


@pytest.mark.parametrize(
    ("args", "name"),
    [((0, 2, 2, 0.5), "frames"), ((2, 0, 2, 0.5), "rows"), ((2, 2, -1, 0.5), "cols"),
     ((2.0, 2, 2, 0.5), "frames"), ((2, 2, 2, 1.0), "rate"), ((2, 2, 2, -0.1), "rate"),
     ((2, 2, 2, True), "rate")],
)
def test_count_bad_arguments_name_the_argument(args, name):
    with pytest.raises(ValueError, match=name):
        evs_retained_count(*args)


def test_mask_keeps_first_step_and_the_changed_tokens():
    rng = np.random.default_rng(0)
    grid = np.repeat(rng.normal(size=(1, 3, 4, 8)), 5, axis=0)  # 5 identical steps
    changed = [(2, 0, 1), (3, 2, 3), (4, 1, 0)]
    for t, h, w in changed:  # the content at (h, w) changes at step t and stays changed
        grid[t:, h, w] = rng.normal(size=8)
    mask = evs_retention_mask(grid, 0.75)  # int(60 * 0.25) = 15 = 12 first-step + 3 changed
    assert mask.shape == (5, 3, 4) and mask.sum() == evs_retained_count(5, 3, 4, 0.75) == 15
    assert mask[0].all()
    assert sorted(zip(*np.nonzero(mask[1:]))) == [(t - 1, h, w) for t, h, w in changed]


def test_mask_ties_go_to_the_lower_index_and_is_deterministic():
    grid = np.ones((3, 2, 2, 4))  # every later token has dissimilarity 0
    mask = evs_retention_mask(grid, 0.5)  # int(6) = 6: first step plus the first 2 of step 1
    assert mask.reshape(-1).tolist() == [True] * 6 + [False] * 6
    rng = np.random.default_rng(1)
    noisy = rng.normal(size=(6, 4, 5, 16))
    assert np.array_equal(evs_retention_mask(noisy, 0.6), evs_retention_mask(noisy.copy(), 0.6))


@pytest.mark.parametrize(("shape", "rate"), [((1, 3, 3, 4), 0.9), ((6, 1, 1, 4), 0.5), ((4, 5, 1, 2), 0.0),
                                              ((7, 2, 3, 4), 0.999)])
def test_mask_edge_cases_exact_count(shape, rate):
    mask = evs_retention_mask(np.random.default_rng(2).normal(size=shape), rate)
    assert mask.sum() == evs_retained_count(*shape[:3], rate) and mask[0].all()


def test_mask_bad_embeddings_name_the_argument():
    for bad in (np.zeros((3, 4, 8)), np.zeros((0, 2, 2, 4)), [[[[1.0]]]]):
        with pytest.raises(ValueError, match="embeddings"):
            evs_retention_mask(bad, 0.5)
    with pytest.raises(ValueError, match="rate"):
        evs_retention_mask(np.zeros((2, 2, 2, 4)), 1.5)


def _segment_tokens(frames, rows, cols, dim, rng):
    t, h, w = np.meshgrid(np.arange(frames), np.arange(rows), np.arange(cols), indexing="ij")
    thw = np.stack([t, h, w], -1).reshape(-1, 3)
    return torch.from_numpy(rng.normal(size=(len(thw), dim)).astype(np.float32)), torch.from_numpy(thw)


def test_registered_pruner_applies_evs_per_segment_with_positions_kept():
    rng = np.random.default_rng(3)
    video_x, video_thw = _segment_tokens(4, 3, 5, 8, rng)  # 60 tokens
    image_x, image_thw = _segment_tokens(1, 2, 3, 8, rng)  # 6 tokens: kept whole
    x = torch.cat([image_x, video_x])
    thw = torch.cat([image_thw, video_thw])
    segments = torch.tensor([0] * 6 + [1] * 60)
    keep = 33  # rate 1 - 33/66 = 0.5
    kept = get_pruner("evs")(x, keep, token_thw=thw, segment_ids=segments)
    expected_video = evs_retention_mask(video_x.numpy().reshape(4, 3, 5, 8), 0.5).reshape(-1)
    assert kept.tolist() == list(range(6)) + (6 + np.nonzero(expected_video)[0]).tolist()
    assert len(kept) == 6 + evs_retained_count(4, 3, 5, 0.5)
    # tokens shuffled in prompt order: the same tokens (and so the same (t, h, w)) are kept
    perm = torch.from_numpy(rng.permutation(66))
    shuffled = get_pruner("evs")(x[perm], keep, token_thw=thw[perm], segment_ids=segments[perm])
    assert sorted(perm[shuffled].tolist()) == kept.tolist()


def test_registered_pruner_rejects_partial_grids():
    x, thw = _segment_tokens(3, 2, 2, 4, np.random.default_rng(4))
    with pytest.raises(ValueError, match="full"):
        get_pruner("evs")(x[1:], 4, token_thw=thw[1:])
    with pytest.raises(ValueError, match="token_thw"):
        get_pruner("evs")(x, 4)
