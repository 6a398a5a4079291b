"""ask end to end on Ray with the tiny random Qwen3-VL (vlm.backend=qwen3_vl): the budget plans
with Qwen3-VL's arithmetic (budget.model=qwen3_vl) and the model sees exactly the planned tokens."""

from __future__ import annotations

from vidsift.core.config import load_config
from vidsift.pipeline.flows.ask import Asker

DURATION = 10.0  # the coded_video fixture: 250 frames at 25 fps


def test_ask_with_qwen3_vl_sees_exactly_the_planned_tokens(ray_cluster, coded_video,
                                                          tiny_qwen3_dir, tmp_path):
    cfg = load_config("default", [
        "embed.ocr=false", "budget.tokens=512", "budget.model=qwen3_vl", "vlm.backend=qwen3_vl",
        f"vlm.model={tiny_qwen3_dir}", "vlm.device=cpu", "vlm.dtype=float32",
        "vlm.max_new_tokens=6", "vlm.pruner=divprune", f"index.dir={tmp_path / 'no-index'}",
    ])
    result = Asker(cfg).ask(str(coded_video), "which frame shows the most bars?")
    assert isinstance(result.answer, str) and not result.evidence_only
    assert result.segments and 0 < result.tokens <= 512
    assert result.tokens == sum(s["tokens"] for s in result.segments)
    assert result.vlm["visual_tokens"] == result.tokens  # 0 tokens error
    assert result.vlm["visual_tokens_kept"] == round(result.tokens * 0.5)  # pruned, DeepStack too
    for seg in result.segments:
        assert seg["height"] % 32 == 0 and seg["width"] % 32 == 0
        assert 0.0 <= seg["start"] <= seg["end"] <= DURATION
