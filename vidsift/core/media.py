"""Which files are videos, where a job's videos come from, and what identifies a video's
content."""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from vidsift.core.errors import ConfigError, VideoNotFoundError

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts", ".flv", ".wmv"}
)
MANIFEST_SUFFIXES = (".jsonl", ".ndjson", ".csv")


def _read_manifest(source: Path) -> list[str]:
    """.jsonl (one path per line, as a JSON string or an object with "path" or "video") or .csv
    (a "path" or "video" column); relative paths are taken relative to the manifest's folder."""
    entries: list[str] = []
    if source.suffix.lower() == ".csv":
        with source.open(newline="") as handle:
            reader = csv.DictReader(handle)
            column = next((c for c in ("path", "video") if c in (reader.fieldnames or [])), None)
            if column is None:
                raise ConfigError(f"{source}: CSV manifest needs a 'path' or 'video' column")
            entries = [row[column] for row in reader if row.get(column)]
    else:
        for number, line in enumerate(source.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{source}:{number}: invalid JSON ({exc.msg})") from None
            path = item if isinstance(item, str) else (
                (item.get("path") or item.get("video")) if isinstance(item, dict) else None)
            if not isinstance(path, str):
                raise ConfigError(f"{source}:{number}: expected a path or {{\"path\": ...}}")
            entries.append(path)
    return [str((source.parent / Path(e).expanduser()).resolve()) for e in entries]


def find_videos(sources: Sequence[str | os.PathLike]) -> list[str]:
    """The videos a job names: each source is a folder (its video files by extension, recursive,
    hidden ones left out, sorted), a manifest (.jsonl / .csv, see _read_manifest) or a file taken
    as given (any extension; a missing one too, so it is reported). Absolute, de-duplicated, in
    the order found."""
    found: dict[str, None] = {}
    for raw in sources:
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if (child.is_file() and child.suffix.lower() in VIDEO_EXTENSIONS
                        and not child.name.startswith(".")):
                    found.setdefault(str(child.resolve()), None)
        elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
            found.update(dict.fromkeys(_read_manifest(path)))
        else:
            found.setdefault(str(path.resolve()), None)
    return list(found)


@functools.lru_cache(maxsize=256)
def _hash_file(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_hash(path: str | os.PathLike) -> str:
    """SHA-256 of the file's bytes, hex: the same video at another path is the same content.
    Cached per (path, size, mtime) in this process, so a service hashes a file once."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise VideoNotFoundError(str(path)) from None
    return _hash_file(str(path), stat.st_size, stat.st_mtime_ns)


def video_key(path: str) -> str:
    """A file-name-safe key unique per absolute path: the stem plus a short hash."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(path).stem)[:60]
    return f"{stem}-{hashlib.sha1(path.encode()).hexdigest()[:10]}"
