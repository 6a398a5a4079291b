"""Clips to take away: a moment of a video written as an MP4 by the ffmpeg CLI (`vidsift
export`, GET /v1/clip).

Times are seconds on the video's own timeline (what ask, search and summarize report). The clip
holds every frame on screen during [start, end): from the frame shown at `start` to the last
one that starts before `end`.
- exact (default): re-encoded (H.264 + AAC), seeking before the input for speed and trimming
  exactly there: the clip's first frame is the frame shown at `start`, its duration that span
  of frames.
- fast: the streams copied, no re-encode, from the keyframe at or before `start` (the only place
  a copy can begin): the clip starts up to a GOP early and ends where the copy can cut.
Bad spans (outside the video, an end not after the start, longer than export.max_s), a name that
is not .mp4 or the video itself, a video behind a URL (s3://, https://: export reads local files
only): an ExportError before anything runs. The clip is written to a
temp file beside `out` and renamed over it only when ffmpeg succeeded, so a failure writes
nothing.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from vidsift.core.config import ExportConfig
from vidsift.core.errors import VidsiftError
from vidsift.core.files import write_atomic
from vidsift.core.media import resolve_path
from vidsift.core.probe import check_video, scan_video

SPAN_TOLERANCE_S = 1e-3  # times rounded to the millisecond still count as inside the video
MIN_TIMEOUT_S, TIMEOUT_PER_CLIP_S = 60.0, 20.0  # ffmpeg may take 20x the clip's length, >= 60 s


class ExportError(VidsiftError):
    """A clip that cannot be exported: a bad span or output name, or ffmpeg failing on it."""


@dataclass(frozen=True, slots=True)
class ClipExport:
    """A written clip. Times in seconds on the source video's timeline."""

    video: str  # the source, resolved
    out: str  # the MP4 written
    asked_start: float
    asked_end: float
    start: float  # where the clip begins: the frame shown at asked_start (fast: its keyframe)
    end: float  # where the clip's frames end (fast: where the copy could cut)
    frames: int  # video frames in the clip (counted in the written file)
    duration: float  # the written clip's video duration
    audio: bool  # the clip has the source's first audio track
    fast: bool
    seconds: float  # wall time

    def to_dict(self) -> dict:
        return asdict(self)


_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")


def parse_time(text: str, what: str = "time") -> float:
    """'75.5', '1:15.5' or '0:01:15.5' -> seconds. ExportError naming `what` otherwise."""
    text = text.strip()
    matched = _CLOCK.match(text)
    try:
        if matched:
            hours, minutes, seconds = matched.groups()
            if (hours is not None and int(minutes) >= 60) or float(seconds) >= 60:
                raise ValueError
            return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ExportError(f"{what} {text!r}: not a time (seconds, M:SS or H:MM:SS)")
    return value


def check_span(start: float, end: float, max_s: float) -> None:
    """ExportError unless start and end are finite, end is after start and the span is at most
    max_s (export.max_s)."""
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ExportError(f"clip {start}-{end} s: start and end must be finite seconds")
    if not end > start:
        raise ExportError(f"clip {start:.3f}-{end:.3f} s: the end must be after the start")
    if end - start > max_s:
        raise ExportError(f"clip {start:.3f}-{end:.3f} s: {end - start:.3f} s is longer than "
                          f"export.max_s={max_s:g} s (raise it with --set export.max_s=SECONDS)")


def _check_out(out: Path, video: Path) -> None:
    if out.suffix.lower() != ".mp4":
        raise ExportError(f"{out}: a clip is written as MP4: name it .mp4")
    if out.is_dir():
        raise ExportError(f"{out}: is a folder: name the clip's file")
    if not out.parent.is_dir():
        raise ExportError(f"{out}: no folder {out.parent}")
    if resolve_path(out) == video:
        raise ExportError(f"{out}: is the video being cut: write the clip elsewhere")


def _seconds_arg(seconds: float, up: bool = False) -> str:
    # ffmpeg reads times to the microsecond: rounded down for a trim (the frame at the start is
    # kept), up for a copy's seek (ffmpeg then lands on the keyframe, not the one before).
    micros = math.ceil(seconds * 1e6 - 1e-3) if up else math.floor(seconds * 1e6 + 1e-3)
    return f"{micros / 1e6:.6f}"


def _exact_command(video: Path, seek: float, begin: float, end: float, frames: int,
                   cfg: ExportConfig, tmp: Path) -> list[str]:
    """Re-encode `frames` frames from `begin` to `end`: a seek before the input to `seek` (a
    keyframe a GOP before: containers without an index, MPEG-TS, land only near a time), then
    an exact trim of the decoded frames from there."""
    seek_arg = _seconds_arg(seek)
    return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            # seek is a time on the video's timeline, not an offset from the file's start
            "-seek_timestamp", "1", "-ss", seek_arg, "-i", str(video),
            "-ss", _seconds_arg(begin - float(seek_arg)), "-t", f"{end - begin:.6f}",
            "-frames:v", str(frames), *_STREAMS, "-fps_mode", "passthrough",
            # H.264 in 4:2:0 needs even sides: an odd one gains a black pixel row
            "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-preset", cfg.preset,
            "-crf", str(cfg.crf), "-pix_fmt", "yuv420p", "-c:a", "aac", *_MP4, str(tmp)]


def _copy_command(video: Path, keyframe: float, end: float, tmp: Path) -> list[str]:
    """Copy the streams from the keyframe at `keyframe` to about `end` (packets cut there)."""
    return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-seek_timestamp", "1", "-ss", _seconds_arg(keyframe, up=True), "-i", str(video),
            "-t", f"{end - keyframe:.6f}", *_STREAMS, "-c", "copy", *_MP4, str(tmp)]


# The first video stream and the first audio stream if there is one; no subtitles, data or the
# source's chapters (their times would be the source's).
_STREAMS = ("-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn", "-map_chapters", "-1")
_MP4 = ("-movflags", "+faststart", "-f", "mp4")


def _run_ffmpeg(command: list[str], video: Path, fast: bool, timeout_s: float) -> None:
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ExportError(f"{video}: ffmpeg took longer than {timeout_s:.0f} s for the clip") \
            from None
    if done.returncode != 0:
        reason = " | ".join(done.stderr.strip().splitlines()[-3:]) or f"exit {done.returncode}"
        hint = " (--fast copies the streams, whose codecs must fit MP4: export without --fast " \
               "to re-encode)" if fast else ""
        raise ExportError(f"{video}: ffmpeg could not write the clip: {reason}{hint}")


def export_clip(video: str | os.PathLike, start: float, end: float, out: str | os.PathLike,
                cfg: ExportConfig, fast: bool = False) -> ClipExport:
    """Write [start, end) seconds of `video` to `out` (.mp4), exact or fast (module doc).
    Raises ExportError for a bad span, output name or ffmpeg failure, the typed VideoErrors for
    a video that cannot be read; writes nothing then."""
    from vidsift.core import sources

    started = time.perf_counter()
    if sources.is_url(video):  # ffmpeg's CLI reads no bucket, nor through our credentials
        raise ExportError(f"{sources.redact(str(video))}: export reads local files only; "
                          "copy the video here first (ask, index and search read it in place)")
    check_span(start, end, cfg.max_s)
    source = check_video(video)
    out = Path(out).expanduser()
    _check_out(out, source)
    if shutil.which("ffmpeg") is None:
        raise ExportError("ffmpeg is not installed: clips are written by the ffmpeg command")
    scan = scan_video(source)
    first_time, end_time = scan.start_time, scan.end_time
    if start < first_time - SPAN_TOLERANCE_S or end > end_time + SPAN_TOLERANCE_S:
        raise ExportError(f"{video}: clip {start:.3f}-{end:.3f} s is outside the video "
                          f"({first_time:.3f}-{end_time:.3f} s)")
    scan.check_readable(end)
    first = int(scan.indices_at([start])[0])
    stop = scan.index_range(None, end)[1]
    clip_start = scan.time_of(first)
    clip_end = scan.time_of(stop) if stop < scan.frame_count else end_time
    # a copy can only begin at a keyframe: the one the frame at start decodes from
    keyframe = int(scan.decode_starts([first])[0])
    keyframe_time = scan.time_of(keyframe) if keyframe >= 0 else first_time
    before = int(scan.decode_starts([keyframe - 1])[0]) if keyframe > 0 else -1
    seek = scan.time_of(before) if before >= 0 else first_time
    begin, frames = (keyframe_time, None) if fast else (clip_start, stop - first)
    timeout_s = max(MIN_TIMEOUT_S, TIMEOUT_PER_CLIP_S * (clip_end - begin))
    written: dict[str, object] = {}

    def encode(tmp: Path) -> None:
        written["tmp"] = tmp
        command = _copy_command(source, begin, clip_end, tmp) if fast else \
            _exact_command(source, seek, begin, clip_end, frames, cfg, tmp)
        _run_ffmpeg(command, source, fast, timeout_s)
        clip = written["scan"] = scan_video(tmp)
        if not fast and clip.frame_count != frames:  # the seek missed: never a wrong clip
            raise ExportError(f"{video}: ffmpeg wrote {clip.frame_count} frames of the "
                              f"{frames} in {clip_start:.3f}-{clip_end:.3f} s")

    try:
        write_atomic(out, encode)
    except BaseException:
        if "tmp" in written:
            Path(written["tmp"]).unlink(missing_ok=True)
        raise
    clip = written["scan"]
    return ClipExport(
        video=str(source), out=str(out), asked_start=start, asked_end=end,
        start=begin, end=begin + (clip.end_time - clip.start_time) if fast else clip_end,
        frames=clip.frame_count, duration=clip.end_time - clip.start_time, audio=clip.has_audio,
        fast=fast, seconds=time.perf_counter() - started)
