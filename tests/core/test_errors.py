"""vidsift.core.errors: typed errors that name their file and survive pickling (Ray ships
exceptions between processes with pickle)."""

from __future__ import annotations

import pickle

import pytest

from vidsift.core import errors
from vidsift.core.errors import (
    ConfigError,
    CorruptVideoError,
    PathNotAllowedError,
    VideoError,
    VidsiftError,
)


def all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from all_subclasses(sub)


VIDEO_ERRORS = sorted({VideoError, *all_subclasses(VideoError)}, key=lambda c: c.__name__)


def test_every_video_error_of_the_module_is_covered():
    defined = {obj for obj in vars(errors).values()
               if isinstance(obj, type) and issubclass(obj, VideoError)}
    assert defined <= set(VIDEO_ERRORS) and len(defined) >= 9


@pytest.mark.parametrize("cls", VIDEO_ERRORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("detail", ["", "moov atom not found"])
def test_video_error_pickles_with_its_fields(cls, detail):
    error = cls("/media/a b.mp4", detail)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is cls
    assert again.path == "/media/a b.mp4" and again.detail == detail
    assert str(again) == str(error)
    assert str(again).startswith("/media/a b.mp4: ") and cls.reason in str(again)
    assert (f"({detail})" in str(again)) == bool(detail)
    assert isinstance(again, VidsiftError)


def test_video_error_path_is_a_string(tmp_path):
    error = errors.VideoNotFoundError(tmp_path / "x.mp4")
    assert error.path == str(tmp_path / "x.mp4")
    assert str(error) == f"{tmp_path / 'x.mp4'}: file not found"


@pytest.mark.parametrize("readable_until", [None, 0.0, 1.96])
def test_corrupt_video_error_keeps_readable_until(readable_until):
    error = CorruptVideoError("/v.mp4", "truncated", readable_until=readable_until)
    again = pickle.loads(pickle.dumps(error))
    assert again.readable_until == readable_until and again.path == "/v.mp4"
    assert str(again) == str(error)
    if readable_until is not None:
        assert f"readable until {readable_until:.3f} s" in str(again)
        assert str(again).count("readable until") == 1  # not appended twice on unpickling


def test_path_not_allowed_error_pickles():
    error = PathNotAllowedError("/etc/passwd")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is PathNotAllowedError and again.path == "/etc/passwd"
    assert str(again) == str(error) and "/etc/passwd" in str(again)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, VidsiftError)
    again = pickle.loads(pickle.dumps(ConfigError("bad key")))
    assert type(again) is ConfigError and str(again) == "bad key"
