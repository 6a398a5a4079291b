"""SQLite metadata for the clip index: videos, clips, and each clip's vectors (the source of truth
the FAISS files are built from, so an index can be rebuilt or re-chosen without re-decoding).

Rows are versioned by generation: a row written by an uncommitted change carries the next
generation, and readers see only rows visible at the generation the manifest committed
(gen_added <= G and not removed at or before G). A crash before the manifest is written therefore
leaves the previous generation's view intact; recover() drops what the crash left half-done.

Each video row records the speech settings its clips' text was made with (SpeechConfig.key(), or
NO_SPEECH), so an index run with other settings knows to re-do it. Files written before that
column existed gain it, every video marked NO_SPEECH, when a writer opens them; readers of such a
file see NO_SPEECH without changing it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NO_SPEECH = "none"  # speech key of clips made without a transcript

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    duration REAL NOT NULL,
    added REAL NOT NULL,
    gen_added INTEGER NOT NULL,
    gen_removed INTEGER,
    speech TEXT NOT NULL DEFAULT '{NO_SPEECH}'
);
CREATE UNIQUE INDEX IF NOT EXISTS videos_live_hash ON videos(content_hash) WHERE gen_removed IS NULL;
CREATE INDEX IF NOT EXISTS videos_path ON videos(path);
CREATE TABLE IF NOT EXISTS clips (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id INTEGER NOT NULL REFERENCES videos(id),
    start REAL NOT NULL,
    end REAL NOT NULL,
    thumbnail TEXT NOT NULL,
    text TEXT NOT NULL,
    visual BLOB NOT NULL,
    text_vector BLOB NOT NULL,
    gen_added INTEGER NOT NULL,
    gen_removed INTEGER
);
CREATE INDEX IF NOT EXISTS clips_video ON clips(video_id);
"""

def _visible(alias: str = "", param: str = ":g") -> str:
    """SQL condition: the row (of table alias) exists at the generation bound to param."""
    col = f"{alias}." if alias else ""
    return f"{col}gen_added <= {param} AND ({col}gen_removed IS NULL OR {col}gen_removed > {param})"


@dataclass(frozen=True, slots=True)
class VideoRecord:
    id: int
    path: str
    content_hash: str
    duration: float  # seconds
    added: float  # unix time
    clips: int
    speech: str  # speech key the clips' text was made with (NO_SPEECH: none)


@dataclass(frozen=True, slots=True)
class ClipRecord:
    id: int  # also the vector id in both FAISS indexes
    video_path: str
    content_hash: str
    start: float  # seconds
    end: float
    thumbnail: str  # path of the JPEG, relative to the index dir
    text: str


@dataclass(frozen=True, slots=True)
class NewClip:
    """A clip to store: times in seconds, its thumbnail (relative path) and text."""

    start: float
    end: float
    thumbnail: str
    text: str


class MetadataStore:
    """One SQLite file. Each method is one transaction; `gen` arguments are generations.
    readonly: never change the file's schema (an older file is read as it is)."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a commit survives power loss
        self._db.executescript(_SCHEMA)
        self._speech_column = "v.speech"
        if not self._has_speech_column():
            if readonly:
                self._speech_column = f"'{NO_SPEECH}'"
            else:
                with self._tx() as db:
                    if not self._has_speech_column():  # another writer may have just added it
                        db.execute(f"ALTER TABLE videos ADD COLUMN speech TEXT NOT NULL DEFAULT '{NO_SPEECH}'")

    def _has_speech_column(self) -> bool:
        """False for a file written before videos recorded their speech settings."""
        return any(row[1] == "speech" for row in self._db.execute("PRAGMA table_info(videos)"))

    def close(self) -> None:
        self._db.close()

    def _tx(self):
        return _Transaction(self._db)

    # --- writes -------------------------------------------------------------------------
    def add_video(
        self,
        path: str,
        content_hash: str,
        duration: float,
        clips: Sequence[NewClip],
        visual: np.ndarray,
        text: np.ndarray,
        gen: int,
        speech: str = NO_SPEECH,
    ) -> list[int]:
        """Insert a video and its clips (visual (C, Dv), text (C, Dt) float32) at generation gen,
        their text made with speech settings `speech` (a SpeechConfig.key() or NO_SPEECH);
        returns the clip ids in order."""
        if not (len(clips) == len(visual) == len(text)):
            raise ValueError(f"{len(clips)} clips, {len(visual)} visual, {len(text)} text vectors")
        visual = np.asarray(visual, dtype=np.float32)
        text = np.asarray(text, dtype=np.float32)
        ids = []
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO videos(path, content_hash, duration, added, gen_added, speech)"
                " VALUES (?,?,?,?,?,?)",
                (path, content_hash, float(duration), time.time(), gen, speech),
            )
            video_id = cur.lastrowid
            for clip, v, t in zip(clips, visual, text):
                cur = db.execute(
                    "INSERT INTO clips(video_id, start, end, thumbnail, text, visual, text_vector,"
                    " gen_added) VALUES (?,?,?,?,?,?,?,?)",
                    (video_id, float(clip.start), float(clip.end), clip.thumbnail, clip.text,
                     v.tobytes(), t.tobytes(), gen),
                )
                ids.append(int(cur.lastrowid))
        return ids

    def mark_removed(self, video_id: int, gen: int) -> list[int]:
        """Mark a video and its clips removed at generation gen; returns the clip ids."""
        with self._tx() as db:
            ids = [r[0] for r in db.execute(
                "SELECT id FROM clips WHERE video_id = ? AND gen_removed IS NULL", (video_id,))]
            db.execute("UPDATE clips SET gen_removed = ? WHERE video_id = ? AND gen_removed IS NULL",
                       (gen, video_id))
            db.execute("UPDATE videos SET gen_removed = ? WHERE id = ?", (gen, video_id))
        return ids

    def recover(self, committed_gen: int) -> tuple[int, list[str]]:
        """Undo every change newer than committed_gen (left by a crash before its manifest was
        written); returns the number of rows dropped or restored and the dropped clips'
        thumbnail paths."""
        with self._tx() as db:
            thumbs = [r[0] for r in db.execute(
                "SELECT thumbnail FROM clips WHERE gen_added > ?", (committed_gen,))]
            changed = db.execute("DELETE FROM clips WHERE gen_added > ?", (committed_gen,)).rowcount
            changed += db.execute("DELETE FROM videos WHERE gen_added > ?", (committed_gen,)).rowcount
            for table in ("clips", "videos"):
                changed += db.execute(
                    f"UPDATE {table} SET gen_removed = NULL WHERE gen_removed > ?", (committed_gen,)
                ).rowcount
        return changed, thumbs

    def purge(self, committed_gen: int) -> list[str]:
        """Delete rows removed at or before committed_gen; returns their thumbnail paths."""
        with self._tx() as db:
            thumbs = [r[0] for r in db.execute(
                "SELECT thumbnail FROM clips WHERE gen_removed <= ?", (committed_gen,))]
            db.execute("DELETE FROM clips WHERE gen_removed <= ?", (committed_gen,))
            db.execute("DELETE FROM videos WHERE gen_removed <= ?", (committed_gen,))
        return thumbs

    # --- reads (all at a generation g) ---------------------------------------------------
    def find_video(self, g: int, *, content_hash: str | None = None, path: str | None = None
                   ) -> list[VideoRecord]:
        """Visible videos with this content hash or path."""
        where, arg = ("v.content_hash = :h", content_hash) if content_hash else ("v.path = :h", path)
        return self._videos(g, f"AND {where}", {"h": arg})

    def videos(self, g: int) -> list[VideoRecord]:
        return self._videos(g, "", {})

    def _videos(self, g: int, extra: str, args: dict) -> list[VideoRecord]:
        rows = self._db.execute(
            f"SELECT v.id, v.path, v.content_hash, v.duration, v.added,"
            f" (SELECT COUNT(*) FROM clips c WHERE c.video_id = v.id AND {_visible('c')}),"
            f" {self._speech_column} FROM videos v WHERE {_visible('v')} {extra} ORDER BY v.id",
            {"g": g, **args},
        )
        return [VideoRecord(*row) for row in rows]

    def clip_count(self, g: int) -> int:
        return self._db.execute(f"SELECT COUNT(*) FROM clips WHERE {_visible()}", {"g": g}).fetchone()[0]

    def clip_ids(self, g: int, video_ids: Sequence[int]) -> list[int]:
        marks = ",".join("?" * len(video_ids))
        rows = self._db.execute(
            f"SELECT id FROM clips WHERE video_id IN ({marks}) AND "
            + _visible(param="?"),
            (*video_ids, g, g),
        )
        return [r[0] for r in rows]

    def clips(self, g: int, ids: Sequence[int]) -> tuple[list[ClipRecord], np.ndarray, np.ndarray]:
        """Visible clips among ids (in the order given, missing ones skipped), with their visual
        (n, Dv) and text (n, Dt) vectors."""
        found: dict[int, tuple] = {}
        ids = [int(i) for i in ids]
        for lo in range(0, len(ids), 500):  # SQLite caps bound parameters
            part = ids[lo : lo + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                "SELECT c.id, v.path, v.content_hash, c.start, c.end, c.thumbnail, c.text,"
                " c.visual, c.text_vector FROM clips c JOIN videos v ON v.id = c.video_id"
                f" WHERE c.id IN ({marks}) AND " + _visible("c", "?"),
                (*part, g, g),
            )
            for row in rows:
                found[row[0]] = row
        records, visual, text = [], [], []
        for i in ids:
            if i in found:
                row = found[i]
                records.append(ClipRecord(*row[:7]))
                visual.append(np.frombuffer(row[7], dtype=np.float32))
                text.append(np.frombuffer(row[8], dtype=np.float32))
        return records, _stack(visual), _stack(text)

    def iter_vectors(self, g: int, space: str, batch: int = 10000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All visible clips' vectors of one space ('visual' or 'text'), as (ids, (n, D)) batches
        in id order: what an index is rebuilt from."""
        column = {"visual": "visual", "text": "text_vector"}[space]
        last = -1
        while True:
            rows = self._db.execute(
                f"SELECT id, {column} FROM clips WHERE id > :last AND {_visible()} ORDER BY id LIMIT :n",
                {"g": g, "last": last, "n": batch},
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield (np.array([r[0] for r in rows], dtype=np.int64),
                   _stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]))


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type, exc, tb) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
