"""plan.alerts: the running-level peak rule on synthetic score sequences, and how a VLM's
verification answer is read."""

import numpy as np

from vidsift.pipeline.plan.alerts import (
    RunningLevel, running_peaks, verified_answer, verify_question,
)

RULE = dict(sigma=4.0, warmup=60, span=120, min_std=0.02)


def noisy_level(n: int, seed: int = 0) -> np.ndarray:
    """(n,) cosines around 0.15 with the spread a still scene's frames show (std 0.02)."""
    return 0.15 + 0.02 * np.random.default_rng(seed).standard_normal(n)


def test_a_planted_peak_on_a_flat_noisy_level_fires_once_at_the_peak():
    scores = noisy_level(600)
    scores[400] = 0.40
    fired, level = running_peaks(scores, RunningLevel(), **RULE)
    assert np.flatnonzero(fired).tolist() == [400]
    assert level.count == 600 and abs(level.mean - 0.15) < 0.02


def test_a_slow_drift_does_not_fire():
    # from 0.10 to 0.35 over 3000 frames (a scene slowly filling with what the alert describes):
    # far over the starting level at the end, never far over the running one
    scores = np.linspace(0.10, 0.35, 3000) + 0.005 * np.random.default_rng(1).standard_normal(3000)
    fired, level = running_peaks(scores, RunningLevel(), **RULE)
    assert not fired.any()
    assert level.mean > 0.33


def test_nothing_fires_during_the_warm_up():
    scores = noisy_level(100)
    scores[30] = 0.9  # before 60 frames were seen
    scores[80] = 0.9  # after
    fired, _ = running_peaks(scores, RunningLevel(), **RULE)
    assert np.flatnonzero(fired).tolist() == [80]


def test_sigma_zero_or_none_disables_but_keeps_the_level():
    scores = noisy_level(200)
    scores[150] = 0.9
    for sigma in (0.0, None):
        fired, level = running_peaks(scores, RunningLevel(), **{**RULE, "sigma": sigma})
        assert not fired.any() and level.count == 200


def test_the_state_carried_between_shards_gives_what_one_pass_gives():
    scores = noisy_level(500, seed=2)
    scores[[120, 333]] = 0.5
    whole, whole_level = running_peaks(scores, RunningLevel(), **RULE)
    level, parts = RunningLevel(), []
    for shard in np.array_split(scores, 17):  # as a restarted watcher reads it back per shard
        fired, level = running_peaks(shard, RunningLevel(level.mean, level.var, level.count),
                                     **RULE)
        parts.append(fired)
    assert np.array_equal(np.concatenate(parts), whole)
    assert np.flatnonzero(whole).tolist() == [120, 333]
    assert np.allclose([level.mean, level.var, level.count],
                       [whole_level.mean, whole_level.var, whole_level.count])


def test_the_answer_confirms_only_when_it_starts_with_yes():
    assert verify_question("a red car") == "Does this show: a red car? Answer yes or no."
    assert all(verified_answer(a) for a in ("Yes.", "  **yes**, a car", '"YES"'))
    assert not verified_answer("No.") and not verified_answer("I cannot tell; yes maybe")
