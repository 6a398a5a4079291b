import pytest

from vidsift.core.errors import BudgetError
from vidsift.pipeline.plan.budget import frame_grids
from vidsift.pipeline.plan.slow_fast import slow_fast_plan

GRIDS = [(2, 2), (3, 4), (4, 4), (6, 8), (8, 8), (12, 16)]  # costs 4, 12, 16, 48, 64, 192


def test_hand_case_exact_tokens():
    plan = slow_fast_plan(16, 4, GRIDS, 1000)  # 4 * 192 + 12 * 48 = 1344 > 1000; 4 * 64 + 12 * 16 = 448
    assert plan.slow_grid == (8, 8) and plan.fast_grid == (4, 4) and plan.tokens == 448
    assert plan.slow_steps == (2, 6, 10, 14)


@pytest.mark.parametrize(("steps", "slow", "tokens"), [(1, 1, 4), (8, 8, 600), (30, 3, 700), (5, 1, 4 * 5)])
def test_plan_fits_and_is_exact(steps, slow, tokens):
    plan = slow_fast_plan(steps, slow, GRIDS, tokens)
    rows, cols = plan.slow_grid
    fast_rows, fast_cols = plan.fast_grid
    assert plan.tokens == slow * rows * cols + (steps - slow) * fast_rows * fast_cols <= tokens
    assert len(plan.slow_steps) == slow and all(0 <= s < steps for s in plan.slow_steps)
    assert plan == slow_fast_plan(steps, slow, GRIDS, tokens)


def test_with_frame_grids_of_a_real_frame_size():
    grids = frame_grids((720, 1280), 28 * 28 * 4, 28 * 28 * 768)
    plan = slow_fast_plan(32, 4, grids, 4096)
    assert plan.tokens <= 4096
    assert plan.slow_grid[0] * plan.slow_grid[1] >= 4 * plan.fast_grid[0] * plan.fast_grid[1]


def test_bad_arguments():
    with pytest.raises(BudgetError):
        slow_fast_plan(10, 2, GRIDS, 39)
    for args, name in (((0, 1, GRIDS, 10), "steps"), ((4, 5, GRIDS, 100), "slow"),
                       ((4, 1, GRIDS, 0), "tokens"), ((4, 1, [], 100), "grids"),
                       ((4, 1, GRIDS[::-1], 100), "grids")):
        with pytest.raises(ValueError, match=name):
            slow_fast_plan(*args)
