"""The HTTP service: a FastAPI app over a persistent job store, with worker threads that run the
ask flow (and indexing, captioning) for queued jobs. `vidsift serve` hosts it on Ray Serve; tests
and embedders can run it with any ASGI server (create_app(cfg)).

Routes (OpenAPI at /docs):
  POST   /v1/jobs                {video, question, options, conversation, speech} -> {id, status}
                                 (no video: across the clip index; conversation: a follow-up)
  GET    /v1/conversations/{name}                           -> the conversation's turns
  GET    /v1/jobs?limit&offset&status                       -> a page of jobs, newest first
  GET    /v1/jobs/{id}                                      -> status, answer, evidence, timings
  DELETE /v1/jobs/{id}                                      -> cancels a queued or running job
  GET    /v1/jobs/{id}/thumbnails/{n}.jpg                   -> the n-th evidence thumbnail
  POST   /v1/index               {paths, speech}            -> {id} of an index job
  POST   /v1/caption             {paths, speech, clips, clip_s, to_index} -> {id} of a caption job
                                 (its result: every clip's caption, written under serve.data_dir)
  GET    /v1/jobs/{id}/subtitles/{name}.srt|.vtt            -> a caption job's subtitles of a video
  GET    /v1/search?q&k                                     -> clips from the clip index
  POST   /v1/search?q&k          body: a photo              -> clips that look like it (and q)
  GET    /v1/index/thumbs/{folder}/{name}                   -> a clip's thumbnail
  GET    /v1/clip?video&start&end&fast                      -> a moment of a video as an MP4
                                 (pipeline.service.clips)
  POST   /v1/files?name          body: a video's bytes      -> {path} jobs can name
                                 (pipeline.service.uploads)
  POST   /v1/summaries           {video, chapters, speech}  -> {id} of a summary job; its
                                 chapters' thumbnails at /v1/jobs/{id}/chapters/{n}.jpg, its
                                 chapters as /v1/jobs/{id}/chapters.md|vtt|ffmetadata|youtube
                                 (pipeline.service.summary_job)
  POST/GET/DELETE /v1/streams[/{name}], GET /v1/streams/{name}/events (Server-Sent Events):
                                 live streams watched by the service (pipeline.service.streams)
  GET    /  and /v1/videos, /v1/info, /v1/media, /v1/media/tickets: the web page (pipeline.service.web)
Security: every video path must resolve inside serve.media_roots (else 403); when serve.api_key
is set (it must be when the host is not loopback) requests carry it in the X-API-Key header.
Errors are JSON {"error": message, ...}; never a stack trace.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException

from vidsift.core.config import Config, SpeechMode
from vidsift.core.errors import PathNotAllowedError, VidsiftError
from vidsift.pipeline.flows.conversation import (
    ConversationStore,
    ask_in_conversation,
    check_name,
    scope_of,
)
from vidsift.pipeline.service.errors import (
    RANGE_HEADER,
    ApiError,
    FileWithJsonErrors,
    error_responses,
    file_responses,
)
from vidsift.pipeline.service.jobs import STATUSES, JobStore
from vidsift.pipeline.service.security import (
    API_KEY_HEADER,
    MediaRoots,
    api_key_matches,
    validate_serve_security,
)

log = logging.getLogger("vidsift.http")

MAX_PATH_CHARS = 4096
MAX_INDEX_PATHS = 1000
MAX_OFFSET = 2**63 - 1  # SQLite's largest integer: a page past every job is empty, not an error
MAX_BUDGET_TOKENS = 65536
MAX_CONVERSATION_CHARS = 200
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # a search photo; a phone's JPEG is 2-8 MB
MIN_CLIP_S, MAX_CLIP_S = 1.0, 3600.0  # a caption job's fixed clips: at most 3600 per hour of video
SUBTITLE_TYPES = {".srt": "application/x-subrip", ".vtt": "text/vtt"}
JPEG = ("image/jpeg",)
# The photo POST /v1/search reads as its body (any format Pillow reads; these are the usual ones).
IMAGE_BODY = {"requestBody": {"required": True, "description": "a photo, at most "
                              f"{MAX_IMAGE_BYTES} bytes", "content": {
    kind: {"schema": {"type": "string", "format": "binary"}}
    for kind in ("image/jpeg", "image/png", "image/webp", "application/octet-stream")}}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AskOptions(_Strict):
    budget: int | None = Field(None, ge=1, le=MAX_BUDGET_TOKENS, description="visual tokens")
    max_new_tokens: int | None = Field(
        None, ge=1, description="answer length; capped at the server's vlm.max_new_tokens"
    )


SPEECH_HELP = ("what is said as evidence: none | subtitles | asr | auto (the job's speech.mode); "
               "omitted: the server's")


class JobRequest(_Strict):
    video: str | None = Field(
        None, min_length=1, max_length=MAX_PATH_CHARS,
        description="omitted: across every indexed video in the media roots, or the video of "
                    "the conversation it continues")
    question: str = Field(..., min_length=1, max_length=20_000)
    options: AskOptions = Field(default_factory=AskOptions)
    conversation: str | None = Field(
        None, min_length=1, max_length=MAX_CONVERSATION_CHARS,
        description="ask as the next turn of this conversation (its earlier turns in the prompt)")
    speech: SpeechMode | None = Field(None, description=SPEECH_HELP)
    # "schema" on the wire (the name would shadow pydantic's BaseModel.schema)
    answer_schema: dict[str, Any] | None = Field(
        None, alias="schema",
        description="a JSON Schema the answer follows: the result's answer_json holds it "
                    "parsed and valid (a schema that is no valid JSON Schema, or that the "
                    "grammar library cannot compile, is a 422 naming the problem)")


class IndexRequest(_Strict):
    paths: list[Annotated[str, Field(min_length=1, max_length=MAX_PATH_CHARS)]] = Field(
        ..., min_length=1, max_length=MAX_INDEX_PATHS
    )
    speech: SpeechMode | None = Field(None, description=SPEECH_HELP)


class CaptionRequest(IndexRequest):
    clips: Literal["scenes", "fixed"] | None = Field(
        None, description="scene cuts or fixed-length clips (caption.clips); omitted: the "
                          "server's, or fixed when clip_s is given")
    clip_s: float | None = Field(None, ge=MIN_CLIP_S, le=MAX_CLIP_S,
                                 description="fixed clips' length in seconds (caption.clip_s)")
    to_index: bool = Field(False, description="add the captions to the clip index's text space")

    @model_validator(mode="after")
    def _clip_s_means_fixed(self) -> CaptionRequest:
        if self.clip_s is not None and self.clips == "scenes":
            raise ValueError("clip_s sets the length of fixed clips: leave it out with "
                             "clips=scenes")
        return self


class JobCreated(BaseModel):
    id: str
    status: str


class JobFailed(VidsiftError):
    """A job that failed with a result still worth reading (an index job whose every video
    failed: its summary names each failure)."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


class Service:
    """The job store, the conversations, media roots, the Asker (lazy: Ray pools) and the
    worker threads."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.data_dir = Path(cfg.serve.data_dir).expanduser()
        self.store = JobStore(self.data_dir)
        self.conversations = ConversationStore(self.data_dir)
        self.roots = MediaRoots(cfg.serve.media_roots, uploads=self.data_dir / "uploads")
        self._asker = None
        self._asker_lock = threading.Lock()
        # The clip index has one writer at a time (a second one is refused): jobs that write it
        # take turns here instead of failing while another index job runs.
        self._index_writer = threading.Lock()
        self._thumbs_lock = threading.Lock()
        self._thumbs: tuple[tuple[int, int] | None, dict[str, list[str]]] = (None, {})
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        from vidsift.pipeline.service.streams import Streams

        # live streams' watchers, their frames embedded on the asker's one ingest pool and their
        # events verified by its one VLM
        self.streams = Streams(cfg, self.data_dir, lambda: self.asker.pool,
                               (lambda: self.asker.vlm) if cfg.vlm.enabled else None)

    @property
    def asker(self):
        with self._asker_lock:
            if self._asker is None:
                from vidsift.pipeline.flows.ask import Asker

                self._asker = Asker(self.cfg)
            return self._asker

    def start(self) -> int:
        """Re-queue jobs a previous run left running, then start the workers."""
        requeued = self.store.requeue_interrupted()
        for number in range(self.cfg.serve.workers):
            thread = threading.Thread(target=self._work, name=f"vidsift-job-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.streams.resume()
        return requeued

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop taking jobs. A job still running stays 'running' in the store and is re-queued by
        the next start, so nothing is lost."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=timeout_s)
        self.streams.stop_all(timeout_s)
        with self._asker_lock:
            if self._asker is not None:
                self._asker.close()
                self._asker = None

    def notify(self) -> None:
        self._wake.set()

    def caption_dir(self, job_id: str) -> Path:
        """Where a caption job writes its captions (the caption flow's resumable OUT folder)."""
        return self.data_dir / "captions" / job_id

    def may_read(self, path: str) -> bool:
        """Whether a video (e.g. one the clip index names) lies inside the media roots."""
        try:
            self.roots.check(path)
        except PathNotAllowedError:
            return False
        return True

    def thumbs_readable(self, folder: str) -> bool:
        """Whether the clip index's thumbnail folder (thumbs/<folder>) belongs to videos inside
        the media roots: an index may hold videos indexed from anywhere (the CLI), and the
        service shows none of them."""
        videos = self._thumbs_videos().get(folder)
        return bool(videos) and all(self.may_read(video) for video in videos)

    def _thumbs_videos(self) -> dict[str, list[str]]:
        """{thumbnail folder: its videos' paths} at the clip index's last commit, read again
        only when a commit has replaced the manifest (opening the index loads its vectors)."""
        from vidsift.index.clip_index import MANIFEST, ClipIndex, thumbs_folder

        index_dir = Path(self.cfg.index.dir).expanduser()
        try:
            stat = (index_dir / MANIFEST).stat()
        except FileNotFoundError:
            return {}
        commit = (stat.st_ino, stat.st_mtime_ns)
        with self._thumbs_lock:
            if self._thumbs[0] != commit:
                owners: dict[str, list[str]] = {}
                with ClipIndex(index_dir, self.cfg.index, readonly=True) as index:
                    for record in index.videos():
                        owners.setdefault(thumbs_folder(record.content_hash), []).append(
                            record.path)
                self._thumbs = (commit, owners)
            return self._thumbs[1]

    def _work(self) -> None:
        while not self._stop.is_set():
            job = self.store.claim_next()
            if job is None:
                self._wake.wait(timeout=0.5)
                self._wake.clear()
                continue
            try:
                result = self._run(job)
            except JobFailed as exc:
                self.store.mark_failed(job.id, str(exc), exc.result)
            except Exception as exc:  # a job's failure must never kill the worker
                if self._stop.is_set():
                    return  # torn down mid-job: leave it running, the next start re-queues it
                if isinstance(exc, VidsiftError):
                    self.store.mark_failed(job.id, str(exc))
                else:
                    log.exception("job %s failed", job.id)
                    self.store.mark_failed(job.id, f"internal error: {type(exc).__name__}: {exc}")
            else:
                self.store.mark_succeeded(job.id, result)

    def _progress(self, job, stage: str):
        """The job's progress recorder: record(done, total, video=None) keeps {stage, done, total,
        video} as the job's progress; False once the job is no longer running (cancelled)."""
        def record(done: int, total: int, video: str | None = None) -> bool:
            step = {"stage": stage, "done": done, "total": total}
            return self.store.set_progress(job.id, step if video is None else {**step,
                                                                               "video": video})
        return record

    def _job_config(self, request: dict[str, Any]) -> Config:
        """The service's config with a job's own settings: its speech mode, a caption job's
        clips (caption.clips, caption.clip_s)."""
        cfg = self.cfg.with_speech_mode(request["speech"]) if "speech" in request else self.cfg
        clips = {key: request[key] for key in ("clips", "clip_s") if key in request}
        if clips:
            cfg = cfg.model_copy(update={"caption": cfg.caption.model_copy(update=clips)})
        return cfg

    def _run(self, job) -> dict[str, Any]:
        request = job.request
        if job.kind == "ask":
            options = request.get("options", {})
            record = self._progress(job, "ingest")
            ask_options = dict(
                budget=options.get("budget"), max_new_tokens=options.get("max_new_tokens"),
                thumbnails_dir=self.data_dir / "thumbnails" / job.id,
                progress=lambda event: record(event.shards_done, event.shards_total),
                allow_video=self.may_read, speech=request.get("speech"),
                schema=request.get("schema"),
            )
            if request.get("conversation"):
                # Recorded once per job, and not at all once the job is cancelled.
                result = ask_in_conversation(self.asker, self.conversations, request["conversation"],
                                             request.get("video"), request["question"],
                                             job=job.id, only_if=self.store.runs(job.id),
                                             **ask_options)
            else:
                result = self.asker.ask(request.get("video"), request["question"], **ask_options)
            payload = result.to_dict()
            for number, segment in enumerate(payload["segments"]):
                if segment.pop("thumbnail", None):
                    segment["thumbnail_url"] = f"/v1/jobs/{job.id}/thumbnails/{number}.jpg"
            return payload
        if job.kind == "index":
            from vidsift.pipeline.flows.index import index_videos

            # The asker's ingest pool: one set of actors (and memories) for every job, started
            # only once a video passes its checks.
            record = self._progress(job, "index")
            with self._index_writer:
                summary = index_videos(
                    request["paths"], self._job_config(request), pool=lambda: self.asker.pool,
                    progress=lambda event: record(event.done, event.total, event.path),
                    check=self.roots.check,
                )
            if summary.every_video_failed:  # as the CLI exits 1
                failed = summary.failed
                more = f" (all {len(failed)} failed: result.failed)" if len(failed) > 1 else ""
                raise JobFailed(f"no video indexed: {failed[0][1]}{more}", summary.to_dict())
            return summary.to_dict()
        if job.kind == "caption":
            from vidsift.core.media import video_key
            from vidsift.pipeline.service.caption_job import caption_job

            cfg = self._job_config(request)
            to_index = request.get("to_index", False)
            with self._index_writer if to_index else nullcontext():
                result = caption_job(
                    request["paths"], self.caption_dir(job.id), cfg, self.roots.check,
                    self._progress(job, "caption"), to_index=to_index,
                    pool=self.asker.pool if cfg.caption.clips == "scenes" else None)
            for video in result["captions"]:
                key = video_key(video["video"])  # the flow's subtitles/<key>.srt and .vtt
                video.update({f"{kind}_url": f"/v1/jobs/{job.id}/subtitles/{key}.{kind}"
                              for kind in ("srt", "vtt")})
            return result
        if job.kind == "summarize":
            from vidsift.pipeline.service.summary_job import run_summary_job, summary_thumbnails_dir

            def record(done: int, total: int, stage: str) -> bool:
                return self.store.set_progress(job.id, {"stage": stage, "done": done,
                                                        "total": total})

            # The service's pools, started only once the video has passed its checks.
            return run_summary_job(
                job.id, request, self.cfg, lambda: self.asker.pool,
                (lambda: self.asker.vlm) if self.cfg.vlm.enabled else None,
                summary_thumbnails_dir(self.data_dir, job.id), record)
        raise VidsiftError(f"unknown job kind {job.kind!r}")


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, **extra})


def _validation_messages(exc: RequestValidationError) -> list[str]:
    messages = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err.get("loc", ()) if part != "body")
        messages.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
    return messages


def _load_grammar_library() -> None:
    import vidsift.workers.vlm.structured  # noqa: F401
    import xgrammar  # noqa: F401


def create_app(cfg: Config) -> FastAPI:
    validate_serve_security(cfg.serve.host, cfg.serve.api_key)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service = Service(cfg)
        app.state.service = service
        requeued = service.start()
        if requeued:
            log.info("re-queued %d interrupted jobs", requeued)
        # xgrammar (and the torch it imports) take seconds to load: loaded now, a job's schema
        # is checked at once instead of its request waiting for the import
        threading.Thread(target=_load_grammar_library, name="vidsift-xgrammar",
                         daemon=True).start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(
        title="vidsift",
        version="0.1.0",
        description="Ask questions about long videos, search clips, over a persistent job store.",
        lifespan=lifespan,
    )

    async def check_key(x_api_key: Annotated[str | None, Header(alias=API_KEY_HEADER)] = None):
        if not api_key_matches(cfg.serve.api_key, x_api_key):
            raise ApiError(
                401, f"missing or wrong API key (send it in the {API_KEY_HEADER} header)"
            )

    def service_of(request: Request) -> Service:
        return request.app.state.service

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, exc: RequestValidationError):
        messages = _validation_messages(exc)
        return _error(422, "invalid request: " + "; ".join(messages), details=messages)

    @app.exception_handler(ApiError)
    async def on_api_error(_request: Request, exc: ApiError):
        return _error(exc.status, exc.message)

    @app.exception_handler(PathNotAllowedError)
    async def on_forbidden(_request: Request, exc: PathNotAllowedError):
        return _error(403, str(exc))

    @app.exception_handler(VidsiftError)
    async def on_vidsift_error(_request: Request, exc: VidsiftError):
        return _error(400, str(exc))

    @app.exception_handler(HTTPException)
    async def on_http_error(_request: Request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def on_unexpected(_request: Request, exc: Exception):
        log.exception("unhandled error")
        return _error(500, "internal error")

    auth = [Depends(check_key)]

    @app.post("/v1/jobs", status_code=202, response_model=JobCreated, dependencies=auth,
              responses=error_responses(400, 401, 403, 422))
    def submit_job(body: JobRequest, request: Request) -> JobCreated:
        service = service_of(request)
        if len(body.question) > cfg.serve.max_question_chars:  # the server's limit: same body
            raise RequestValidationError([{  # as the schema's own checks (error and details)
                "loc": ("body", "question"), "type": "string_too_long",
                "msg": f"at most {cfg.serve.max_question_chars} characters"}])
        if body.answer_schema is not None:
            from vidsift.core.schema import SchemaError
            from vidsift.workers.vlm.structured import check_compiles

            try:
                check_compiles(body.answer_schema)
            except SchemaError as exc:
                raise RequestValidationError([{"loc": ("body", "schema"), "type": "value_error",
                                               "msg": str(exc).removeprefix("schema: ")}]
                                             ) from None
        video = str(service.roots.check(body.video)) if body.video is not None else None
        if body.conversation is not None:
            # A follow-up about the conversation's video is checked against the roots now.
            scope = scope_of(check_name(body.conversation),
                             service.conversations.turns(body.conversation), video)
            video = str(service.roots.check(scope)) if scope is not None else None
        options = body.options.model_dump(exclude_none=True)
        if "max_new_tokens" in options:
            options["max_new_tokens"] = min(options["max_new_tokens"], cfg.vlm.max_new_tokens)
        job = service.store.create("ask", {
            "video": video, "question": body.question, "options": options,
            **({"conversation": body.conversation} if body.conversation is not None else {}),
            **({"speech": body.speech} if body.speech is not None else {}),
            **({"schema": body.answer_schema} if body.answer_schema is not None else {}),
        })
        service.notify()
        return JobCreated(id=job.id, status=job.status)

    @app.get("/v1/jobs", dependencies=auth, responses=error_responses(401, 422))
    def list_jobs(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        status: Annotated[str | None, Query(pattern=f"^({'|'.join(STATUSES)})$")] = None,
    ) -> dict:
        jobs, total = service_of(request).store.list(limit=limit, offset=offset, status=status)
        return {
            "jobs": [j.to_dict() for j in jobs], "total": total, "limit": limit, "offset": offset,
        }

    def _job_or_404(service: Service, job_id: str):
        job = service.store.get(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id!r}")
        return job

    @app.get("/v1/jobs/{job_id}", dependencies=auth, responses=error_responses(401, 404, 422))
    def get_job(job_id: str, request: Request) -> dict:
        return _job_or_404(service_of(request), job_id).to_dict()

    @app.delete("/v1/jobs/{job_id}", dependencies=auth,
                responses=error_responses(401, 404, 422))
    def cancel_job(job_id: str, request: Request) -> dict:
        job = service_of(request).store.cancel(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id!r}")
        return job.to_dict()

    @app.get("/v1/conversations/{name}", dependencies=auth,
             responses=error_responses(401, 404, 422))
    def get_conversation(name: str, request: Request) -> dict:
        turns = service_of(request).conversations.turns(name)
        if not turns:
            raise ApiError(404, f"no conversation {name!r}")
        return {"name": name, "turns": turns}

    @app.get("/v1/jobs/{job_id}/thumbnails/{number}.jpg", dependencies=auth,
             response_class=FileWithJsonErrors, openapi_extra=RANGE_HEADER,
             responses=file_responses("the evidence thumbnail", JPEG, 401, 404, 422))
    def job_thumbnail(job_id: str, number: int, request: Request):
        service = service_of(request)
        _job_or_404(service, job_id)
        path = service.data_dir / "thumbnails" / job_id / f"{number}.jpg"
        if not path.is_file():
            raise ApiError(404, f"job {job_id!r} has no thumbnail {number}")
        return FileWithJsonErrors(path, media_type="image/jpeg")

    def submit_paths_job(service: Service, kind: str, body: IndexRequest,
                         **settings: Any) -> JobCreated:
        """Queue a job over body.paths, each checked against the media roots (else 403); the
        job's request keeps the settings given (not None)."""
        paths = [str(service.roots.check(p)) for p in body.paths]
        given = {key: value for key, value in {"speech": body.speech, **settings}.items()
                 if value is not None}
        job = service.store.create(kind, {"paths": paths, **given})
        service.notify()
        return JobCreated(id=job.id, status=job.status)

    @app.post("/v1/index", status_code=202, response_model=JobCreated, dependencies=auth,
              responses=error_responses(400, 401, 403, 422))
    def index(body: IndexRequest, request: Request) -> JobCreated:
        return submit_paths_job(service_of(request), "index", body)

    @app.post("/v1/caption", status_code=202, response_model=JobCreated, dependencies=auth,
              responses=error_responses(400, 401, 403, 422))
    def caption(body: CaptionRequest, request: Request) -> JobCreated:
        """Caption every clip of the videos under paths, as `vidsift caption` does."""
        if not cfg.vlm.enabled:  # run_caption would fail the job with the same reason
            raise ApiError(400, "captioning needs a VLM, and this service runs evidence-only "
                                "(no vlm.model): serve with --set vlm.model=PATH_OR_HUB_ID")
        clips = "fixed" if body.clip_s is not None else body.clips
        return submit_paths_job(service_of(request), "caption", body, clips=clips,
                                clip_s=body.clip_s, to_index=body.to_index)

    @app.get("/v1/jobs/{job_id}/subtitles/{name}", dependencies=auth,
             response_class=FileWithJsonErrors, openapi_extra=RANGE_HEADER,
             responses=file_responses("SRT or WebVTT", tuple(SUBTITLE_TYPES.values()), 401, 404,
                                      422))
    def job_subtitles(job_id: str, name: str, request: Request):
        """A caption job's SRT or WebVTT of one video (its result's srt_url and vtt_url)."""
        service = service_of(request)
        job = _job_or_404(service, job_id)
        folder = (service.caption_dir(job.id) / "subtitles").resolve()
        path = (folder / name).resolve()  # a name that leads out of the folder is not served
        media_type = SUBTITLE_TYPES.get(path.suffix)
        if job.kind != "caption" or media_type is None or path.parent != folder \
                or not path.is_file():
            raise ApiError(404, f"job {job_id!r} has no subtitles {name!r}")
        return FileWithJsonErrors(path, media_type=media_type)

    def search_payload(service: Service, query: str | None, k: int, image=None) -> dict:
        """The k best clips of videos inside the media roots: an index may hold others (indexed
        from the CLI), and the service neither names nor shows them. Asks the index for more
        while its answer is cut short by them."""
        from vidsift.pipeline.flows.index import search_clips

        index_dir = Path(cfg.index.dir).expanduser().resolve()
        wanted = k
        while True:
            found = search_clips(query, cfg, k=wanted, image=image,  # the asker's VLM rewrites
                                 vlm=lambda: service.asker.vlm)
            readable = [hit for hit in found if service.may_read(hit.video)]
            if len(readable) >= k or len(found) < wanted:
                break
            wanted *= 4
        hits = []
        for hit in readable[:k]:
            record = dataclasses.asdict(hit)
            thumbnail = Path(record.pop("thumbnail"))
            record["thumbnail_url"] = f"/v1/index/{thumbnail.relative_to(index_dir)}"
            hits.append(record)
        return {"query": query, "image": image is not None, "hits": hits}

    @app.get("/v1/search", dependencies=auth, responses=error_responses(400, 401, 422))
    def search(
        request: Request,
        q: Annotated[str, Query(min_length=1, max_length=2000)],
        k: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> dict:
        return search_payload(service_of(request), q, k)

    @app.post("/v1/search", dependencies=auth, openapi_extra=IMAGE_BODY,
              responses=error_responses(400, 401, 413, 422))
    async def search_by_image(
        request: Request,
        q: Annotated[str | None, Query(max_length=2000)] = None,
        k: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> dict:
        """The body is a photo (JPEG, PNG, WebP, ...; at most MAX_IMAGE_BYTES): clips that look
        like it, in the index's visual space; with q too, text and image scores fused."""
        from starlette.concurrency import run_in_threadpool

        from vidsift.core.images import read_image

        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_IMAGE_BYTES:
                raise ApiError(413, f"image: at most {MAX_IMAGE_BYTES} bytes")
        image = await run_in_threadpool(read_image, bytes(data), "uploaded image")
        return await run_in_threadpool(search_payload, service_of(request), q or None, k, image)

    @app.get("/v1/index/thumbs/{folder}/{name}", dependencies=auth,
             response_class=FileWithJsonErrors, openapi_extra=RANGE_HEADER,
             responses=file_responses("the clip's thumbnail", JPEG, 401, 404, 422))
    def clip_thumbnail(folder: str, name: str, request: Request):
        """A thumbnail of a clip of a video inside the media roots (search hits' thumbnail_url)."""
        index_dir = Path(cfg.index.dir).expanduser().resolve()
        path = (index_dir / "thumbs" / folder / name).resolve()
        if not path.is_relative_to(index_dir / "thumbs") or not path.is_file() \
                or not service_of(request).thumbs_readable(path.parent.name):
            raise ApiError(404, f"no thumbnail {folder}/{name}")
        return FileWithJsonErrors(path, media_type="image/jpeg")

    from vidsift.pipeline.service.web import add_web_routes

    add_web_routes(app, cfg, auth)
    from vidsift.pipeline.service.clips import add_clip_routes

    add_clip_routes(app, cfg, auth)
    from vidsift.pipeline.service.uploads import add_upload_routes

    add_upload_routes(app, cfg, auth)
    from vidsift.pipeline.service.summary_job import add_summary_routes

    def submit(kind: str, job_request: dict) -> JobCreated:
        service = app.state.service
        job = service.store.create(kind, job_request)
        service.notify()
        return JobCreated(id=job.id, status=job.status)

    def job_of_kind(request: Request, job_id: str, kind: str):
        job = _job_or_404(service_of(request), job_id)
        if job.kind != kind:
            raise ApiError(404, f"job {job_id!r} is no {kind} job")
        return job

    add_summary_routes(app, auth, submit, job_of_kind)
    from vidsift.pipeline.service.streams import add_stream_routes

    add_stream_routes(app, cfg, auth)
    return app


def serve_forever(cfg: Config) -> None:
    """`vidsift serve`: the app as a Ray Serve FastAPI ingress deployment on host:port."""
    from ray import serve

    from vidsift.workers.ray_runtime import ensure_ray, ray_console_warnings_only

    validate_serve_security(cfg.serve.host, cfg.serve.api_key)
    ensure_ray(cfg.ray)
    ray_console_warnings_only("ray.serve")  # the one line the user reads is vidsift's own
    deployment = build_deployment(cfg)
    serve.start(http_options={"host": cfg.serve.host, "port": cfg.serve.port})
    serve.run(deployment, name="vidsift", route_prefix="/", blocking=True)


def build_deployment(cfg: Config):
    """A bound Serve application: one replica (the job store's workers live in it)."""
    from ray import serve

    # Resolve the media roots here: the replica's working directory is not the caller's.
    cfg = cfg.model_copy(deep=True)
    cfg.serve.media_roots = [str(root) for root in MediaRoots(cfg.serve.media_roots).roots]
    app = create_app(cfg)

    @serve.deployment(name="vidsift", num_replicas=1, ray_actor_options={"num_cpus": 0.5})
    @serve.ingress(app)
    class VidsiftIngress:
        pass

    return VidsiftIngress.bind()
