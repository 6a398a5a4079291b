"""Standing-query rules over a stream's per-frame alert scores (pure: no I/O).

running_peaks: a frame fires when its score stands well above the stream's running level, an
exponentially-weighted mean and deviation of that alert's earlier scores, carried from shard to
shard (and across watcher restarts) as a RunningLevel. A slow drift moves the level with it and
does not fire; a short rise far above the noise does.

verify_question / verify_photo_question / verified_answer: the yes/no question a VLM is asked
about an event's best frames (a photo alert's with the photo shown first), and how its answer
is read.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

VERIFY_TOKENS = 16  # the most tokens of a verification answer ("Yes." and a few words)


@dataclasses.dataclass(frozen=True)
class RunningLevel:
    """An alert's running level: EWMA mean and variance of its scores (cosines), and how many
    frames it has seen (count 0: nothing yet; mean and var then unused)."""

    mean: float = 0.0
    var: float = 0.0
    count: int = 0


def running_peaks(scores: np.ndarray, level: RunningLevel, sigma: float | None, warmup: int,
                  span: int, min_std: float) -> tuple[np.ndarray, RunningLevel]:
    """scores: (N,) one alert's frame scores in time order; level: the running level before the
    first of them. Returns ((N,) bool: which frames fire, the level after the last).

    Frame i fires when the level has seen at least `warmup` frames and
    scores[i] > mean + sigma * max(std, min_std) of the level before frame i (min_std, in cosine
    units, keeps a still scene's near-zero deviation from firing on encoder noise). Every frame,
    firing or not, then updates the level with weight alpha = 2 / (span + 1) (an EWMA over about
    `span` frames), so a lasting change of scene stops firing once the level has caught up.
    sigma 0 or None: nothing fires, the level is still kept."""
    fired = np.zeros(len(scores), dtype=bool)
    alpha = 2.0 / (span + 1)
    mean, var, count = level.mean, level.var, level.count
    for i, score in enumerate(np.asarray(scores, dtype=np.float64)):
        if sigma and count >= warmup:
            fired[i] = score > mean + sigma * max(math.sqrt(var), min_std)
        if count == 0:
            mean, var = float(score), 0.0
        else:  # West's incremental EWMA of mean and variance
            diff = float(score) - mean
            step = alpha * diff
            mean += step
            var = (1 - alpha) * (var + diff * step)
        count += 1
    return fired, RunningLevel(mean, var, count)


def verify_question(alert: str) -> str:
    """The question a VLM answers about an event's frames."""
    return f"Does this show: {alert}? Answer yes or no."


def verify_photo_question() -> str:
    """The question a VLM answers about a photo alert's event: the reference photo is the
    first image ([1]), the event's frames follow it."""
    return ("Image [1] is a reference photo, not from the stream. Do the other images show "
            "what the reference photo shows? Answer yes or no.")


def verified_answer(text: str) -> bool:
    """Whether a VLM's answer to verify_question confirms the event: it starts with yes
    (any case, after spaces, quotes or markup)."""
    return text.strip().lstrip("\"'*`([ ").lower().startswith("yes")
