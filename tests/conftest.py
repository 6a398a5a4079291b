"""Shared fixtures: generated test videos (session-scoped: made once per run)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.videos import ffmpeg_available, make_coded_video


def pytest_configure(config):
    # Tests generate their videos with ffmpeg; `make test` installs it. Fail fast, not skip.
    if not ffmpeg_available():
        raise pytest.UsageError("ffmpeg and ffprobe must be on PATH (make test installs them)")
    # A run reads and writes nothing outside its own temp dirs, as on a new machine: a fresh HOME
    # (so ~/.cache, where the default config keeps its ONNX exports, starts empty) for this
    # process, its Ray workers and the subprocesses it starts. Ray stays on loopback: it would
    # otherwise bind the machine's own network address.
    config.vidsift_home = tempfile.mkdtemp(prefix="vshome")
    os.environ["HOME"] = config.vidsift_home
    # Hypothesis (test_api_fuzz) keeps its caches there too, not in .hypothesis/ of the checkout.
    os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = os.path.join(config.vidsift_home, ".hypothesis")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


def pytest_unconfigure(config):
    home = getattr(config, "vidsift_home", None)
    if home:
        shutil.rmtree(home, ignore_errors=True)


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
    from vidsift.core.config import RayConfig
    from vidsift.workers.ray_runtime import ensure_ray

    temp_dir = tempfile.mkdtemp(prefix="vsray")
    ray = ensure_ray(RayConfig(num_cpus=4, temp_dir=temp_dir, namespace="vidsift-test"))
    yield ray
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory) -> Path:
    """A tiny random-weight Qwen2.5-VL checkpoint (model, tokenizer with chat template,
    preprocessor config) saved with save_pretrained; load it by path like a real one."""
    from tests.tiny_vlm import save_tiny_qwen

    return save_tiny_qwen(tmp_path_factory.mktemp("tiny_qwen"))


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory) -> Path:
    """A tiny random-weight Qwen3-VL checkpoint (two DeepStack levels), saved like tiny_qwen_dir."""
    from tests.tiny_vlm import save_tiny_qwen3

    return save_tiny_qwen3(tmp_path_factory.mktemp("tiny_qwen3"))


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory) -> Path:
    """A random-weight SiglipModel + tokenizer saved with save_pretrained (tests/tiny_embedders)."""
    from tests.tiny_embedders import build_tiny_siglip

    return build_tiny_siglip(tmp_path_factory.mktemp("tiny-siglip"))


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A random-weight CLIPModel + tokenizer saved with save_pretrained (tests/tiny_embedders)."""
    from tests.tiny_embedders import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def offline_embedder():
    """The packaged offline embedder (EfficientNet-Lite0 + MiniLM + OCR), loaded once per run."""
    from vidsift.core.config import EmbedConfig
    from vidsift.workers.embed import get_embedder

    return get_embedder(EmbedConfig(backend="offline"))


@pytest.fixture(scope="session")
def onnx_exports():
    """This machine's ONNX export of the offline models (the default cache, made if missing)."""
    from vidsift.core.config import EmbedConfig
    from vidsift.workers.embed.onnx_models import exported_models

    cfg = EmbedConfig()
    return exported_models(cfg.onnx_cache_dir, cfg.image_size)


@pytest.fixture(scope="session")
def vfr_video(media_dir) -> Path:
    """Variable frame rate: 60 coded frames, 40 ms apart up to frame 20, then 80 ms apart."""
    from tests.videos import make_vfr_video

    return make_vfr_video(media_dir / "vfr.mp4")


@pytest.fixture(scope="session")
def rotated_video(media_dir, coded_video) -> Path:
    """coded_video with a 90-degree display matrix (stream copy)."""
    from tests.videos import make_rotated_video

    return make_rotated_video(coded_video, media_dir / "rotated.mp4", 90)


@pytest.fixture(scope="session")
def vp9_video(media_dir) -> Path:
    """3 s, 25 fps coded VP9 in WebM, keyframe every 25 frames."""
    return make_coded_video(media_dir / "coded.webm", n_frames=75, fps=25, codec="libvpx-vp9", gop=25)


@pytest.fixture(scope="session")
def truncated_video(media_dir) -> Path:
    """First half of a 4 s faststart coded H.264 file."""
    from tests.videos import make_truncated_copy

    whole = make_coded_video(
        media_dir / "whole_faststart.mp4", n_frames=100, fps=25, gop=25,
        output_args=("-movflags", "+faststart"),
    )
    return make_truncated_copy(whole, media_dir / "truncated.mp4", 0.5)


@pytest.fixture(scope="session")
def audio_only_file(media_dir) -> Path:
    from tests.videos import make_audio_only

    return make_audio_only(media_dir / "tone.m4a")


@pytest.fixture(scope="session")
def text_file_video(media_dir) -> Path:
    from tests.videos import make_text_file

    return make_text_file(media_dir / "notes.mp4")


@pytest.fixture(scope="session")
def empty_video(media_dir) -> Path:
    from tests.videos import make_empty_file

    return make_empty_file(media_dir / "empty.mp4")


@pytest.fixture(scope="session")
def copy_cut_video(media_dir) -> Path:
    """coded frames 0..149 (keyframe every 25) stream-copied from 1.5 s: the cut lands mid-GOP,
    so the file keeps the GOP's head hidden by an edit list and shows frame 38 at 0 s."""
    from tests.videos import run_ffmpeg

    whole = make_coded_video(media_dir / "cut_source.mp4", n_frames=150, gop=25)
    cut = media_dir / "copy_cut.mp4"
    run_ffmpeg("-ss", "1.5", "-i", str(whole), "-c", "copy", str(cut))
    return cut


PHOTO_SCENES = ("smptebars", "chelsea", "testsrc", "coffee", "rocket")  # 5 s each


@pytest.fixture(scope="session")
def photo_library(tmp_path_factory, ray_cluster):
    """A media root holding photos.mp4: 5 s scenes of PHOTO_SCENES (scikit-image's sample
    photos between lavfi test patterns), indexed into root/index with the offline embedder
    (OCR off). Returns (media root, index dir, the config overrides used)."""
    from PIL import Image
    from skimage import data

    from tests.videos import make_scene_video
    from vidsift.core.config import load_config
    from vidsift.pipeline.flows.index import index_videos

    root = tmp_path_factory.mktemp("photo_library")
    stills = root / "stills"
    stills.mkdir()
    sources = []
    for scene in PHOTO_SCENES:
        if hasattr(data, scene):
            Image.fromarray(getattr(data, scene)()).save(stills / f"{scene}.png")
            sources.append(stills / f"{scene}.png")
        else:
            sources.append(scene)
    make_scene_video(root / "photos.mp4", sources)
    overrides = [f"index.dir={root / 'index'}", "embed.ocr=false"]
    summary = index_videos([root / "photos.mp4"], load_config("default", overrides))
    assert summary.indexed == [str(root / "photos.mp4")], summary.failed
    return root, root / "index", overrides
