"""Tiny random-weight SigLIP and CLIP checkpoints, built offline from configs and saved with
save_pretrained, so tests load them through the same from_pretrained code users run.

The tokenizer is a word-level `tokenizers` model over a small vocabulary, wrapped as a
transformers fast tokenizer and saved beside the weights.
"""

from __future__ import annotations

import json
from pathlib import Path

VOCAB_WORDS = (
    "a the of is on in and with photo picture video frame cat dog coffee cup rocket man woman "
    "code word pelican red green blue bunny tree bird sky car street text screen"
).split()
MAX_TEXT_TOKENS = 16
IMAGE_SIZE = 32
PATCH_SIZE = 8


def _save_tokenizer(directory: Path) -> dict[str, int]:
    """Word-level tokenizer ending every text with </s>; returns its special token ids."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "</s>"]
    vocab = {token: i for i, token in enumerate(specials + VOCAB_WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", eos_token="</s>",
        model_max_length=MAX_TEXT_TOKENS,
    )
    fast.save_pretrained(directory)
    return {"pad_token_id": vocab["<pad>"], "eos_token_id": vocab["</s>"], "vocab_size": len(vocab)}


def _towers(ids: dict[str, int]) -> tuple[dict, dict]:
    text = dict(
        vocab_size=ids["vocab_size"], hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=MAX_TEXT_TOKENS,
        pad_token_id=ids["pad_token_id"], eos_token_id=ids["eos_token_id"],
        bos_token_id=ids["eos_token_id"],
    )
    vision = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=IMAGE_SIZE, patch_size=PATCH_SIZE,
    )
    return text, vision


def build_tiny_siglip(directory: Path) -> Path:
    """A SiglipModel (embedding width 32) with a preprocessor_config.json (mean/std 0.5)."""
    import torch
    from transformers import SiglipConfig, SiglipModel

    directory.mkdir(parents=True, exist_ok=True)
    text, vision = _towers(_save_tokenizer(directory))
    torch.manual_seed(0)
    SiglipModel(SiglipConfig(text_config=text, vision_config=vision)).save_pretrained(directory)
    (directory / "preprocessor_config.json").write_text(json.dumps({
        "do_resize": True, "size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    }))
    return directory


def build_tiny_clip(directory: Path) -> Path:
    """A CLIPModel projecting to 24 dims; no preprocessor config (CLIP's defaults apply)."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    directory.mkdir(parents=True, exist_ok=True)
    text, vision = _towers(_save_tokenizer(directory))
    torch.manual_seed(0)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=24)
    CLIPModel(config).save_pretrained(directory)
    return directory
