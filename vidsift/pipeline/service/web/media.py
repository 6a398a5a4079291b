"""Media for the page's player: an HTML5 <video> cannot send the X-API-Key header, so the page
asks (with its key) for a ticket: a URL that reads one file for a short while. The ticket holds
the file's path and expiry, signed with a secret only this service knows; the key itself never
appears in a URL. Every read re-checks the path against the media roots. A video behind a URL
(core.sources) is proxied: each Range request the player sends is read from the store as byte
ranges, so the browser needs neither the store's credentials nor a route to it.

A remote video plays one version (playing_version): a ticket holds the version the store had
when it was issued, or, asked with the memory's content_hash, the version that memory was made
from (an S3 versioned bucket keeps an overwritten one: the version whose MD5 is the memory's);
every read by the ticket then reads that version only (its SourceInfo.pin: S3's VersionId, GCS's
generation, a web server's strong ETag as If-Match). An object changed since, where the store
cannot serve the old version (a web server, an unversioned bucket), answers 412 naming the
change, never other bytes under the same ticket; a memory's version the store no longer has
answers 409 when the ticket is asked for."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
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


class VersionGoneError(VidsiftError):
    """The version of a remote video a memory was made from is no longer in its store (409)."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"{sources.redact(url)}: {why}")


class VersionChangedError(VidsiftError):
    """A remote video changed since its ticket was issued, and the store cannot serve the
    version the ticket plays (412)."""

    def __init__(self, url: str) -> None:
        super().__init__(f"{sources.redact(url)}: changed since its media ticket was issued "
                         "(ask for a new ticket)")


def _tupled(value):
    """JSON's lists back into the tuples a SourceInfo holds."""
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def version_text(info: sources.SourceInfo) -> str:
    """A remote video's version as a ticket carries it (JSON)."""
    return json.dumps([info.url, info.size, info.md5, info.version, info.pin, info.weak])


def version_of_text(text: str) -> sources.SourceInfo:
    url, size, md5, version, pin, weak = json.loads(text)
    return sources.SourceInfo(url=url, size=int(size), md5=md5, version=_tupled(version),
                              pin=_tupled(pin), weak=_tupled(weak))


def playing_version(url: str, content_hash: str | None = None) -> sources.SourceInfo:
    """The version of url a ticket plays: the one its store holds now, unless content_hash (a
    memory's digest, core.sources.source_digest) names another: then the version with that
    digest among the object's versions in a versioned S3 bucket (sources.object_versions), else
    VersionGoneError. An object with no strong version (hashed in pieces) is taken as it is
    now: telling its digest would read it whole."""
    now = sources.stat_source(url)
    if content_hash is None or now.hashed_in_pieces or sources.source_digest(now) == content_hash:
        return now
    for older in sources.object_versions(now.url):
        if sources.source_digest(older) == content_hash:
            return older
    raise VersionGoneError(url, "the version its memory was made from is no longer in its "
                                "store (changed since it was indexed)")


def still_readable(playing: sources.SourceInfo) -> sources.SourceInfo:
    """playing, checked against what the store says now: the same version, or one the store
    still serves by its pin (an S3 VersionId, a GCS generation); else VersionChangedError."""
    now = sources.stat_source(playing.url)
    if (now.token, now.weak, now.size) == (playing.token, playing.weak, playing.size):
        return playing
    if any(key in ("version_id", "generation") for key, _ in playing.pin):
        return playing
    raise VersionChangedError(playing.url)


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

    def issue(self, path: Path | sources.SourceInfo, now: float | None = None) -> tuple[str, int]:
        """(ticket, expiry in unix seconds) for reading this file, or this version of a remote
        video (playing_version's)."""
        expires = int((time.time() if now is None else now) + self.ttl_s)
        text = version_text(path) if isinstance(path, sources.SourceInfo) else str(path)
        encoded = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
        return f"{expires}.{encoded}.{self._sign(expires, text)}", expires

    def verify(self, ticket: str, now: float | None = None) -> Path | sources.SourceInfo:
        """The file a ticket grants, or the version of a remote video; TicketError when it is
        malformed, forged or expired."""
        try:
            expires_text, encoded, signature = ticket.split(".")
            expires = int(expires_text)
            text = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            raise TicketError("malformed media ticket") from None
        if not hmac.compare_digest(signature, self._sign(expires, text)):
            raise TicketError("media ticket signature does not match")
        if (time.time() if now is None else now) > expires:
            raise TicketError("media ticket expired: ask for a new one")
        return version_of_text(text) if text.startswith("[") else Path(text)


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


def remote_chunks(info: sources.SourceInfo, first: int, last: int) -> Iterator[bytes]:
    """Bytes first..last of that version of a remote video, read from the store PROXY_CHUNK at
    a time (pinned: a read of another version fails, SourceReadError)."""
    handle = sources.open_info(info)
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
