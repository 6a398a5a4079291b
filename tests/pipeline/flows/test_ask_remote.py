"""ask with vlm.backend=openai on Ray: the evidence planned for a real video goes over HTTP to an
OpenAI-compatible endpoint on 127.0.0.1 serving the tiny random Qwen2.5-VL, and the server counts
exactly the prompt the plan promised; no VLM actor pool is started."""

from pathlib import Path

from vidsift.core.config import load_config
from vidsift.pipeline.flows.ask import Asker
from vidsift.pipeline.service.openai_server import create_app
from vidsift.workers.vlm.remote import OpenAIBackend

from tests.http_servers import serve


def test_ask_through_a_remote_server_is_planned_exactly(ray_cluster, coded_video, tiny_qwen_dir,
                                                        tmp_path: Path):
    from vidsift.core.config import VLMConfig
    from vidsift.workers.vlm import get_vlm

    served = get_vlm(VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32",
                               max_new_tokens=6))
    with serve(create_app(served, "tiny-qwen")) as url:
        cfg = load_config("default", [
            "embed.ocr=false", "budget.tokens=512", f"index.dir={tmp_path / 'no-index'}",
            "vlm.backend=openai", f"vlm.base_url={url}", "vlm.model=tiny-qwen",
            f"vlm.tokenizer={tiny_qwen_dir}", "vlm.max_new_tokens=6", "selection.clip_fps=1",
        ])
        asker = Asker(cfg)
        try:
            result = asker.ask(str(coded_video), "which frame shows the most bars?")
            assert isinstance(asker.vlm, OpenAIBackend)  # called in-process, no actor pool
        finally:
            asker.close()
    assert result.model == "tiny-qwen" and isinstance(result.answer, str)
    usage = result.vlm["usage"]
    assert result.vlm["visual_tokens"] == usage["planned_visual_tokens"] == result.tokens <= 512
    assert usage["prompt_tokens"] == usage["expected_prompt_tokens"]
    assert usage["prompt_tokens_diff"] == 0
    # Clips were shown as runs of images, and planned so: every frame at a full image's cost.
    for seg in result.segments:
        per_frame = (seg["height"] // 28) * (seg["width"] // 28)
        assert seg["tokens"] == len(seg["timestamps"]) * per_frame
    assert result.to_dict()["vlm"]["usage"] == usage
