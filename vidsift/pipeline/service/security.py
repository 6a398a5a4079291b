"""What the service lets a request touch: video paths inside the media roots only (after
resolving symlinks and '..'), and an API key whenever it listens beyond the loopback interface."""

from __future__ import annotations

import hmac
import ipaddress
import os
from pathlib import Path

from vidsift.core.errors import ConfigError, PathNotAllowedError
from vidsift.core.media import resolve_path

API_KEY_HEADER = "X-API-Key"


class MediaRoots:
    """Directories a request may read from. No roots given: the current directory only."""

    def __init__(self, roots: list[str] | None = None) -> None:
        given = roots or [os.getcwd()]
        self.roots = tuple(Path(root).expanduser().resolve() for root in given)

    def check(self, path: str | os.PathLike) -> Path:
        """The resolved path, or PathNotAllowedError when it lands outside every root, or
        InvalidPathError (a NUL byte in it).

        Relative paths are taken relative to the first root. Resolution follows every symlink,
        so a link inside a root pointing outside it is refused; a symlink loop resolves to
        itself (core.media.resolve_path), and reading it fails later by name.
        """
        resolved = resolve_path(path, base=self.roots[0])
        if any(resolved == root or resolved.is_relative_to(root) for root in self.roots):
            return resolved
        raise PathNotAllowedError(str(path))


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1; False for 0.0.0.0, :: and any other address."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname other than localhost may resolve to anything: treat as public


def api_key_required(host: str) -> bool:
    return not is_loopback(host)


def validate_serve_security(host: str, api_key: str | None) -> None:
    """Refuse to start a service reachable from other machines without an API key."""
    if api_key_required(host) and not api_key:
        raise ConfigError(
            f"serve.host={host!r} is not a loopback address: set serve.api_key "
            f"(clients then send it in the {API_KEY_HEADER} header)"
        )


def api_key_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; no key configured means every request passes."""
    if not expected:
        return True
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
