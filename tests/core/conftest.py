"""Fixtures of the core tests that read remote sources."""

from __future__ import annotations

import pytest

from vidsift.core import sources


@pytest.fixture
def small_blocks():
    """32 KiB range reads, 4 kept: bytes read are then measured to the block, not the MiB, and a
    read of part of a piece fetches part of it only."""
    saved = dict(sources._settings)
    sources.configure(32, 4)
    yield
    sources.configure(saved["block"] // 1024, saved["blocks"])
