"""Captions that use speech: each clip's transcript lines travel with its plan and frames to the
caption request, after the prompt, bounded by caption.speech_chars."""

from __future__ import annotations

import json

import numpy as np

from tests.speech_videos import make_speech_video
from vidsift.core.config import load_config
from vidsift.core.types import VLMResult
from vidsift.pipeline.flows.caption.mapper import CaptionActor, ClipFrames, caption_question
from vidsift.pipeline.flows.caption.reader import read_clips

PROMPT = "Describe this clip."


def test_caption_question():
    assert caption_question(PROMPT, "", 600) == PROMPT
    assert caption_question(PROMPT, "hello  there\nfriend", 600) == (
        f'{PROMPT}\nWhat is said during this clip: "hello there friend"')
    assert caption_question(PROMPT, "one two three four", 9) == f'{PROMPT}\nWhat is said during this clip: "one two …"'
    assert caption_question(PROMPT, "hello", 0) == PROMPT


class RecordingVLM:
    """Answers every request with its question, so the test reads what the model was asked."""

    def generate(self, requests):
        return [VLMResult(text=r.question, visual_tokens=0, visual_tokens_kept=0, prefill_s=0,
                          decode_s=0, model="recorder") for r in requests]


def test_speech_reaches_the_caption_request(tmp_path):
    video = tmp_path / "talk.mp4"
    make_speech_video(video, 8, audio="none", subtitle_codec="mov_text",
                      cues=[(1.0, 2.5, "Welcome to the lecture"), (5.0, 6.0, "Chapter two")])
    cfg = load_config(None, [f"index.dir={tmp_path / 'index'}", "speech.mode=subtitles",
                             "caption.clips=fixed", "caption.clip_s=4", "caption.frames_per_clip=1",
                             f"caption.prompt={PROMPT}"])
    [(_, plan)] = list(read_clips([str(video)], cfg))
    assert plan.spans == [(0.0, 4.0), (4.0, 8.0)]
    assert plan.speech == ["Welcome to the lecture", "Chapter two"]
    rows = list(ClipFrames(cfg.model_dump_json())(plan.to_row()))
    assert [r["speech"] for r in rows] == ["Welcome to the lecture", "Chapter two"]

    actor = object.__new__(CaptionActor)
    actor.cfg, actor.vlm = cfg, RecordingVLM()
    batch = {key: np.array([r[key] for r in rows], dtype=object) for key in rows[0]}
    out = actor(batch)
    assert list(out["caption"]) == [f'{PROMPT}\nWhat is said during this clip: "Welcome to the lecture"',
                                    f'{PROMPT}\nWhat is said during this clip: "Chapter two"']


def test_without_speech_mode_the_prompt_is_unchanged(tmp_path):
    video = tmp_path / "talk.mp4"
    make_speech_video(video, 4, audio="none", subtitle_codec="mov_text", cues=[(1.0, 2.5, "Hi")])
    cfg = load_config(None, [f"index.dir={tmp_path / 'index'}", "caption.clips=fixed", "caption.clip_s=4",
                             "speech.mode=none"])
    [(_, plan)] = list(read_clips([str(video)], cfg))
    assert plan.speech == [] and json.loads(plan.to_row()["speech"]) == [""]
    assert not (tmp_path / "index").exists()
