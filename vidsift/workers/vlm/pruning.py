"""Post-encoder visual-token pruning: which of the vision encoder's output tokens the LLM keeps.

Every pruner has the signature
    (features, keep, *, token_thw=None, segment_ids=None, text_features=None) -> LongTensor
features: (N, D) tokens after the vision merger (any float dtype, any device).
keep: how many to keep (>= 1; keep >= N keeps all).
token_thw: (N, 3) long, each token's (t, h, w) position in its segment's merged grid.
segment_ids: (N,) long, which segment (image or clip) each token belongs to.
text_features: (M, D) embedded question tokens, in the same space as features.
Returns the kept indices as a (keep,) LongTensor on features' device, ascending (the original
order), so the caller can gather tokens and their original 3D M-RoPE positions alike.

All pure torch and deterministic (ties go to the lower index); none of them builds an N x N matrix.
- divprune (DivPrune): max-min diversity, greedy farthest point in cosine distance, O(keep * N * D)
  with a running minimum; seeded at the token farthest from the mean token.
- kcenter (ToDRE's diversity stage): greedy k-center in Euclidean distance on the raw features
  (magnitudes matter), seeded at the token closest to the question, else to the mean token.
- coverage (MMTok): greedy facility location maximising how well the kept tokens cover the
  question's tokens and the visual tokens (exact greedy, incremental gains).
- temporal (vLLM EVS): drop tokens that did not change since the same position one temporal step
  earlier in the same segment; keeps each segment's first step before anything else.
- evs (vLLM EVS exactly, pruning_evs): per segment, the first step whole, then the tokens most
  unlike their predecessor, vLLM's count for rate 1 - keep / N.
- vidcom2 (VidCom², pruning_vidcom2): per segment, frame budgets by frame uniqueness, then
  each frame's most distinct tokens; retention ratio keep / N.
- hiprune, fastervlm (vision_attention): by the attention the vision encoder's own layers give
  each token (HiPrune: middle-layer anchors, their neighbours, last-layer registers; FasterVLM:
  last-layer attention received); they also take attention={layer: (N,) scores}.
- none: keeps every token.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch

from vidsift.core.registry import lookup
from vidsift.workers.vlm.vision_attention import fastervlm, hiprune

# MMTok's visual term: tokens are scored on how well they cover this many reference tokens (an
# even subsample of all of them), bounding its (N, C) similarity matrix.
COVERAGE_REFERENCES = 256
TEXT_SHARE = 0.5  # weight of the question term in the coverage objective when text is given


def _check(features: torch.Tensor, keep: int, token_thw, segment_ids, text_features) -> None:
    if features.ndim != 2:
        raise ValueError(f"pruning: features must be (N, D), got {tuple(features.shape)}")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"pruning: keep must be a positive int, got {keep!r}")
    n = features.shape[0]
    if token_thw is not None and tuple(token_thw.shape) != (n, 3):
        raise ValueError(f"pruning: token_thw must be ({n}, 3), got {tuple(token_thw.shape)}")
    if segment_ids is not None and tuple(segment_ids.shape) != (n,):
        raise ValueError(f"pruning: segment_ids must be ({n},), got {tuple(segment_ids.shape)}")
    if text_features is not None and (
        text_features.ndim != 2 or text_features.shape[1] != features.shape[1]
    ):
        raise ValueError(
            f"pruning: text_features must be (M, {features.shape[1]}), got {tuple(text_features.shape)}"
        )


@contextlib.contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Greedy loops run thousands of small vector ops; on a CPU, waking the intra-op thread pool
    for each costs more than it saves (10x slower on a busy 2-core machine), so they run on one
    thread, restored afterwards. No effect on other devices."""
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _everything(features: torch.Tensor) -> torch.Tensor:
    return torch.arange(features.shape[0], device=features.device)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=-1)


def _farthest_points(points: torch.Tensor, keep: int, chosen: torch.Tensor) -> torch.Tensor:
    """Greedy farthest-point traversal in Euclidean distance: starting from `chosen` (1-D long,
    non-empty), repeatedly add the point farthest from its nearest chosen point, until `keep`.

    points: (N, D) float32. One running nearest distance per point, never an N x N matrix: each
    step is one matrix-vector product, O(N * D), and the loop never waits on the device, so on a
    GPU the steps queue up. Returns the chosen indices in pick order.
    """
    n, device = points.shape[0], points.device
    norms = (points * points).sum(dim=1)
    nearest = torch.full((n,), float("inf"), device=device)
    for block in chosen.split(1024):  # squared distances to the seeds, in bounded blocks
        squared = norms[:, None] - 2.0 * (points @ points[block].T) + norms[block][None, :]
        nearest = torch.minimum(nearest, squared.min(dim=1).values)
    nearest[chosen] = float("-inf")  # never picked again
    picked = torch.empty(keep, dtype=torch.long, device=device)
    picked[: len(chosen)] = chosen
    dots = torch.empty(n, device=device)
    for i in range(len(chosen), keep):
        index = nearest.argmax().view(1)
        picked[i : i + 1] = index
        torch.mv(points, points.index_select(0, index).squeeze(0), out=dots)
        squared = dots.mul_(-2.0).add_(norms).add_(norms.index_select(0, index))
        torch.minimum(nearest, squared, out=nearest)
        nearest.index_fill_(0, index, float("-inf"))
    return picked


def divprune(features, keep, *, token_thw=None, segment_ids=None, text_features=None) -> torch.Tensor:
    """DivPrune: keep the `keep` tokens that greedily maximise the minimum pairwise cosine
    distance. DivPrune seeds with the most isolated token, which needs all N x N distances; the
    token farthest from the mean token is the O(N) stand-in."""
    _check(features, keep, token_thw, segment_ids, text_features)
    if keep >= features.shape[0]:
        return _everything(features)
    points = _unit(features)
    seed = (points @ _unit(points.mean(dim=0))).argmin().view(1)
    # Euclidean distance between unit vectors is monotone in cosine distance: same picks.
    with _one_cpu_thread(points.device):
        return _farthest_points(points, keep, seed).sort().values


def kcenter(features, keep, *, token_thw=None, segment_ids=None, text_features=None) -> torch.Tensor:
    """ToDRE's greedy k-center: centers that minimise the largest Euclidean distance from any
    token to its nearest kept token (a 2-approximation). Seeded where the task points: the token
    closest to the question's mean embedding, or without a question the most typical token."""
    _check(features, keep, token_thw, segment_ids, text_features)
    if keep >= features.shape[0]:
        return _everything(features)
    points = features.float()
    if text_features is not None and len(text_features):
        seed = (_unit(points) @ _unit(text_features.float().mean(dim=0))).argmax().view(1)
    else:
        seed = ((points - points.mean(dim=0)) ** 2).sum(dim=1).argmin().view(1)
    with _one_cpu_thread(points.device):
        return _farthest_points(points, keep, seed).sort().values


def _greedy_coverage(
    points: torch.Tensor, clients: torch.Tensor, weights: torch.Tensor, keep: int
) -> torch.Tensor:
    """Greedy facility location: pick up to `keep` rows of points (N, D) maximising
    sum_c weights[c] * max_picked max(0, cos(client c, pick)); stops early when no pick gains.
    Exact greedy with incremental gains: a pick changes the other tokens' gains only through the
    clients it covers better, and only those columns are recomputed. Returns picks in order."""
    sim = (points @ clients.T).clamp_min(0.0)  # (N, C)
    covered = torch.zeros(sim.shape[1], device=points.device)
    gains = sim @ weights  # exact gain of each token while nothing is kept
    picked: list[int] = []
    while len(picked) < keep:
        best = int(gains.argmax())
        if float(gains[best]) <= 1e-9:
            break  # everything covered: the objective cannot tell the rest apart
        picked.append(best)
        raised = covered < sim[best]
        columns = sim[:, raised]
        old, new = covered[raised], sim[best, raised]
        gains -= ((columns - old).clamp_min(0.0) - (columns - new).clamp_min(0.0)) @ weights[raised]
        covered[raised] = new
        gains[best] = float("-inf")  # stays -inf: later updates subtract finite amounts
    return torch.tensor(picked, dtype=torch.long, device=points.device)


def coverage(features, keep, *, token_thw=None, segment_ids=None, text_features=None) -> torch.Tensor:
    """MMTok-style coverage: greedily keep the token that most raises
        TEXT_SHARE / M * sum_text max_kept sim(t, v) + (1 - TEXT_SHARE) / C * sum_ref max_kept sim(r, v)
    (cosine similarities clipped at 0; without text the visual term has all the weight; the
    references are an even subsample of the tokens). Once every client is fully covered, gains
    are zero and the remaining slots go to the tokens farthest from everything kept (farthest
    point), i.e. the least covered."""
    _check(features, keep, token_thw, segment_ids, text_features)
    n = features.shape[0]
    if keep >= n:
        return _everything(features)
    points = _unit(features)
    refs = torch.linspace(0, n - 1, min(n, COVERAGE_REFERENCES), device=points.device).round().long()
    clients = [points[refs]]
    client_weights = [torch.full((len(refs),), 1.0 / len(refs), device=points.device)]
    if text_features is not None and len(text_features):
        text = _unit(text_features)
        clients.append(text)
        client_weights[0] *= 1.0 - TEXT_SHARE
        client_weights.append(torch.full((len(text),), TEXT_SHARE / len(text), device=points.device))
    weights = torch.cat(client_weights)
    with _one_cpu_thread(points.device):
        chosen = _greedy_coverage(points, torch.cat(clients), weights, keep)
        if len(chosen) < keep:
            if len(chosen) == 0:  # features all orthogonal to the clients: start anywhere
                chosen = torch.zeros(1, dtype=torch.long, device=points.device)
            chosen = _farthest_points(points, keep, chosen)
    return chosen.sort().values


def temporal(features, keep, *, token_thw=None, segment_ids=None, text_features=None) -> torch.Tensor:
    """EVS-style temporal redundancy: a token's change is 1 - cos(token, the token at the same
    (h, w) one temporal step earlier in the same segment). Tokens with no predecessor (an image,
    a clip's first step) rank above all others, among themselves by how much they differ from
    their segment's mean first-step token; the `keep` highest-ranked tokens stay. Needs token_thw."""
    _check(features, keep, token_thw, segment_ids, text_features)
    if token_thw is None:
        raise ValueError("pruning: the temporal pruner needs token_thw (each token's (t, h, w))")
    n = features.shape[0]
    if keep >= n:
        return _everything(features)
    device = features.device
    points = _unit(features)
    thw = token_thw.to(device=device, dtype=torch.long)
    segments = (
        torch.zeros(n, dtype=torch.long, device=device)
        if segment_ids is None
        else segment_ids.to(device=device, dtype=torch.long)
    )
    t, h, w = thw.unbind(dim=1)
    steps, rows, cols = int(t.max()) + 1, int(h.max()) + 1, int(w.max()) + 1
    key = ((segments * steps + t) * rows + h) * cols + w
    sorted_keys, order = key.sort()
    previous_key = key - rows * cols  # same segment and (h, w), one step earlier
    slot = torch.searchsorted(sorted_keys, previous_key).clamp_max(n - 1)
    has_previous = (t > 0) & (sorted_keys[slot] == previous_key)
    previous = order[slot]
    change = 1.0 - (points * points[previous]).sum(dim=1)

    first = ~has_previous
    _, segment_index = segments.unique(return_inverse=True)
    count = segment_index.max() + 1
    sums = torch.zeros(int(count), points.shape[1], device=device).index_add_(
        0, segment_index[first], points[first]
    )
    distinct = 1.0 - (points * _unit(sums)[segment_index]).sum(dim=1)
    score = torch.where(has_previous, change, 4.0 + distinct)  # change, distinct lie in [0, 2]
    ranked = torch.sort(score, descending=True, stable=True).indices
    return ranked[:keep].sort().values


def _segment_grids(name, features, token_thw, segment_ids) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each segment's tokens as a full grid: per segment (in id order), the indices of its tokens
    in (t, h, w) order, (n_s,), and their (T, H, W, D) float32 numpy grid. Needs token_thw; each
    segment must be a full grid (ValueError naming `name` otherwise)."""
    if token_thw is None:
        raise ValueError(f"pruning: the {name} pruner needs token_thw (each token's (t, h, w))")
    n = features.shape[0]
    points = features.detach().float().cpu().numpy()
    thw = token_thw.cpu().numpy()
    segments = torch.zeros(n, dtype=torch.long) if segment_ids is None else segment_ids.cpu()
    out = []
    for segment in segments.unique().tolist():
        index = torch.nonzero(segments == segment).flatten().numpy()
        frames, rows, cols = (int(v) + 1 for v in thw[index].max(axis=0))
        order = np.lexsort((thw[index, 2], thw[index, 1], thw[index, 0]))
        if len(index) != frames * rows * cols or (thw[index[order]] != _grid(frames, rows, cols)).any():
            raise ValueError(f"pruning: {name} needs each segment to be a full (T, H, W) grid; segment "
                             f"{segment} has {len(index)} tokens for a {frames}x{rows}x{cols} grid")
        out.append((index[order], points[index[order]].reshape(frames, rows, cols, -1)))
    return out


def _per_segment_grid(name, features, keep, token_thw, segment_ids, text_features, mask_of_grid):
    """Applies `mask_of_grid` ((T, H, W, D) float32 numpy grid -> (T, H, W) bool) to each
    segment's full token grid on its own, as vLLM prunes each video on its own; returns the kept
    indices ascending. Needs token_thw; each segment must be a full grid."""
    _check(features, keep, token_thw, segment_ids, text_features)
    if keep >= features.shape[0] and token_thw is not None:
        return _everything(features)
    kept = [index[mask_of_grid(grid).reshape(-1)]
            for index, grid in _segment_grids(name, features, token_thw, segment_ids)]
    return torch.from_numpy(np.sort(np.concatenate(kept))).to(features.device)


def evs(features, keep, *, token_thw=None, segment_ids=None, text_features=None) -> torch.Tensor:
    """vLLM's EVS rule (pruning_evs: first step kept whole, then the tokens most unlike the same
    (h, w) one step earlier), per segment. The pruning rate is q = 1 - keep / N, so a segment
    keeps evs_retained_count(T, H, W, q) tokens and an image (T = 1) keeps all; the total is that
    sum, not `keep`."""
    from vidsift.workers.vlm.pruning_evs import evs_retention_mask

    rate = 1.0 - min(keep, features.shape[0]) / max(features.shape[0], 1)
    return _per_segment_grid("evs", features, keep, token_thw, segment_ids, text_features,
                             lambda grid: evs_retention_mask(grid, rate))


def vidcom2(features, keep, *, token_thw=None, segment_ids=None, text_features=None) -> torch.Tensor:
    """VidCom²-style frame-adaptive retention (pruning_vidcom2), per segment at retention ratio
    keep / N: each segment keeps vidcom2_retained_count(T, H, W, keep / N) tokens, the distinct
    frames more of them."""
    from vidsift.workers.vlm.pruning_vidcom2 import vidcom2_retention_mask

    ratio = min(keep, features.shape[0]) / max(features.shape[0], 1)
    return _per_segment_grid("vidcom2", features, keep, token_thw, segment_ids, text_features,
                             lambda grid: vidcom2_retention_mask(grid, ratio))


def _grid(frames: int, rows: int, cols: int) -> np.ndarray:
    """(frames * rows * cols, 3) every (t, h, w) of a grid, in t-major order."""
    axes = np.meshgrid(np.arange(frames), np.arange(rows), np.arange(cols), indexing="ij")
    return np.stack(axes, axis=-1).reshape(-1, 3)


def prune_none(features, keep, *, token_thw=None, segment_ids=None, text_features=None) -> torch.Tensor:
    """No pruning: every token is kept, whatever `keep` says."""
    _check(features, keep, token_thw, segment_ids, text_features)
    return _everything(features)


Pruner = Callable[..., torch.Tensor]

PRUNERS: dict[str, Pruner] = {
    "none": prune_none,
    "divprune": divprune,
    "kcenter": kcenter,
    "coverage": coverage,
    "temporal": temporal,
    "evs": evs,
    "vidcom2": vidcom2,
    "hiprune": hiprune,  # vision_attention: reads the encoder's attention (attention_layers)
    "fastervlm": fastervlm,
}


def get_pruner(name: str) -> Pruner:
    return lookup(PRUNERS, name, "pruner")


# ---- token merging (workers.vlm.token_merging) -------------------------------------------------
# A merger has the signature (features, ratio, *, token_thw, segment_ids) -> (N,) LongTensor of
# group ids, numbered 0.. in order of each group's first (lowest-index) token, per segment on its
# own (a group never spans two segments). The LLM then sees one token per group: the size-weighted
# mean of its members at its first member's place in the sequence and (t, h, w) M-RoPE position.
# Each segment of n_s = T * H * W tokens keeps merged_segment_count(name, T, H, W, ratio) tokens.


def merged_segment_count(name: str, frames: int, rows: int, cols: int, ratio: float) -> int:
    """Tokens a segment of `frames` x `rows` x `cols` merged tokens keeps under merger `name`
    at share `ratio` (0, 1]: tome max(1, round(n_s * ratio)); temporal the same but at least one
    step (rows * cols: only tokens with a predecessor merge, so an image keeps all)."""
    if name not in MERGERS:
        lookup(MERGERS, name, "merger")
    count = max(1, round(frames * rows * cols * ratio))
    return max(rows * cols, count) if name == "temporal" else min(count, frames * rows * cols)


def _merge_per_segment(name, features, ratio, token_thw, segment_ids, groups_of_grid) -> torch.Tensor:
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"merging: ratio must be in (0, 1], got {ratio!r}")
    group = np.empty(features.shape[0], dtype=np.int64)
    offset = 0
    for index, grid in _segment_grids(name, features, token_thw, segment_ids):
        frames, rows, cols = grid.shape[:3]
        local = groups_of_grid(grid, merged_segment_count(name, frames, rows, cols, ratio))
        group[index] = local + offset
        offset += int(local.max()) + 1
    # Renumbered by first occurrence over the whole sequence (segments may interleave by index).
    _, first, inverse = np.unique(group, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return torch.from_numpy(rank[inverse.reshape(-1)]).to(features.device)


def merge_tome(features, ratio, *, token_thw=None, segment_ids=None) -> torch.Tensor:
    """ToMe bipartite soft matching with sizes (token_merging.tome_groups_to), repeated within
    each segment until its count is reached."""
    from vidsift.workers.vlm.token_merging import tome_groups_to

    return _merge_per_segment("tome", features, ratio, token_thw, segment_ids,
                              lambda grid, count: tome_groups_to(grid.reshape(-1, grid.shape[-1]), count))


def merge_temporal(features, ratio, *, token_thw=None, segment_ids=None) -> torch.Tensor:
    """HoliTom-style temporal merging (token_merging.temporal_groups): within each segment, the
    tokens most like the same (h, w) one step earlier join that position's first occurrence."""
    from vidsift.workers.vlm.token_merging import temporal_groups

    return _merge_per_segment(
        "temporal", features, ratio, token_thw, segment_ids,
        lambda grid, count: temporal_groups(grid, grid[..., 0].size - count))


Merger = Callable[..., torch.Tensor]

MERGERS: dict[str, Merger] = {"tome": merge_tome, "temporal": merge_temporal}


def get_merger(name: str) -> Merger:
    return lookup(MERGERS, name, "merger")


def kept_visual_tokens(pruner: str, merger: str, grids: list[tuple[int, int, int]], ratio: float) -> int:
    """The visual tokens the LLM sees for segments of merged-token grids (T, H, W) under
    vlm.pruner / vlm.merger at vlm.prune_ratio, from the grids alone (before any request): what
    the in-process backend's prefill keeps (tested against it) and what a server pruning by the
    same rule keeps. One of pruner / merger is "none"."""
    sizes = [t * h * w for t, h, w in grids]
    total = sum(sizes)
    if total == 0:
        return 0
    if merger != "none":
        return sum(merged_segment_count(merger, t, h, w, ratio) for t, h, w in grids)
    if pruner == "none":
        return total
    keep = max(1, round(total * ratio))
    if keep >= total:
        return total
    if pruner == "evs":
        from vidsift.workers.vlm.pruning_evs import evs_retained_count

        return sum(evs_retained_count(t, h, w, 1.0 - keep / total) for t, h, w in grids)
    if pruner == "vidcom2":
        from vidsift.workers.vlm.pruning_vidcom2 import vidcom2_retained_count

        return sum(vidcom2_retained_count(t, h, w, keep / total) for t, h, w in grids)
    get_pruner(pruner)
    return keep
