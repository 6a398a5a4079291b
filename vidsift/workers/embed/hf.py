"""SigLIP and CLIP through transformers: image and text towers in one shared space.

The model loads by local path or hub id (cfg.model) with from_pretrained, its tokenizer with
AutoTokenizer. Pixels are prepared here with numpy/PIL (resize, optional centre crop, rescale,
normalize with the checkpoint's preprocessor_config.json when it has one): transformers' image
processors would pull in torchvision, which vidsift does not depend on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidsift.core.config import EmbedConfig
from vidsift.core.errors import ConfigError, ModelLoadError
from vidsift.core.types import FrameEmbeddings
from vidsift.workers.embed.base import check_images, resolve_device, unit_rows


@dataclass(frozen=True)
class PixelSpec:
    """How a checkpoint expects its pixels: square side, centre crop or squash, mean and std."""

    size: int
    center_crop: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


# What each family's own image processor does when a checkpoint ships no preprocessor config.
_FAMILY_DEFAULTS = {
    "siglip": dict(center_crop=False, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    "clip": dict(
        center_crop=True,
        mean=(0.48145466, 0.4578275, 0.40821073),
        std=(0.26862954, 0.26130258, 0.27577711),
    ),
}


def _preprocessor_config(model: str) -> dict:
    """The checkpoint's preprocessor_config.json (local dir or hub cache), or {} without one."""
    local = Path(model).expanduser()
    if local.is_dir():
        path = local / "preprocessor_config.json"
        return json.loads(path.read_text()) if path.is_file() else {}
    try:
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(model, "preprocessor_config.json")).read_text())
    except Exception:  # the hub being unreachable or the file absent both mean: family defaults
        return {}


def pixel_spec(family: str, image_size: int, preprocessor: dict) -> PixelSpec:
    defaults = _FAMILY_DEFAULTS[family]
    return PixelSpec(
        size=image_size,
        center_crop=bool(preprocessor.get("do_center_crop", defaults["center_crop"])),
        mean=tuple(preprocessor.get("image_mean", defaults["mean"])),
        std=tuple(preprocessor.get("image_std", defaults["std"])),
    )


def prepare_pixels(images: Sequence[np.ndarray], spec: PixelSpec) -> np.ndarray:
    """N (H, W, 3) uint8 RGB -> (N, 3, size, size) float32, normalized.

    Centre crop (CLIP): scale the shorter side to `size`, keep the middle square. Otherwise
    (SigLIP): squash the whole frame to size x size. Bicubic, as both processors resample.
    """
    from PIL import Image

    size = spec.size
    out = np.empty((len(images), size, size, 3), dtype=np.float32)
    for i, image in enumerate(images):
        picture = Image.fromarray(image)
        if spec.center_crop:
            h, w = image.shape[:2]
            scale = size / min(h, w)
            rw, rh = max(size, round(w * scale)), max(size, round(h * scale))
            picture = picture.resize((rw, rh), Image.BICUBIC)
            left, top = (rw - size) // 2, (rh - size) // 2
            picture = picture.crop((left, top, left + size, top + size))
        else:
            picture = picture.resize((size, size), Image.BICUBIC)
        out[i] = np.asarray(picture, dtype=np.float32)
    out = (out / 255.0 - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
    return out.transpose(0, 3, 1, 2).copy()


class HFEmbedder:
    """family: 'siglip' (SiglipModel) or 'clip' (CLIPModel)."""

    def __init__(self, cfg: EmbedConfig, family: str) -> None:
        if family not in _FAMILY_DEFAULTS:
            raise ConfigError(f"embed.backend {family!r}: not a transformers family vidsift knows")
        if not cfg.model:
            example = {"siglip": "google/siglip-base-patch16-224",
                       "clip": "openai/clip-vit-base-patch32"}[family]
            raise ConfigError(
                f"embed.backend={family} needs embed.model: a local checkpoint path or a hub id "
                f"(e.g. {example})"
            )
        import torch
        from transformers import AutoTokenizer, CLIPModel, SiglipModel

        self.name = family
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self._torch = torch
        dtype = {
            "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
        }.get(cfg.dtype, torch.float16 if self.device.startswith("cuda") else torch.float32)
        model_class = SiglipModel if family == "siglip" else CLIPModel
        try:
            self.model = model_class.from_pretrained(cfg.model, dtype=dtype).to(self.device).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(cfg.model)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelLoadError(f"{cfg.model}: cannot load a {family} model ({exc})") from exc
        config = self.model.config
        self.dtype = dtype
        self.visual_dim = self.text_dim = (
            config.projection_dim if family == "clip" else config.vision_config.hidden_size
        )
        self.max_text_tokens = config.text_config.max_position_embeddings
        self.spec = pixel_spec(
            family, config.vision_config.image_size, _preprocessor_config(cfg.model)
        )

    @staticmethod
    def _embedding(output):
        # transformers 5 returns a model output whose pooler_output is the projected embedding;
        # 4.x returned the tensor itself.
        return output if hasattr(output, "shape") else output.pooler_output

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        torch = self._torch
        images = check_images(images)
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), self.cfg.batch_size):
                pixels = prepare_pixels(images[start:start + self.cfg.batch_size], self.spec)
                tensor = torch.from_numpy(pixels).to(self.device, self.dtype)
                out = self._embedding(self.model.get_image_features(pixel_values=tensor))
                chunks.append(out.float().cpu().numpy())
        if not chunks:
            return np.zeros((0, self.visual_dim), np.float32)
        return unit_rows(np.concatenate(chunks))

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        if len(texts) == 0:
            return np.zeros((0, self.text_dim), np.float32)
        # SigLIP was trained on text padded to its full length; CLIP pools at the EOS token, so
        # padding to the longest text in the batch is exact and cheaper.
        padding = "max_length" if self.name == "siglip" else True
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.cfg.batch_size):
                batch = self.tokenizer(
                    list(texts[start:start + self.cfg.batch_size]), padding=padding,
                    truncation=True, max_length=self.max_text_tokens, return_tensors="pt",
                )
                inputs = {k: v.to(self.device) for k, v in batch.items()
                          if k in ("input_ids", "attention_mask")}
                if self.name == "siglip":
                    inputs.pop("attention_mask", None)  # SigLIP's text tower attends to padding
                out = self._embedding(self.model.get_text_features(**inputs))
                chunks.append(out.float().cpu().numpy())
        return unit_rows(np.concatenate(chunks))

    def encode_frames(self, images: Sequence[np.ndarray]) -> FrameEmbeddings:
        visual = self.embed_images(images)
        return FrameEmbeddings(visual=visual, text=visual, descriptions=[""] * len(visual))
