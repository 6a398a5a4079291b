"""vidsift.workers.decode.decord_backend: what only the decord decoder does (the shared semantics
run over it in test_base.py)."""

from __future__ import annotations

import builtins

import pytest

from tests.videos import run_ffmpeg
from vidsift.core.errors import CorruptVideoError, UnsupportedVideoError
from vidsift.workers.decode import get_decoder
from vidsift.workers.decode.decord_backend import DecordDecoder


@pytest.fixture
def decoder():
    return get_decoder("decord")


def test_registry_builds_the_decord_decoder(decoder):
    assert isinstance(decoder, DecordDecoder) and decoder.name == "decord"


def test_missing_decord_fails_at_construction_with_the_fix(monkeypatch):
    real_import = builtins.__import__

    def no_decord(name, *args, **kwargs):
        if name == "decord":
            raise ImportError("No module named 'decord'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_decord)
    with pytest.raises(ImportError, match=r"vidsift\[decord\]"):
        DecordDecoder()


def test_truncated_file_is_all_or_nothing(decoder, truncated_video):
    # decord reads the whole file on open: even the readable part fails
    with pytest.raises(CorruptVideoError):
        decoder.frames_at(truncated_video, [0.0, 0.5])


def test_edit_list_lead_in_is_unsupported(decoder, coded_video, tmp_path):
    # a stream-copy cut starting between keyframes hides its leading frames with an edit list,
    # and decord misplaces frames in such files: refused, pointing at pyav
    cut = tmp_path / "cut.mp4"
    run_ffmpeg("-ss", "1.5", "-i", str(coded_video), "-c", "copy", str(cut))
    with pytest.raises(UnsupportedVideoError, match="pyav") as err:
        decoder.frames_at(cut, [0.5])
    assert err.value.path == str(cut)
