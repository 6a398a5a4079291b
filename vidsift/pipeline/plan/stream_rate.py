"""How fast a live stream's watcher takes coarse frames while it falls behind (pure: no I/O).

A watcher that embeds slower than the stream arrives would otherwise leave the packets waiting
in FFmpeg's and the kernel's buffers (memory growing, then packets dropped) and its alerts ever
later. Instead it thins its coarse rate: next_rate halves the frames per stream second while
the lag keeps growing past a threshold, and doubles it back towards the configured rate once
the lag is small again (the same shape as TCP's additive-increase/multiplicative-decrease, on
a log scale both ways so a recovered stream is back at its full rate in a few shards).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class StreamRate:
    """The watcher's rate state after a shard. fps: coarse frames per stream second for the
    next shard; lag_s: the lag the decision was made on (seconds, see next_rate); floor_s: the
    least raw lag seen so far (seconds: a stream's own latency, an HLS playlist's live edge
    behind its date-times, is not falling behind); None before the first shard."""

    fps: float
    lag_s: float | None = None
    floor_s: float | None = None


def next_rate(state: StreamRate, raw_lag_s: float, base_fps: float, min_fps: float,
              thin_s: float, restore_s: float) -> StreamRate:
    """The rate for the next shard, after one whose newest packet was read raw_lag_s seconds
    after its wall-clock time (workers.stream.StreamShard.lag_s).

    lag = raw_lag_s - the least raw lag seen (state.floor_s, this one included), in seconds.
    - lag > thin_s and not smaller than the lag before (still falling behind): fps halves,
      not below min_fps; a lag over thin_s that is shrinking keeps the rate (the backlog drains);
    - lag < restore_s: fps doubles, not above base_fps (caught up);
    - else the rate is kept.
    base_fps, min_fps: frames per stream second (a min_fps over base_fps: base_fps is the floor);
    thin_s > restore_s >= 0."""
    floor = raw_lag_s if state.floor_s is None else min(state.floor_s, raw_lag_s)
    lag = raw_lag_s - floor
    fps = state.fps
    if lag > thin_s and (state.lag_s is None or lag >= state.lag_s):
        fps = max(min(min_fps, base_fps), fps / 2)
    elif lag < restore_s:
        fps = min(base_fps, fps * 2)
    return StreamRate(fps, lag, floor)
