"""GET /v1/clip?video&start&end[&fast]: a moment of a video inside the media roots as an MP4,
what `vidsift export` writes (pipeline.flows.export), at most export.max_s seconds long.

Clips are kept under serve.data_dir/clips, named by the video file (resolved path, size,
modification time), the span and the mode, so the range requests a player sends and a second
download are answered from the file, not cut again; the MAX_KEPT_CLIPS most recently asked for
are kept. One clip is cut at a time (a cut takes the CPU a re-encode needs)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request

from vidsift.core.config import Config
from vidsift.core.errors import VideoNotFoundError
from vidsift.pipeline.flows.export import check_span, export_clip
from vidsift.pipeline.service.errors import (
    RANGE_HEADER,
    ApiError,
    FileWithJsonErrors,
    file_responses,
)
from vidsift.pipeline.service.web.media import NotMediaError, servable_video

MAX_KEPT_CLIPS = 32
MP4 = ("video/mp4",)
TIME_HELP = "seconds on the video's timeline (as ask, search and summarize report them)"


def _clip_name(video: Path, start: float, end: float, fast: bool) -> str:
    stat = video.stat()
    key = f"{video}\0{stat.st_size}\0{stat.st_mtime_ns}\0{start!r}\0{end!r}\0{fast}"
    return hashlib.sha256(key.encode()).hexdigest()[:32] + ".mp4"


def _keep_newest(folder: Path, count: int) -> None:
    clips = sorted(folder.glob("*.mp4"), key=lambda path: path.stat().st_mtime_ns, reverse=True)
    for old in clips[count:]:
        old.unlink(missing_ok=True)


def add_clip_routes(app: FastAPI, cfg: Config, auth: list) -> None:
    """Register GET /v1/clip on the service's app. auth: the API's key dependency."""
    cutting = threading.Lock()

    @app.get("/v1/clip", dependencies=auth, response_class=FileWithJsonErrors,
             openapi_extra=RANGE_HEADER,
             responses=file_responses("the clip, an MP4 (sent as an attachment)", MP4, 401, 403,
                                      404, 422))
    def clip(
        request: Request,
        video: Annotated[str, Query(min_length=1, max_length=4096,
                                    description="a video inside the media roots")],
        start: Annotated[float, Query(ge=0, allow_inf_nan=False, description=TIME_HELP)],
        end: Annotated[float, Query(gt=0, allow_inf_nan=False, description=TIME_HELP)],
        fast: Annotated[bool, Query(description="copy the streams, no re-encode: the clip "
                                                "starts at the keyframe before start")] = False,
    ):
        """A moment of a video as an MP4, frame-exact (re-encoded) or fast (stream copy from the
        keyframe before start); at most export.max_s seconds. A span outside the video or an
        end not after the start is 400."""
        service = request.app.state.service
        try:
            source = servable_video(service.roots, video)
        except NotMediaError as exc:
            raise ApiError(403, str(exc)) from None
        except VideoNotFoundError:
            raise ApiError(404, f"{video}: no such video") from None
        if isinstance(source, str):  # a URL under a URL media root (core.sources)
            raise ApiError(400, f"{video}: clips are cut from local files only; play it "
                                "through /v1/media instead")
        check_span(start, end, cfg.export.max_s)  # before any file is looked at
        folder = service.data_dir / "clips"
        path = folder / _clip_name(source, start, end, fast)
        with cutting:
            if path.is_file():
                os.utime(path)  # recently used: kept longer
            else:
                folder.mkdir(parents=True, exist_ok=True)
                export_clip(source, start, end, path, cfg.export, fast=fast)
                _keep_newest(folder, MAX_KEPT_CLIPS)
        return FileWithJsonErrors(path, media_type="video/mp4",
                                  filename=f"{source.stem}_{start:g}-{end:g}.mp4",
                                  headers={"Cache-Control": "private, max-age=3600"})
