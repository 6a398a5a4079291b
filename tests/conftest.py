"""Shared fixtures: generated test videos (session-scoped: made once per run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.videos import ffmpeg_available, make_coded_video


def pytest_configure(config):
    # Tests generate their videos with ffmpeg; `make test` installs it. Fail fast, not skip.
    if not ffmpeg_available():
        raise pytest.UsageError("ffmpeg and ffprobe must be on PATH (make test installs them)")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def coded_video(media_dir) -> Path:
    """10 s, 25 fps, 320x240 H.264 (B-frames on), keyframe every 25 frames; frame N shows N."""
    return make_coded_video(media_dir / "coded.mp4", n_frames=250, fps=25, gop=25)
