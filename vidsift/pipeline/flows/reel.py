"""A highlight reel: a summary's highlights cut from the video (flows.export, frame-exact) and
joined into one MP4 with a chapter per highlight (an ffmetadata file, flows.chapter_files),
written whole or not at all.

Every clip is re-encoded with the same settings, so the concat demuxer joins them by stream
copy; each chapter spans its clip's own duration as written (ffprobe), in highlight order.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from vidsift.core.config import ExportConfig
from vidsift.core.files import write_atomic
from vidsift.pipeline.flows.chapter_files import ffmetadata_text
from vidsift.pipeline.flows.export import ExportError, _check_out, export_clip


def write_reel(video: str | os.PathLike, highlights: Sequence[Mapping], out: str | os.PathLike,
               cfg: ExportConfig) -> list[dict]:
    """Cut each highlight ({start, end, title}, seconds on the video's timeline) from `video`
    and join them into `out` (.mp4), one chapter each; returns the chapters written ({start,
    end} on the reel's timeline, title, and the span of the video it shows). ExportError when
    there is no highlight or ffmpeg fails; nothing is written then."""
    from vidsift.core.media import resolve_path

    out = Path(out).expanduser()
    if not highlights:
        raise ExportError(f"{out}: no highlights to put in a reel")
    _check_out(out, resolve_path(video))
    with tempfile.TemporaryDirectory(prefix=".reel-", dir=out.parent) as folder:
        parts, chapters, at = [], [], 0.0
        for number, highlight in enumerate(highlights):
            clip = export_clip(video, float(highlight["start"]), float(highlight["end"]),
                               Path(folder) / f"{number:03d}.mp4", cfg)
            parts.append(clip.out)
            chapters.append({"start": round(at, 3), "end": round(at + clip.duration, 3),
                             "title": highlight.get("title") or f"Highlight {number + 1}",
                             "source_start": clip.start, "source_end": clip.end})
            at += clip.duration
        listing = Path(folder) / "parts.txt"
        listing.write_text("".join(f"file '{part}'\n" for part in parts))
        metadata = Path(folder) / "chapters.txt"
        metadata.write_text(ffmetadata_text({"chapters": chapters}))

        def join(tmp: Path) -> None:
            done = subprocess.run(
                ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "concat",
                 "-safe", "0", "-i", str(listing), "-i", str(metadata), "-map", "0",
                 "-map_metadata", "1", "-map_chapters", "1", "-c", "copy",
                 "-movflags", "+faststart", "-f", "mp4", str(tmp)],
                check=False, capture_output=True, text=True)
            if done.returncode != 0:
                tmp.unlink(missing_ok=True)
                reason = " | ".join(done.stderr.strip().splitlines()[-3:])
                raise ExportError(f"{out}: ffmpeg could not join the highlights: {reason}")

        write_atomic(out, join)
    return chapters
