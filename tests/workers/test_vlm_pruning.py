import time

import pytest
import torch

from vidsift.workers.vlm.pruning import PRUNERS, get_pruner

SELECTING = ["divprune", "kcenter", "coverage", "temporal"]


def grid_positions(steps, rows, cols):
    t, h, w = torch.meshgrid(torch.arange(steps), torch.arange(rows), torch.arange(cols), indexing="ij")
    return torch.stack([t, h, w], dim=-1).reshape(-1, 3)


@pytest.fixture(scope="module")
def tokens():
    torch.manual_seed(0)
    return torch.randn(240, 16), torch.randn(5, 16), grid_positions(4, 6, 10)


def min_pairwise_distance(x):
    x = torch.nn.functional.normalize(x, dim=1)
    d = 1.0 - x @ x.T
    d.fill_diagonal_(float("inf"))
    return float(d.min())


@pytest.mark.parametrize("name", SELECTING)
@pytest.mark.parametrize("keep", [1, 7, 60, 239])
def test_exact_k_ascending_and_deterministic(name, keep, tokens):
    x, text, thw = tokens
    prune = get_pruner(name)
    kept = prune(x, keep, token_thw=thw, text_features=text)
    again = prune(x.clone(), keep, token_thw=thw.clone(), text_features=text.clone())
    assert kept.dtype == torch.long and len(kept) == keep
    assert bool((kept[1:] > kept[:-1]).all())  # ascending, no duplicates
    assert torch.equal(kept, again)


@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_keep_at_least_n_keeps_everything(name, tokens):
    x, text, thw = tokens
    assert torch.equal(PRUNERS[name](x, 500, token_thw=thw), torch.arange(240))


def test_none_keeps_everything(tokens):
    x, _, _ = tokens
    assert torch.equal(get_pruner("none")(x, 3), torch.arange(240))


def test_divprune_is_more_diverse_than_random_subsets(tokens):
    x, _, _ = tokens
    kept = get_pruner("divprune")(x, 30)
    ours = min_pairwise_distance(x[kept])
    gen = torch.Generator().manual_seed(1)
    randoms = [min_pairwise_distance(x[torch.randperm(240, generator=gen)[:30]]) for _ in range(50)]
    assert ours >= max(randoms)


def test_diversity_pruners_keep_one_of_each_duplicate_cluster():
    torch.manual_seed(2)
    centres = torch.randn(6, 32) * 5
    x = centres.repeat_interleave(20, dim=0) + 0.01 * torch.randn(120, 32)
    for name in ("divprune", "kcenter", "coverage"):
        kept = get_pruner(name)(x, 6)
        assert sorted((kept // 20).tolist()) == [0, 1, 2, 3, 4, 5], name


def test_kcenter_starts_where_the_question_points():
    torch.manual_seed(3)
    x = torch.randn(50, 8)
    kept = get_pruner("kcenter")(x, 1, text_features=x[17:18] * 3)
    assert kept.tolist() == [17]


def test_coverage_favours_tokens_near_the_question():
    torch.manual_seed(4)
    x = torch.nn.functional.normalize(torch.randn(200, 32), dim=1)
    question = x[123:124] + 0.01 * torch.randn(1, 32)
    assert 123 in get_pruner("coverage")(x, 3, text_features=question).tolist()


def test_temporal_drops_tokens_that_did_not_change():
    torch.manual_seed(5)
    thw = grid_positions(3, 4, 4)  # 3 steps of 4 x 4 tokens
    frame = torch.randn(16, 8)
    later = frame.clone()
    later[[2, 9]] = torch.randn(2, 8)  # two positions change at step 1, nothing at step 2
    x = torch.cat([frame, later, later])
    kept = get_pruner("temporal")(x, 18, token_thw=thw)
    assert kept.tolist() == list(range(16)) + [16 + 2, 16 + 9]


def test_temporal_works_per_segment():
    thw = torch.cat([grid_positions(1, 2, 2), grid_positions(2, 2, 2)])
    segment_ids = torch.tensor([0] * 4 + [1] * 8)
    x = torch.cat([torch.eye(4), torch.eye(4), torch.eye(4)])  # second clip: step 1 repeats step 0
    kept = get_pruner("temporal")(x, 8, token_thw=thw, segment_ids=segment_ids)
    assert kept.tolist() == list(range(8))  # the image and the clip's first step


def test_bad_arguments_are_value_errors(tokens):
    x, text, thw = tokens
    with pytest.raises(ValueError, match="token_thw"):
        get_pruner("temporal")(x, 10)
    with pytest.raises(ValueError, match="keep"):
        get_pruner("divprune")(x, 0)
    with pytest.raises(ValueError, match="features"):
        get_pruner("divprune")(x[0], 1)
    with pytest.raises(ValueError, match="text_features"):
        get_pruner("coverage")(x, 3, text_features=torch.randn(2, 7))
    with pytest.raises(ValueError, match="unknown pruner"):
        get_pruner("magic")


@pytest.mark.parametrize("name", SELECTING)
def test_large_inputs_are_fast(name):
    # 20,000 tokens of 64 dims, keeping 10% (DivPrune's default ratio); no N x N matrix.
    torch.manual_seed(6)
    x = torch.randn(20_000, 64)
    thw = grid_positions(20, 25, 40)
    started = time.perf_counter()
    kept = get_pruner(name)(x, 2_000, token_thw=thw, text_features=torch.randn(8, 64))
    elapsed = time.perf_counter() - started
    assert len(kept) == 2_000
    assert elapsed < 6.0, f"{name}: {elapsed:.2f} s"
