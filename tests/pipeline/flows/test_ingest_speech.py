"""Speech through the shared ingest chain on a real local Ray: recognised on the pool's actors in
the same shards as the coarse pass (never in the driver), exactly as the shard's stretch of audio
recognised alone, stored with the video's other ingest results, and for a video whose memory was
stored without speech, recognised in speech-only shards that decode no frames."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ingest_pools import ingest_config, running_pool
from tests.speech_videos import Line, espeak_available, make_speech_video
from vidsift.core.config import load_config
from vidsift.index.memory import MemoryStore
from vidsift.index.transcripts import TranscriptStore
from vidsift.core.types import Transcript
from vidsift.pipeline.flows.ingest import SPEECH_OVERRUN_S, ingest_one
from vidsift.workers import speech as speech_module

# 24 s, keyframes every 2 s, 6 s shards: three sentences said inside one shard, the last one
# across the boundary at 18 s
SPOKEN = [Line(1.0, "The delivery truck arrives at the north gate"),
          Line(7.0, "Meeting at nine in the library"),
          Line(13.0, "The password is falcon"),
          Line(16.6, "Turn left at the bridge and follow the river")]
# (start, end, share's end) of each shard's audio, as the ingest chain asks for it
SHARDS = [(None, 6.0 + SPEECH_OVERRUN_S, 6.0), (6.0, 12.0 + SPEECH_OVERRUN_S, 12.0),
          (12.0, 18.0 + SPEECH_OVERRUN_S, 18.0), (18.0, None, None)]


def _cfg(tmp_path, *extra):
    return ingest_config(tmp_path, 0.1, *extra)


@pytest.fixture(scope="module")
def pool(ray_cluster, tmp_path_factory):
    yield from running_pool(_cfg(tmp_path_factory.mktemp("pool")))


@pytest.fixture(scope="module")
def lecture(tmp_path_factory):
    if not espeak_available():
        pytest.fail("espeak-ng must be on PATH (make test installs it: make espeak)")
    path = tmp_path_factory.mktemp("speech") / "lecture.mp4"
    return path, make_speech_video(path, 24, SPOKEN, keyframe_every_s=2)


@pytest.fixture(scope="module")
def expected_segments(lecture):
    """Each shard's stretch of audio recognised alone in this process, the stretches joined by
    add_heard: what the pool must give."""
    cfg = load_config("default", ["speech.mode=asr"]).speech
    asr = speech_module.get_asr(cfg)
    parts = [speech_module.hear(str(lecture[0]), cfg, lambda: asr, start, end, until=until)
             for start, end, until in SHARDS]
    joined = Transcript()
    speech_module.add_heard(joined, str(lecture[0]), cfg, parts)
    return joined.segments


@pytest.fixture
def no_asr_in_the_driver(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("speech was recognised in the driver, not on the pool")

    monkeypatch.setattr(speech_module, "get_asr", refuse)


def test_speech_is_recognised_in_the_shards(pool, lecture, expected_segments, tmp_path,
                                            no_asr_in_the_driver):
    path, lines = lecture
    cfg = _cfg(tmp_path, "speech.mode=asr")
    done_before = sum(pool.shards_done)
    events = []
    memory = ingest_one(str(path), cfg, pool, MemoryStore(cfg.index.dir), events.append)
    assert sum(pool.shards_done) - done_before == len(SHARDS) == events[-1].shards_total
    transcript = memory.transcript
    assert transcript.sources == ["asr moonshine"] and transcript.warnings == []
    assert transcript.segments == expected_segments
    # every sentence was heard where it was said, and nothing where nothing was
    for line in lines:
        assert any(line.start - 0.3 <= s.start and s.end <= line.end + 0.3 for s in transcript.segments)
    for segment in transcript.segments:
        assert any(line.start - 0.3 <= segment.start and segment.end <= line.end + 0.3 for line in lines)
    # the sentence said across the shard boundary at 18 s is one segment, heard once, whole
    across = [s for s in transcript.segments if s.end > lines[3].start]
    assert len(across) == 1 and across[0].start < 18.0 < across[0].end, across
    assert {"turn", "river"} <= set(across[0].text.lower().replace(".", "").split())
    # stored with the memory: the next job reads it
    stored = TranscriptStore(cfg.index.dir).get(memory.content_hash, cfg.speech.key())
    assert stored.to_dict() == transcript.to_dict()


def test_asr_on_the_embed_actors_gives_the_same_transcript(pool, lecture, expected_segments, tmp_path,
                                                           no_asr_in_the_driver):
    cfg = _cfg(tmp_path, "speech.mode=asr", "speech.asr_actor=embed")
    memory = ingest_one(str(lecture[0]), cfg, pool, MemoryStore(cfg.index.dir))
    assert memory.transcript.segments == expected_segments


def test_a_memory_made_without_speech_gets_speech_only_shards(pool, lecture, expected_segments,
                                                              tmp_path, monkeypatch):
    path = str(lecture[0])
    store = MemoryStore(tmp_path / "index")
    first = ingest_one(path, _cfg(tmp_path, "speech.mode=none"), pool, store)
    assert first.transcript is None  # no speech asked for

    def refuse(*args, **kwargs):
        raise AssertionError("frames were decoded and stored again")

    monkeypatch.setattr(MemoryStore, "put_staged", refuse)
    cfg = _cfg(tmp_path, "speech.mode=asr")
    events = []
    with_speech = ingest_one(path, cfg, pool, store, events.append)
    assert not events[-1].reused and events[-1].shards_total == len(SHARDS)
    np.testing.assert_array_equal(with_speech.frames.times, first.frames.times)
    assert with_speech.transcript.segments == expected_segments
    # a third job reads both: no shard runs
    done_before = sum(pool.shards_done)
    events.clear()
    again = ingest_one(path, cfg, pool, store, events.append)
    assert sum(pool.shards_done) == done_before and [e.reused for e in events] == [True]
    assert again.transcript.to_dict() == with_speech.transcript.to_dict()


def test_subtitles_and_a_missing_audio_track_need_no_recognition(pool, tmp_path, no_asr_in_the_driver):
    mute = tmp_path / "mute.mp4"
    make_speech_video(mute, 8, audio="none", cues=[(1.0, 2.5, "The vault code is four two")],
                      subtitle_codec="mov_text", keyframe_every_s=2)
    asked = ingest_one(str(mute), _cfg(tmp_path, "speech.mode=asr"), pool, MemoryStore(tmp_path / "index"))
    assert asked.transcript.to_dict() == {"segments": [], "sources": [],
                                          "warnings": [f"{mute}: no audio track"]}
    read = ingest_one(str(mute), _cfg(tmp_path, "speech.mode=auto"), pool, MemoryStore(tmp_path / "index"))
    said = [(s.start, s.end, s.text) for s in read.transcript.segments]
    assert said == [(1.0, 2.5, "The vault code is four two")]


def test_whisper_recognises_each_shard_on_the_embed_actors(pool, lecture, tmp_path, no_asr_in_the_driver):
    """The GPU recogniser's path (speech.asr_actor=embed) with a tiny random-weight Whisper
    loaded by path in the actor: its text is noise, its times must fall in the shard heard."""
    from tests.tiny_whisper import save_tiny_whisper

    model = save_tiny_whisper(tmp_path / "tiny-whisper")
    cfg = _cfg(tmp_path, "speech.mode=asr", "speech.asr_backend=whisper",
               f"speech.whisper_model={model}", "speech.asr_actor=embed", "speech.window_s=6")
    transcript = ingest_one(str(lecture[0]), cfg, pool, MemoryStore(cfg.index.dir)).transcript
    assert transcript.sources == ["asr whisper"] and transcript.segments
    bounds = [0.0, 6.0, 12.0, 18.0, 24.0]
    for segment in transcript.segments:
        assert segment.source == "asr:whisper"
        shard = next(i for i in range(4) if bounds[i] <= segment.start < bounds[i + 1])
        assert segment.end <= bounds[shard + 1] + SPEECH_OVERRUN_S + 1e-6
    assert [s.start for s in transcript.segments] == sorted(s.start for s in transcript.segments)
