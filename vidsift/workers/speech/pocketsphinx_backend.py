"""Offline speech recognition with pocketsphinx 5: its wheel ships a US-English acoustic model,
dictionary and language model, so it needs no download. Accuracy on clean synthetic speech is
low (bench/results/speech.json); it is the default because it works anywhere, whisper is the
accurate choice where a checkpoint can be had.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from vidsift.core.config import SpeechConfig
from vidsift.core.errors import ConfigError
from vidsift.core.transcript import group_words
from vidsift.core.types import TranscriptSegment
from vidsift.workers.speech.audio import SAMPLE_RATE, AudioWindow

# words the decoder emits that were not said: silence, fillers, sentence marks
_NOT_WORDS = {"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "[BREATH]", "[COUGH]", "[UH]", "[UM]"}


# Decoder settings over the packaged defaults, chosen on bench/speech.py's tuning sentences
# (never its benchmark sentences; bench/results/speech.json, pocketsphinx_tuning): scoring the
# 16 best of each frame's Gaussians instead of 4, with a word insertion penalty of 1.0 instead of
# 0.65, took the WER there from 0.765 to 0.689 at 2.4x instead of 3.6x realtime; lw 10, wip 0.2,
# wider beams, remove_noise and batch CMN did no better.
DECODER_SETTINGS = {"topn": 16, "wip": 1.0}


class PocketsphinxASR:
    name = "pocketsphinx"

    def __init__(self, cfg: SpeechConfig, **settings) -> None:
        """settings: pocketsphinx Config keys over DECODER_SETTINGS (the benchmark compares them)."""
        if cfg.language and cfg.language.lower()[:2] != "en":
            raise ConfigError(f"speech.asr_backend=pocketsphinx recognises English only, not "
                              f"speech.language={cfg.language}: use speech.asr_backend=whisper")
        from pocketsphinx import Config, Decoder

        config = Config(samprate=SAMPLE_RATE, loglevel="FATAL", **{**DECODER_SETTINGS, **settings})
        self.frame_s = 1.0 / int(config["frate"])  # the decoder's frame step, seconds
        self.decoder = Decoder(config)

    def transcribe(self, windows: Iterable[AudioWindow]) -> Iterator[tuple[AudioWindow, list[TranscriptSegment]]]:
        """Each window with its segments (times on the video's timeline), window by window. A
        window is one utterance: a word cut by a window boundary may be lost or misheard."""
        for window in windows:
            pcm = (np.clip(window.samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
            self.decoder.start_utt()
            self.decoder.process_raw(pcm, full_utt=True)
            self.decoder.end_utt()
            words = []
            for seg in self.decoder.seg():
                word = seg.word.split("(")[0]  # "the(2)" is the dictionary's 2nd pronunciation
                if word in _NOT_WORDS or not word or word.startswith("++"):
                    continue
                words.append((round(window.start + seg.start_frame * self.frame_s, 3),
                              round(window.start + (seg.end_frame + 1) * self.frame_s, 3), word))
            yield window, group_words(words, source="asr:pocketsphinx")
