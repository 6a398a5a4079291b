"""Container inspection: what a video is, read from its packets without decoding it.

scan_video() demuxes the video stream once (packet headers only, ~0.3 s for a 10-minute 720p
H.264 file) and keeps every frame's PTS in presentation order, which keyframes they are and where
the file breaks. The decoders use that scan to map a timestamp to its exact frame and a frame to
its index; probe() turns it into the public VideoInfo. Scans are cached per (file, size, mtime).
A remote MP4/MOV is scanned from its header and index alone, its packets' payloads never
fetched (_scan's header_only), so probing a 2-hour object reads well under 1% of it.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vidsift.core.errors import (
    AbsurdDimensionsError,
    CorruptVideoError,
    NotAVideoError,
    ZeroDurationError,
)
from vidsift.core import sources
from vidsift.core.media import check_video_file, resolve_path
from vidsift.core.types import VideoInfo

DEFAULT_MAX_PIXELS = 8192 * 8192

# Leading bytes of containers that hold video; a file that starts like one but does not open is
# damaged, anything else is not a video at all.
_CONTAINER_MAGIC = (
    (4, b"ftyp"),  # mp4 / mov / 3gp
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"free"),
    (4, b"wide"),
    (0, b"\x1a\x45\xdf\xa3"),  # matroska / webm (EBML)
    (0, b"RIFF"),  # avi
    (0, b"OggS"),
    (0, b"FLV"),
    (0, b"\x00\x00\x01\xba"),  # mpeg-ps
    (0, b"\x47"),  # mpeg-ts sync byte
)


@dataclass(frozen=True, slots=True, eq=False)
class StreamScan:
    """Every frame of a video stream, from its packets.

    pts: (N,) int64 PTS in time_base units, ascending (presentation order; index i is frame i).
    is_key: (N,) bool, frame i is a keyframe (sync sample).
    end_pts: the PTS where the last frame's display interval ends.
    rotation: clockwise degrees to apply to decoded images for display (0/90/180/270).
    coded_width/coded_height: decoded image size before rotation.
    readable_until: None for an intact file; else the last readable frame's PTS (seconds).
    hidden_frames: frames before the visible start that an edit list hides (a stream-copy cut
        between keyframes keeps the GOP's head and marks it discard); they are not in pts.
    lead_in_pts: where decoding of the frames before the first visible keyframe starts: the
        hidden keyframe that opens their GOP (None when there is none).
    version: a remote video's version token (core.sources.SourceInfo.token) when scanned;
        "" for a local file.
    source: a remote video's core.sources.SourceInfo when scanned (the version read), None
        for a local file.
    """

    path: str
    time_base: Fraction
    pts: np.ndarray
    is_key: np.ndarray
    end_pts: int
    rotation: int
    coded_width: int
    coded_height: int
    codec: str
    avg_rate: float
    base_rate: float
    has_audio: bool
    size_bytes: int
    readable_until: float | None
    hidden_frames: int = 0
    lead_in_pts: int | None = None
    version: str = ""
    source: object = None

    @property
    def frame_count(self) -> int:
        return int(self.pts.size)

    @property
    def times(self) -> np.ndarray:
        """(N,) float64 PTS of every frame, seconds."""
        return self.pts.astype(np.float64) * float(self.time_base)

    @property
    def start_time(self) -> float:
        return float(self.pts[0] * self.time_base)

    @property
    def end_time(self) -> float:
        return float(self.end_pts * self.time_base)

    @property
    def display_size(self) -> tuple[int, int]:
        """(height, width) of displayed frames, rotation applied."""
        if self.rotation in (90, 270):
            return self.coded_width, self.coded_height
        return self.coded_height, self.coded_width

    @property
    def key_indices(self) -> np.ndarray:
        return np.flatnonzero(self.is_key)

    def time_of(self, index: int) -> float:
        return float(self.pts[index] * self.time_base)

    def indices_at(self, timestamps) -> np.ndarray:
        """Frame index whose display interval [pts_i, pts_i+1) holds each timestamp (seconds).
        Before the first frame -> 0; at or after the end -> the last frame."""
        ticks = np.floor(np.asarray(timestamps, dtype=np.float64) / float(self.time_base) + 1e-6)
        found = np.searchsorted(self.pts, ticks.astype(np.int64), side="right") - 1
        return np.clip(found, 0, self.pts.size - 1)

    def index_range(self, start: float | None = None, end: float | None = None) -> tuple[int, int]:
        """[first, stop) presentation indices of the frames whose PTS lies in [start, end)
        seconds (None: from the first frame / through the last)."""
        times = self.times
        first = 0 if start is None else int(np.searchsorted(times, start - 1e-9, side="left"))
        stop = self.frame_count if end is None else int(np.searchsorted(times, end - 1e-9, side="left"))
        return first, stop

    def decode_starts(self, indices: np.ndarray) -> np.ndarray:
        """For each frame index, the keyframe index its decode starts from (the last keyframe
        at or before it); -1 for frames before the first keyframe, which decode from
        lead_in_pts (or the first frame when the file has no hidden lead-in)."""
        keys = self.key_indices
        before = np.searchsorted(keys, np.asarray(indices, dtype=np.int64), side="right") - 1
        return np.where(before >= 0, keys[np.clip(before, 0, None)] if keys.size else -1, -1)

    def seek_pts(self, start: int) -> int:
        """The PTS to seek to for a decode_starts() entry."""
        if start >= 0:
            return int(self.pts[start])
        return int(self.lead_in_pts if self.lead_in_pts is not None else self.pts[0])

    def check_readable(self, last_time: float) -> None:
        """Raise CorruptVideoError when a request needs frames past where the file breaks."""
        if self.readable_until is not None and last_time > self.readable_until:
            raise CorruptVideoError(
                self.path, "truncated: requested frames lie past the break",
                readable_until=self.readable_until,
            )


def _looks_like_container(path: str) -> bool:
    with (sources.open_source(path) if sources.is_url(path) else open(path, "rb")) as handle:
        head = handle.read(16)
    return any(head[offset : offset + len(magic)] == magic for offset, magic in _CONTAINER_MAGIC)


def open_media(path: str):
    """av.open for any of a file's streams (audio, subtitles), no check first; a URL is read in
    place by byte ranges (core.sources.open_source), as open_container reads it."""
    import av

    if sources.is_url(path):
        return av.open(sources.open_info(_source(path)))
    return av.open(path)


def open_container(path: str):
    """av.open with typed errors: check_video_file's (missing, a loop, not a regular file,
    empty, ...) and for files that are damaged or not media at all. A URL is opened in place,
    read by byte ranges (core.sources.open_source)."""
    import av

    if sources.is_url(path):
        info = _source(path)
        return _opened(path, lambda: av.open(sources.open_info(info)))
    check_video_file(path)
    return _opened(path, lambda: av.open(path))


def _opened(path: str, opener):
    """opener()'s container, or the typed error for a file that does not open as one."""
    import av

    try:
        return opener()
    except av.error.FFmpegError as exc:
        if _looks_like_container(path):
            raise CorruptVideoError(path, f"container does not open: {exc.strerror}") from None
        raise NotAVideoError(path, f"not a media container: {exc.strerror}") from None


def check_video(path: str | os.PathLike) -> Path:
    """The cheap check before any work on a video starts (milliseconds: a few stat calls and
    opening the container, which reads its header, not its packets): its resolved path, or the typed VideoError that
    names it and the problem (check_video_file's, NotAVideoError, CorruptVideoError)."""
    container = open_container(str(path))
    try:
        video_stream(container, str(path))
    finally:
        container.close()
    return resolve_path(path)


def video_stream(container, path: str):
    """The first real video stream (cover-art pictures in audio files do not count)."""
    import av

    streams = [
        s for s in container.streams.video
        if av.stream.Disposition.attached_pic not in s.disposition
    ]
    if not streams:
        what = "audio only" if container.streams.audio else "no video stream"
        raise NotAVideoError(path, what)
    return streams[0]


def _first_frame_rotation(container, stream) -> int:
    """Clockwise display rotation, from the display matrix the decoder attaches to frames.
    (FFmpeg reports the matrix's angle counter-clockwise; ffmpeg's own autorotate applies the
    same.) Returns 0 when no frame decodes; the decode itself then reports the damage."""
    import av

    try:
        container.seek(0)
        for frame in container.decode(stream):
            return int(round(-frame.rotation / 90.0)) % 4 * 90
    except av.error.FFmpegError:
        return 0
    return 0


# Demuxers whose index (read with the container's header) gives every packet's position, size
# and sync flag: the MP4/MOV family. A remote one is scanned from its header alone.
_INDEXED_FORMATS = ("mov", "mp4")


class _NotIndexed(Exception):
    """A packet the container's index did not list: the header scan cannot stand."""


def _scan(path: str, max_pixels: int, size: int, source=None,
          header_only: bool = True) -> StreamScan:
    """The scan of path (size bytes). source: a remote video's SourceInfo (that version is
    read). header_only (remote videos): where
    the container's index lists every packet (_INDEXED_FORMATS), the packets are walked with
    their payloads read as zeros, never fetched (core.sources.SkippingReader), so only the
    header and index are read from the store: a 2-hour MP4's scan reads its moov (~0.6% of
    the file for bbb.mp4), not the object. Sync flags then come from the index (the muxer's
    sync samples), not from parsing payloads. Any other container, or an index that misses a
    packet, is scanned reading every byte."""
    import av

    version = source.token if source is not None else ""
    skipping = None
    if source is not None:
        reader = sources.open_info(source)
        if header_only:
            reader = skipping = sources.SkippingReader(reader, size)
        container = _opened(path, lambda: av.open(reader))
    else:
        container = open_container(path)
    try:
        stream = video_stream(container, path)
        ctx = stream.codec_context
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width <= 0 or height <= 0 or width * height > max_pixels:
            raise AbsurdDimensionsError(path, f"{width}x{height}, limit {max_pixels} pixels")
        listed: dict[int, tuple[int, bool]] | None = None
        if skipping is not None and any(n in container.format.name.split(",")
                                        for n in _INDEXED_FORMATS):
            listed = {e.pos: (e.size, e.is_keyframe) for e in stream.index_entries
                      if e.pos >= 0 and e.size > 0}
            spans = [(e.pos, e.pos + e.size) for s in container.streams
                     for e in s.index_entries if e.pos >= 0 and e.size > 0]
            # From the first payload to the last: between them lie only payloads and, in a
            # fragmented MP4, the fragments' headers, parsed already when the file opened (a
            # demuxer that still needed one would give a packet the index lacks: _NotIndexed).
            skipping.skip([(min(a for a, _ in spans), max(b for _, b in spans))] if spans else [])

        pts: list[int] = []
        keys: list[bool] = []
        durations: list[int] = []
        hidden_keys: list[int] = []  # PTS of keyframes an edit list hides
        hidden = 0
        broken = False
        index_past_eof = any(e.pos + e.size > size for e in stream.index_entries if e.pos >= 0)
        try:
            for packet in container.demux(stream):
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None or packet.size == 0:
                    continue
                if packet.is_corrupt:  # cut off by truncation: its frame cannot decode
                    broken = True
                    continue
                key = bool(packet.is_keyframe)
                if listed is not None:  # its payload was zeros: the index tells its flags
                    entry = listed.get(packet.pos)
                    if entry is None or entry[0] != packet.size:
                        raise _NotIndexed
                    key = entry[1]
                if packet.is_discard:  # decoded only as a reference, never shown
                    hidden += 1
                    if key:
                        hidden_keys.append(int(stamp))
                    continue
                pts.append(int(stamp))
                keys.append(key)
                durations.append(int(packet.duration or 0))
        except av.error.FFmpegError:
            broken = True
        except _NotIndexed:
            return _scan(path, max_pixels, size, source, header_only=False)
        if listed is not None and len(pts) + hidden != len(listed) and not broken:
            return _scan(path, max_pixels, size, source, header_only=False)
        if not pts:
            if broken or index_past_eof:
                raise CorruptVideoError(path, "no readable video packet")
            raise ZeroDurationError(path, "the video stream has no frames")

        order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
        pts_sorted = np.asarray(pts, dtype=np.int64)[order]
        is_key = np.asarray(keys, dtype=bool)[order]
        steps = np.diff(pts_sorted)
        # The last frame lasts its packet's duration, else the typical frame step.
        last_duration = int(np.asarray(durations, dtype=np.int64)[order][-1])
        if last_duration <= 0:
            last_duration = int(np.median(steps)) if steps.size else 0
        end_pts = int(pts_sorted[-1]) + last_duration
        time_base = stream.time_base
        readable_until = (
            float(pts_sorted[-1] * time_base) if (broken or index_past_eof) else None
        )
        if end_pts <= int(pts_sorted[0]):
            raise ZeroDurationError(path, f"{pts_sorted.size} frame(s) at one timestamp")

        first_visible = int(pts_sorted[0])
        lead_in = [k for k in hidden_keys if k < first_visible]
        if listed is None:
            rotation = _first_frame_rotation(container, stream)
        else:  # decoded from a container that reads real bytes (its header blocks are cached)
            with _opened(path, lambda: av.open(sources.open_info(source))) as first:
                rotation = _first_frame_rotation(first, video_stream(first, path))
        base_rate = stream.base_rate or stream.guessed_rate or stream.average_rate
        return StreamScan(
            path=path,
            time_base=Fraction(time_base.numerator, time_base.denominator),
            pts=pts_sorted,
            is_key=is_key,
            end_pts=end_pts,
            rotation=rotation,
            coded_width=width,
            coded_height=height,
            codec=ctx.name,
            avg_rate=float(stream.average_rate or 0.0),
            base_rate=float(base_rate or 0.0),
            has_audio=bool(container.streams.audio),
            size_bytes=size,
            readable_until=readable_until,
            hidden_frames=hidden,
            lead_in_pts=max(lead_in) if lead_in and not is_key[0] else None,
            version=version,
            source=source,
        )
    finally:
        container.close()


@functools.lru_cache(maxsize=64)
def _cached_scan(path: str, size: int, mtime_ns: int, max_pixels: int) -> StreamScan:
    return _scan(path, max_pixels, size)


# Scans of remote videos by (url, version token, max_pixels): scanned here or handed over by
# the process that scanned them (remember_scan), so a shard's actor never reads the object
# through for its scan.
_REMOTE_SCANS: dict[tuple[str, str, int], StreamScan] = {}
_REMOTE_SCANS_KEPT = 64


def remember_scan(scan: StreamScan, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Keep a remote video's scan made elsewhere (the driver's probe), for scan_video here."""
    if scan.version:
        while len(_REMOTE_SCANS) >= _REMOTE_SCANS_KEPT:
            _REMOTE_SCANS.pop(next(iter(_REMOTE_SCANS)))
        _REMOTE_SCANS[(scan.path, scan.version, max_pixels)] = scan


# Remote videos being read at one version (pinned): URL -> its SourceInfo.
_PINS: dict[str, object] = {}


def _source(url: str):
    """The SourceInfo to read url by: its pinned version, else what its store says now."""
    return _PINS.get(sources.normalise_url(url)) or sources.stat_source(url)


@contextlib.contextmanager
def pinned(scan: StreamScan | None):
    """While inside, this process reads scan's remote video at the version scanned (its
    SourceInfo.pin: an S3 VersionId, an If-Match ETag), whatever the store holds now; and
    where the store gives no way to ask for a version, the object is asked about again at the
    end: one changed meanwhile raises SourceReadError (its bytes may mix two versions)."""
    info = scan.source if scan is not None else None
    if info is None:  # a local file (or none)
        yield
        return
    def changed() -> bool:  # no version to pin: asked again (with no token, its weak validators)
        if info.pin:
            return False
        now = sources.stat_source(info.url)
        return (now.token, now.weak) != (info.token, info.weak)

    def refused() -> Exception:
        return sources.SourceReadError(sources.redact(info.url),
                                       "changed while it was read (a new version in the store)")

    _PINS[info.url] = info
    try:
        yield
    except Exception:  # what failed on bytes of two versions is told as the change it is
        if changed():
            raise refused() from None
        raise
    finally:
        _PINS.pop(info.url, None)
    if changed():
        raise refused()


# Scans of remote videos with no version token, by (url, what the store said of it: its weak
# validators and size, max_pixels) -> (the recording they were made in, the scan).
_RECORDED_SCANS: dict[tuple[str, tuple[str, ...], int], tuple[str, StreamScan]] = {}


def _recorded_scan(info, max_pixels: int) -> StreamScan:
    """The scan of info's object, which has no version token: kept only while the recording
    of its pieces it was made in (core.sources.recording: one shard, one driver's probe) lasts
    and the object seen at its start (info.weak: Last-Modified, a weak ETag, the size) is the
    one asked for; a recording that has seen a piece change raises SourceReadError. Outside a
    recording each call scans anew: nothing tells an unchanged object from a changed one."""
    tag = sources.recording(info.url)
    key = (info.url, info.weak, max_pixels)
    made, known = _RECORDED_SCANS.get(key, ("", None))
    if tag and made == tag:
        return known
    scan = _scan(info.url, max_pixels, info.size, info)
    for stale in [k for k in _RECORDED_SCANS if k[0] == info.url]:  # of an ended recording
        del _RECORDED_SCANS[stale]
    if tag and sources.recording(info.url) == tag:  # not changed while it scanned
        while len(_RECORDED_SCANS) >= _REMOTE_SCANS_KEPT:
            _RECORDED_SCANS.pop(next(iter(_RECORDED_SCANS)))
        _RECORDED_SCANS[key] = (tag, scan)
    return scan


def scan_video(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS,
               source=None) -> StreamScan:
    """Scan (or reuse the cached scan of) a video file; typed VideoError on bad input. A URL's
    scan is kept per version of the object (core.sources.stat_source asked each time, unless
    it is pinned or `source`, its SourceInfo, is given)."""
    path = str(path)
    if sources.is_url(path):
        info = source or _source(path)
        if not info.token:  # no version: kept for the recording of its pieces it was made in
            return _recorded_scan(info, max_pixels)
        known = _REMOTE_SCANS.get((info.url, info.token, max_pixels))
        if known is None:
            known = _scan(info.url, max_pixels, info.size, info)
            remember_scan(known, max_pixels)
        return known
    check_video_file(path)
    stat = os.stat(path)
    return _cached_scan(path, stat.st_size, stat.st_mtime_ns, max_pixels)


def _is_vfr(scan: StreamScan) -> bool:
    """Frame durations vary by more than timestamp rounding (1.5 ticks) or 1 %."""
    steps = np.diff(scan.pts)
    if steps.size < 2:
        return False
    median = float(np.median(steps))
    tolerance = max(1.5, 0.01 * median)
    return bool(np.any(np.abs(steps - median) > tolerance))


def probe(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS,
          source=None) -> VideoInfo:
    """Inspect a video: timing, size after rotation, codec, VFR, keyframe times. source: a
    remote video's SourceInfo, the version to probe (scan_video's).

    Raises check_video_file's errors (VideoNotFoundError, SymlinkLoopError, NotAFileError,
    EmptyVideoError, ...), NotAVideoError (text or audio-only files),
    CorruptVideoError (truncated/damaged; readable_until says where it breaks),
    ZeroDurationError, AbsurdDimensionsError (more than max_pixels pixels per frame).
    """
    scan = scan_video(path, max_pixels, source)
    if scan.readable_until is not None:
        raise CorruptVideoError(
            scan.path, f"truncated after {scan.frame_count} readable frames",
            readable_until=scan.readable_until,
        )
    duration = scan.end_time - scan.start_time
    avg_fps = scan.avg_rate
    if not avg_fps or abs(avg_fps * duration - scan.frame_count) > max(2.0, 0.02 * scan.frame_count):
        avg_fps = scan.frame_count / duration  # the container's rate disagrees with its frames
    height, width = scan.display_size
    return VideoInfo(
        path=scan.path,
        duration=duration,
        start_time=scan.start_time,
        avg_fps=float(avg_fps),
        real_fps=scan.base_rate or float(avg_fps),
        frame_count=scan.frame_count,
        width=width,
        height=height,
        rotation=scan.rotation,
        codec=scan.codec,
        is_vfr=_is_vfr(scan),
        keyframe_times=tuple(float(t) for t in scan.times[scan.is_key]),
        has_audio=scan.has_audio,
        size_bytes=scan.size_bytes,
    )
