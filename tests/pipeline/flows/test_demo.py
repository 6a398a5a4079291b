"""vidsift.pipeline.flows.demo: the sample video the demo indexes (run_demo itself is the full pipeline,
exercised by the flow tests)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from vidsift.core.errors import ConfigError
from vidsift.core.probe import probe
from vidsift.pipeline.flows import demo
from vidsift.pipeline.flows.demo import SCENE_SECONDS, make_sample_video
from vidsift.workers.decode import get_decoder


@pytest.fixture(scope="module")
def sample_video(tmp_path_factory):
    return make_sample_video(tmp_path_factory.mktemp("demo") / "sample.mp4")


def test_sample_video_is_24s_640x360_h264(sample_video):
    info = probe(str(sample_video))
    assert (info.width, info.height) == (640, 360)
    assert info.duration == pytest.approx(24.0, abs=0.05)
    assert info.codec == "h264" and info.frame_count == 600
    assert info.avg_fps == pytest.approx(25.0, rel=0.01)
    # a keyframe every 2 s (-g 50)
    assert len(info.keyframe_times) >= 12 and info.keyframe_times[0] == pytest.approx(0.0)


def test_sample_video_has_its_scene_cuts(sample_video):
    decoder = get_decoder("pyav")
    times = [t for s in range(3) for t in (s * SCENE_SECONDS + 3.0, s * SCENE_SECONDS + 3.04)]
    frames = [f.image.astype(np.float32) for f in decoder.frames_at(sample_video, times, max_side=160)]

    def diff(a, b):
        return float(np.abs(a - b).mean())

    within = [diff(frames[2 * s], frames[2 * s + 1]) for s in range(3)]  # one frame apart, one scene
    across = [diff(frames[2 * s], frames[2 * s + 2]) for s in range(2)]  # consecutive scenes
    assert max(within) < min(across)
    assert min(across) > 20


def test_missing_ffmpeg_raises_config_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    ran = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: ran.append(a))
    with pytest.raises(ConfigError, match="ffmpeg") as err:
        make_sample_video(tmp_path / "sample.mp4")
    assert "--video" in str(err.value)
    assert ran == [] and not (tmp_path / "sample.mp4").exists()


def test_ffmpeg_failure_raises_config_error(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "SAMPLE_SCENES", ("nosuchsource=size=64x64",))
    with pytest.raises(ConfigError, match="could not generate"):
        make_sample_video(tmp_path / "sample.mp4")
