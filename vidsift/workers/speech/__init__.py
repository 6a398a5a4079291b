"""What is said in a video, as a Transcript: subtitle streams and sidecar files (exact, cheap)
and speech recognition on the audio track, behind one registry of ASR backends:
pocketsphinx (offline, the model ships in its wheel) and whisper (transformers, by hub id or
local path).

transcribe(path, cfg) follows cfg.mode: subtitles (embedded text tracks, else sidecar files),
asr, or auto (subtitles when there are any, else asr). What cannot be read (no audio track, a
broken sidecar file, undecodable packets) becomes a note in Transcript.warnings, never an error
that would fail the video's job; a misconfigured backend (unknown name, no whisper model) is a
ConfigError.
"""

from __future__ import annotations

from collections.abc import Callable

from vidsift.core.config import SpeechConfig
from vidsift.core.registry import lookup
from vidsift.core.transcript import SubtitleParseError, Transcript


def _pocketsphinx(cfg: SpeechConfig):
    from vidsift.workers.speech.pocketsphinx_backend import PocketsphinxASR

    return PocketsphinxASR(cfg)


def _whisper(cfg: SpeechConfig):
    from vidsift.workers.speech.whisper_backend import WhisperASR

    return WhisperASR(cfg)


ASR_BACKENDS: dict[str, Callable[[SpeechConfig], object]] = {
    "pocketsphinx": _pocketsphinx,
    "whisper": _whisper,
}


def get_asr(cfg: SpeechConfig):
    """The ASR backend cfg.asr_backend names, loaded in this process. It has `name` and
    transcribe(windows) -> iterator of (AudioWindow, its TranscriptSegments)."""
    return lookup(ASR_BACKENDS, cfg.asr_backend, "speech.asr_backend")(cfg)


Progress = Callable[[float, float], None]  # (seconds of audio done, seconds in all; 0 = unknown)


def transcribe(path: str, cfg: SpeechConfig, progress: Progress | None = None, asr=None) -> Transcript:
    """The video's transcript by cfg.mode (see module doc). asr: a loaded backend to reuse
    (else get_asr(cfg) when the mode needs one)."""
    transcript = Transcript()
    if cfg.mode == "none":
        return transcript
    if cfg.mode in ("subtitles", "auto"):
        read_subtitles(path, cfg, transcript)
        if transcript.segments or cfg.mode == "subtitles":
            if not transcript.sources:
                transcript.warnings.append(f"{path}: no text subtitle track and no sidecar subtitle file")
            return transcript
    recognise(path, cfg, transcript, progress, asr)
    return transcript


def read_subtitles(path: str, cfg: SpeechConfig, transcript: Transcript) -> None:
    """The embedded text subtitle track, else the first sidecar file that parses, into transcript."""
    from vidsift.workers.speech.subtitles import embedded_subtitles, read_sidecar, sidecar_files

    try:
        segments, description = embedded_subtitles(path, cfg.language, transcript.warnings)
    except Exception as exc:  # noqa: BLE001 - an unreadable container is the visual pass's to report
        transcript.warnings.append(f"{path}: subtitle streams could not be read ({type(exc).__name__}: {exc})")
        segments, description = [], ""
    if description:
        transcript.segments, transcript.sources = segments, [description]
        return
    if not cfg.sidecars:
        return
    offset = _start_time(path)
    for file in sidecar_files(path, cfg.language):
        try:
            transcript.segments = read_sidecar(file, offset)
        except SubtitleParseError as exc:
            transcript.warnings.append(f"sidecar subtitles not used: {exc}")
            continue
        transcript.sources = [f"sidecar {file.name}"]
        return


def _start_time(path: str) -> float:
    """The container's start time, seconds (0 when it does not say)."""
    import av

    try:
        with av.open(path) as container:
            return container.start_time / 1_000_000 if container.start_time else 0.0
    except Exception:  # noqa: BLE001 - unreadable: sidecar times stay as written
        return 0.0


def recognise(path: str, cfg: SpeechConfig, transcript: Transcript, progress: Progress | None = None,
              asr=None) -> None:
    """Speech recognition on the audio track, window by window, into transcript."""
    from vidsift.workers.speech.audio import SILENCE_DBFS, AudioReader, NoAudioError

    try:
        reader = AudioReader(path, cfg.window_s)
    except NoAudioError as exc:
        transcript.warnings.append(str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - the container is the visual pass's to report
        transcript.warnings.append(f"{path}: audio could not be opened ({type(exc).__name__}: {exc})")
        return
    asr = asr or get_asr(cfg)
    transcript.sources.append(f"asr {asr.name}")
    decoded = [0.0]  # seconds of audio decoded so far (read inside the generator)

    def audible():
        for window in reader.windows():
            decoded[0] += window.end - window.start
            if progress:
                progress(min(decoded[0], reader.duration or decoded[0]), reader.duration)
            if window.loudness_dbfs > SILENCE_DBFS:
                yield window

    try:
        for _, segments in asr.transcribe(audible()):
            transcript.segments.extend(segments)
    except Exception as exc:  # noqa: BLE001 - a stream that breaks mid-way keeps what was heard
        transcript.warnings.append(f"{path}: audio decoding stopped after {decoded[0]:.1f} s "
                                   f"({type(exc).__name__}: {exc})")
    transcript.warnings.extend(reader.warnings)
    if decoded[0] == 0.0:
        transcript.warnings.append(f"{path}: the audio track decoded to no samples")
    elif not transcript.segments:
        transcript.warnings.append(f"{path}: no speech recognised in {decoded[0]:.1f} s of audio")
