"""Live streams in the service: each watched stream (flows/watch.watch_stream) runs in its own
thread, embedding its shards on the service's one ingest pool, until it is deleted or the
service stops. The streams being watched are kept in serve.data_dir/streams.json, so a
restarted service resumes them (memory and events kept: flows/watch.StreamStore).

Routes (registered by add_stream_routes):
  POST   /v1/streams             {url, name, alerts, webhook}  -> the stream's status (201)
  GET    /v1/streams                                          -> {"streams": [status, ...]}
  GET    /v1/streams/{name}                                   -> its status
  DELETE /v1/streams/{name}?purge                             -> stops its watcher; purge: its
                                                                 memory, segments, events too
  GET    /v1/streams/{name}/events                            -> Server-Sent Events: every
         stored alert event (after Last-Event-ID, header or ?last_event_id), then each new one
  GET    /v1/streams/{name}/thumbnails/{file}                 -> an event's best frame (JPEG)
A status: {name, url (no user name, password or query values), alerts, webhook, state:
running|stopped|failed, error, shards, events, last_shard_end (wall-clock s), lag_s (now minus
it, while running), read_lag_s (how late the watcher read its last shard's newest packet, while
running), coarse_fps (the rate it takes coarse frames at now: thinned while it falls behind),
gaps: [[start, end], ...]}.
A stream URL must start with one of serve.stream_urls (else 403): a client cannot make the
server open a file or a host it was not told to watch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from vidsift.core.config import Config
from vidsift.core.sources import redact
from vidsift.pipeline.flows.watch import AlertEvent, StreamStore
from vidsift.pipeline.service.errors import ApiError, FileWithJsonErrors, error_responses
from vidsift.workers.stream import PROTOCOLS

log = logging.getLogger("vidsift.streams")

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_URL_CHARS = 2048
MAX_ALERTS = 32
POLL_S = 0.5  # how often an open event stream looks for new events
KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing an idle stream


class StreamRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(..., min_length=1, max_length=MAX_URL_CHARS)
    name: str = Field(..., pattern=NAME_PATTERN)
    alerts: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=MAX_ALERTS)
    webhook: str | None = Field(None, max_length=MAX_URL_CHARS, pattern=r"^https?://",
                                description="each event POSTed here (alert.webhook_secret "
                                            "signs it)")


def check_stream_url(url: str, prefixes: list[str]) -> str:
    """The URL when it starts with one of `prefixes` and its scheme is a network stream's
    (workers.stream.PROTOCOLS); else ApiError 403. No whitespace or control characters."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in PROTOCOLS or re.search(r"[\s\x00-\x1f\x7f]", url) \
            or not any(url.startswith(prefix) for prefix in prefixes):
        raise ApiError(403, f"stream URL not allowed: {url[:200]!r} (serve.stream_urls "
                            "lists the URL prefixes this service may watch)")
    return url


@dataclasses.dataclass
class Watcher:
    """One stream's watcher thread and how it ended."""

    name: str
    url: str
    alerts: list[str]
    webhook: str | None
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def spec(self) -> dict[str, Any]:
        return {"url": self.url, "alerts": self.alerts, "webhook": self.webhook}


class Streams:
    """The service's watched streams. embedder(): the ingest pool that embeds their frames
    (called in each watcher's thread, so the pool starts with the first stream). vlm(): the
    service's VLM, lent to every watcher that verifies its events (one model for the asks and
    all streams, not one per stream); None: no VLM is configured."""

    def __init__(self, cfg: Config, data_dir: Path, embedder: Callable[[], Any],
                 vlm: Callable[[], Any] | None = None) -> None:
        self.cfg = cfg
        self.registry = data_dir / "streams.json"
        self.embedder = embedder
        self.vlm = vlm
        self._lock = threading.Lock()
        self._watchers: dict[str, Watcher] = {}

    def _saved(self) -> dict[str, dict]:
        try:
            return json.loads(self.registry.read_text())
        except FileNotFoundError:
            return {}

    def _save(self) -> None:
        from vidsift.core.files import write_atomic

        specs = {name: {**w.spec(), "active": not w.stop.is_set()}
                 for name, w in self._watchers.items()}
        self.registry.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.registry, lambda tmp: tmp.write_text(json.dumps(specs, indent=1)))

    def resume(self) -> int:
        """Start a watcher for every stream the last run was watching (those it had stopped
        are listed, stopped); how many were started."""
        started = 0
        for name, spec in self._saved().items():
            if spec["active"]:
                self.add(name, spec["url"], spec["alerts"], spec["webhook"])
                started += 1
            else:
                with self._lock:
                    self._watchers[name] = Watcher(name, spec["url"], spec["alerts"],
                                                   spec["webhook"])
                    self._watchers[name].stop.set()
        return started

    def add(self, name: str, url: str, alerts: list[str], webhook: str | None) -> Watcher:
        with self._lock:
            current = self._watchers.get(name)
            if current is not None and current.running:
                raise ApiError(409, f"stream {name!r} is already being watched")
            watcher = Watcher(name, url, list(alerts), webhook)
            watcher.thread = threading.Thread(target=self._watch, args=(watcher,),
                                              name=f"vidsift-stream-{name}", daemon=True)
            self._watchers[name] = watcher
            self._save()
            watcher.thread.start()
            return watcher

    def _watch(self, watcher: Watcher) -> None:
        from vidsift.pipeline.flows.watch import watch_stream

        cfg = self.cfg
        if watcher.webhook:
            cfg = cfg.model_copy(update={"alert": cfg.alert.model_copy(
                update={"webhook_url": watcher.webhook})})
        try:
            verifies = self.vlm is not None and bool(watcher.alerts) and cfg.alert.verify
            for _ in watch_stream(watcher.url, watcher.name, cfg, watcher.alerts,
                                  should_stop=watcher.stop.is_set, embedder=self.embedder(),
                                  vlm=self.vlm() if verifies else None):
                pass  # events and gaps are in the stream's store, where the routes read them
        except Exception as exc:  # a stream's failure is its status, never the service's
            watcher.error = str(exc)
            log.warning("stream %s stopped: %s", watcher.name, exc)

    def get(self, name: str) -> Watcher:
        with self._lock:
            watcher = self._watchers.get(name)
        if watcher is None:
            raise ApiError(404, f"no stream {name!r}")
        return watcher

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._watchers)

    def remove(self, name: str, purge: bool, timeout_s: float = 30.0) -> Watcher:
        """Stops the watcher (waiting for its shard in hand); purge: deletes its memory too."""
        watcher = self.get(name)
        watcher.stop.set()
        if watcher.thread is not None:
            watcher.thread.join(timeout_s)
        with self._lock:
            self._save()
            if purge:
                del self._watchers[name]
                shutil.rmtree(self.store_root(name), ignore_errors=True)
        return watcher

    def store_root(self, name: str) -> Path:
        return Path(self.cfg.index.dir).expanduser() / "streams" / name

    def stop_all(self, timeout_s: float = 10.0) -> None:
        """Stops every watcher without forgetting it: the next start resumes them."""
        with self._lock:
            watchers = list(self._watchers.values())
        for watcher in watchers:
            watcher.stop.set()
        for watcher in watchers:
            if watcher.thread is not None:
                watcher.thread.join(timeout_s)

    def status(self, name: str) -> dict[str, Any]:
        watcher = self.get(name)
        store = StreamStore(self.cfg.index.dir, name)
        try:
            last = store.last_shard_end()
            running = watcher.running
            rate = store.rate()
            return {
                # no user name or password, no query values (a token): pages and logs show it
                "name": name, "url": redact(watcher.url), "alerts": watcher.alerts,
                "webhook": watcher.webhook,
                "state": "running" if running else "failed" if watcher.error else "stopped",
                "error": watcher.error, "shards": len(store.shard_indices()),
                "events": len(store.events()), "last_shard_end": last,
                "lag_s": None if last is None or not running else max(0.0, time.time() - last),
                "read_lag_s": rate.get("lag_s") if running else None,
                "coarse_fps": rate.get("coarse_fps"),
                "gaps": [list(gap) for gap in store.gaps()],
            }
        finally:
            store.close()


def event_payload(event_id: int, event: AlertEvent) -> dict[str, Any]:
    """An event as the API sends it: the thumbnail as this service's URL of it."""
    record = dataclasses.asdict(event)
    record["id"] = event_id
    record["thumbnail"] = f"/v1/streams/{event.stream}/thumbnails/{Path(event.thumbnail).name}"
    return record


def add_stream_routes(app: FastAPI, cfg: Config, auth: list) -> None:
    """Register the /v1/streams routes; app.state.service.streams is the Streams."""

    def streams_of(request: Request) -> Streams:
        return request.app.state.service.streams

    @app.post("/v1/streams", status_code=201, dependencies=auth,
              responses=error_responses(400, 401, 403, 409, 422))
    def add_stream(body: StreamRequest, request: Request) -> dict:
        """Watch a live stream: its URL must start with one of serve.stream_urls; a photo
        alert (an image file's path) must lie under serve.media_roots, as a video must."""
        from vidsift.pipeline.flows.watch import is_photo_alert

        streams = streams_of(request)
        roots = request.app.state.service.roots
        alerts = [str(roots.check(alert)) if is_photo_alert(alert) else alert
                  for alert in body.alerts]
        streams.add(body.name, check_stream_url(body.url, cfg.serve.stream_urls), alerts,
                    body.webhook)
        return streams.status(body.name)

    @app.get("/v1/streams", dependencies=auth, responses=error_responses(401, 422))
    def list_streams(request: Request) -> dict:
        streams = streams_of(request)
        return {"streams": [streams.status(name) for name in streams.names()]}

    @app.get("/v1/streams/{name}", dependencies=auth,
             responses=error_responses(401, 404, 422))
    def get_stream(name: str, request: Request) -> dict:
        return streams_of(request).status(name)

    @app.delete("/v1/streams/{name}", dependencies=auth,
                responses=error_responses(401, 404, 422))
    def delete_stream(name: str, request: Request, purge: bool = False) -> dict:
        """Stops the watcher; its memory and events stay unless purge."""
        streams = streams_of(request)
        streams.remove(name, purge)
        return {"name": name, "state": "stopped", "purged": purge}

    @app.get("/v1/streams/{name}/thumbnails/{file}", dependencies=auth,
             response_class=FileWithJsonErrors, responses=error_responses(401, 404, 422))
    def event_thumbnail(name: str, file: str, request: Request):
        streams = streams_of(request)
        streams.get(name)
        folder = (streams.store_root(name) / "thumbnails").resolve()
        path = (folder / file).resolve()
        if path.parent != folder or path.suffix != ".jpg" or not path.is_file():
            raise ApiError(404, f"stream {name!r} has no thumbnail {file!r}")
        return FileWithJsonErrors(path, media_type="image/jpeg")

    @app.get("/v1/streams/{name}/events", dependencies=auth,
             responses={200: {"content": {"text/event-stream": {}}},
                        **error_responses(401, 404, 422)})
    async def stream_events(
        name: str, request: Request,
        last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
        after: Annotated[int | None, Query(alias="last_event_id", ge=0)] = None,
    ) -> StreamingResponse:
        """Server-Sent Events: `id: N`, `event: alert`, `data: {event JSON}` for every stored
        event after Last-Event-ID (the header a reconnecting EventSource sends, or the query),
        then each new one as it is raised; a `: keep-alive` comment when idle."""
        from starlette.concurrency import run_in_threadpool

        streams = streams_of(request)
        streams.get(name)
        start = last_event_id if last_event_id is not None else (after or 0)

        def read(since: int) -> list[tuple[int, AlertEvent]]:
            store = StreamStore(cfg.index.dir, name)
            try:
                return store.events_after(since)
            finally:
                store.close()

        async def messages():
            since, quiet = start, 0.0
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                for event_id, event in await run_in_threadpool(read, since):
                    yield (f"id: {event_id}\nevent: alert\n"
                           f"data: {json.dumps(event_payload(event_id, event))}\n\n")
                    since, quiet = event_id, 0.0
                if quiet >= KEEPALIVE_S:
                    yield ": keep-alive\n\n"
                    quiet = 0.0
                await asyncio.sleep(POLL_S)
                quiet += POLL_S

        return StreamingResponse(messages(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})
