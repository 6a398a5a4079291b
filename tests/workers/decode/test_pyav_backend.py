"""vidsift.workers.decode.pyav_backend: what only the PyAV decoder does (the shared semantics run
over it in test_base.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.videos import read_code
from vidsift.workers.decode import get_decoder
from vidsift.workers.decode.pyav_backend import PyAVDecoder


@pytest.fixture
def decoder():
    return get_decoder("pyav")


def codes(frames) -> list[int]:
    return [read_code(f.image) for f in frames]


def test_registry_builds_the_pyav_decoder():
    decoder = get_decoder("pyav", threads=2)
    assert isinstance(decoder, PyAVDecoder) and decoder.name == "pyav" and decoder.threads == 2


def test_coarse_fills_land_on_the_first_decodable_frame(decoder, coded_video):
    # PyAV skips non-reference frames for fills: each lands on the first decodable frame
    # at or after its target, within the encoder's B-frame run (<= 3 frames here).
    frames = decoder.coarse(coded_video, max_side=64, max_gap_s=0.5, fill_fps=4)
    fills = [f.index for f in frames if f.index % 25]
    targets = [25 * s + offset for s in range(10) for offset in (6, 12, 18)]
    assert len(fills) == len(targets)
    assert all(0 <= got - want <= 3 for got, want in zip(fills, targets))
    assert codes(frames) == [f.index for f in frames]


def test_coarse_fills_skip_deblocking(decoder, coded_video):
    # PyAV's fills skip the deblocking filter (faster; drift stays small until the next
    # keyframe), so they differ a little from the exact decode.
    frames = decoder.coarse(coded_video, max_side=320, max_gap_s=0.5, fill_fps=4)
    exact = decoder.frames_at(coded_video, [f.pts for f in frames], max_side=320)
    errors = np.array([np.mean((f.image.astype(float) - e.image) ** 2) for f, e in zip(frames, exact)])
    assert errors.max() > 0
    assert 10 * np.log10(255**2 / errors.max()) > 35


def test_truncated_file_decodes_the_readable_part(decoder, truncated_video):
    assert codes(decoder.frames_at(truncated_video, [0.0, 0.5])) == [0, 12]
