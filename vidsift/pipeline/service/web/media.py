"""Media for the page's player: an HTML5 <video> cannot send the X-API-Key header, so the page
asks (with its key) for a ticket: a URL that reads one file for a short while. The ticket holds
the file's path and expiry, signed with a secret only this service knows; the key itself never
appears in a URL. Every read re-checks the path against the media roots. A video behind a URL
(core.sources) is proxied: each Range request the player sends is read from the store as byte
ranges, so the browser needs neither the store's credentials nor a route to it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import mimetypes
import secrets
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from vidsift.core import sources
from vidsift.core.errors import VidsiftError
from vidsift.core.media import VIDEO_EXTENSIONS, check_video_file
from vidsift.pipeline.service.security import MediaRoots

TICKET_TTL_S = 6 * 3600  # long enough to watch a long video without a new ticket


class TicketError(Exception):
    """A media ticket that is malformed, forged or expired."""


class NotMediaError(VidsiftError):
    """A file inside a media root that is not a video: the service streams videos only."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: not a video file (only videos are streamed)")


class MediaTickets:
    """Issue and verify signed, expiring read tickets for single files."""

    def __init__(self, ttl_s: float = TICKET_TTL_S, secret: bytes | None = None) -> None:
        self.ttl_s = ttl_s
        self._secret = secret or secrets.token_bytes(32)

    def _sign(self, expires: int, path: str) -> str:
        digest = hmac.new(self._secret, f"{expires}\n{path}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def issue(self, path: Path, now: float | None = None) -> tuple[str, int]:
        """(ticket, expiry in unix seconds) for reading this file."""
        expires = int((time.time() if now is None else now) + self.ttl_s)
        encoded = base64.urlsafe_b64encode(str(path).encode()).decode().rstrip("=")
        return f"{expires}.{encoded}.{self._sign(expires, str(path))}", expires

    def verify(self, ticket: str, now: float | None = None) -> Path | str:
        """The file a ticket grants; TicketError when it is malformed, forged or expired."""
        try:
            expires_text, encoded, signature = ticket.split(".")
            expires = int(expires_text)
            path = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            raise TicketError("malformed media ticket") from None
        if not hmac.compare_digest(signature, self._sign(expires, path)):
            raise TicketError("media ticket signature does not match")
        if (time.time() if now is None else now) > expires:
            raise TicketError("media ticket expired: ask for a new one")
        return path if sources.is_url(path) else Path(path)


def servable_video(roots: MediaRoots, path: str | Path) -> Path | str:
    """The resolved video file (or URL) a request may stream: inside a media root (else
    PathNotAllowedError; InvalidPathError for a NUL byte), a video by its extension (else
    NotMediaError: other files under a root are not media), and a regular, non-empty file
    (else check_video_file's VideoError: VideoNotFoundError when missing)."""
    resolved = roots.check(path)
    if name_of(resolved).suffix.lower() not in VIDEO_EXTENSIONS:
        raise NotMediaError(str(path))
    return check_video_file(resolved)


# MPEG transport streams: the MIME tables know .m2ts not at all and call .ts a Qt translation.
TRANSPORT_STREAM_SUFFIXES = (".ts", ".m2ts")


def name_of(video: Path | str) -> Path:
    """A video's file name as a Path (a URL's path part), for its suffix and media type."""
    return Path(urlsplit(video).path) if isinstance(video, str) else video


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
PROXY_CHUNK = 1 << 20


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive [first, last] byte of a single-range Range header over size bytes; None
    for no header (or one this proxy does not split: several ranges, another unit), which is
    answered whole. ValueError for a range that starts past the end (416)."""
    match = _RANGE.match((header or "").strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # the last N bytes
        return max(0, size - int(last)), size - 1
    if int(first) >= size:
        raise ValueError(f"range starts at {first}, past the end ({size} bytes)")
    return int(first), min(size - 1, int(last)) if last else size - 1


def remote_chunks(url: str, version: str, first: int, last: int) -> Iterator[bytes]:
    """Bytes first..last of a remote video, read from the store PROXY_CHUNK at a time."""
    handle = sources.open_source(url, version)
    try:
        handle.seek(first)
        remaining = last - first + 1
        while remaining > 0:
            chunk = handle.read(min(PROXY_CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def media_type(path: Path) -> str:
    if path.suffix.lower() in TRANSPORT_STREAM_SUFFIXES:
        return "video/mp2t"
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"
