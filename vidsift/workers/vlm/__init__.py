"""VLM backends behind a registry: name -> factory(VLMConfig) -> VLMBackend, imported lazily so
choosing a backend (or none) costs no torch/transformers import."""

from __future__ import annotations

from collections.abc import Callable

from vidsift.core.config import PoolConfig, VLMConfig
from vidsift.core.errors import ModelLoadError
from vidsift.core.registry import lookup
from vidsift.workers.vlm.base import VLMBackend


def _qwen2_5_vl(cfg: VLMConfig) -> VLMBackend:
    from vidsift.workers.vlm.qwen2_5_vl import QwenVLBackend

    return QwenVLBackend(cfg)


def _qwen3_vl(cfg: VLMConfig) -> VLMBackend:
    from vidsift.workers.vlm.qwen3_vl import Qwen3VLBackend

    return Qwen3VLBackend(cfg)


def _openai(cfg: VLMConfig) -> VLMBackend:
    from vidsift.workers.vlm.remote import OpenAIBackend

    return OpenAIBackend(cfg)


VLMS: dict[str, Callable[[VLMConfig], VLMBackend]] = {
    "qwen2_5_vl": _qwen2_5_vl, "qwen3_vl": _qwen3_vl, "openai": _openai,
}


def get_vlm(cfg: VLMConfig) -> VLMBackend:
    """Load the configured VLM backend (raises ModelLoadError when no model is set)."""
    factory = lookup(VLMS, cfg.backend, "VLM backend")
    if cfg.model is None or str(cfg.model).lower() == "none":
        raise ModelLoadError("vlm.model is not set: point it at a checkpoint dir or hub id "
                             "(openai: the served model's name)")
    return factory(cfg)


def open_vlm(cfg: VLMConfig, pool: PoolConfig):
    """What a flow sends its VLM requests to: a remote backend called in-process when
    cfg.remote (its own threads; the server batches), else a VLMPool of in-process models on
    Ray (workers.pool). Either has generate() and shutdown()."""
    if cfg.remote:
        return get_vlm(cfg)
    from vidsift.workers.pool import VLMPool

    return VLMPool(cfg, pool)


__all__ = ["VLMS", "VLMBackend", "get_vlm", "open_vlm"]
