"""vidsift.core.registry: the one lookup every named choice shares."""

from __future__ import annotations

import pytest

from vidsift.core.errors import ConfigError, VidsiftError
from vidsift.core.registry import lookup

REGISTRY = {"pyav": "PyAV", "decord": "decord", "ffmpeg": "ffmpeg CLI"}


def test_lookup_returns_the_entry():
    assert lookup(REGISTRY, "decord", "decoder") == "decord"
    entry = object()
    assert lookup({"x": entry}, "x", "thing") is entry


def test_unknown_name_is_a_config_error_listing_the_choices():
    with pytest.raises(ConfigError) as err:
        lookup(REGISTRY, "vlc", "decoder")
    assert isinstance(err.value, ValueError) and isinstance(err.value, VidsiftError)
    assert str(err.value) == "unknown decoder 'vlc' (choose one of: pyav | decord | ffmpeg)"
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_caught_as_value_error():
    with pytest.raises(ValueError, match="unknown embedder 'x'"):
        lookup({}, "x", "embedder")
