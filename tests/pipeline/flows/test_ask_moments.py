"""ask about several moments, end to end on Ray with the offline embedder (OCR on): every moment
a sign is shown gets into the evidence, and the result says which moments it found and covered."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw, ImageFont

from tests.videos import make_scene_video
from vidsift.core.config import load_config
from vidsift.pipeline.flows.ask import Asker

QUESTION = "How many times is the EXIT sign shown?"
# 4 s scenes: the sign for 20 s, then twice for 4 s among other pictures
SCENES = ["exit"] * 5 + ["color=c=blue", "smptebars", "exit", "testsrc", "color=c=red", "exit",
                         "color=c=green"]
MOMENTS = [(0.0, 20.0), (28.0, 32.0), (40.0, 44.0)]


@pytest.fixture(scope="module")
def sign_video(tmp_path_factory):
    folder = tmp_path_factory.mktemp("moments")
    slide = Image.new("RGB", (320, 240), (240, 240, 240))
    draw = ImageDraw.Draw(slide)
    draw.text((70, 80), "EXIT", font=ImageFont.load_default(size=72), fill=(20, 140, 40))
    slide.save(folder / "exit.png")
    sources = [str(folder / "exit.png") if s == "exit" else s for s in SCENES]
    return make_scene_video(folder / "signs.mp4", sources, seconds=4)


def shown_in(result, lo, hi):
    return any(lo <= t <= hi for seg in result["segments"] for t in seg["timestamps"])


def test_every_moment_of_a_counting_question_is_in_the_evidence(ray_cluster, sign_video,
                                                               tmp_path):
    """By relevance alone the 3 anchors went 6 s apart into the 20 s the sign is first shown
    and its two later moments were left to chance; now each is anchored, and plan.peaks says
    so."""
    settings = ["budget.tokens=1024", f"index.dir={tmp_path / 'index'}", "speech.mode=none"]
    asker = Asker(load_config("default", settings))
    before_cfg = load_config("default", [*settings, "selection.max_peaks=0",
                                         "selection.counting_peaks=0"])
    try:
        answered = asker.ask(str(sign_video), QUESTION)
        asker.cfg = before_cfg  # the same pools and memory, the plan before peaks
        before = asker.ask(str(sign_video), QUESTION).to_dict()
    finally:
        asker.close()
    result = answered.to_dict()
    assert not all(shown_in(before, lo, hi) for lo, hi in MOMENTS)
    assert before["plan"] == {"peaks": []}

    assert all(shown_in(result, lo, hi) for lo, hi in MOMENTS)
    peaks = result["plan"]["peaks"]
    assert len(peaks) == 3 and all(p["covered"] for p in peaks)
    for peak, (lo, hi) in zip(peaks, MOMENTS):
        assert lo - 2 <= peak["start"] <= peak["time"] <= peak["end"] <= hi + 2
    assert result["tokens"] <= 1024
    assert "3 of 3 relevance peaks covered: 0:00:00-0:00:" in "\n".join(
        answered.evidence_lines())
