"""Media roots (symlinks, '..') and the API key rule."""

from __future__ import annotations

import os

import pytest

from vidsift.core.errors import ConfigError, InvalidPathError, PathNotAllowedError
from vidsift.pipeline.service.security import (
    MediaRoots,
    api_key_matches,
    api_key_required,
    is_loopback,
    validate_serve_security,
)


@pytest.fixture()
def root(tmp_path):
    media = tmp_path / "media"
    (media / "sub").mkdir(parents=True)
    (media / "sub" / "a.mp4").write_bytes(b"x")
    (tmp_path / "secret.mp4").write_bytes(b"x")
    return media


def test_paths_inside_the_root_resolve(root):
    roots = MediaRoots([str(root)])
    assert roots.check(root / "sub" / "a.mp4") == (root / "sub" / "a.mp4").resolve()
    assert roots.check("sub/a.mp4") == (root / "sub" / "a.mp4").resolve()
    assert roots.check(root / "sub" / ".." / "sub" / "a.mp4") == (root / "sub/a.mp4").resolve()


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "../secret.mp4"])
def test_traversal_outside_the_root_is_refused(root, path):
    with pytest.raises(PathNotAllowedError, match="outside the allowed media roots"):
        MediaRoots([str(root)]).check(path)


def test_symlink_out_of_the_root_is_refused_and_inside_is_allowed(root):
    os.symlink(root.parent / "secret.mp4", root / "escape.mp4")
    os.symlink(root / "sub" / "a.mp4", root / "alias.mp4")
    roots = MediaRoots([str(root)])
    with pytest.raises(PathNotAllowedError):
        roots.check(root / "escape.mp4")
    assert roots.check(root / "alias.mp4") == (root / "sub" / "a.mp4").resolve()


def test_a_root_that_is_a_prefix_string_of_another_dir_does_not_leak(tmp_path):
    (tmp_path / "media").mkdir()
    (tmp_path / "media-private").mkdir()
    with pytest.raises(PathNotAllowedError):
        MediaRoots([str(tmp_path / "media")]).check(tmp_path / "media-private" / "x.mp4")


def test_no_roots_means_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert MediaRoots([]).check("v.mp4") == (tmp_path / "v.mp4").resolve()
    with pytest.raises(PathNotAllowedError):
        MediaRoots([]).check("/etc/passwd")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.4", False), ("example.com", False)],
)
def test_api_key_is_required_off_loopback(host, loopback):
    assert is_loopback(host) is loopback
    assert api_key_required(host) is (not loopback)


def test_serve_refuses_public_host_without_key():
    with pytest.raises(ConfigError, match="api_key"):
        validate_serve_security("0.0.0.0", None)
    validate_serve_security("0.0.0.0", "k")
    validate_serve_security("127.0.0.1", None)


def test_api_key_matching():
    assert api_key_matches(None, None)
    assert api_key_matches("s3cret", "s3cret")
    assert not api_key_matches("s3cret", "s3cre")
    assert not api_key_matches("s3cret", None)


def test_a_nul_byte_is_an_invalid_path_not_a_crash(root):
    with pytest.raises(InvalidPathError) as err:
        MediaRoots([str(root)]).check("sub/a\0.mp4")
    assert str(err.value) == "sub/a\\x00.mp4: invalid path (a NUL byte in it)"


def test_a_symlink_loop_inside_the_root_resolves_to_itself_and_outside_is_refused(root):
    os.symlink(root / "b.mp4", root / "a.mp4")
    os.symlink(root / "a.mp4", root / "b.mp4")
    roots = MediaRoots([str(root)])
    assert roots.check("a.mp4") == root.resolve() / "a.mp4"  # the file check names the loop
    outside = root.parent / "elsewhere"
    outside.mkdir()
    os.symlink(outside / "d.mp4", outside / "c.mp4")
    os.symlink(outside / "c.mp4", outside / "d.mp4")
    with pytest.raises(PathNotAllowedError):
        roots.check(outside / "c.mp4")
