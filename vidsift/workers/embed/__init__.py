"""Embedder backends behind one registry: offline (packaged EfficientNet-Lite0 + MiniLM text
bridge, zero downloads), siglip and clip (transformers, by local path or hub id).

get_embedder(cfg) builds one in this process; the ingest pool's actors (workers/ingest.py)
host one each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vidsift.core.registry import lookup

if TYPE_CHECKING:
    from vidsift.core.config import EmbedConfig
    from vidsift.workers.embed.base import Embedder


def _offline(cfg: EmbedConfig) -> Embedder:
    from vidsift.workers.embed.offline import OfflineEmbedder

    return OfflineEmbedder(cfg)


def _siglip(cfg: EmbedConfig) -> Embedder:
    from vidsift.workers.embed.hf import HFEmbedder

    return HFEmbedder(cfg, family="siglip")


def _clip(cfg: EmbedConfig) -> Embedder:
    from vidsift.workers.embed.hf import HFEmbedder

    return HFEmbedder(cfg, family="clip")


EMBEDDERS: dict[str, Callable[[EmbedConfig], Embedder]] = {
    "offline": _offline,
    "siglip": _siglip,
    "clip": _clip,
}


def get_embedder(cfg: EmbedConfig) -> Embedder:
    """Build the embedder cfg.backend names (loads its models now)."""
    return lookup(EMBEDDERS, cfg.backend, "embedder")(cfg)


__all__ = ["EMBEDDERS", "get_embedder"]
