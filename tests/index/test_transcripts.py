"""Transcripts stored once per (content, speech settings) beside the video's memory."""

from __future__ import annotations

import json

from vidsift.core.config import SpeechConfig
from vidsift.core.types import Transcript
from vidsift.core.types import TranscriptSegment as Seg
from vidsift.index.transcripts import TranscriptStore

DIGEST = "ab" + "0" * 62


def test_put_get_round_trip_and_layout(tmp_path):
    store = TranscriptStore(tmp_path)
    key = SpeechConfig(mode="asr").key()
    transcript = Transcript([Seg(1.25, 3.5, "héllo", "asr:pocketsphinx")], ["asr pocketsphinx"], ["a note"])
    path = store.put(DIGEST, key, transcript, {"mode": "asr"})
    assert path == tmp_path / "memory" / "ab" / DIGEST / f"speech-{key}.json"
    assert store.get(DIGEST, key) == transcript
    assert json.loads(path.read_text())["settings"] == {"mode": "asr"}
    assert store.get(DIGEST, SpeechConfig(mode="subtitles").key()) is None
    assert not list(path.parent.glob(".*"))  # no temp file left behind


def test_key_follows_output_settings_only():
    base = SpeechConfig(mode="asr")
    assert base.key() == SpeechConfig(mode="asr", batch_size=16, device="cpu").key()
    assert base.key() != SpeechConfig(mode="asr", window_s=10).key()
    assert base.key() != SpeechConfig(mode="asr", asr_backend="whisper", whisper_model="x").key()


def test_damaged_file_reads_as_absent(tmp_path):
    store = TranscriptStore(tmp_path)
    path = store.put(DIGEST, "k", Transcript())
    path.write_text("{not json")
    assert store.get(DIGEST, "k") is None
    path.write_text(json.dumps({"format": 99, "content_hash": DIGEST, "segments": []}))
    assert store.get(DIGEST, "k") is None


def test_segment_vectors_are_kept_per_embedder_space(tmp_path):
    import numpy as np

    store = TranscriptStore(tmp_path)
    digest = "ab" * 32
    vectors = np.arange(6, dtype=np.float64).reshape(3, 2)
    path = store.put_vectors(digest, "k1", "offline:clip", vectors)
    assert path.parent == store.path(digest, "k1").parent
    found = store.get_vectors(digest, "k1", "offline:clip", 3)
    assert found.dtype == np.float32 and found.tolist() == vectors.tolist()
    assert store.get_vectors(digest, "k1", "hf:other", 3) is None  # another space
    assert store.get_vectors(digest, "k2", "offline:clip", 3) is None  # another transcript
    assert store.get_vectors(digest, "k1", "offline:clip", 4) is None  # not one row per segment
    path.write_bytes(b"not numpy")
    assert store.get_vectors(digest, "k1", "offline:clip", 3) is None
