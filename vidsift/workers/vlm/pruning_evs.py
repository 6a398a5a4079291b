"""EVS (Efficient Video Sampling) as vLLM serves it with `--video-pruning-rate q`.

Paper: Bagrov et al., "Efficient Video Sampling: Pruning Temporally Redundant Tokens for Faster
VLM Inference" (arXiv 2510.14624). Rule mirrored from vLLM's vllm/multimodal/evs.py
(compute_retained_tokens_count, compute_retention_mask), re-implemented here in numpy:

- count: a video of T temporal steps of H x W merged tokens keeps
      max(H * W, floor(float(T * H * W) * (1 - q)))
  tokens. The product is the float64 one vLLM computes (Python `int()` truncation of
  `total * (1 - q)`), so float error carries over identically: q = 0.9 on 10 tokens is
  floor(10 * 0.09999999999999998) = 0, not 1. The count depends on (T, H, W, q) only, so vLLM
  sizes the prompt's placeholders before the encoder runs, and a plan predicts it exactly.
- mask: token (t, h, w)'s score is 1 - cos(x[t, h, w], x[t - 1, h, w]); every token of the first
  step scores 255 (above any dissimilarity, which lies in [0, 2]), so the first step is kept whole.
  The `count` highest scores stay; ties go to the lower flat index (a stable descending sort).

Units: T counts temporal grid steps (for Qwen-VL, frame pairs: temporal_patch_size = 2), H and W
merged-token rows and columns (patch grid // spatial_merge_size). Every kept token keeps its own
(t, h, w), so its M-RoPE position is the unpruned one.
"""

from __future__ import annotations

import numpy as np

FIRST_STEP_SCORE = 255.0  # vLLM's score for first-step tokens: above every 1 - cos in [0, 2]
COSINE_EPS = 1e-8  # each norm's floor, as torch.nn.functional.cosine_similarity


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"evs: {name} must be a positive int, got {value!r}")
    return int(value)


def _rate(rate) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"evs: rate must be a float in [0, 1), got {rate!r}")
    return float(rate)


def evs_retained_count(frames: int, rows: int, cols: int, rate: float) -> int:
    """Tokens vLLM keeps for one video of `frames` temporal steps of `rows` x `cols` merged
    tokens at `--video-pruning-rate rate` (rate in [0, 1); 0 keeps all): see the module rule."""
    frames, rows, cols = (
        _positive_int(v, n) for v, n in ((frames, "frames"), (rows, "rows"), (cols, "cols"))
    )
    rate = _rate(rate)
    per_step = rows * cols
    return max(per_step, int(per_step * frames * (1 - rate)))


def evs_scores(embeddings: np.ndarray) -> np.ndarray:
    """(T, H, W, D) float token grid -> (T, H, W) float64 EVS scores: 255 on the first step,
    else 1 - cosine similarity with the same (h, w) one step earlier."""
    if not isinstance(embeddings, np.ndarray) or embeddings.ndim != 4 or 0 in embeddings.shape:
        shape = getattr(embeddings, "shape", type(embeddings).__name__)
        raise ValueError(f"evs: embeddings must be a non-empty (T, H, W, D) array, got {shape}")
    x = embeddings.astype(np.float64, copy=False)
    norms = np.maximum(np.linalg.norm(x, axis=-1), COSINE_EPS)
    cosine = (x[1:] * x[:-1]).sum(axis=-1) / (norms[1:] * norms[:-1])
    first = np.full((1, *x.shape[1:3]), FIRST_STEP_SCORE)
    return np.concatenate([first, 1.0 - cosine], axis=0)


def evs_retention_mask(embeddings: np.ndarray, rate: float) -> np.ndarray:
    """(T, H, W, D) token grid of one video -> (T, H, W) bool mask of the tokens EVS keeps at
    pruning rate `rate`; exactly evs_retained_count(T, H, W, rate) of them are True."""
    scores = evs_scores(embeddings)
    frames, rows, cols = scores.shape
    count = evs_retained_count(frames, rows, cols, rate)
    order = np.argsort(-scores.reshape(-1), kind="stable")  # descending, ties to the lower index
    mask = np.zeros(scores.size, dtype=bool)
    mask[order[:count]] = True
    return mask.reshape(scores.shape)
