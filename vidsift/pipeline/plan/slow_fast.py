"""Slow-Fast dual-rate plan: a few temporal steps at high resolution (slow pathway) and the rest
at low resolution (fast pathway), as SlowFast-LLaVA (Xu et al., arXiv 2407.15841) feeds a VLM,
sized so the visual-token count is exact before any request. Pure: no models, no I/O.

Rule: for `steps` temporal steps (for Qwen-VL, pairs of frames), `slow` of them evenly spaced,
grids from budget.frame_grids (merged-token (rows, cols), ascending cost rows * cols), pick the
most expensive slow grid for which the fast grid (the most expensive one costing at most
1 / FAST_DOWNSCALE of it) lets slow * slow_cost + (steps - slow) * fast_cost <= tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidsift.core.errors import BudgetError

FAST_DOWNSCALE = 4  # fast steps cost at most a quarter of a slow one (SlowFast-LLaVA pools 2x2)


@dataclass(frozen=True)
class SlowFastPlan:
    slow_steps: tuple[int, ...]  # indices of the high-resolution steps, ascending
    slow_grid: tuple[int, int]  # (rows, cols) merged tokens per slow step
    fast_grid: tuple[int, int]  # (rows, cols) merged tokens per fast step
    tokens: int  # exact visual tokens of the plan


def slow_fast_plan(steps: int, slow: int, grids: list[tuple[int, int]], tokens: int) -> SlowFastPlan:
    """See the module rule; raises BudgetError when even the cheapest grids do not fit."""
    for value, name in ((steps, "steps"), (tokens, "tokens")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"slow_fast_plan: {name} must be a positive int, got {value!r}")
    if isinstance(slow, bool) or not isinstance(slow, int) or not 1 <= slow <= steps:
        raise ValueError(f"slow_fast_plan: slow must be an int in [1, steps={steps}], got {slow!r}")
    if not grids:
        raise ValueError("slow_fast_plan: grids must hold at least one (rows, cols)")
    costs = [rows * cols for rows, cols in grids]
    if costs != sorted(costs):
        raise ValueError("slow_fast_plan: grids must be sorted by cost (as budget.frame_grids)")
    fast_steps = steps - slow
    for high in reversed(range(len(grids))):
        low = max((i for i in range(high + 1) if costs[i] * FAST_DOWNSCALE <= costs[high]), default=0)
        total = slow * costs[high] + fast_steps * costs[low]
        if total <= tokens:
            picked = tuple(sorted({min(steps - 1, (2 * i + 1) * steps // (2 * slow)) for i in range(slow)}))
            return SlowFastPlan(picked, grids[high], grids[low], total)
    raise BudgetError(f"slow_fast_plan: {tokens} tokens cannot hold {slow} slow and {fast_steps} fast "
                      f"steps (at least {slow * costs[0] + fast_steps * costs[0]} needed)")
