"""Test videos with speech and subtitles, made here: Debian's espeak-ng speaks sentences to WAV,
ffmpeg places them at known times under a lavfi video and muxes subtitle tracks; SRT text for
sidecar files is written from the same cues. `make test` installs espeak-ng (make espeak)."""

from __future__ import annotations

import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

from tests.videos import run_ffmpeg


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, path: Path, voice: str = "en-us", words_per_minute: int = 150) -> float:
    """espeak-ng speaks `text` into the WAV `path`; returns its length in seconds."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(path), text],
                   check=True, capture_output=True)
    with wave.open(str(path)) as handle:
        return handle.getnframes() / handle.getframerate()


@dataclass(frozen=True)
class Line:
    """A sentence spoken from `start` seconds; `end` is filled by make_speech_video."""

    start: float
    text: str
    end: float = 0.0


def srt(cues: list[tuple[float, float, str]]) -> str:
    def stamp(t: float) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    return "\n".join(f"{n}\n{stamp(a)} --> {stamp(b)}\n{text}\n" for n, (a, b, text) in enumerate(cues, 1))


def make_speech_video(
    path: Path,
    duration: float,
    lines: list[Line] = (),
    cues: list[tuple[float, float, str]] = (),
    subtitle_codec: str | None = None,
    audio: str = "speech",
    voice: str = "en-us",
    words_per_minute: int = 150,
    size: str = "160x120",
    keyframe_every_s: float | None = None,
) -> list[Line]:
    """A `duration`-second video (lavfi testsrc, H.264) with:
    audio "speech": `lines` spoken at their start times over silence (AAC); "silent": a silent
    track; "none": no audio stream;
    subtitle_codec (mov_text for .mp4; srt, ass, webvtt for .mkv): a track holding `cues`
    ((start, end, text) seconds); keyframe_every_s: a keyframe that often (x264's default is
    every 25 s at its 10 fps), so the ingest pool can cut the video into shards.
    Returns the lines with their spoken end times (start + the WAV's length)."""
    work = path.parent / f".{path.stem}-parts"
    work.mkdir(parents=True, exist_ok=True)
    args = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate=10:duration={duration}"]
    spoken = []
    if audio == "speech":
        for number, line in enumerate(lines):
            wav = work / f"line{number}.wav"
            length = speak(line.text, wav, voice, words_per_minute)
            spoken.append(Line(line.start, line.text, line.start + length))
            args += ["-i", str(wav)]
        args += ["-f", "lavfi", "-i", f"anullsrc=r=22050:cl=mono:d={duration}"]
    elif audio == "silent":
        args += ["-f", "lavfi", "-i", f"anullsrc=r=22050:cl=mono:d={duration}"]
    sub_input = None
    if subtitle_codec:
        sub_file = work / "cues.srt"
        sub_file.write_text(srt(list(cues)))
        sub_input = args.count("-i")  # inputs are numbered in order
        args += ["-i", str(sub_file)]
    maps = ["-map", "0:v"]
    if audio == "speech":
        delayed = "".join(f"[{n + 1}:a]adelay={int(line.start * 1000)}:all=1[d{n}];"
                          for n, line in enumerate(lines))
        mixed = "".join(f"[d{n}]" for n in range(len(lines)))
        silence = len(lines) + 1
        args += ["-filter_complex", f"{delayed}[{silence}:a]{mixed}amix=inputs={len(lines) + 1}:"
                                    f"normalize=0:duration=first[a]"]
        maps += ["-map", "[a]"]
    elif audio == "silent":
        maps += ["-map", "1:a"]
    if sub_input is not None:
        maps += ["-map", f"{sub_input}:s", "-c:s", subtitle_codec, "-metadata:s:s:0", "language=eng"]
    if audio != "none":
        maps += ["-c:a", "aac"]
    gop = ["-g", str(round(10 * keyframe_every_s))] if keyframe_every_s else []
    run_ffmpeg(*args, *maps, "-c:v", "libx264", *gop, "-pix_fmt", "yuv420p", "-t", str(duration), str(path))
    shutil.rmtree(work)
    return spoken


def corrupt_audio_packets(path: Path, every: int = 2) -> int:
    """Overwrite every `every`-th audio packet's bytes in the file with garbage, leaving the video
    packets alone; returns how many were damaged."""
    import av

    spans = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        for number, packet in enumerate(container.demux(stream)):
            if packet.pos is not None and packet.pos >= 0 and packet.size and number % every == 0:
                spans.append((packet.pos, packet.size))
    data = bytearray(path.read_bytes())
    for pos, size in spans:
        data[pos:pos + size] = bytes([0xFF, 0xF1, 0x00]) * (size // 3) + b"\x00" * (size % 3)
    path.write_bytes(bytes(data))
    return len(spans)
