"""ask end to end on Ray: a generated video, the offline embedder, the tiny random Qwen2.5-VL; and
the evidence-only mode through the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vidsift.pipeline.cli import app
from vidsift.core.config import load_config
from vidsift.core.timeline import hms
from vidsift.pipeline.flows.ask import Asker, AskResult

DURATION = 10.0  # the coded_video fixture: 250 frames at 25 fps


def _config(*extra):
    return load_config("default", ["embed.ocr=false", "budget.tokens=512",
                                   "vlm.device=cpu", "vlm.dtype=float32", *extra])


def test_hms():
    assert [hms(0), hms(59.99), hms(61), hms(3725.5)] == [
        "0:00:00", "0:00:59", "0:01:01", "1:02:05"]


def test_ask_answers_with_evidence_inside_the_video(ray_cluster, coded_video, tiny_qwen_dir,
                                                    tmp_path):
    cfg = _config(f"vlm.model={tiny_qwen_dir}", "vlm.max_new_tokens=6",
                  f"index.dir={tmp_path / 'no-index'}")
    result = Asker(cfg).ask(str(coded_video), "which frame shows the most bars?",
                            thumbnails_dir=tmp_path / "thumbs")
    assert isinstance(result.answer, str) and not result.evidence_only
    assert result.model
    assert result.segments and 0 < result.tokens <= 512
    assert result.tokens == sum(s["tokens"] for s in result.segments)
    # The VLM saw exactly the visual tokens the budget planned.
    assert result.vlm["visual_tokens"] == result.tokens
    # Whatever the (random) model cited is read back against the numbered segments.
    numbered = {n: (s["start"], s["end"]) for n, s in enumerate(result.segments, start=1)}
    assert result.to_dict()["citations"] == result.citations
    assert all(numbered[c["segment"]] == (c["start"], c["end"]) for c in result.citations)
    for seg in result.segments:
        assert 0.0 <= seg["start"] <= seg["end"] <= DURATION
        assert all(seg["start"] - 1e-6 <= t <= seg["end"] + 1e-6 for t in seg["timestamps"])
        assert seg["height"] % 28 == 0 and seg["width"] % 28 == 0
        assert (tmp_path / "thumbs").joinpath(seg["thumbnail"].rsplit("/", 1)[-1]).is_file()
    for stage in ("ingest", "embed_query", "plan", "fine", "vlm", "total"):
        assert result.timings[stage] >= 0


def test_cli_ask_model_none_returns_segments(ray_cluster, coded_video, tmp_path):
    runner = CliRunner()
    args = ["ask", str(coded_video), "where are the bars?", "--model", "none", "--json",
            "--budget", "300", "--set", "embed.ocr=false",
            "--set", f"index.dir={tmp_path / 'no-index'}"]
    outcome = runner.invoke(app, args)
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.stdout)
    assert payload["answer"] is None and payload["evidence_only"] and payload["model"] == "none"
    assert isinstance(payload["segments"], list) and payload["segments"]
    for seg in payload["segments"]:
        assert 0.0 <= seg["start"] <= seg["end"] <= DURATION
    assert payload["tokens"] == sum(s["tokens"] for s in payload["segments"]) <= 300
    assert payload["budget"] == 300
    assert "vlm" not in payload["timings"] and payload["timings"]["fine"] >= 0


def test_cli_ask_missing_video_is_one_clear_line(ray_cluster, tmp_path):
    outcome = CliRunner().invoke(app, ["ask", str(tmp_path / "missing.mp4"), "q",
                                       "--model", "none"])
    assert outcome.exit_code == 1
    assert "missing.mp4: file not found" in " ".join(outcome.output.split())  # rich wraps
    assert "Traceback" not in outcome.output


@pytest.mark.parametrize("model", [None, "none", "NONE"])
def test_evidence_only_mode_is_chosen_by_the_model_field(model):
    assert not load_config("default", [f"vlm.model={model}"] if model else []).vlm.enabled
    assert load_config("default", ["vlm.model=/models/qwen"]).vlm.enabled


def test_ask_starts_from_the_clip_index_when_the_video_is_indexed(ray_cluster, coded_video,
                                                                  tmp_path):
    from vidsift.pipeline.flows.index import index_videos, search_clips

    cfg = _config("vlm.model=none", f"index.dir={tmp_path / 'index'}",
                  "index.min_clip_s=1", "index.max_clip_s=3")
    assert index_videos([str(coded_video)], cfg).indexed == [str(coded_video)]
    indexed = {(h.start, h.end) for h in search_clips("bars", cfg, k=100)}
    asker = Asker(cfg)
    try:
        result = asker.ask(str(coded_video), "where are the bars?")
        assert result.retrieved and {(h["start"], h["end"]) for h in result.retrieved} <= indexed
        assert len(result.retrieved) == min(len(indexed), cfg.selection.max_anchors)
        # Without the index the same question reads the whole coarse pass and retrieves nothing.
        assert asker.ask(str(coded_video), "where are the bars?", use_index=False).retrieved == []
    finally:
        asker.close()


def test_a_second_question_and_the_index_reuse_the_first_asks_memory(ray_cluster, coded_video,
                                                                       tmp_path):
    from vidsift.pipeline.flows.index import index_videos

    cfg = _config("vlm.model=none", f"index.dir={tmp_path / 'index'}")
    asker = Asker(cfg)
    try:
        first = asker.ask(str(coded_video), "where are the bars?")
        shards = sum(asker.pool.shards_done)
        assert not first.reused and shards >= 1
        second = asker.ask(str(coded_video), "what colour is the top left?")
        assert second.reused and second.to_dict()["reused_memory"]
        summary = index_videos([str(coded_video)], cfg, pool=asker.pool)
        assert summary.indexed == [str(coded_video)] and summary.clips >= 1
        assert sum(asker.pool.shards_done) == shards  # neither decoded the video again
    finally:
        asker.close()


def _answered(citations: list[dict]) -> AskResult:
    segments = [
        {"kind": "image", "start": 3.0, "end": 3.0, "timestamps": [3.0], "height": 56,
         "width": 56, "tokens": 4},
        {"kind": "clip", "start": 62.5, "end": 66.5, "timestamps": [62.5, 66.5], "height": 56,
         "width": 84, "tokens": 6},
    ]
    return AskResult(video="/v/talk.mp4", question="q", answer="It waves [2], see [segment 1].",
                     model="m", segments=segments, tokens=10, budget=16, timings={"total": 1.0},
                     citations=citations)


def test_cited_answers_print_timestamps_and_uncited_ones_keep_the_evidence(monkeypatch):
    cited = _answered([{"segment": 2, "start": 62.5, "end": 66.5, "video": "/v/talk.mp4"},
                       {"segment": 1, "start": 3.0, "end": 3.0, "video": "/v/talk.mp4"}])
    assert cited.citation_line() == "[2] 0:01:02-0:01:06, [1] 0:00:03"
    assert cited.to_dict()["citations"] == cited.citations
    assert [line.split()[0] for line in cited.evidence_lines()[:2]] == ["[1]", "[2]"]

    import vidsift.pipeline.flows.ask as ask_flow

    for result, cited_text in [(cited, "cited: [2] 0:01:02-0:01:06, [1] 0:00:03"),
                               (_answered([]), "cited: none (all evidence below)")]:
        monkeypatch.setattr(ask_flow, "ask", lambda cfg, video, question, **kw: result)
        outcome = CliRunner().invoke(app, ["ask", "talk.mp4", "q"])
        assert outcome.exit_code == 0, outcome.output
        # The answer's own brackets print as written (not read as rich markup).
        assert "answer: It waves [2], see [segment 1]." in outcome.output
        assert cited_text in outcome.output
        assert "[2] 0:01:02-0:01:06  clip" in outcome.output  # every segment, cited or not
