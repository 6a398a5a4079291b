import numpy as np
import pytest

from vidsift.workers.vlm.token_merging import temporal_merge, tome_merge


def grid_positions(frames, rows, cols):
    axes = np.meshgrid(np.arange(frames), np.arange(rows), np.arange(cols), indexing="ij")
    return np.stack(axes, axis=-1).reshape(-1, 3)


@pytest.mark.parametrize("n", [1, 2, 7, 40])
@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_tome_exact_count_sizes_sum_positions_first_occurrence(n, share):
    rng = np.random.default_rng(n)
    x, positions = rng.normal(size=(n, 8)), grid_positions(1, 1, n)
    sizes = rng.integers(1, 4, size=n).astype(float)
    r = int(share * ((n + 1) // 2)) if n > 1 else 0  # up to all of set A (even indices)
    tokens, merged_sizes, merged_positions = tome_merge(x, r, positions=positions, sizes=sizes)
    assert len(tokens) == len(merged_sizes) == len(merged_positions) == n - r
    assert merged_sizes.sum() == sizes.sum()
    # each output position is an input's, in input order (the groups' first occurrences)
    columns = merged_positions[:, 2]
    assert (np.diff(columns) > 0).all() and set(columns) <= set(range(n))
    again = tome_merge(x.copy(), r, positions=positions, sizes=sizes)
    assert np.array_equal(tokens, again[0])


def test_tome_merges_the_duplicate_pair_by_size_weighted_mean():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4))
    x[4] = 2.0 * x[3]  # token 4 (set A) is parallel to token 3 (set B): the strongest edge
    sizes = np.array([1.0, 1, 1, 3, 1, 1])
    tokens, merged_sizes, positions = tome_merge(x, 1, positions=grid_positions(1, 2, 3), sizes=sizes)
    assert merged_sizes.tolist() == [1, 1, 1, 4, 1]
    assert positions[3].tolist() == [0, 1, 0]  # token 3's (t, h, w): the first occurrence
    assert np.allclose(tokens[3], (3 * x[3] + x[4]) / 4)


def test_temporal_merge_into_first_occurrence():
    rng = np.random.default_rng(1)
    static = rng.normal(size=(1, 2, 2, 8))
    grid = np.repeat(static, 4, axis=0) + 1e-3 * rng.normal(size=(4, 2, 2, 8))
    grid[2, 0, 1] = rng.normal(size=8)  # position (0, 1) changes content at step 2
    grid[3, 0, 1] = grid[2, 0, 1]
    tokens, sizes, positions = temporal_merge(grid, 11)  # all 12 with a predecessor but the change
    assert len(tokens) == 16 - 11 and sizes.sum() == 16
    rows = {tuple(p): s for p, s in zip(positions.tolist(), sizes.tolist())}
    assert rows == {(0, 0, 0): 4, (0, 0, 1): 2, (0, 1, 0): 4, (0, 1, 1): 4, (2, 0, 1): 2}
    assert np.allclose(tokens[positions.tolist().index([2, 0, 1])], grid[2:, 0, 1].mean(axis=0))


@pytest.mark.parametrize("shape", [(1, 2, 3, 4), (5, 1, 1, 4), (3, 4, 1, 4)])
def test_temporal_merge_edges_exact_count(shape):
    grid = np.random.default_rng(2).normal(size=shape)
    most = (shape[0] - 1) * shape[1] * shape[2]
    for r in (0, most // 2, most):
        tokens, sizes, positions = temporal_merge(grid, r)
        assert len(tokens) == grid[..., 0].size - r and sizes.sum() == grid[..., 0].size
        assert len({tuple(p) for p in positions.tolist()}) == len(positions)
    if most == 0:
        assert np.array_equal(temporal_merge(grid, 0)[0], grid.reshape(-1, shape[-1]))


def test_bad_arguments_name_the_argument():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="r must"):
        tome_merge(x, 3, positions=grid_positions(1, 1, 4))
    with pytest.raises(ValueError, match="r must"):
        tome_merge(np.zeros((1, 2)), 1, positions=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="positions"):
        tome_merge(x, 1, positions=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="sizes"):
        tome_merge(x, 1, positions=grid_positions(1, 1, 4), sizes=np.zeros(4))
    with pytest.raises(ValueError, match="tokens"):
        tome_merge(np.zeros(4), 1, positions=grid_positions(1, 1, 4))
    with pytest.raises(ValueError, match="grid"):
        temporal_merge(np.zeros((2, 2, 2)), 1)
    with pytest.raises(ValueError, match="r must"):
        temporal_merge(np.zeros((2, 2, 2, 3)), 5)
