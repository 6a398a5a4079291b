"""POST /v1/files: a video uploaded into the service's own storage (serve.data_dir/uploads), for
jobs to name by the path it returns. The body is the video's bytes (Content-Type video/* or
application/octet-stream), streamed to disk and refused past serve.max_upload_mb (413, nothing
kept); what arrives is kept only if it opens as a video container with a video stream
(core.probe.check_video), else 400 naming the problem. The uploads folder is one of the
service's media roots (security.MediaRoots(uploads=...))."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request

from vidsift.core.config import Config
from vidsift.core.errors import VideoError
from vidsift.core.media import VIDEO_EXTENSIONS
from vidsift.pipeline.service.errors import ApiError, error_responses

ACCEPTED_TYPES = ("video/", "application/octet-stream")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "video/*": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


def uploads_dir(cfg: Config) -> Path:
    return Path(cfg.serve.data_dir).expanduser() / "uploads"


def safe_name(name: str) -> str:
    """The upload's file name as stored: its last path part, other characters than letters,
    digits, '.', '-' and '_' replaced; 400 when it has no video extension."""
    base = _UNSAFE.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).lstrip(".")[:120]
    if Path(base).suffix.lower() not in VIDEO_EXTENSIONS:
        raise ApiError(400, f"{name}: not a video file name (extensions: "
                            f"{', '.join(sorted(VIDEO_EXTENSIONS))})")
    return base


def add_upload_routes(app: FastAPI, cfg: Config, auth: list) -> None:
    limit = cfg.serve.max_upload_mb * 1024 * 1024

    @app.post("/v1/files", status_code=201, dependencies=auth, openapi_extra=UPLOAD_BODY,
              responses=error_responses(400, 401, 413, 415, 422))
    async def upload(request: Request,
                     name: Annotated[str, Query(min_length=1, max_length=255,
                                                description="the video's file name")]) -> dict:
        """Store the body as a video the service's jobs can read: {path, name, size}."""
        from starlette.concurrency import run_in_threadpool

        from vidsift.core.probe import check_video

        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not kind.startswith(ACCEPTED_TYPES):
            raise ApiError(415, f"Content-Type {kind or '(none)'}: send the video's bytes as "
                                "video/* or application/octet-stream")
        stored = safe_name(name)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"{declared} bytes: uploads take at most serve.max_upload_mb="
                                f"{cfg.serve.max_upload_mb} MB")
        folder = uploads_dir(cfg) / secrets.token_hex(8)
        folder.mkdir(parents=True)
        partial, target = folder / (stored + ".part"), folder / stored
        size = 0
        try:
            with partial.open("wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise ApiError(413, f"over serve.max_upload_mb={cfg.serve.max_upload_mb}"
                                            " MB: upload refused, nothing kept")
                    out.write(chunk)
            if size == 0:
                raise ApiError(400, f"{name}: empty body")
            partial.rename(target)
            try:
                await run_in_threadpool(check_video, target)
            except VideoError as exc:
                raise ApiError(400, str(exc).replace(str(target), name)) from None
        except BaseException:
            for path in (partial, target):
                path.unlink(missing_ok=True)
            folder.rmdir()
            raise
        return {"path": str(target), "name": stored, "size": size}
