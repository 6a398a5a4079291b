"""plan/stream_rate.py: the coarse rate a watcher takes while it falls behind."""

from vidsift.pipeline.plan.stream_rate import StreamRate, next_rate

LIMITS = {"base_fps": 4.0, "min_fps": 0.5, "thin_s": 10.0, "restore_s": 2.0}


def run(lags: list[float], fps: float = 4.0) -> list[float]:
    """The rate after each shard of a stream whose shards arrive `lags` seconds late."""
    state, rates = StreamRate(fps), []
    for lag in lags:
        state = next_rate(state, lag, **LIMITS)
        rates.append(state.fps)
    return rates


def test_a_growing_lag_halves_the_rate_down_to_the_floor_and_a_draining_one_keeps_it():
    # behind by more each shard: halved each shard, 4 -> 0.5 and no lower
    assert run([0, 5, 11, 14, 20, 30, 40]) == [4, 4, 2, 1, 0.5, 0.5, 0.5]
    # over the threshold but shrinking (the thinner rate drains the backlog): kept
    assert run([0, 12, 11, 10.5]) == [4, 2, 2, 2]


def test_caught_up_restores_the_rate_doubling_up_to_the_configured_one():
    assert run([0, 12, 15, 8, 1.5, 0.5, 0.2], fps=4.0) == [4, 2, 1, 1, 2, 4, 4]
    # between restore_s and thin_s: held where it is
    assert run([0, 5, 5, 5], fps=1.0) == [2, 2, 2, 2]


def test_the_least_lag_seen_is_the_streams_own_latency_not_falling_behind():
    # an HLS stream 20 s behind its date-times from the start: never thinned
    assert run([20, 20.5, 21, 20.2]) == [4, 4, 4, 4]
    # ... until it falls behind that
    assert run([20, 31, 35])[-2:] == [2, 1]
    state = next_rate(next_rate(StreamRate(4.0), 20, **LIMITS), 31, **LIMITS)
    assert (state.lag_s, state.floor_s) == (11, 20)


def test_a_minimum_over_the_configured_rate_never_raises_it():
    state = StreamRate(0.1)
    for lag in (0, 20, 40):
        state = next_rate(state, lag, 0.1, 0.125, 10.0, 2.0)
        assert state.fps == 0.1
