"""Small time helpers every stage shares. Times are seconds on the video's own timeline."""

from __future__ import annotations

import numpy as np


def bin_centres(start: float, end: float, n: int) -> np.ndarray:
    """n times at the centres of n equal bins over [start, end]: (n,) float64 seconds, ascending.

    The one rule for spreading n samples over a span: uniform selection, a clip's frames and a
    caption clip's frames all use it."""
    if n < 1:
        raise ValueError(f"bin_centres: n must be >= 1, got {n}")
    if end < start:
        raise ValueError(f"bin_centres: end {end} before start {start}")
    step = (end - start) / n
    return start + (np.arange(n) + 0.5) * step


def hms(seconds: float) -> str:
    """seconds -> h:mm:ss (whole seconds, rounded down)."""
    total = max(0, int(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"
