"""Writing files so that readers never see half of one, the thumbnails results point to, and the
SQLite connection the stores share."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np

THUMBNAIL_MAX_SIDE = 256


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, content: str | bytes | Callable[[Path], None]) -> None:
    """Write `content` to a temp file beside `path`, fsync it, rename it over `path` and fsync
    the folder: after a crash `path` is either the old file or the new one, whole.

    content: text, bytes, or a callable that writes the temp path it is given (FAISS, Parquet,
    numpy writers that want a file name)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    if callable(content):
        content(tmp)
    elif isinstance(content, bytes):
        tmp.write_bytes(content)
    else:
        tmp.write_text(content, encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, path)
    _fsync(path.parent)


def save_thumbnail(image: np.ndarray, path: str | os.PathLike) -> None:
    """Write an (H, W, 3) uint8 RGB frame as the small JPEG that index, ask and caption results
    point to (longest side THUMBNAIL_MAX_SIDE)."""
    from PIL import Image

    path = Path(path)
    thumb = Image.fromarray(image)
    thumb.thumbnail((THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE))
    path.parent.mkdir(parents=True, exist_ok=True)
    thumb.save(path, format="JPEG", quality=80)


def open_sqlite(path: str | os.PathLike, busy_timeout_s: float) -> sqlite3.Connection:
    """A short-lived connection to a store's SQLite file in WAL mode, safe to open from any thread
    or process: SQLite's file locks serialise writers, WAL lets readers run beside them.
    isolation_level=None: the caller issues BEGIN IMMEDIATE where a read-then-write must be
    atomic; single statements are atomic on their own."""
    conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # durable across crashes of the process in WAL
    return conn
