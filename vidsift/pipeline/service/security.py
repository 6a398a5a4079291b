"""What the service lets a request touch: video paths inside the media roots only (after
resolving symlinks and '..'; a URL under a URL prefix root, no '..' in it), and an API key
whenever it listens beyond the loopback interface."""

from __future__ import annotations

import hmac
import ipaddress
import os
from pathlib import Path

from vidsift.core import sources
from vidsift.core.errors import ConfigError, PathNotAllowedError
from vidsift.core.media import resolve_path

API_KEY_HEADER = "X-API-Key"


def _root(root: str) -> Path | str:
    """A folder, resolved; or a URL prefix (s3://bucket/talks/, https://host/media/),
    normalised and ending in '/', so that it is a folder, never a name's beginning."""
    if sources.is_url(root):
        url = sources.normalise_url(root)
        return url if url.endswith("/") else url + "/"
    return Path(root).expanduser().resolve()


class MediaRoots:
    """Folders and URL prefixes a request may read from. No roots given: the current
    directory only. uploads: the service's own folder of uploaded videos, readable too."""

    def __init__(self, roots: list[str] | None = None, uploads: Path | None = None) -> None:
        given = roots or [os.getcwd()]
        self.roots = tuple(_root(str(root)) for root in given)
        self._folders = tuple(r for r in self.roots if isinstance(r, Path))
        if uploads is not None:
            self._folders += (Path(uploads).expanduser().resolve(),)
        self._prefixes = tuple(r for r in self.roots if isinstance(r, str))

    def check(self, path: str | os.PathLike) -> Path | str:
        """The resolved path, or PathNotAllowedError when it lands outside every root, or
        InvalidPathError (a NUL byte in it; in a URL, a '.' or '..' segment, also encoded).

        Relative paths are taken relative to the first folder root. Resolution follows every
        symlink, so a link inside a root pointing outside it is refused; a symlink loop resolves
        to itself (core.media.resolve_path), and reading it fails later by name. A URL is
        allowed under a URL prefix root only, compared after normalisation
        (core.sources.normalise_url), with no query: a web server may read it as another name.
        """
        if sources.is_url(path):
            url = sources.normalise_url(str(path))
            if "?" not in url and any(url.startswith(prefix) for prefix in self._prefixes):
                return url
            raise PathNotAllowedError(sources.redact(url))
        resolved = resolve_path(path, base=self._folders[0] if self._folders else os.getcwd())
        if any(resolved == root or resolved.is_relative_to(root) for root in self._folders):
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
