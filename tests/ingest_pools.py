"""The ingest settings and pool the tests of the shared ingest chain start from: the default
preset without OCR (fast), two decode actors, short shards so a seconds-long test video is cut
into several."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def ingest_config(root: Path, shard_minutes: float, *extra: str):
    """The default preset with its index under root/index and shards of shard_minutes."""
    from vidsift.core.config import load_config

    return load_config("default", [
        "embed.ocr=false", f"index.dir={root / 'index'}", f"ingest.shard_minutes={shard_minutes}",
        "ingest.num_actors=2", *extra,
    ])


def running_pool(cfg) -> Iterator:
    """An IngestPool for a module's tests (yield from it in a fixture); closed afterwards."""
    from vidsift.workers.ingest import IngestPool

    pool = IngestPool(cfg)
    try:
        yield pool
    finally:
        pool.close()
