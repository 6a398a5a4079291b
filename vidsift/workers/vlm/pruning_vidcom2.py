"""VidCom²-style frame-adaptive retention: each frame's share of the kept tokens grows with how
unlike the other frames it is, then each frame keeps its most distinct tokens.

Paper: Liu et al., "Video Compression Commander: Plug-and-Play Inference Acceleration for Video
Large Language Models" (EMNLP 2025, arXiv 2505.14454). The mask follows the paper's rule and its
count is vidsift's (below); a vLLM server's VidCom2 count is vllm_vidcom2_retained_count.

vLLM has no `--video-retention-ratio` flag: its VidCom2 PR (vllm-project/vllm#47750) proposed one
and was merged with `--video-pruning-method vidcom2` beside `--video-pruning-rate q` instead (the
engine-args page: "--video-pruning-method: evs, vidcom2 ... applied when video_pruning_rate > 0";
retention 1 - q). Its count is compute_retained_tokens_count in
vllm/multimodal/video_prune/vidcom2.py (read at commit 0f17ee061e413bf8ab7927f926f69cdff24dc63e;
later commits leave that path as an alias of
vllm/frontend/processing/multimodal/video_prune/vidcom2.py): T steps of H x W merged tokens keep
      max(T, min(int(T * H * W * (1 - q)), T * H * W))
tokens, the float64 product truncated as Python's int() does (as EVS's), at least one token per
step; the server's mask is reconciled to exactly that count, so a plan predicts it.

vidsift's own rule:

- count: a video of T steps of H x W tokens at retention ratio r keeps
      K = max(1, floor(T * H * W * r))
  tokens, a function of (T, H, W, r) only, known before the encoder runs.
- frame budgets: g_t is frame t's mean token, u_t = -cos(g_t, mean of all g) its uniqueness,
  sigma = softmax(u / TEMPERATURE); frame t's quota is K * (1 + sigma_t - 1/T) / T (the quotas sum
  to K; a frame like the others gets less than K/T, a distinct one more), capped at H * W, turned
  into integers summing to K exactly: floors, then one more token to the frames with the largest
  remainders (ties to the earlier frame), repeated while capped frames leave tokens over.
- within a frame: token j's redundancy is cos(x_tj, g_t) + cos(x_tj, video mean token); the frame's
  quota of lowest-redundancy tokens stay (ties to the lower index).

Shapes: embeddings (T, H, W, D) float, one video's merged token grid; masks (T, H, W) bool. Every
kept token keeps its own (t, h, w), so its M-RoPE position is the unpruned one.
"""

from __future__ import annotations

import numpy as np

TEMPERATURE = 0.01  # softmax temperature over frame uniqueness (cosines differ by ~1e-2)
COSINE_EPS = 1e-8


def _check_grid(embeddings) -> np.ndarray:
    if not isinstance(embeddings, np.ndarray) or embeddings.ndim != 4 or 0 in embeddings.shape:
        shape = getattr(embeddings, "shape", type(embeddings).__name__)
        raise ValueError(f"vidcom2: embeddings must be a non-empty (T, H, W, D) array, got {shape}")
    return embeddings.astype(np.float64, copy=False)


def _ratio(ratio) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 < ratio <= 1.0:
        raise ValueError(f"vidcom2: ratio must be a float in (0, 1], got {ratio!r}")
    return float(ratio)


def _dims(frames, rows, cols) -> tuple[int, int, int]:
    for value, name in ((frames, "frames"), (rows, "rows"), (cols, "cols")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"vidcom2: {name} must be a positive int, got {value!r}")
    return int(frames), int(rows), int(cols)


def vidcom2_retained_count(frames: int, rows: int, cols: int, ratio: float) -> int:
    """Tokens kept for one video of `frames` x `rows` x `cols` tokens at retention `ratio`."""
    frames, rows, cols = _dims(frames, rows, cols)
    return max(1, int(frames * rows * cols * _ratio(ratio)))


def vllm_vidcom2_retained_count(frames: int, rows: int, cols: int, rate: float) -> int:
    """Tokens a vLLM server started with `--video-pruning-method vidcom2 --video-pruning-rate
    rate` (rate in [0, 1)) keeps of one video of `frames` temporal steps of `rows` x `cols` merged
    tokens: max(frames, min(int(frames * rows * cols * (1 - rate)), frames * rows * cols)), the rule
    of vllm/multimodal/video_prune/vidcom2.py (module docstring)."""
    frames, rows, cols = _dims(frames, rows, cols)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"vidcom2: rate must be a float in [0, 1), got {rate!r}")
    total = frames * rows * cols
    return max(frames, min(int(total * (1.0 - float(rate))), total))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), COSINE_EPS)


def vidcom2_frame_counts(embeddings: np.ndarray, ratio: float) -> np.ndarray:
    """(T,) int64 tokens each frame keeps; sums to vidcom2_retained_count(T, H, W, ratio)."""
    x = _check_grid(embeddings)
    frames, rows, cols = x.shape[:3]
    total = vidcom2_retained_count(frames, rows, cols, ratio)
    per_frame = rows * cols
    frame_means = x.reshape(frames, per_frame, -1).mean(axis=1)
    uniqueness = -(_unit(frame_means) @ _unit(frame_means.mean(axis=0)))
    logits = (uniqueness - uniqueness.max()) / TEMPERATURE
    sigma = np.exp(logits) / np.exp(logits).sum()
    quota = total * (1.0 + sigma - 1.0 / frames) / frames
    counts = np.minimum(np.floor(quota).astype(np.int64), per_frame)
    while (left := total - int(counts.sum())) > 0:
        open_frames = np.nonzero(counts < per_frame)[0]
        ranked = open_frames[np.argsort(-(quota[open_frames] - counts[open_frames]), kind="stable")]
        counts[ranked[:left]] += 1
    return counts


def vidcom2_retention_mask(embeddings: np.ndarray, ratio: float) -> np.ndarray:
    """(T, H, W, D) token grid -> (T, H, W) bool mask of the kept tokens (module rule)."""
    x = _check_grid(embeddings)
    frames, rows, cols = x.shape[:3]
    counts = vidcom2_frame_counts(x, ratio)
    tokens = _unit(x.reshape(frames, rows * cols, -1))
    frame_means = _unit(x.reshape(frames, rows * cols, -1).mean(axis=1))
    video_mean = _unit(x.reshape(-1, x.shape[-1]).mean(axis=0))
    redundancy = np.einsum("tnd,td->tn", tokens, frame_means) + tokens @ video_mean
    mask = np.zeros((frames, rows * cols), dtype=bool)
    for t in range(frames):
        mask[t, np.argsort(redundancy[t], kind="stable")[: counts[t]]] = True
    return mask.reshape(frames, rows, cols)
