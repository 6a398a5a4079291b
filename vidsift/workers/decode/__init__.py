"""Video decoders behind one interface (base.Decoder), chosen by name.

DECODERS maps a backend name to a factory(threads=0, max_pixels=...) that imports the backend
only when called, so choosing `pyav` never imports decord. The decode pool (actor.py) resolves
the factory in the driver and ships it to its Ray actors.
"""

from __future__ import annotations

from typing import Callable

from vidsift.core.probe import DEFAULT_MAX_PIXELS
from vidsift.core.registry import lookup
from vidsift.workers.decode.base import Decoder


def _pyav(**kwargs) -> Decoder:
    from vidsift.workers.decode.pyav_backend import PyAVDecoder

    return PyAVDecoder(**kwargs)


def _decord(**kwargs) -> Decoder:
    from vidsift.workers.decode.decord_backend import DecordDecoder

    return DecordDecoder(**kwargs)


def _ffmpeg(**kwargs) -> Decoder:
    from vidsift.workers.decode.ffmpeg_backend import FFmpegDecoder

    return FFmpegDecoder(**kwargs)


DECODERS: dict[str, Callable[..., Decoder]] = {"pyav": _pyav, "decord": _decord, "ffmpeg": _ffmpeg}


def get_decoder(name: str, threads: int = 0, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoder:
    """A decoder by registry name; threads=0 lets the backend choose."""
    return lookup(DECODERS, name, "decoder")(threads=threads, max_pixels=max_pixels)


__all__ = ["DECODERS", "Decoder", "get_decoder"]
