"""selection.rewrite across the index (ask with no video): two indexed videos, the sign asked
about in other words on screen in one of them only; the question's literal words, asked once of
a real OpenAI-compatible server on 127.0.0.1 and cached under index.dir/rewrites, retrieve that
video's clip before any other and put it into the evidence, named by its video."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidsift.core.config import load_config
from vidsift.core.timeline import hms
from vidsift.pipeline.flows.ask import Asker
from vidsift.pipeline.flows.rewrite import rewrite_cache_path

from tests.http_servers import serve
from tests.pipeline.flows.test_ask_rewrite import (
    PHRASES, QUESTION, SIGN, rewriting_server, text_card)
from tests.videos import make_scene_video

pytestmark = pytest.mark.slow

PROMPT = "ENTER YOUR PASSWORD"  # the other video's screen: the question's own word, no password
BUDGET = 512


def _reads(text: str, words: str) -> bool:
    """Whether a clip's text holds words as OCR read them (it may drop the spaces)."""
    return "".join(words.split()) in "".join(text.split())


def test_across_the_index_the_rewrite_retrieves_the_sign_and_is_asked_once(
        ray_cluster, tmp_path: Path):
    from vidsift.pipeline.flows.index import index_videos, start_pool

    videos = tmp_path / "videos"
    videos.mkdir()
    # sign.mp4: grey, the sign at 4-8 s, grey; login.mp4: the password prompt at 0-4 s, blue.
    sign = make_scene_video(videos / "sign.mp4", [
        "color=c=gray", text_card(tmp_path / "sign.png", SIGN), "color=c=gray"], seconds=4)
    login = make_scene_video(videos / "login.mp4", [
        text_card(tmp_path / "login.png", PROMPT), "color=c=blue"], seconds=4)
    sign, login = str(sign.resolve()), str(login.resolve())
    counts: dict[str, int] = {}
    with serve(rewriting_server(counts)) as url:
        cfg = load_config("default", [
            "embed.ocr_gate=0", f"index.dir={tmp_path / 'index'}", f"budget.tokens={BUDGET}",
            "vlm.backend=openai", f"vlm.base_url={url}", "vlm.model=rewriter",
            "selection.rewrite=true", "selection.clip_fps=1", "ingest.num_actors=1",
        ])
        plain_cfg = cfg.model_copy(update={"selection": cfg.selection.model_copy(
            update={"rewrite": False})})
        pool = start_pool(cfg)
        try:
            summary = index_videos([videos], cfg, pool=pool)
            assert sorted(summary.indexed) == sorted([sign, login]), summary.failed
            assert counts == {}  # indexing asks the model nothing
            asker = Asker(plain_cfg, pool=pool)
            try:
                plain = asker.ask(None, QUESTION)
                asker.cfg = cfg
                first = asker.ask(None, QUESTION)
                again = asker.ask(None, QUESTION)
            finally:
                asker.close()
        finally:
            pool.close()
    # One rewrite for the two asks with it (the second read index.dir/rewrites), an answer each.
    assert counts == {"rewrite": 1, "answer": 3}
    cached = rewrite_cache_path(cfg, QUESTION)
    assert cached.parent == tmp_path / "index" / "rewrites"
    assert json.loads(cached.read_text())["phrases"] == PHRASES
    assert "rewrite" not in plain.plan
    assert first.plan["rewrite"] == {"phrases": PHRASES, "cached": False}
    assert again.plan["rewrite"] == {"phrases": PHRASES, "cached": True}

    def sign_clip(hit) -> bool:
        return (hit["video"] == sign and hit["start"] == pytest.approx(4.0, abs=0.6)
                and hit["end"] == pytest.approx(8.0, abs=0.6))

    # The question alone: the password prompt's clip leads the retrieval (0.62 measured), the
    # sign's below it (MiniLM: 'SECRET WORD' ~0.33 to the question) and its video second.
    assert plain.retrieved[0]["video"] == login and _reads(plain.retrieved[0]["text"], PROMPT)
    assert plain.retrieved[0]["start"] == pytest.approx(0.0, abs=0.6)
    plain_sign = [h["score"] for h in plain.retrieved if sign_clip(h)]
    assert plain_sign and max(plain_sign) < plain.retrieved[0]["score"]
    assert plain.videos[0] == login
    # With its literal words: the sign's clip first, its text matched by the phrase that
    # spells it (~1), and its video first in the evidence, every line naming its video.
    best = first.retrieved[0]
    assert sign_clip(best) and _reads(best["text"], SIGN)
    assert best["score"] > 0.8 > max(plain_sign)
    assert first.videos[0] == sign and set(first.videos) == {sign, login}
    lines = first.evidence_lines()
    shown = [n for n, s in enumerate(first.segments)
             if s["video"] == sign and any(4.0 <= t < 8.0 for t in s["timestamps"])]
    assert shown, first.segments
    for n in shown:
        seg = first.segments[n]
        span = hms(seg["start"]) if seg["kind"] == "image" else (
            f"{hms(seg['start'])}-{hms(seg['end'])}")
        assert lines[n].startswith(f"[{n + 1}] sign.mp4 {span} ")
    assert first.tokens == sum(s["tokens"] for s in first.segments) <= BUDGET
    # The cached phrases retrieve and plan exactly as the asked ones did.
    assert again.retrieved == first.retrieved
    assert [(s["video"], s["timestamps"]) for s in again.segments] == [
        (s["video"], s["timestamps"]) for s in first.segments]
