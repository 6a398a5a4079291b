"""Named choices (decoders, embedders, VLMs, selectors, pruners) live in plain dicts; this is the
one lookup they share, so every unknown name fails the same way: a ConfigError naming the kind,
the name and the choices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from vidsift.core.errors import ConfigError

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: str, kind: str) -> T:
    """registry[name], or ConfigError("unknown {kind} 'name' (choose one of: a | b)")."""
    try:
        return registry[name]
    except KeyError:
        raise ConfigError(f"unknown {kind} {name!r} (choose one of: {' | '.join(registry)})") from None
