"""Typed errors. Every error about an input names the file and the cause, so a user (or a job
record) can tell what went wrong without a stack trace."""

from __future__ import annotations


class VidsiftError(Exception):
    """Base of every error vidsift raises on purpose."""


class ConfigError(VidsiftError, ValueError):
    """A config file, override or named choice is invalid."""


class VideoError(VidsiftError):
    """A problem with one video file. `path` names it; `reason` says what is wrong."""

    reason = "unreadable video"

    def __init__(self, path: str, detail: str = "") -> None:
        self.path = str(path)
        self.detail = detail
        message = f"{self.path}: {self.reason}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)

    def __reduce__(self):  # keep the fields when Ray pickles the error across processes
        return (type(self), (self.path, self.detail))


class VideoNotFoundError(VideoError):
    reason = "file not found"


class EmptyVideoError(VideoError):
    reason = "file is empty"


class InvalidPathError(VideoError):
    """A path no file can have (a NUL byte in it). `path` shows a NUL as the four characters
    \\x00, so the message prints on a terminal and in JSON."""

    reason = "invalid path"

    def __init__(self, path: str, detail: str = "") -> None:
        super().__init__(str(path).replace("\0", "\\x00"), detail)


class SymlinkLoopError(VideoError):
    reason = "symlink loop (too many levels of symbolic links)"


class NotAFileError(VideoError):
    """A directory, named pipe, socket or device where a video file was expected; `detail`
    says which."""

    reason = "not a regular file"


class NotAVideoError(VideoError):
    reason = "not a video (no decodable video stream)"


class CorruptVideoError(VideoError):
    """Truncated or damaged: `readable_until` is the last PTS (seconds) that decoded, if any."""

    reason = "corrupt or truncated video"

    def __init__(self, path: str, detail: str = "", readable_until: float | None = None) -> None:
        self.readable_until = readable_until
        if readable_until is not None and "readable until" not in detail:
            detail = f"{detail}; readable until {readable_until:.3f} s".lstrip("; ")
        super().__init__(path, detail)

    def __reduce__(self):
        return (type(self), (self.path, self.detail, self.readable_until))


class ZeroDurationError(VideoError):
    reason = "video has zero duration"


class AbsurdDimensionsError(VideoError):
    reason = "video dimensions are out of range"


class DecodeTimeoutError(VideoError):
    reason = "decode timed out"


class UnsupportedVideoError(VideoError):
    """The chosen decoder cannot read this file correctly (another backend can)."""

    reason = "not supported by this decoder"


class PathNotAllowedError(VidsiftError):
    """A path resolves (after symlinks) outside the configured media roots."""

    def __init__(self, path: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: path is outside the allowed media roots")

    def __reduce__(self):
        return (type(self), (self.path,))


class ClipIndexError(VidsiftError):
    """The clip index cannot do what was asked (locked by another writer, vectors of another
    embedder or dimension, unreadable files)."""


class BudgetError(VidsiftError):
    """The token budget cannot hold the requested segments (e.g. below one image's minimum)."""


class TokenCountError(VidsiftError):
    """A VLM would encode a different number of visual tokens than the token plan counted (the
    frames or the model's vision spec disagree with what the budget planned)."""


class ModelLoadError(VidsiftError):
    """A model could not be loaded from the given path or hub id."""


class RequestFailedError(VidsiftError):
    """A VLM request failed on every attempt it was allowed."""


class ImageError(VidsiftError):
    """A query image (a file or an upload, named by `source`) is not a readable picture."""

    def __init__(self, source: str, detail: str) -> None:
        self.source, self.detail = str(source), detail
        super().__init__(f"{self.source}: {detail}")

    def __reduce__(self):
        return (type(self), (self.source, self.detail))
