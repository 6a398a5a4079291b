"""A Ray actor hosting one embedder, so flows share its loaded models across calls."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import ray

from vidsift.pipeline.config import EmbedConfig
from vidsift.pipeline.types import FrameEmbeddings


@ray.remote
class EmbedActor:
    """Loads the configured embedder once; methods mirror the Embedder protocol."""

    def __init__(self, cfg: EmbedConfig) -> None:
        from vidsift.workers.embed import get_embedder

        self.embedder = get_embedder(cfg)

    def dims(self) -> tuple[int, int]:
        """(visual_dim, text_dim)."""
        return self.embedder.visual_dim, self.embedder.text_dim

    def encode_frames(self, images: Sequence[np.ndarray]) -> FrameEmbeddings:
        return self.embedder.encode_frames(images)

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.embedder.embed_images(images)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        return self.embedder.embed_text(texts)


def start_embed_actor(cfg: EmbedConfig):
    """An EmbedActor with the Ray resources cfg asks for (fractional CPUs, GPUs for siglip/clip)."""
    return EmbedActor.options(
        num_cpus=cfg.num_cpus_per_actor, num_gpus=cfg.num_gpus_per_actor
    ).remote(cfg)
