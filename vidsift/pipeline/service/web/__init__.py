"""The web page (`vidsift serve` at /) and the routes it needs beside the JSON API: media
streaming with HTTP range requests, media tickets for the <video> element, the indexed videos,
and the service's facts. The page is static (static/: HTML, JS, CSS shipped as package data, no
build step); everything it shows comes from the JSON API with the same key and media roots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from vidsift.core.config import Config
from vidsift.core.errors import VideoNotFoundError
from vidsift.core.media import VIDEO_EXTENSIONS
from vidsift.core.sources import SourceInfo
from vidsift.pipeline.service.errors import (
    RANGE_HEADER,
    ApiError,
    FileWithJsonErrors,
    error_responses,
    file_responses,
)
from vidsift.pipeline.service.web.media import (
    MediaTickets,
    NotMediaError,
    TicketError,
    VersionChangedError,
    VersionGoneError,
    byte_range,
    media_type,
    name_of,
    playing_version,
    remote_chunks,
    servable_video,
    still_readable,
)

STATIC_DIR = Path(__file__).parent / "static"
VIDEO_TYPES = sorted({media_type(Path(f"video{suffix}")) for suffix in VIDEO_EXTENSIONS})

# The page runs only its own script and styles, and loads images and media from this service
# (thumbnails as blob: URLs): an injected tag could neither run nor call out.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
        "media-src 'self'; connect-src 'self'; form-action 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class TicketRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(..., min_length=1, max_length=4096)
    # A remote video's memory (its content_hash, /v1/videos): the ticket plays that version.
    content_hash: str | None = Field(None, pattern="^[0-9a-f]{64}$")


def add_web_routes(app: FastAPI, cfg: Config, auth: list) -> None:
    """Register the page and its routes on the service's app. auth: the API's key dependency."""
    tickets = MediaTickets()  # this service's secret: its tickets only

    def checked_video(service, path: str | Path) -> Path | str:
        """servable_video's file; its other VideoErrors (a loop, a directory, ...) are 400s."""
        try:
            return servable_video(service.roots, path)
        except NotMediaError as exc:
            raise ApiError(403, str(exc)) from None
        except VideoNotFoundError:
            raise ApiError(404, f"{path}: no such video") from None

    def video_response(service, path: str | Path | SourceInfo,
                       range_header: str | None = None) -> Response:
        # It answers Range requests itself: 206 with Content-Range, or 416 for a range that
        # starts past the end of the file. A SourceInfo: that version of a remote video.
        video = checked_video(service, path.url if isinstance(path, SourceInfo) else path)
        if isinstance(video, str):
            return remote_response(path if isinstance(path, SourceInfo) else video, range_header)
        return FileWithJsonErrors(video, media_type=media_type(video),
                            headers={"Cache-Control": "private, max-age=3600"})

    def remote_response(video: str | SourceInfo, range_header: str | None) -> Response:
        """A video behind a URL, proxied: the Range asked for, read from the store by ranges,
        of one version (a ticket's: 412 where it changed and the store keeps no old one)."""
        from vidsift.core.sources import stat_source

        try:
            info = still_readable(video) if isinstance(video, SourceInfo) else stat_source(video)
        except VersionChangedError as exc:
            raise ApiError(412, str(exc)) from None
        url = info.url
        try:
            wanted = byte_range(range_header, info.size)
        except ValueError:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{info.size}"})
        first, last = wanted or (0, info.size - 1)
        headers = {"Accept-Ranges": "bytes", "Content-Length": str(last - first + 1),
                   "Cache-Control": "private, max-age=3600"}
        if wanted is not None:
            headers["Content-Range"] = f"bytes {first}-{last}/{info.size}"
        return StreamingResponse(remote_chunks(info, first, last),
                                 status_code=206 if wanted is not None else 200,
                                 media_type=media_type(name_of(url)), headers=headers)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                            headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/v1/info", dependencies=auth, responses=error_responses(401, 422))
    def info(request: Request) -> dict:
        """What the page needs to know: the media roots (the folders it may index) and the
        URL prefixes of the streams it may watch (serve.stream_urls, credentials redacted)."""
        from vidsift.core.sources import redact

        return {"media_roots": [str(root) for root in request.app.state.service.roots.roots],
                "stream_urls": [redact(prefix) if "@" in prefix or "?" in prefix else prefix
                                for prefix in cfg.serve.stream_urls]}

    @app.get("/v1/videos", dependencies=auth, responses=error_responses(400, 401, 422))
    def videos(request: Request) -> dict:
        """The indexed videos inside the media roots (the ones a question may name): path,
        duration in seconds, clips; in the order indexed."""
        from vidsift.core.errors import PathNotAllowedError
        from vidsift.index.clip_index import MANIFEST, ClipIndex

        index_dir = Path(cfg.index.dir).expanduser()
        if not (index_dir / MANIFEST).is_file():
            return {"videos": []}
        with ClipIndex(index_dir, cfg.index, readonly=True) as index:
            records = index.videos()
        roots, listed = request.app.state.service.roots, []
        for record in records:
            try:
                roots.check(record.path)
            except PathNotAllowedError:
                continue
            listed.append({"path": record.path, "content_hash": record.content_hash,
                           "duration": record.duration, "clips": record.clips})
        return {"videos": listed}

    @app.get("/v1/media", dependencies=auth, response_class=FileWithJsonErrors,
             openapi_extra=RANGE_HEADER,
             responses=file_responses("the video", VIDEO_TYPES, 401, 403, 404, 422))
    def media(request: Request, path: Annotated[str, Query(min_length=1, max_length=4096)]):
        """A video under the media roots, with range requests (for API clients with the key)."""
        return video_response(request.app.state.service, path, request.headers.get("range"))

    @app.post("/v1/media/tickets", dependencies=auth,
              responses=error_responses(400, 401, 403, 404, 409, 422))
    def media_ticket(body: TicketRequest, request: Request) -> dict:
        """A URL that streams one video for TICKET_TTL_S: what a <video src> can use, since it
        cannot send the API key header. A remote video's ticket plays one version: the one
        its store holds now, or with content_hash the one that memory was made from (409 when
        the store no longer has it)."""
        video = checked_video(request.app.state.service, body.path)
        if isinstance(video, str):
            try:
                ticket, expires = tickets.issue(playing_version(video, body.content_hash))
            except VersionGoneError as exc:
                raise ApiError(409, str(exc)) from None
            return {"path": video, "url": f"/v1/media/t/{ticket}", "expires_at": expires}
        ticket, expires = tickets.issue(video)
        return {"path": str(video), "url": f"/v1/media/t/{ticket}", "expires_at": expires}

    @app.get("/v1/media/t/{ticket}", include_in_schema=False)
    def media_by_ticket(ticket: str, request: Request):
        try:
            path = tickets.verify(ticket)
        except TicketError as exc:
            raise ApiError(403, str(exc)) from None
        return video_response(request.app.state.service, path, request.headers.get("range"))
