"""Summaries over HTTP: POST /v1/summaries queues a job that summarizes one video inside the
media roots as `vidsift summarize` does (pipeline.flows.summarize), on the service's ingest pool
and VLM; the job's result is the summary's JSON, each chapter's thumbnail served at
/v1/jobs/ID/chapters/N.jpg and its chapters as the export formats at
/v1/jobs/ID/chapters.FORMAT (md, vtt, ffmetadata, youtube: flows.chapter_files).

Chapter replies are stored as they land (the flow's summary store), so a job re-queued after a
restart, or the same video summarized again, asks the VLM only for what is missing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from vidsift.core.config import Config, SpeechMode
from vidsift.core.errors import VidsiftError
from vidsift.pipeline.flows.chapter_files import CHAPTER_FORMATS, chapters_text
from vidsift.pipeline.service.errors import (
    RANGE_HEADER,
    ApiError,
    FileWithJsonErrors,
    error_responses,
    file_responses,
)

MAX_CHAPTERS = 200
JPEG = ("image/jpeg",)
# What each export is served as: WebVTT's own type; the others are text a user saves or pastes.
EXPORT_TYPES = {"md": "text/markdown", "vtt": "text/vtt", "ffmetadata": "text/plain",
                "youtube": "text/plain"}


class SummaryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video: str = Field(..., min_length=1, max_length=4096,
                       description="a video inside the media roots")
    chapters: Annotated[int, Field(ge=1, le=MAX_CHAPTERS)] | Literal["auto"] | None = Field(
        None, description="how many chapters (summary.chapters); omitted: the server's")
    speech: SpeechMode | None = Field(
        None, description="what is said in the video (speech.mode); omitted: the server's")


class SummaryCancelled(VidsiftError):
    """The job was cancelled while its chapters were summarized; the chapters that had replied
    stay stored, so summarizing the video again does not ask for them twice."""


def job_config(cfg: Config, request: dict[str, Any]) -> Config:
    """The service's config with the job's own chapter count and speech mode."""
    if request.get("speech"):
        cfg = cfg.with_speech_mode(request["speech"])
    if request.get("chapters") is not None:
        cfg = cfg.model_copy(update={"summary": cfg.summary.model_copy(
            update={"chapters": request["chapters"]})})
    return cfg


def run_summary_job(job_id: str, request: dict[str, Any], cfg: Config, pool, vlm,
                    thumbnails_dir: Path, progress: Callable[..., bool]) -> dict[str, Any]:
    """Summarize request["video"] (already checked against the media roots) with the service's
    ingest pool and VLM (None without one), each given as itself or as a function giving it
    (called only once the video has passed its checks). progress(done, total) records the job's step and
    says False once it is cancelled: the ingest's shards, then the chapters as they reply.
    The result: SummaryResult.to_dict(), each chapter's thumbnail path replaced by its
    thumbnail_url, plus exports {format: url}."""
    from vidsift.pipeline.flows.summarize import Summarizer

    summarizer = Summarizer(job_config(cfg, request), pool=pool, vlm=vlm)
    replied = 0

    def on_chapter(_number: int, _chapter: dict) -> None:
        nonlocal replied
        replied += 1
        if not progress(replied, 0, "chapters"):
            raise SummaryCancelled(f"cancelled after {replied} chapters replied")

    try:
        result = summarizer.summarize(
            request["video"], thumbnails_dir=thumbnails_dir, on_chapter=on_chapter,
            progress=lambda event: progress(event.shards_done, event.shards_total, "ingest"))
    finally:
        summarizer.close()  # the pools are the service's: left running
    payload = result.to_dict()
    for number, chapter in enumerate(payload["chapters"]):
        chapter.pop("thumbnail", None)  # a path on the server
        chapter["thumbnail_url"] = f"/v1/jobs/{job_id}/chapters/{number}.jpg"
    payload["exports"] = {fmt: f"/v1/jobs/{job_id}/chapters.{fmt}" for fmt in CHAPTER_FORMATS}
    return payload


def add_summary_routes(app: FastAPI, auth: list, submit: Callable[[str, dict], Any],
                       finished_job: Callable[[Request, str, str], Any]) -> None:
    """Register the summary routes on the service's app. submit(kind, request) queues a job
    and returns its JobCreated; finished_job(request, job_id, kind) returns the job (404 when
    there is none of that kind)."""

    @app.post("/v1/summaries", status_code=202, dependencies=auth,
              responses=error_responses(400, 401, 403, 422))
    def summarize(body: SummaryRequest, request: Request):
        """Summarize a video as `vidsift summarize` does: chapters (times, titles, summaries,
        thumbnails), the video's summary and highlights; extractive when the service has no
        VLM. Follow the job at /v1/jobs/ID; its result is the summary's JSON."""
        service = request.app.state.service
        video = str(service.roots.check(body.video))
        given = {"video": video, **{key: value for key, value in
                                    {"chapters": body.chapters, "speech": body.speech}.items()
                                    if value is not None}}
        return submit("summarize", given)

    @app.get("/v1/jobs/{job_id}/chapters/{number}.jpg", dependencies=auth,
             response_class=FileWithJsonErrors, openapi_extra=RANGE_HEADER,
             responses=file_responses("a chapter's thumbnail", JPEG, 401, 404, 422))
    def chapter_thumbnail(job_id: str, number: int, request: Request):
        service = request.app.state.service
        finished_job(request, job_id, "summarize")
        path = summary_thumbnails_dir(service.data_dir, job_id) / f"{number:02d}.jpg"
        if number < 0 or not path.is_file():
            raise ApiError(404, f"job {job_id!r} has no chapter {number}")
        return FileWithJsonErrors(path, media_type="image/jpeg")

    # Text in the format's own type, errors JSON (the route returns its response itself).
    @app.get("/v1/jobs/{job_id}/chapters.{fmt}", dependencies=auth, responses={
        200: {"description": "the chapters as a file",
              "content": {kind: {} for kind in sorted(set(EXPORT_TYPES.values()))}},
        **error_responses(400, 401, 404, 409, 422)})
    def chapter_file(job_id: str, fmt: str, request: Request):
        """A summary job's chapters as WebVTT chapters (vtt), an ffmetadata file ffmpeg muxes
        into chapter markers (ffmetadata), '0:00 Title' lines video sites take (youtube), or
        Markdown (md)."""
        if fmt not in EXPORT_TYPES:
            raise ApiError(404, f"no chapter format {fmt!r}: one of {', '.join(EXPORT_TYPES)}")
        job = finished_job(request, job_id, "summarize")
        if job.status != "succeeded":
            raise ApiError(409, f"job {job_id!r} is {job.status}: its chapters come once it "
                                "has succeeded")
        text = chapters_text(fmt, job.result)
        name = f"{Path(job.result['video']).stem}.chapters.{'txt' if fmt == 'youtube' else fmt}"
        # RFC 6266's filename*: a video's name may hold quotes or any Unicode
        return PlainTextResponse(text, media_type=EXPORT_TYPES[fmt], headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


def summary_thumbnails_dir(data_dir: Path, job_id: str) -> Path:
    """Where a summary job's chapter thumbnails are written (NN.jpg, by chapter number)."""
    return Path(data_dir) / "thumbnails" / job_id / "chapters"
