"""Stored transcripts: a video's Transcript kept once per (content, speech settings) beside its
memory, so later index, ask and transcribe jobs read it instead of recognising the audio again.

Layout under the index dir (next to index/memory.py's files):
    memory/<hash[:2]>/<hash>/speech-<key>.json   key = SpeechConfig.key()
    memory/<hash[:2]>/<hash>/speech-<key>-<space>.npy   its segments' text vectors in one
        embedder's space (space: 16 hex of the space id's SHA-256), so asking again embeds nothing
written whole with core.files.write_atomic; a damaged or other-format file reads as absent.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np

from vidsift.core.files import write_atomic
from vidsift.core.types import Transcript

log = logging.getLogger(__name__)

FORMAT = 1


class TranscriptStore:
    """Transcripts under `index_dir`/memory (folders created on the first write)."""

    def __init__(self, index_dir: str | Path) -> None:
        self.root = Path(index_dir).expanduser() / "memory"

    def path(self, content_hash: str, key: str) -> Path:
        return self.root / content_hash[:2] / content_hash / f"speech-{key}.json"

    def get(self, content_hash: str, key: str) -> Transcript | None:
        """The transcript of this content made with these settings, or None (also when the file
        is damaged: it is logged and made anew)."""
        path = self.path(content_hash, key)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("content_hash") != content_hash:
                return None
            return Transcript.from_dict(data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s: stored transcript unreadable, making it anew (%s)", path, exc)
            return None

    def put(self, content_hash: str, key: str, transcript: Transcript, settings: dict | None = None) -> Path:
        """Store `transcript`; settings (the SpeechConfig's fields) are recorded for people
        reading the file, not used to look it up."""
        path = self.path(content_hash, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": FORMAT, "content_hash": content_hash, "key": key,
                   "settings": settings or {}, **transcript.to_dict()}
        write_atomic(path, json.dumps(payload, ensure_ascii=False, indent=1))
        return path

    def vectors_path(self, content_hash: str, key: str, space: str) -> Path:
        name = hashlib.sha256(space.encode()).hexdigest()[:16]
        return self.root / content_hash[:2] / content_hash / f"speech-{key}-{name}.npy"

    def get_vectors(self, content_hash: str, key: str, space: str, rows: int) -> np.ndarray | None:
        """The (rows, D) float32 text vectors stored for this transcript in embedder space
        `space`, or None (absent, unreadable, or not one row per segment: made anew)."""
        path = self.vectors_path(content_hash, key, space)
        if not path.is_file():
            return None
        try:
            vectors = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.warning("%s: stored transcript vectors unreadable, embedding anew (%s)", path, exc)
            return None
        return vectors if vectors.ndim == 2 and len(vectors) == rows else None

    def put_vectors(self, content_hash: str, key: str, space: str, vectors: np.ndarray) -> Path:
        """Store a transcript's (rows, D) segment vectors as float32."""
        path = self.vectors_path(content_hash, key, space)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(vectors, dtype=np.float32), allow_pickle=False)
        write_atomic(path, buffer.getvalue())
        return path
