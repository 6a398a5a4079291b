"""Helpers for tests that watch a live stream."""

import time
from pathlib import Path


def stored_shards(index_dir, name: str) -> int:
    """How many shards the stream `name`'s watcher has stored under index_dir so far."""
    return len(list((Path(index_dir) / "streams" / name / "shards").glob("*.npz")))


def wait_for_shards(index_dir, name: str, count: int, within_s: float = 15.0) -> None:
    """Returns once the watcher of `name` stored `count` shards, or within_s later. A test
    stops its watcher after this, not at a fixed time: a loaded machine's watcher runs seconds
    behind the stream, and a stop drops what it has not read yet."""
    deadline = time.monotonic() + within_s
    while stored_shards(index_dir, name) < count and time.monotonic() < deadline:
        time.sleep(0.2)
