import numpy as np
import pytest
import torch

from vidsift.workers.vlm.pruning import get_pruner
from vidsift.workers.vlm.pruning_evs import evs_retention_mask
from vidsift.workers.vlm.pruning_vidcom2 import (
    vidcom2_frame_counts,
    vidcom2_retained_count,
    vidcom2_retention_mask,
    vllm_vidcom2_retained_count,
)


@pytest.mark.parametrize(
    ("frames", "rows", "cols", "ratio", "expected"),
    [(4, 3, 5, 0.25, 15), (4, 3, 5, 1.0, 60), (1, 1, 1, 0.01, 1), (10, 2, 2, 0.1, 4), (3, 1, 7, 0.5, 10)],
)
def test_count_hand_cases(frames, rows, cols, ratio, expected):
    assert vidcom2_retained_count(frames, rows, cols, ratio) == expected


@pytest.mark.parametrize(
    ("frames", "rows", "cols", "rate", "expected"),
    # by hand from max(T, min(int(T*H*W*(1 - q)), T*H*W)): 60*0.75 = 45; 60*(1 - 0.9) is
    # 60*0.09999999999999998 = 5.99.. -> 5 (>= 4 steps);
    # 40*0.05 = 2 < 10 steps -> 10; q = 0 keeps all 12; 10*(1 - 0.9) = 0.99999... -> 0 -> 1 step;
    # 24*64*0.1 = 153.6 -> 153; 24*64*0.05 = 76.8 -> 76
    [(4, 3, 5, 0.25, 45), (4, 3, 5, 0.9, 5), (10, 2, 2, 0.95, 10), (3, 2, 2, 0.0, 12),
     (1, 1, 10, 0.9, 1), (24, 8, 8, 0.9, 153), (24, 8, 8, 0.95, 76)],
)
def test_vllm_vidcom2_count_hand_cases(frames, rows, cols, rate, expected):
    """vLLM's --video-pruning-method vidcom2 count (vllm/multimodal/video_prune/vidcom2.py)."""
    assert vllm_vidcom2_retained_count(frames, rows, cols, rate) == expected


@pytest.mark.parametrize(("rate", "vidcom2", "evs"), [(0.5, 46, 46), (0.9, 13, 26)])
def test_plan_for_a_vidcom2_server_predicts_vllms_count(rate, vidcom2, evs):
    """vlm.server_pruning_method = vidcom2: a clip sent as a video part (4 steps of 20 tokens)
    keeps max(4, int(80 * (1 - q))) (q = 0.9: 80 * 0.0999.. -> 7), evs max(20, ...) (the first
    step whole); the image keeps its 6. Values by hand."""
    from tests.tiny_vlm import random_segment
    from vidsift.core.config import VLMConfig
    from vidsift.core.types import SegmentKind, TokenSet
    from vidsift.core.vision import QWEN2_5_VL
    from vidsift.workers.vlm.remote import server_visual_tokens

    f = QWEN2_5_VL.factor
    token_set = TokenSet("v.mp4", [
        random_segment(SegmentKind.IMAGE, [0.0], 2 * f, 3 * f, 0),
        random_segment(SegmentKind.CLIP, [1.0 + i / 2 for i in range(8)], 4 * f, 5 * f, 1),
    ], budget=200)
    assert [s.tokens for s in token_set.segments] == [6, 80]
    cfg = VLMConfig(backend="openai", model="m", clips="video", server_pruning_rate=rate,
                    server_pruning_method="vidcom2")
    assert server_visual_tokens(token_set, cfg) == vidcom2
    as_evs = cfg.model_copy(update={"server_pruning_method": "evs"})
    assert server_visual_tokens(token_set, as_evs) == evs


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
