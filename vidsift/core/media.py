"""Which files are videos, where a job's videos come from, and what identifies a video's
content."""

from __future__ import annotations

import csv
import errno
import functools
import hashlib
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from vidsift.core import sources
from vidsift.core.errors import (
    ConfigError,
    EmptyVideoError,
    InvalidPathError,
    NotAFileError,
    SymlinkLoopError,
    VideoError,
    VideoNotFoundError,
)

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
    return [sources.normalise_url(e) if sources.is_url(e)
            else _listed(source.parent / expand_home(e)) for e in entries]


def expand_home(path: str | os.PathLike) -> Path:
    """Path(path) with a leading ~ or ~user expanded; a ~user with no home here (an unknown
    user, or no HOME at all) stays as given, as a shell leaves it: a name, not an error."""
    try:
        return Path(path).expanduser()
    except RuntimeError:  # pathlib: "Could not determine home directory."
        return Path(path)


def resolve_path(path: str | os.PathLike, base: str | os.PathLike | None = None) -> Path | str:
    """The absolute path, '..' and symlinks resolved as far as they lead: a symlink loop or a
    dangling link is left where resolution stops, for check_video_file to name. A relative
    path is taken relative to base (default: the current directory). InvalidPathError for a
    NUL byte, which no file name can hold. A URL (core.sources.is_url) comes back as a string,
    normalised (sources.normalise_url: '..' refused)."""
    if sources.is_url(path):
        return sources.normalise_url(str(path))
    if "\0" in str(path):
        raise InvalidPathError(str(path), "a NUL byte in it")
    raw = expand_home(path)
    return Path(os.path.realpath(raw if base is None else Path(base) / raw))


_NOT_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
                   (stat.S_ISSOCK, "a socket"))


def check_video_file(path: str | os.PathLike) -> Path | str:
    """The resolved path of a regular, non-empty file (stat calls only, nothing read), else a
    VideoError naming the path as given and the problem: InvalidPathError (a NUL byte),
    VideoNotFoundError (missing, or a dangling symlink), SymlinkLoopError, NotAFileError (a
    directory, pipe, socket or device), EmptyVideoError; another OSError as VideoError with
    its reason (permission denied, name too long, ...). Every entry point runs it (or
    probe.check_video, which also opens the container) before any work starts. A URL is
    asked of its store instead (core.sources.stat_source: one metadata request)."""
    if sources.is_url(path):
        return sources.stat_source(str(path)).url
    resolved = resolve_path(path)
    given = expand_home(path)
    try:
        info = os.stat(given)
    except FileNotFoundError:
        if os.path.islink(given):
            raise VideoNotFoundError(str(path), f"a dangling symlink to {os.readlink(given)}") from None
        raise VideoNotFoundError(str(path)) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SymlinkLoopError(str(path)) from None
        raise VideoError(str(path), exc.strerror or type(exc).__name__) from None
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for is_kind, name in _NOT_FILE_KINDS if is_kind(info.st_mode)), "a device")
        if stat.S_ISDIR(info.st_mode) and not _holds_videos(given):
            kind += " with no videos in it: none named " + ", ".join(sorted(VIDEO_EXTENSIONS))
        raise NotAFileError(str(path), kind)
    if info.st_size == 0:
        raise EmptyVideoError(str(path))
    return resolved


def _holds_videos(folder: Path) -> bool:
    """Whether find_videos would find a video in folder (stops at the first)."""
    return any(child.suffix.lower() in VIDEO_EXTENSIONS and not child.name.startswith(".")
               and not child.is_dir() for child in folder.rglob("*"))


def _listed(path: Path) -> str:
    """A path as find_videos lists it: resolved; a broken symlink (a loop, a dangling link) at
    the link itself, and a path with a NUL byte as given, so check_video_file names them."""
    if "\0" in str(path):
        return str(path)
    if os.path.islink(path) and not path.exists():
        return str(resolve_path(path.parent) / path.name)
    return str(resolve_path(path))


def find_videos(given: Sequence[str | os.PathLike]) -> list[str]:
    """The videos a job names: each source is a folder (every entry named like a video, by
    extension, recursive, hidden ones left out, sorted), a manifest (.jsonl / .csv, see
    _read_manifest; its entries may be URLs), a URL (an object, or a bucket prefix listed as a
    folder is: core.sources.list_videos) or a file taken as given (any extension). Absolute,
    de-duplicated, in the order found. What cannot be a video is listed too, so that
    check_video_file reports it by name: a missing file, a folder's broken entry (a symlink loop, a dangling link: listed at
    the link, unresolved), a folder with no videos in it (the folder itself)."""
    found: dict[str, None] = {}
    for raw in given:
        if sources.is_url(raw):
            found.update(dict.fromkeys(sources.list_videos(str(raw), VIDEO_EXTENSIONS)))
            continue
        path = expand_home(raw)
        if path.is_dir():
            entries = [child for child in sorted(path.rglob("*"))
                       if child.suffix.lower() in VIDEO_EXTENSIONS
                       and not child.name.startswith(".") and not child.is_dir()]
            found.update(dict.fromkeys(_listed(child) for child in entries or [path]))
        elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
            found.update(dict.fromkeys(_read_manifest(path)))
        else:
            found.setdefault(_listed(path), None)
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
    Cached per (path, size, mtime) in this process, so a service hashes a file once. A path
    that is no regular, non-empty file raises check_video_file's VideoError. A URL's digest
    comes from its store's checksum or version (core.sources.source_digest)."""
    if sources.is_url(path):
        return sources.source_digest(str(path))
    check_video_file(path)
    info = os.stat(path)
    return _hash_file(str(path), info.st_size, info.st_mtime_ns)


def video_key(path: str) -> str:
    """A file-name-safe key unique per absolute path: the stem plus a short hash."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(path).stem)[:60]
    return f"{stem}-{hashlib.sha1(path.encode()).hexdigest()[:10]}"
