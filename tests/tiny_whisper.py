"""A tiny random-weight Whisper checkpoint for tests: the real WhisperForConditionalGeneration
with Whisper's special and timestamp tokens (<|0.00|> .. <|30.00|>) in their real order after a
byte-level vocabulary, its generation config (language and task ids, no_timestamps_token_id) and
feature extractor, saved with save_pretrained so tests load it by path like a real checkpoint.
Its text is noise; timestamps, batching and plumbing are what it tests."""

from __future__ import annotations

from pathlib import Path

from tests.tiny_vlm import _byte_vocab

LANGUAGES = ("en", "fr")
SPECIAL = ("<|endoftext|>", "<|startoftranscript|>", *(f"<|{code}|>" for code in LANGUAGES),
           "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>",
           "<|notimestamps|>")
TIMESTAMPS = tuple(f"<|{i * 0.02:.2f}|>" for i in range(1501))


def save_tiny_whisper(directory: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (
        GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration,
        WhisperTokenizer,
    )

    vocab = _byte_vocab()
    for token in SPECIAL + TIMESTAMPS:
        vocab[token] = len(vocab)
    ids = {token: vocab[token] for token in SPECIAL}
    tokenizer = WhisperTokenizer(vocab=vocab, merges=[], unk_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL[1:] + TIMESTAMPS)})
    torch.manual_seed(seed)
    config = WhisperConfig(
        vocab_size=len(vocab), num_mel_bins=80, d_model=32, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_source_positions=1500, max_target_positions=96, pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"], begin_suppress_tokens=None,
        suppress_tokens=None,
    )
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"], max_length=96,
        no_timestamps_token_id=ids["<|notimestamps|>"], is_multilingual=True,
        lang_to_id={f"<|{code}|>": ids[f"<|{code}|>"] for code in LANGUAGES},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        max_initial_timestamp_index=50, return_timestamps=False,
    )
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(directory)
    return directory
