"""vidsift.core.timeline: bin centres and h:mm:ss."""

from __future__ import annotations

import numpy as np
import pytest

from vidsift.core.timeline import bin_centres, hms


def test_bin_centres_values():
    assert bin_centres(0.0, 10.0, 5).tolist() == pytest.approx([1.0, 3.0, 5.0, 7.0, 9.0])
    assert bin_centres(2.0, 4.0, 1).tolist() == pytest.approx([3.0])
    assert bin_centres(5.0, 5.0, 3).tolist() == pytest.approx([5.0, 5.0, 5.0])  # empty span
    times = bin_centres(1.5, 7.25, 7)
    assert times.dtype == np.float64 and times.shape == (7,)
    assert np.all(np.diff(times) > 0) and times[0] > 1.5 and times[-1] < 7.25
    assert np.diff(times) == pytest.approx(np.full(6, (7.25 - 1.5) / 7))


@pytest.mark.parametrize(("start", "end", "n"), [(0.0, 1.0, 0), (0.0, 1.0, -2), (2.0, 1.0, 3)])
def test_bin_centres_errors(start, end, n):
    with pytest.raises(ValueError, match="bin_centres"):
        bin_centres(start, end, n)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00:00"), (59.99, "0:00:59"), (61, "0:01:01"), (3600, "1:00:00"),
     (3723.9, "1:02:03"), (36000 + 59 * 60 + 59, "10:59:59"), (-5, "0:00:00")],
)
def test_hms(seconds, text):
    assert hms(seconds) == text
