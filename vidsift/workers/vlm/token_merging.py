"""Training-free token merging with token sizes: merged tokens are size-weighted means, a merged
token's size is how many original tokens it stands for, and its (t, h, w) M-RoPE position is its
first occurrence's (the lowest original index in its group). Counts are exact before any data:
N - r tokens come out.

- tome_merge: ToMe bipartite soft matching (Bolya et al., "Token Merging: Your ViT But Faster",
  ICLR 2023), as AuroraCap (Chai et al., arXiv 2410.03051) applies it to visual tokens with sizes:
  tokens alternate into sets A (even index) and B (odd); each A token's edge is its most
  cosine-similar B token; the r strongest edges merge their A token into its B token.
- temporal_merge: HoliTom-style temporal merging (Shao et al., arXiv 2505.21334): a token whose
  cosine similarity to the token at the same (h, w) one step earlier is among the r highest joins
  that position's run and is merged into the run's first occurrence.

Shapes: tokens (N, D) float; sizes (N,) float, default ones; positions (N, 3) int (t, h, w);
grids (T, H, W, D). Ties go to the lower index (stable sorts), so results are deterministic.
"""

from __future__ import annotations

import numpy as np

COSINE_EPS = 1e-8


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), COSINE_EPS)


def _first_occurrence_ids(group: np.ndarray) -> np.ndarray:
    """Any (N,) int labels -> the same partition labelled 0, 1, ... in order of first occurrence."""
    _, first, inverse = np.unique(group, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.reshape(-1)]


def _merge_groups(tokens, sizes, positions, group: np.ndarray):
    """Size-weighted mean per group id (N,) -> outputs ordered by each group's first index."""
    first = np.full(group.max() + 1, len(group))
    np.minimum.at(first, group, np.arange(len(group)))
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    out = rank[group]
    merged_sizes = np.zeros(len(order))
    np.add.at(merged_sizes, out, sizes)
    weighted = np.zeros((len(order), tokens.shape[1]))
    np.add.at(weighted, out, tokens * sizes[:, None])
    return weighted / merged_sizes[:, None], merged_sizes, positions[first[order]]


def _check(tokens, sizes, positions, r, limit_name: str, limit: int):
    if not isinstance(tokens, np.ndarray) or tokens.ndim != 2 or len(tokens) == 0:
        shape = getattr(tokens, "shape", type(tokens).__name__)
        raise ValueError(f"merging: tokens must be a non-empty (N, D) array, got {shape}")
    n = len(tokens)
    sizes = np.ones(n) if sizes is None else np.asarray(sizes, dtype=np.float64)
    if sizes.shape != (n,) or (sizes <= 0).any():
        raise ValueError(f"merging: sizes must be ({n},) positive, got shape {sizes.shape}")
    positions = np.asarray(positions)
    if positions.shape != (n, 3):
        raise ValueError(f"merging: positions must be ({n}, 3), got {positions.shape}")
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 0 <= r <= limit:
        raise ValueError(f"merging: r must be an int in [0, {limit}] ({limit_name}), got {r!r}")
    return tokens.astype(np.float64, copy=False), sizes, positions


def tome_groups(tokens: np.ndarray, r: int, *, sizes: np.ndarray | None = None) -> np.ndarray:
    """ToMe's matching alone: (N,) int group ids (0..N - r - 1, numbered by first occurrence) of
    merging r tokens of set A into their most similar B token (r <= ceil(N / 2); 0 when N = 1)."""
    count = len(tokens) if isinstance(tokens, np.ndarray) and tokens.ndim == 2 else 0
    limit = (count + 1) // 2 if count >= 2 else 0  # a lone token has no partner in B
    x, _, _ = _check(tokens, sizes, np.zeros((count, 3)), r, "the even-index set A", limit)
    n = len(x)
    a, b = np.arange(0, n, 2), np.arange(1, n, 2)
    group = np.arange(n)
    if r:
        similarity = _unit(x[a]) @ _unit(x[b]).T
        best = similarity.argmax(axis=1)
        strongest = np.argsort(-similarity[np.arange(len(a)), best], kind="stable")[:r]
        group[a[strongest]] = b[best[strongest]]
    return _first_occurrence_ids(group)


def tome_merge(tokens: np.ndarray, r: int, *, positions: np.ndarray, sizes: np.ndarray | None = None):
    """ToMe: merge r tokens (r <= the size of set A, ceil(N / 2); 0 when N = 1). Returns (tokens (N - r, D),
    sizes (N - r,), positions (N - r, 3)); sizes sum to the input sizes' sum."""
    group = tome_groups(tokens, r, sizes=sizes)
    x, sizes, positions = _check(tokens, sizes, positions, r, "the even-index set A", len(tokens))
    return _merge_groups(x, sizes, positions, group)


def tome_groups_to(tokens: np.ndarray, count: int) -> np.ndarray:
    """ToMe repeated until `count` tokens remain (1 <= count <= N), as AuroraCap merges layer
    after layer: each round merges min(surplus, ceil(n / 2)) of the current tokens, which are the
    previous round's size-weighted means, so the result is the size-weighted mean of each final
    group. Returns (N,) int group ids numbered by first occurrence, exactly `count` of them."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= len(tokens):
        raise ValueError(f"merging: count must be an int in [1, {len(tokens)}], got {count!r}")
    x = tokens.astype(np.float64, copy=False)
    group = np.arange(len(x))
    current, sizes = x, np.ones(len(x))
    positions = np.zeros((len(x), 3))
    while len(current) > count:
        step = tome_groups(current, min(len(current) - count, (len(current) + 1) // 2), sizes=sizes)
        current, sizes, _ = _merge_groups(current, sizes, positions[: len(current)], step)
        group = step[group]
    return group


def temporal_groups(grid: np.ndarray, r: int) -> np.ndarray:
    """HoliTom-style matching alone: (T * H * W,) int group ids in (t, h, w) order, numbered by
    first occurrence, of merging the r tokens (of the (T - 1) * H * W with a predecessor) most
    similar to the same (h, w) one step earlier into their run's first occurrence."""
    if not isinstance(grid, np.ndarray) or grid.ndim != 4 or 0 in grid.shape:
        shape = getattr(grid, "shape", type(grid).__name__)
        raise ValueError(f"merging: grid must be a non-empty (T, H, W, D) array, got {shape}")
    frames, rows, cols, dim = grid.shape
    x, _, _ = _check(grid.reshape(-1, dim), None, np.zeros((frames * rows * cols, 3)), r,
                     "tokens with a predecessor", (frames - 1) * rows * cols)
    unit = _unit(x.reshape(frames, rows * cols, dim))
    similarity = (unit[1:] * unit[:-1]).sum(axis=-1).reshape(-1)  # token (t + 1, j) vs (t, j)
    merged = np.zeros((frames, rows * cols), dtype=bool)
    merged.reshape(-1)[rows * cols + np.argsort(-similarity, kind="stable")[:r]] = True
    run = np.cumsum(~merged, axis=0)  # per (h, w): a new run wherever a token is not merged
    return _first_occurrence_ids(((run - 1) * rows * cols + np.arange(rows * cols)[None, :]).reshape(-1))


def temporal_merge(grid: np.ndarray, r: int, *, sizes: np.ndarray | None = None):
    """HoliTom-style: merge the r tokens (of the (T - 1) * H * W with a predecessor) most similar
    to the same (h, w) one step earlier into their run's first occurrence. grid (T, H, W, D);
    sizes (T * H * W,) in (t, h, w) order. Returns (tokens, sizes, positions), T * H * W - r rows."""
    group = temporal_groups(grid, r)
    frames, rows, cols, dim = grid.shape
    axes = np.meshgrid(np.arange(frames), np.arange(rows), np.arange(cols), indexing="ij")
    positions = np.stack(axes, axis=-1).reshape(-1, 3)
    x, sizes, positions = _check(grid.reshape(-1, dim), sizes, positions, r,
                                 "tokens with a predecessor", len(positions))
    return _merge_groups(x, sizes, positions, group)
