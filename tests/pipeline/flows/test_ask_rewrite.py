"""selection.rewrite end to end: ask asks the configured OpenAI-compatible server (a real HTTP
server on 127.0.0.1) for the literal words of a question once, scores the frames against them
beside the question, and a second ask reads them from the cache under index.dir/rewrites."""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from vidsift.core.config import load_config
from vidsift.pipeline.flows.ask import Asker
from vidsift.pipeline.flows.rewrite import rewrite_cache_path

from tests.http_servers import serve
from tests.videos import make_scene_video

QUESTION = "What password is displayed?"
SIGN = "SECRET WORD: ORCHID"
PHRASES = [SIGN, "PASSWORD"]


def rewriting_server(counts: dict):
    """An OpenAI-compatible chat endpoint: the rewrite prompt is answered with PHRASES as a
    numbered list, any other request with a fixed answer; counts says how many of each came."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/chat/completions")
    def chat(body: dict) -> dict:
        content = body["messages"][0]["content"]
        text = content if isinstance(content, str) else " ".join(
            part.get("text", "") for part in content if part.get("type") == "text")
        kind = "rewrite" if "literally appear" in text else "answer"
        counts[kind] = counts.get(kind, 0) + 1
        reply = ("1. " + SIGN + "\n2. \"PASSWORD\"") if kind == "rewrite" else "It says [1]."
        return {"model": "rewriter", "choices": [{"message": {"role": "assistant",
                                                              "content": reply}}]}

    return app


def text_card(path: Path, text: str) -> Path:
    """A 320x240 PNG: text in white on black, centred."""
    image = Image.new("RGB", (320, 240), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=26)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text(((320 - right + left) // 2, (240 - bottom + top) // 2 - top), text, font=font,
              fill=(255, 255, 255))
    image.save(path)
    return path


def sign_video(folder: Path) -> Path:
    """12 s: grey, then the sign (white on black, 4 s), then grey."""
    return make_scene_video(folder / "sign.mp4", ["color=c=gray",
                            text_card(folder / "sign.png", SIGN), "color=c=gray"], seconds=4)


def test_the_rewritten_words_score_the_frames_and_are_cached(ray_cluster, tmp_path: Path):
    video = sign_video(tmp_path)
    counts: dict[str, int] = {}
    with serve(rewriting_server(counts)) as url:
        cfg = load_config("default", [
            "embed.ocr_gate=0", f"index.dir={tmp_path / 'index'}", "budget.tokens=512",
            "vlm.backend=openai", f"vlm.base_url={url}", "vlm.model=rewriter",
            "selection.rewrite=true", "selection.clip_fps=1",
        ])
        asker = Asker(cfg)
        try:
            first = asker.ask(str(video), QUESTION, use_index=False)
            again = asker.ask(str(video), QUESTION, use_index=False)
            asker.cfg = cfg.model_copy(update={"selection": cfg.selection.model_copy(
                update={"rewrite": False})})
            plain = asker.ask(str(video), QUESTION, use_index=False)
        finally:
            asker.close()
    assert counts == {"rewrite": 1, "answer": 3}  # the second ask's rewrite came from disk
    assert first.plan["rewrite"] == {"phrases": PHRASES, "cached": False}
    assert again.plan["rewrite"] == {"phrases": PHRASES, "cached": True}
    assert "rewrite" not in plain.plan
    assert rewrite_cache_path(cfg, QUESTION).is_file()
    # The sign's frames score their text against the phrase that spells it (~1), not only
    # against the question in other words (MiniLM: ~0.2).
    best = max(first.segments, key=lambda s: s["score"])
    assert best["start"] <= 8.0 and best["end"] >= 4.0
    assert best["score"] > 0.8 > max(s["score"] for s in plain.segments)
    assert [s["score"] for s in again.segments] == [s["score"] for s in first.segments]


def test_an_in_process_vlm_is_asked_text_only_once(tiny_qwen_dir, tmp_path: Path):
    """The in-process backend (the tiny random Qwen2.5-VL) takes the rewrite prompt with no
    evidence; a second rewrite_question reads the cache and never reaches the model."""
    from vidsift.pipeline.flows.rewrite import rewrite_question
    from vidsift.workers.vlm import get_vlm

    cfg = load_config("default", [f"index.dir={tmp_path / 'index'}", f"vlm.model={tiny_qwen_dir}",
                                  "vlm.device=cpu", "vlm.dtype=float32", "selection.rewrite=true"])
    served = get_vlm(cfg.vlm)
    phrases, cached = rewrite_question(cfg, QUESTION, lambda: served)
    assert cached is False and isinstance(phrases, list)
    assert rewrite_cache_path(cfg, QUESTION).is_file()

    def no_model():
        raise AssertionError("the cached question reached the model")

    assert rewrite_question(cfg, QUESTION, no_model) == (phrases, True)
    assert rewrite_cache_path(cfg, "Another question?") != rewrite_cache_path(cfg, QUESTION)
