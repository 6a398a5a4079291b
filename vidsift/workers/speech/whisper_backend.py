"""Whisper speech recognition through transformers: WhisperForConditionalGeneration by hub id or
local path (speech.whisper_model), windows of at most 30 s batched into one generate call
(speech.batch_size), segment times from Whisper's timestamp tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from vidsift.core.config import SpeechConfig
from vidsift.core.errors import ConfigError, ModelLoadError
from vidsift.core.types import TranscriptSegment
from vidsift.workers.speech.audio import SAMPLE_RATE, AudioWindow


def timestamped_pieces(
    token_ids: Sequence[int], timestamp_begin: int, precision: float
) -> list[tuple[float, float | None, list[int]]]:
    """Whisper's output with timestamps -> (start, end, text token ids) per segment, in seconds
    from the window's start. Ids >= timestamp_begin are times ((id - timestamp_begin) * precision);
    a segment is `<|start|> text <|end|>`, and two times in a row close one segment and open the
    next. Text before any time starts at 0; text after the last time has end None (the window's
    end). Segments without text are dropped."""
    pieces: list[tuple[float, float | None, list[int]]] = []
    start: float | None = None
    text: list[int] = []
    for token in token_ids:
        token = int(token)
        if token < timestamp_begin:
            text.append(token)
            continue
        time = round((token - timestamp_begin) * precision, 3)  # whole milliseconds, no float dust
        if text:
            pieces.append((0.0 if start is None else start, time, text))
            text, start = [], None
        else:
            start = time
    if text:
        pieces.append((0.0 if start is None else start, None, text))
    return pieces


class WhisperASR:
    name = "whisper"

    def __init__(self, cfg: SpeechConfig) -> None:
        if not cfg.whisper_model:
            raise ConfigError("speech.asr_backend=whisper needs speech.whisper_model "
                              "(a local path or hub id, e.g. openai/whisper-small)")
        import torch
        from transformers import AutoTokenizer, WhisperFeatureExtractor, WhisperForConditionalGeneration

        from vidsift.workers.embed.base import resolve_device

        self.cfg = cfg
        self.device = torch.device(resolve_device(cfg.device))
        dtype = {"auto": torch.float16 if self.device.type == "cuda" else torch.float32,
                 "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[cfg.dtype]
        try:
            self.model = WhisperForConditionalGeneration.from_pretrained(cfg.whisper_model, dtype=dtype)
            self.tokenizer = AutoTokenizer.from_pretrained(cfg.whisper_model)
            self.features = WhisperFeatureExtractor.from_pretrained(cfg.whisper_model)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"{cfg.whisper_model}: cannot load Whisper ({exc})") from exc
        generation = self.model.generation_config
        if getattr(generation, "no_timestamps_token_id", None) is None:
            raise ModelLoadError(f"{cfg.whisper_model}: its generation config has no "
                                 "no_timestamps_token_id, so segments cannot be timed")
        self.timestamp_begin = generation.no_timestamps_token_id + 1
        # one timestamp step: the encoder's stride (2) times the feature hop, in seconds
        self.precision = 2 * self.features.hop_length / self.features.sampling_rate
        self.model.to(self.device).eval()

    def transcribe(self, windows: Iterable[AudioWindow]) -> Iterator[tuple[AudioWindow, list[TranscriptSegment]]]:
        """Each window with its segments (times on the video's timeline), cfg.batch_size windows
        per generate call; windows must be at most 30 s (speech.window_s caps them)."""
        batch: list[AudioWindow] = []
        for window in windows:
            batch.append(window)
            if len(batch) == self.cfg.batch_size:
                yield from self._run(batch)
                batch = []
        if batch:
            yield from self._run(batch)

    def _run(self, batch: list[AudioWindow]) -> list[tuple[AudioWindow, list[TranscriptSegment]]]:
        import torch

        inputs = self.features([w.samples for w in batch], sampling_rate=SAMPLE_RATE,
                               return_tensors="pt", return_attention_mask=True)
        kwargs = {"task": "transcribe", "return_timestamps": True}
        if self.cfg.language and getattr(self.model.generation_config, "is_multilingual", False):
            kwargs["language"] = self.cfg.language
        with torch.inference_mode():
            sequences = self.model.generate(
                inputs.input_features.to(self.device, self.model.dtype),
                attention_mask=inputs.attention_mask.to(self.device), **kwargs)
        results = []
        for window, ids in zip(batch, sequences.tolist()):
            length = window.end - window.start
            segments = []
            for start, end, text_ids in timestamped_pieces(ids, self.timestamp_begin, self.precision):
                if start >= length:
                    continue  # timed inside the padding after a short window's audio
                text = self.tokenizer.decode(text_ids, skip_special_tokens=True).strip()
                end = length if end is None else min(max(end, start), length)
                if text:
                    segments.append(TranscriptSegment(round(window.start + start, 3),
                                                      round(window.start + end, 3), text, "asr:whisper"))
            results.append((window, segments))
        return results
