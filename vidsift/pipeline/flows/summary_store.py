"""Where summarize keeps what the VLM wrote: one SQLite file beside the videos' memories
(index.dir/summaries.sqlite), so a re-run after a crash redoes only the chapters that are
missing and a second summary of the same video with the same model and settings calls no VLM.

A row is one result: kind ("chapter": a chapter's title and summary; "reduce": the video's
summary and highlights), the video's content hash and a key naming everything the result
depends on (the memory's settings, the chapter's span, the model, the map or reduce settings,
the inputs' digest), and the result as JSON. Each chapter is committed as it lands; the file
is opened per call, so threads and processes may share it (WAL, a busy timeout).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from vidsift.core.files import open_sqlite

STORE_NAME = "summaries.sqlite"
BUSY_TIMEOUT_S = 30.0


def digest(payload) -> str:
    """A short stable name for a JSON-able payload (sorted keys)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class SummaryStore:
    """Results by (kind, content hash, key) under index_dir/summaries.sqlite."""

    def __init__(self, index_dir: str | Path) -> None:
        self.path = Path(index_dir).expanduser() / STORE_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("CREATE TABLE IF NOT EXISTS results (kind TEXT NOT NULL, video TEXT NOT "
                       "NULL, key TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL, "
                       "PRIMARY KEY (kind, video, key))")

    def _connect(self) -> sqlite3.Connection:
        return open_sqlite(self.path, BUSY_TIMEOUT_S)

    def get(self, kind: str, video: str, key: str) -> dict | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT value FROM results WHERE kind=? AND video=? AND key=?",
                             (kind, video, key)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, kind: str, video: str, key: str, value: dict) -> None:
        with closing(self._connect()) as db:
            db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)",
                       (kind, video, key, json.dumps(value), time.time()))

    def count(self, kind: str, video: str) -> int:
        """How many results of this kind the video has (any settings)."""
        with closing(self._connect()) as db:
            return int(db.execute("SELECT COUNT(*) FROM results WHERE kind=? AND video=?",
                                  (kind, video)).fetchone()[0])
