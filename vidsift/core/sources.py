"""Videos behind URLs: object stores (s3://, gs://, az:// and abfs://) and web servers
(http(s)://), read in place through fsspec by whichever process needs them.

A remote video is opened as a seekable file whose reads go to the server as byte ranges of
one block (fsspec's block cache); the process keeps the last cache_blocks blocks it fetched,
by (URL, version, range), for every file it opens on that object, since a decoder opens a
video once per pass over a shard. So a decoder seeking to its shard reads that shard's ranges
and the container's header, never the whole object, about once, and holds at most
cache_blocks blocks. Credentials come from each back end's own chain
(environment, config files, instance or workload identity); nothing here takes, logs or returns
them, and every message names the URL with its user info and query values redacted.

Identity (source_digest): the store's own checksum where it is one of the content (an S3
single-part ETag, GCS's md5Hash, Azure's Content-MD5), so the same bytes under another name are
the same video; else the object's strong version as the store reports it (S3's ETag and
VersionId, GCS's generation, Azure's etag, a web server's strong ETag; with the size and
Last-Modified) with the URL. A server that reports none (no ETag, only a weak one, only
Last-Modified) gives the digest of its bytes in pieces (pieces_digest): the object is cut into
PIECE_BYTES pieces, each hashed with SHA-256, and the digest is the SHA-256 of the size and the
pieces' digests in order, so it depends on the bytes alone (the same bytes at two such URLs are
the same video; a local copy keys its memory by the SHA-256 of the whole file, as a strong
version or a store's checksum keys another). Its pieces are hashed wherever the bytes are read
anyway: every block a process fetches of such an object while it records (start_pieces /
take_pieces) hashes the whole pieces inside it, so the coarse pass's shards hash what they
decode and the driver reads only the pieces no shard fetched (hash_pieces); such an object's
blocks are shared between opens within one recording only (it may change under its name). A
new version of an object is a new digest, so no stored memory of the old one is served for it.

Pinning (SourceInfo.pin): reads of an object opened with its SourceInfo ask for the version
seen then: S3's VersionId (a versioned bucket; s3fs version_aware), GCS's generation (gcsfs
sends it with every range request), a web server's strong ETag as If-Match (a changed file answers 412:
SourceReadError "changed since it was probed"). So an object overwritten during an ingest is
read at its old version or fails, never mixed.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import io
import itertools
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from vidsift.core.errors import (
    EmptyVideoError,
    InvalidPathError,
    NotAFileError,
    VideoError,
    VideoNotFoundError,
)

# fsspec protocol -> the package that implements it (the `remote` extra installs them).
PROTOCOLS = {
    "s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs",
    "az": "adlfs", "abfs": "adlfs", "abfss": "adlfs", "http": "aiohttp", "https": "aiohttp",
}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")

# Range reads: 1 MiB a request keeps the per-request overhead small against a shard's bytes,
# 16 of them (16 MiB) hold a decoder's working set between seeks (decode.source_block_kib and
# decode.source_cache_blocks set them per process: configure()).
_settings = {"block": 1 << 20, "blocks": 16}
_fetched: dict[str, int] = {}
_blocks: OrderedDict[tuple[str, str, int, int], bytes] = OrderedDict()
_fetched_lock = threading.Lock()

# Objects with no strong version are hashed in pieces of this many bytes (pieces_digest): small
# enough that the blocks a shard fetches hold nearly all of its share's pieces whole, large
# enough that a 2-hour video's digests (32 bytes a piece) stay under a megabyte.
PIECE_BYTES = 256 * 1024
# URL -> the pieces this process is hashing of it (start_pieces), shared by overlapping
# recordings of the same object.
_recorders: dict[str, _PieceRecorder] = {}


class SourceReadError(VideoError):
    """A remote video that cannot be read: the server refused, dropped or failed the request."""

    reason = "cannot be read"


def is_url(path) -> bool:
    """Whether `path` names a remote video (a scheme fsspec reads: PROTOCOLS), not a file."""
    match = _SCHEME.match(str(path))
    return bool(match) and match.group(1).lower() in PROTOCOLS


def redact(url: str) -> str:
    """The URL as messages may show it: no user name or password, and every query value (a
    presigned URL's signature, an Azure SAS token) replaced by ***."""
    parts = urlsplit(str(url))
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = urlencode([(key, "***") for key, _ in parse_qsl(parts.query, keep_blank_values=True)],
                      safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def normalise_url(url: str) -> str:
    """The URL with its scheme lower-cased and repeated slashes in its path folded; a path with
    a '.' or '..' segment (also percent-encoded, or between backslashes) or a NUL byte is
    refused (InvalidPathError):
    an object store takes '..' literally and a web server resolves it, so neither may
    stand in a name that is checked against a prefix."""
    text = str(url)
    if "\0" in text:
        raise InvalidPathError(redact(text), "a NUL byte in it")
    parts = urlsplit(text)
    # Segments as a server may read them: percent-decoded (%2F..%2F is /../) and with
    # backslashes as separators.
    decoded = unquote(parts.path).replace("\\", "/").split("/")
    if "\0" in unquote(parts.path):
        raise InvalidPathError(redact(text), "a NUL byte in it")
    if any(s in (".", "..") for s in decoded):
        raise InvalidPathError(redact(text), "a '.' or '..' segment in the URL's path")
    path = re.sub(r"/{2,}", "/", parts.path)
    return urlunsplit((parts.scheme.lower(), parts.netloc, path, parts.query, ""))


def configure(block_kib: int, cache_blocks: int) -> None:
    """This process's range reads: block_kib KiB a request, the last cache_blocks kept."""
    _settings["block"], _settings["blocks"] = int(block_kib) * 1024, int(cache_blocks)


def open_info(info: SourceInfo):
    """open_source for the version of the object that info describes."""
    return open_source(info.url, info.token, info.pin)


def _filesystem(url: str, version_aware: bool = False):
    import fsspec

    protocol = _SCHEME.match(url).group(1).lower()
    try:
        return fsspec.core.url_to_fs(url, **({"version_aware": True} if version_aware else {}))
    except ImportError as exc:
        raise VideoError(redact(url), f"{protocol}:// needs the {PROTOCOLS[protocol]} package: "
                                      f"pip install 'vidsift[remote]' ({exc})") from None


def _failure(url: str, exc: BaseException) -> VideoError:
    """The typed error for a failed request on url, its cause told without the URL's secrets."""
    if isinstance(exc, VideoError):
        return exc
    shown = redact(url)
    cause = exc.__cause__
    if isinstance(exc, FileNotFoundError) and cause is not None:
        # fsspec's HTTP back end says "not found" for every failed request: the cause tells.
        status = getattr(cause, "status", None)
        if status == 412:
            return SourceReadError(shown, "changed since it was probed (HTTP 412)")
        if status == 404:
            return VideoNotFoundError(shown)
        if status in (401, 403):
            return SourceReadError(shown, f"access denied: HTTP {status}")
        exc = cause
    if getattr(exc, "status", None) == 412:  # If-Match refused: a new version of the file
        return SourceReadError(shown, "changed since it was probed (HTTP 412)")
    text = str(exc).replace(url, shown) or type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return VideoNotFoundError(shown)
    if isinstance(exc, PermissionError):
        return SourceReadError(shown, f"access denied: {text}")
    return SourceReadError(shown, f"{type(exc).__name__}: {text}")


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What the store says of an object: size in bytes, its checksum of the content when it
    gives one (md5 hex), and its version tokens (what changes when the object does)."""

    url: str
    size: int
    md5: str | None
    version: tuple[str, ...]
    pin: tuple = ()  # open_source's keyword arguments that read this version only
    # What the store said that does not identify a version (a weak ETag, Last-Modified, the
    # size), when it gave no strong one: a change here is a change, sameness proves nothing.
    weak: tuple[str, ...] = ()

    @property
    def token(self) -> str:
        """A short string that changes whenever the object does (cache keys); "" when the store
        tells no version (then nothing of it is cached across opens)."""
        return "|".join(((f"md5={self.md5}",) if self.md5 else ()) + self.version)

    @property
    def hashed_in_pieces(self) -> bool:
        """Whether its identity is the digest of its bytes (no checksum, no strong version)."""
        return not self.md5 and not self.version


def _content_md5(info: dict) -> str | None:
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"').lower()
    if _MD5_HEX.match(etag) and ("VersionId" in info or "LastModified" in info):  # S3, single part
        return etag
    encoded = info.get("md5Hash") or info.get("Content-MD5")
    settings = info.get("content_settings")
    if not encoded and isinstance(settings, dict) and settings.get("content_md5"):
        encoded = base64.b64encode(bytes(settings["content_md5"])).decode()
    if encoded:
        try:
            raw = base64.b64decode(encoded, validate=True)
        except ValueError:
            return None
        return raw.hex() if len(raw) == 16 else None
    return None


# What changes with every new version of an object (S3, Azure, GCS, HTTP), and what is kept
# beside them (alone, a time to the second is no version).
_STRONG_FIELDS = ("ETag", "etag", "VersionId", "version_id", "generation")
_VERSION_FIELDS = _STRONG_FIELDS + ("Last-Modified", "LastModified", "last_modified", "mtime")


def _pin(url: str, info: dict) -> tuple:
    protocol = _SCHEME.match(url).group(1).lower()
    if protocol in ("s3", "s3a") and info.get("VersionId") not in (None, "null"):
        return (("version_id", str(info["VersionId"])),)
    etag = str(info.get("ETag") or "")
    if protocol in ("http", "https") and etag and not etag.startswith("W/"):
        return (("headers", (("If-Match", etag),)),)
    if protocol in ("gs", "gcs") and info.get("generation") not in (None, ""):
        return (("generation", str(info["generation"])),)
    return ()


def stat_source(url: str) -> SourceInfo:
    """Ask the store about url (one metadata request, no content read): VideoNotFoundError for a
    missing object or 404, NotAFileError for a prefix, EmptyVideoError for an empty object,
    SourceReadError for anything else (access denied, no route to the server), each naming the
    redacted URL and the cause."""
    url = normalise_url(url)
    fs, path = _filesystem(url)
    try:
        fs.invalidate_cache(path)  # a listing cached by find() would hide a new version
        info = fs.info(path)
    except Exception as exc:  # noqa: BLE001 - every back end's own exceptions, typed here
        raise _failure(url, exc) from None
    if info.get("type") == "directory":
        raise NotAFileError(redact(url), "a prefix, not an object")
    return described(url, info)


def described(url: str, info: dict) -> SourceInfo:
    """The SourceInfo of url from what its back end's info() said of it (s3fs, gcsfs, adlfs,
    fsspec's HTTP: each its own field names): EmptyVideoError for an empty object,
    SourceReadError where it tells no size."""
    size = info.get("size")
    if size is None:
        raise SourceReadError(redact(url), "the server does not say how large it is")
    if int(size) == 0:
        raise EmptyVideoError(redact(url))
    weak = str(info.get("ETag", "")).startswith("W/")
    told = [field for field in _VERSION_FIELDS if info.get(field) not in (None, "", "null")]
    given = [field for field in told if not (weak and field == "ETag")]
    version = tuple(f"{field}={info[field]}" for field in given)
    if not set(given) & set(_STRONG_FIELDS):
        version = ()
    if _SCHEME.match(url).group(1).lower() in ("gs", "gcs") and "generation" in given:
        # GCS: the generation is the content's version (its etag changes with the metadata too)
        version = (f"generation={info['generation']}",)
    sized = (f"size={int(size)}",)
    md5 = _content_md5(info)
    return SourceInfo(url=url, size=int(size), md5=md5,
                      version=version + sized if version else (), pin=_pin(url, info),
                      weak=() if version or md5 else
                      tuple(f"{field}={info[field]}" for field in told) + sized)


def object_versions(url: str) -> list[SourceInfo]:
    """Every version an S3 versioned bucket keeps of url, newest first, each as stat_source
    would describe it then (its VersionId the pin); [] for other stores and unversioned
    buckets. Errors as stat_source's."""
    url = normalise_url(url)
    if _SCHEME.match(url).group(1).lower() not in ("s3", "s3a"):
        return []
    fs, path = _filesystem(url, version_aware=True)
    try:
        if not fs.is_bucket_versioned(path.split("/", 1)[0]):
            return []
        found = fs.object_version_info(path)
    except Exception as exc:  # noqa: BLE001
        raise _failure(url, exc) from None
    key = path.split("/", 1)[1] if "/" in path else ""
    found = [v for v in found if v.get("Key") == key and v.get("Size")]
    found.sort(key=lambda v: v.get("LastModified") or 0, reverse=True)
    return [described(url, {"ETag": v.get("ETag"), "VersionId": v.get("VersionId"),
                            "LastModified": v.get("LastModified"), "size": v["Size"]})
            for v in found]


def _shared(url: str, version: str, fetcher):
    """fetcher(start, end) through the process's block cache, counting what is fetched."""
    def fetch(start: int, end: int) -> bytes:
        with _fetched_lock:
            recorder = _recorders.get(url)
            # An object with no version token may change under the same name: its blocks are
            # shared only within one recording of its pieces (one shard, one probe).
            tag = version or (recorder.tag if recorder is not None else "")
            key = (url, tag, start, end)
            if tag and key in _blocks:
                _blocks.move_to_end(key)
                return _blocks[key]
        try:
            data = fetcher(start, end)
        except Exception as exc:  # noqa: BLE001 - a dropped connection, a refused range
            raise _failure(url, exc) from None
        with _fetched_lock:
            _fetched[url] = _fetched.get(url, 0) + len(data)
            recorder = _recorders.get(url)
            if recorder is not None:
                recorder.add(start, data)
            if tag:
                _blocks[key] = data
                while len(_blocks) > _settings["blocks"]:
                    _blocks.popitem(last=False)
        return data

    return fetch


def open_source(url: str, version: str = "", pin: tuple = ()):
    """A seekable binary file object reading url in place by byte ranges (see the module's
    docstring); reads that fail raise SourceReadError naming the redacted URL. version: the
    object's SourceInfo.token, under which its blocks are shared between opens; pin: its
    SourceInfo.pin, so that only that version is read."""
    url = normalise_url(url)
    kwargs = {key: dict(value) if key == "headers" else value for key, value in pin}
    fs, path = _filesystem(url, version_aware="version_id" in kwargs)
    try:
        handle = fs.open(path, "rb", block_size=_settings["block"], cache_type="blockcache",
                         cache_options={"maxblocks": 2}, **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise _failure(url, exc) from None
    handle.cache.fetcher = _shared(url, version, handle.cache.fetcher)
    return handle


class SkippingReader(io.RawIOBase):
    """A seekable file over `handle` (open_source's) that never fetches the bytes inside the
    spans given to skip(): they read as zeros. A demuxer that knows from the container's index
    where every packet's payload lies can then walk all its packets' headers and timestamps
    while only the container's own structures are fetched (core.probe's header scan)."""

    def __init__(self, handle, size: int) -> None:
        super().__init__()
        self._handle, self._size, self._pos = handle, int(size), 0
        self._starts: list[int] = []
        self._ends: list[int] = []

    def skip(self, spans) -> None:
        """Read [start, end) byte spans (any order, overlapping or not) as zeros from now on;
        an empty list fetches everything again."""
        merged = _merged([[int(a), int(b)] for a, b in spans if b > a])
        self._starts, self._ends = [m[0] for m in merged], [m[1] for m in merged]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, self._size)[whence]
        self._pos = max(0, base + int(offset))
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:
        start = self._pos
        end = min(start + len(buffer), self._size)
        if end <= start:
            return 0
        view = memoryview(buffer)
        at = start
        while at < end:
            i = bisect.bisect_right(self._starts, at) - 1
            if i >= 0 and self._ends[i] > at:  # inside a skipped span: zeros
                stop = min(end, self._ends[i])
                view[at - start: stop - start] = bytes(stop - at)
            else:
                stop = min(end, self._starts[i + 1]) if i + 1 < len(self._starts) else end
                self._handle.seek(at)
                data = self._handle.read(stop - at)
                if not data:
                    end = at
                    break
                stop = at + len(data)
                view[at - start: stop - start] = data
            at = stop
        self._pos = end
        return end - start

    def close(self) -> None:
        self._handle.close()
        super().close()


def bytes_fetched() -> dict[str, int]:
    """Bytes this process has read from each URL so far (what the servers sent)."""
    with _fetched_lock:
        return dict(_fetched)


def piece_span(number: int, size: int) -> tuple[int, int]:
    """Byte span [start, end) of piece `number` of an object of `size` bytes."""
    return number * PIECE_BYTES, min((number + 1) * PIECE_BYTES, int(size))


def piece_count(size: int) -> int:
    """How many PIECE_BYTES pieces an object of `size` bytes has (the last one may be short)."""
    return -(-int(size) // PIECE_BYTES)


def pieces_digest(size: int, digests) -> str:
    """The content digest (SHA-256 hex) of an object of `size` bytes from its pieces' SHA-256
    digests in order (piece i: piece_span(i, size)): SHA-256 of the line
    b"vidsift pieces PIECE_BYTES SIZE\n" followed by the 32-byte digests. ValueError unless
    there is exactly one digest per piece."""
    digests = list(digests)
    if len(digests) != piece_count(size) or any(len(d) != 32 for d in digests):
        raise ValueError(f"{len(digests)} piece digests for {piece_count(size)} pieces")
    whole = hashlib.sha256(f"vidsift pieces {PIECE_BYTES} {int(size)}\n".encode())
    for digest in digests:
        whole.update(digest)
    return whole.hexdigest()


# Pieces of which a process has fetched only some blocks (blocks smaller than a piece, a seek
# into its middle) are kept until the rest come, at most this many (4 MiB at 256 KiB).
_PARTIAL_PIECES_KEPT = 16
_recordings = itertools.count()


class _PieceRecorder:
    """The pieces of one object hashed from the blocks this process fetched of it: done maps
    piece number -> SHA-256 digest; partial holds pieces still missing some bytes."""

    def __init__(self, size: int) -> None:
        self.size, self.users = int(size), 1
        self.tag = f"recording {next(_recordings)}"  # its blocks' cache key (_shared)
        self.done: dict[int, bytes] = {}
        # A piece fetched again whole (its block fell out of the cache) whose digest is not
        # the one it had: the object changed while it was recorded.
        self.changed = False
        self.partial: OrderedDict[int, tuple[bytearray, list[list[int]]]] = OrderedDict()

    def add(self, start: int, data: bytes) -> None:
        """Bytes [start, start + len(data)) of the object, as fetched."""
        end = min(start + len(data), self.size)
        view = memoryview(data)
        for number in range(start // PIECE_BYTES, (end - 1) // PIECE_BYTES + 1 if end > start else 0):
            first, last = piece_span(number, self.size)
            if start <= first and last <= end:  # the whole piece in this block
                digest = hashlib.sha256(view[first - start: last - start]).digest()
                self.changed |= self.done.setdefault(number, digest) != digest
                self.partial.pop(number, None)
                continue
            if number in self.done:
                continue
            low, high = max(first, start), min(last, end)
            buffer, spans = self.partial.pop(number, None) or (bytearray(last - first), [])
            buffer[low - first: high - first] = view[low - start: high - start]
            spans = _merged(spans + [[low - first, high - first]])
            if spans == [[0, last - first]]:
                self.done[number] = hashlib.sha256(buffer).digest()
                continue
            self.partial[number] = (buffer, spans)
            while len(self.partial) > _PARTIAL_PIECES_KEPT:
                self.partial.popitem(last=False)


def _merged(spans: list[list[int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for low, high in sorted(spans):
        if out and low <= out[-1][1]:
            out[-1][1] = max(out[-1][1], high)
        else:
            out.append([low, high])
    return out


def start_pieces(url: str, size: int) -> None:
    """From now until take_pieces(url), hash the whole pieces of every block this process
    fetches of url (an object of `size` bytes) from its server (a block served from the
    process's cache was hashed when it was fetched)."""
    url = normalise_url(url)
    with _fetched_lock:
        if url in _recorders:
            _recorders[url].users += 1
        else:
            _recorders[url] = _PieceRecorder(size)


def _changed_while_recorded(url: str) -> SourceReadError:
    return SourceReadError(redact(url), "changed while it was read (a piece read twice differs)")


def take_pieces(url: str) -> dict[int, bytes]:
    """The piece digests (piece number -> SHA-256 digest) hashed of url since start_pieces and
    not taken yet; ends that recording. SourceReadError where a piece fetched twice in it
    hashed differently (the object changed: its pieces are of two versions)."""
    url = normalise_url(url)
    with _fetched_lock:
        recorder = _recorders.get(url)
        if recorder is None:
            return {}
        taken, recorder.done = recorder.done, {}
        recorder.users -= 1
        if recorder.users <= 0:
            del _recorders[url]
    if recorder.changed:
        raise _changed_while_recorded(url)
    return taken


def recording(url: str) -> str:
    """The tag of the recording of url's pieces live in this process (start_pieces), unique
    to it; "" when none is. What is kept of an object with no version (its blocks, its scan:
    core.probe.scan_video) is kept under this tag, so for that recording only.
    SourceReadError once the recording has seen the object change (take_pieces')."""
    url = normalise_url(url)
    with _fetched_lock:
        recorder = _recorders.get(url)
    if recorder is None:
        return ""
    if recorder.changed:
        raise _changed_while_recorded(url)
    return recorder.tag


# The driver reads the pieces no shard fetched in requests of at most this many bytes.
_GAP_READ_BYTES = 8 << 20


def hash_pieces(info: SourceInfo, have: dict[int, bytes] | None = None) -> str:
    """pieces_digest of the object info describes, from the piece digests `have` (hashed where
    they were read: the coarse pass's shards) and the other pieces, read here by byte ranges
    (runs of missing pieces, _GAP_READ_BYTES a request, counted in bytes_fetched)."""
    have = dict(have or {})
    count = piece_count(info.size)
    missing = [n for n in range(count) if n not in have]
    if missing:
        per_request = max(1, _GAP_READ_BYTES // PIECE_BYTES)
        runs: list[list[int]] = []
        for number in missing:
            if runs and number == runs[-1][-1] + 1 and len(runs[-1]) < per_request:
                runs[-1].append(number)
            else:
                runs.append([number])
        handle = open_info(info)
        try:
            for run in runs:
                start, end = piece_span(run[0], info.size)[0], piece_span(run[-1], info.size)[1]
                data = memoryview(handle.cache.fetcher(start, end))
                if len(data) != end - start:
                    raise SourceReadError(redact(info.url), f"bytes {start}-{end - 1}: "
                                          f"{len(data)} bytes came of {end - start}")
                for number in run:
                    low, high = piece_span(number, info.size)
                    have[number] = hashlib.sha256(data[low - start: high - start]).digest()
        finally:
            handle.close()
    return pieces_digest(info.size, (have[n] for n in range(count)))


def source_digest(url: str | SourceInfo) -> str:
    """SHA-256 hex identifying the object's content (see the module's docstring): from its
    checksum or version when the store gives one, else its pieces_digest, the object read once
    by byte ranges here (an ingest has its shards hash it instead: hash_pieces). url: a URL
    (asked of its store) or what stat_source said of it."""
    info = url if isinstance(url, SourceInfo) else stat_source(url)
    if info.md5:
        key = f"md5 {info.md5} {info.size}"
    elif info.version:
        key = "\n".join((info.url, *info.version))
    else:
        return hash_pieces(info)
    return hashlib.sha256(key.encode()).hexdigest()


def list_videos(url: str, extensions) -> list[str]:
    """The objects under a prefix (url ending in '/', or naming one) whose names end in one of
    extensions, sorted, as full URLs; [url] itself when it names an object, or when it cannot be
    listed (a denied bucket or a missing one, as core.media.find_videos lists a missing folder:
    checking it then names the URL and the cause, and the rest of the job goes on). Web servers
    list nothing: an http(s) URL is taken as one video."""
    url = normalise_url(url)
    protocol = _SCHEME.match(url).group(1).lower()
    if protocol in ("http", "https"):
        return [url]
    fs, path = _filesystem(url)
    try:
        if not url.endswith("/") and fs.isfile(path):
            return [url]
        found = fs.find(path.rstrip("/"))
    except Exception:  # noqa: BLE001
        return [url]
    names = sorted(p for p in found if p.lower().endswith(tuple(extensions))
                   and not p.rsplit("/", 1)[-1].startswith("."))
    return [fs.unstrip_protocol(p) for p in names] or [url]
