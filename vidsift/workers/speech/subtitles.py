"""Subtitles a video already carries: its text subtitle streams (mov_text, subrip, webvtt, ass,
read with PyAV) and sidecar files beside it (movie.srt, movie.en.vtt, movie.ass).

Embedded cue times are the packets' PTS times the stream's time base (the video's own timeline);
sidecar times are offsets from the start of playback, so the container's start time is added.
"""

from __future__ import annotations

import re
from pathlib import Path

from vidsift.core.transcript import SUBTITLE_SUFFIXES, SubtitleParseError, parse_subtitles, sort_segments
from vidsift.core.types import TranscriptSegment

# Text subtitle codecs FFmpeg decodes to ASS events (bitmap ones, dvd_subtitle and PGS, are not
# text and are reported instead)
TEXT_CODECS = ("mov_text", "subrip", "srt", "webvtt", "ass", "ssa", "text")
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")  # en, eng, pt-BR, zh_Hans


def _matches(language: str | None, tag: str) -> bool:
    """'en' matches a stream tagged 'en', 'eng' or 'en-US' (the first two letters, as ISO 639-1
    and most 639-2 codes share them); None matches anything."""
    if not language:
        return True
    return len(tag) >= 2 and tag[:2].lower() == language[:2].lower()


def embedded_subtitles(path: str, language: str | None, warnings: list[str]) -> tuple[list[TranscriptSegment], str]:
    """The cues of the video's text subtitle stream in `language` (else its first text one):
    (segments in time order, a description of the stream), or ([], "") when it has none.
    Undecodable packets are skipped and counted in `warnings`."""
    import av

    from vidsift.core.probe import open_media

    with open_media(path) as container:
        streams = list(container.streams.subtitles)
        text = [s for s in streams if s.codec_context.name in TEXT_CODECS]
        for stream in streams:
            if stream not in text:
                warnings.append(f"{path}: subtitle stream {stream.index} ({stream.codec_context.name}) "
                                "holds images, not text: not read")
        if not text:
            return [], ""
        stream = next((s for s in text if _matches(language, s.language or "")), text[0])
        description = f"subtitle stream {stream.index} ({stream.codec_context.name}, {stream.language or 'und'})"
        source = f"subtitle:{stream.index}"
        segments, bad = [], 0
        for packet in container.demux(stream):
            if packet.pts is None:
                continue  # the demuxer's flush packet
            start = float(packet.pts * stream.time_base)
            end = start + float((packet.duration or 0) * stream.time_base)
            try:
                events = packet.decode()
            except av.error.FFmpegError:
                bad += 1
                continue
            for event in events:
                line = event.dialogue.decode("utf-8", "replace").strip()
                if line:
                    segments.append(TranscriptSegment(start, end, line, source))
        if bad:
            warnings.append(f"{path}: {description}: {bad} undecodable cue(s) skipped")
        return sort_segments(segments), description


def sidecar_files(path: str, language: str | None) -> list[Path]:
    """Subtitle files beside the video named after it: movie.srt, movie.en.vtt, movie.eng.ass,
    ... Those in `language` come first, then untagged ones, then the rest, each by name."""
    video = Path(path)
    stem = video.stem
    found = []
    for candidate in sorted(video.parent.glob(f"{_glob_escape(stem)}.*")):
        if candidate.suffix.lower() not in SUBTITLE_SUFFIXES or not candidate.is_file():
            continue
        tag = candidate.name[len(stem) + 1:-len(candidate.suffix)]  # "" or "en" in movie.en.srt
        if tag and not _LANGUAGE_TAG.match(tag):
            continue  # movie.part2.srt belongs to movie.part2.mp4
        rank = 0 if tag and language and _matches(language, tag) else 1 if not tag else 2
        found.append((rank, candidate.name, candidate))
    return [c for _, _, c in sorted(found)]


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def read_sidecar(file: Path, offset: float = 0.0) -> list[TranscriptSegment]:
    """A sidecar file's cues, shifted by `offset` seconds (the video's start time). Raises
    SubtitleParseError naming the file when it cannot be read or parsed."""
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        text = file.read_bytes().decode("latin-1")  # older SRTs are often cp1252/latin-1
    except OSError as exc:
        raise SubtitleParseError(f"{file}: cannot read ({exc.strerror or exc})") from exc
    try:
        segments = parse_subtitles(text, file.suffix, source=f"sidecar:{file.name}")
    except SubtitleParseError as exc:
        raise SubtitleParseError(f"{file}: {exc}") from exc
    if offset:
        segments = [TranscriptSegment(round(s.start + offset, 6), round(s.end + offset, 6), s.text, s.source)
                    for s in segments]
    return segments
