"""The interface every VLM backend offers the pool and the flows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from vidsift.core.types import VLMRequest, VLMResult


@runtime_checkable
class VLMBackend(Protocol):
    """A loaded vision-language model that answers questions over token sets.

    generate() runs the requests together (one batched call where the backend can) and returns
    one result per request, in order. Greedy decoding: the same request gives the same text
    alone or in a batch. max_new_tokens is always capped by the backend's config.
    """

    name: str

    def generate(self, requests: list[VLMRequest]) -> list[VLMResult]: ...


def token_cap(wanted: int | None, cap: int) -> int:
    """New tokens a request may generate: what it wants (None: the config's cap), never above
    the backend config's cap, at least 1."""
    return max(1, min(int(wanted or cap), cap))


@dataclass(frozen=True, slots=True)
class Sampling:
    """How each next token is chosen: temperature 0 is greedy (the most likely token, what every
    backend does by default); above 0, drawn from the softmax at that temperature within the
    top_p nucleus (the smallest set of tokens whose probabilities sum to top_p; 1: all), seeded
    by seed (None: unseeded), so the same seed draws the same tokens again."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0
