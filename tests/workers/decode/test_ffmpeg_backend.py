"""vidsift.workers.decode.ffmpeg_backend: what only the ffmpeg CLI decoder does (the shared
semantics run over it in test_base.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.videos import read_code
from vidsift.workers.decode import get_decoder
from vidsift.workers.decode.ffmpeg_backend import NEW_PROCESS_MIN_SKIP, FFmpegDecoder, _select_expr


@pytest.fixture
def decoder():
    return get_decoder("ffmpeg")


def codes(frames) -> list[int]:
    return [read_code(f.image) for f in frames]


def test_registry_builds_the_ffmpeg_decoder(decoder):
    assert isinstance(decoder, FFmpegDecoder) and decoder.name == "ffmpeg"


def _evaluate(expr: str, pts: int) -> bool:
    """Evaluate a select expression of eq/lt/if over `pts` with Python."""
    namespace = {"pts": pts, "eq": lambda a, b: a == b, "lt": lambda a, b: a < b,
                 "_if": lambda cond, then, other: then if cond else other}
    return bool(eval(expr.replace("if(", "_if("), namespace))


def test_select_expr_is_true_exactly_on_the_given_pts():
    assert _select_expr(np.array([512])) == "eq(pts,512)"
    wanted = np.array([0, 512, 1024, 5120, 9999, 10000, 20000])
    expr = _select_expr(wanted)
    assert expr.count("eq(") == wanted.size and expr.count("if(") == wanted.size - 1
    for pts in range(-1, 20002):
        assert _evaluate(expr, pts) == (pts in set(wanted.tolist())), pts


def test_far_apart_frames_use_separate_processes(decoder, coded_video):
    # frames more than NEW_PROCESS_MIN_SKIP apart are read by separate seeking processes
    assert 240 - 1 > NEW_PROCESS_MIN_SKIP
    frames = decoder.frames_at(coded_video, [0.0, 0.04, 9.6, 9.96])
    assert codes(frames) == [f.index for f in frames] == [0, 1, 240, 249]


def test_truncated_file_decodes_the_readable_part(decoder, truncated_video):
    assert codes(decoder.frames_at(truncated_video, [0.0, 0.5])) == [0, 12]
