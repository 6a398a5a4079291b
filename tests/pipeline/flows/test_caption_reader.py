"""The caption reader, without Ray: which videos (manifests, folders, minus committed ones), clip
tiling, frame times and frame sizes by the token arithmetic, an unreadable video as an error."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tiny_vlm import hf_image_processor, hf_image_tokens
from tests.videos import make_coded_video
from vidsift.core import vision
from vidsift.core.config import load_config
from vidsift.core.errors import ConfigError, VidsiftError
from vidsift.core.media import find_videos
from vidsift.core.timeline import bin_centres
from vidsift.pipeline.flows.caption import (
    clip_frame_size,
    fixed_clips,
    read_clips,
    videos_to_caption,
)


def test_fixed_clips_tile_the_video_exactly():
    assert fixed_clips(0.0, 6.0, 3.0) == [(0.0, 3.0), (3.0, 6.0)]
    bounds = [t for clip in fixed_clips(0.04, 7.04, 3.0) for t in clip]
    assert bounds == pytest.approx([0.04, 2.3733, 2.3733, 4.7067, 4.7067, 7.04], abs=1e-4)
    assert fixed_clips(0.0, 2.0, 8.0) == [(0.0, 2.0)]
    assert bin_centres(0.0, 4.0, 4).tolist() == [0.5, 1.5, 2.5, 3.5]


def test_clip_frame_size_of_a_video_too_elongated_for_the_processor_is_one_it_keeps():
    """16000 x 16 (aspect 1000; Qwen-VL takes 200): sized letterboxed (80 high), the long side
    cut where one token row would leave it over 200:1, so a processor keeps it as sent."""
    assert clip_frame_size(16, 16000, 4, 1024) == (28, 5600)
    assert clip_frame_size(16000, 16, 4, 1024) == (5600, 28)
    processor = hf_image_processor(28 * 28, 512 * 28 * 28)
    assert hf_image_tokens(processor, [np.zeros((28, 5600, 3), np.uint8)]) == [200]


def test_clip_frame_size_follows_the_token_arithmetic():
    # 320x240, 4 frames, 1024 tokens: the natural size (252x308) fits: 2 temporal x 9 x 11.
    assert clip_frame_size(240, 320, 4, 1024) == (252, 308)
    assert vision.tokens_for(4, 252, 308) == 198
    # 2 frames within 64 tokens: shrunk to 168x252 = 6 x 9 = 54 tokens (<= 64).
    assert clip_frame_size(240, 320, 2, 64) == (168, 252)
    assert vision.tokens_for(2, 168, 252) == 54


def test_manifests_jsonl_and_csv(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.MKV").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert find_videos([tmp_path]) == [str(tmp_path / "a.mp4"), str(tmp_path / "sub" / "b.MKV")]
    (tmp_path / "m.jsonl").write_text('"a.mp4"\n{"path": "sub/b.MKV"}\n\n')
    assert find_videos([tmp_path / "m.jsonl"]) == find_videos([tmp_path])
    (tmp_path / "m.csv").write_text("video,lang\na.mp4,en\n/abs/c.mp4,fr\n")
    assert find_videos([tmp_path / "m.csv"]) == [str(tmp_path / "a.mp4"), "/abs/c.mp4"]
    (tmp_path / "bad.csv").write_text("file\na.mp4\n")
    with pytest.raises(ConfigError, match="'path' or 'video' column"):
        find_videos([tmp_path / "bad.csv"])
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    with pytest.raises(ConfigError, match="bad.jsonl:1: invalid JSON"):
        find_videos([tmp_path / "bad.jsonl"])


def test_committed_videos_are_left_out(tmp_path):
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(b"x")
    done = {str(tmp_path / "a.mp4")}
    assert videos_to_caption(tmp_path, done.__contains__) == (
        [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")], [str(tmp_path / "b.mp4")])


def test_fixed_plans_and_an_unreadable_video(tmp_path):
    video = make_coded_video(tmp_path / "v.mp4", n_frames=60, fps=10, size=(160, 120), gop=5)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    cfg = load_config("default", [
        f"index.dir={tmp_path / 'index'}", "caption.clips=fixed", "caption.clip_s=3",
        "caption.frames_per_clip=2", "caption.tokens_per_clip=32",
    ])
    outcomes = dict(read_clips([str(video), str(tmp_path / "broken.mp4")], cfg))
    plan = outcomes[str(video)]
    assert plan.spans == [(0.0, 3.0), (3.0, 6.0)]
    assert plan.times == [[0.75, 2.25], [3.75, 5.25]]  # bin centres
    assert (plan.height, plan.width) == clip_frame_size(120, 160, 2, 32)
    assert plan.tokens == vision.tokens_for(2, plan.height, plan.width) == 24
    assert isinstance(outcomes[str(tmp_path / "broken.mp4")], VidsiftError)
    # fixed clips read no memory and write none: only the transcript (subtitles are read by
    # default; this video has none) is stored
    written = [p.name for p in (tmp_path / "index").rglob("*") if p.is_file()]
    assert written and all(name.startswith("speech-") for name in written), written


def test_clips_for_a_remote_server_shown_frames_as_images_are_planned_per_image(tmp_path):
    """vlm.backend=openai sends a clip's frames as separate images: each costs a full image, so
    the plan halves the frame size's budget share instead of merging frames in time."""
    from vidsift.pipeline.flows.caption.reader import plan_clips
    from vidsift.core.probe import probe

    video = make_coded_video(tmp_path / "v.mp4", n_frames=60, fps=10, size=(160, 120), gop=5)
    cfg = load_config("default", ["vlm.backend=openai", "caption.frames_per_clip=2",
                                  "caption.tokens_per_clip=32"])
    plan = plan_clips(str(video), probe(str(video)), [(0.0, 3.0)], cfg)
    spec = cfg.vision_spec()
    assert spec.temporal_patch_size == 1
    assert (plan.height, plan.width) == clip_frame_size(120, 160, 2, 32, spec) == (84, 112)
    assert plan.tokens == 2 * (84 // 28) * (112 // 28) == 24 <= 32
