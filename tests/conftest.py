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


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster for the whole run, its temp dir private to the run (short path:
    Ray's unix sockets must fit in 107 characters). Tests that need Ray take this fixture."""
    import shutil
    import tempfile

    from vidsift.pipeline.config import RayConfig
    from vidsift.workers.ray_runtime import ensure_ray

    temp_dir = tempfile.mkdtemp(prefix="vsray")
    ray = ensure_ray(RayConfig(num_cpus=4, temp_dir=temp_dir, namespace="vidsift-test"))
    yield ray
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)
