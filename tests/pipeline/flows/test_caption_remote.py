"""Batch captioning on Ray Data through vlm.backend=openai: the caption actors call an
OpenAI-compatible endpoint on 127.0.0.1 (serving the tiny random Qwen2.5-VL) and hold no GPU
even when the pool preset asks one per actor (this cluster has none: they would never start)."""

import pytest

from tests.http_servers import serve
from tests.videos import make_coded_video
from vidsift.core.config import VLMConfig, load_config
from vidsift.pipeline.flows.caption import CaptionOutput, run_caption
from vidsift.pipeline.service.openai_server import create_app
from vidsift.workers.vlm import get_vlm


@pytest.mark.timeout(180)
def test_caption_through_a_remote_vlm(ray_cluster, tiny_qwen_dir, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for number in range(2):
        make_coded_video(folder / f"v{number}.mp4", n_frames=60, fps=10, size=(160, 120),
                         gop=5 + number)
    served = get_vlm(VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32",
                               max_new_tokens=4))
    with serve(create_app(served, "tiny-qwen")) as url:
        cfg = load_config("default", [
            f"index.dir={tmp_path / 'memories'}", "vlm.backend=openai", f"vlm.base_url={url}",
            "vlm.model=tiny-qwen", "vlm.max_new_tokens=4", "caption.clips=fixed",
            "caption.clip_s=3", "caption.frames_per_clip=2", "caption.tokens_per_clip=32",
            "caption.max_new_tokens=4", "pool.num_actors=1", "pool.num_cpus_per_actor=0.5",
            "pool.num_gpus_per_actor=1",
        ])
        report = run_caption(folder, tmp_path / "out", cfg)
    assert (report.videos, report.captioned, report.failed, report.clips) == (2, 2, 0, 4)
    rows = CaptionOutput(tmp_path / "out").read_rows().to_pylist()
    assert {r["model"] for r in rows} == {"tiny-qwen"}
    # Frames sent as separate images, planned so: 2 frames x (84/28) x (112/28) tokens.
    assert {r["tokens"] for r in rows} == {2 * 3 * 4}
    assert all(isinstance(r["caption"], str) for r in rows)
