"""Watching a live stream: its shards (workers/stream.py) embedded as they arrive, appended to
the stream's memory, scored against standing alert texts, and dropped past watch.retention_h.

Layout under index.dir/streams/<name>/:
    segments/<index>.ts   each shard remuxed, packets copied: the evidence, playable
    shards/<index>.npz    its coarse frames: times (wall-clock s), visual and text vectors,
                          descriptions, JPEG thumbnails end to end with their offsets;
                          with speech.mode asr or auto, what was said in it (speech: JSON
                          [start, end, text, source] lines, wall-clock s), recognised from
                          the audio muxed into its segment
    events.sqlite         alert events and gaps (nothing received from start to end); in its
                          meta table the watcher's lag_s and coarse_fps after its latest shard
A restarted watcher numbers its shards after the last stored one and reads its alerts' last
events back, so it keeps its memory and does not raise an event again inside a cooldown.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import re
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from vidsift.core.config import Config
from vidsift.core.errors import VidsiftError
from vidsift.core.files import write_atomic

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclasses.dataclass
class AlertEvent:
    stream: str
    alert: str
    start: float  # wall-clock seconds of the first frame over the threshold
    end: float
    offset_s: float  # the best frame, seconds since the watch began
    score: float
    verified: bool
    answer: str | None
    thumbnail: str  # path of the best frame's JPEG


class StreamStore:
    """One stream's memory, segments and events under index_dir/streams/<name>."""

    def __init__(self, index_dir: str | Path, name: str) -> None:
        if not _NAME.match(name):
            raise ValueError(f"stream name {name!r}: letters, digits, '_', '.', '-' only")
        self.name = name
        self.root = Path(index_dir).expanduser() / "streams" / name
        self.segments = self.root / "segments"
        self.shards = self.root / "shards"
        self.shards.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.root / "events.sqlite")
        self.db.execute("CREATE TABLE IF NOT EXISTS events (alert TEXT, start REAL, end REAL,"
                        " offset_s REAL, score REAL, verified INTEGER, answer TEXT,"
                        " thumbnail TEXT)")
        self.db.execute("CREATE TABLE IF NOT EXISTS gaps (start REAL, end REAL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL)")
        self.db.commit()

    def started(self) -> float:
        """When this stream was first watched (offset_s counts from it), set on first call."""
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('started', ?)", (time.time(),))
        self.db.commit()
        return self.db.execute("SELECT value FROM meta WHERE key='started'").fetchone()[0]

    def shard_indices(self) -> list[int]:
        return sorted(int(p.stem) for p in self.shards.glob("*.npz"))

    def add_shard(self, shard, visual: np.ndarray, text: np.ndarray,
                  descriptions: Sequence[str], thumbnails: Sequence[bytes],
                  speech: Sequence = ()) -> None:
        """speech: the shard's TranscriptSegments, times wall-clock seconds."""
        lines = [[s.start, s.end, s.text, s.source] for s in speech]
        offsets = np.cumsum([0] + [len(t) for t in thumbnails]).astype(np.int64)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, start=shard.start, end=shard.end, times=shard.times,
                         visual=visual, text=text, thumbnail_offsets=offsets,
                         thumbnails=np.frombuffer(b"".join(thumbnails), np.uint8),
                         descriptions=np.array(json.dumps(list(descriptions))),
                         speech=np.array(json.dumps(lines)),
                         segment=np.array(shard.segment.name))

        write_atomic(self.shards / f"{shard.index:08d}.npz", write)

    def add_speech(self, index: int, speech: Sequence) -> None:
        """Appends TranscriptSegments (wall-clock s) to stored shard `index`'s speech."""
        path = self.shards / f"{index:08d}.npz"
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        lines = json.loads(str(arrays.get("speech", "[]")))
        lines += [[s.start, s.end, s.text, s.source] for s in speech]
        arrays["speech"] = np.array(json.dumps(lines))

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)

        write_atomic(path, write)

    def read_shard(self, index: int) -> dict:
        with np.load(self.shards / f"{index:08d}.npz", allow_pickle=False) as data:
            shard = {key: data[key] for key in data.files}
        shard["descriptions"] = json.loads(str(shard["descriptions"]))
        # [start, end, text, source] lines, wall-clock s; none in a shard stored before speech
        shard["speech"] = json.loads(str(shard["speech"])) if "speech" in shard else []
        shard["segment"] = self.segments / str(shard["segment"])
        return shard

    def drop_before(self, cutoff: float) -> int:
        """Removes shards (and their segments) that ended before `cutoff`; how many."""
        dropped = 0
        for index in self.shard_indices():
            shard = self.read_shard(index)
            if float(shard["end"]) >= cutoff:
                break
            shard["segment"].unlink(missing_ok=True)
            (self.shards / f"{index:08d}.npz").unlink()
            dropped += 1
        return dropped

    def add_gap(self, start: float, end: float) -> None:
        self.db.execute("INSERT INTO gaps VALUES (?, ?)", (start, end))
        self.db.commit()

    def gaps(self) -> list[tuple[float, float]]:
        return self.db.execute("SELECT start, end FROM gaps ORDER BY start").fetchall()

    def add_event(self, event: AlertEvent) -> None:
        self.db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (event.alert, event.start, event.end, event.offset_s, event.score,
                         int(event.verified), event.answer, event.thumbnail))
        self.db.commit()

    def events(self) -> list[AlertEvent]:
        return [event for _, event in self.events_after(0)]

    def events_after(self, after: int) -> list[tuple[int, AlertEvent]]:
        """(id, event) of every event stored after id `after`, oldest first; ids count from 1
        in the order events were raised (Server-Sent Events' Last-Event-ID)."""
        rows = self.db.execute("SELECT rowid, * FROM events WHERE rowid > ? ORDER BY rowid",
                               (after,)).fetchall()
        return [(r[0], AlertEvent(self.name, r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7],
                                  r[8])) for r in rows]

    def last_shard_end(self) -> float | None:
        """Wall-clock end of the newest stored shard (None before the first)."""
        indices = self.shard_indices()
        if not indices:
            return None
        with np.load(self.shards / f"{indices[-1]:08d}.npz", allow_pickle=False) as data:
            return float(data["end"])

    def close(self) -> None:
        self.db.close()

    def set_rate(self, lag_s: float, coarse_fps: float) -> None:
        """The watcher's lag (seconds behind, plan.stream_rate.next_rate's) and the coarse rate
        (frames per stream second) it takes its next shard at."""
        self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                            [("lag_s", lag_s), ("coarse_fps", coarse_fps)])
        self.db.commit()

    def rate(self) -> dict[str, float]:
        """{"lag_s", "coarse_fps"} as the watcher last stored them ({} before its first shard)."""
        return dict(self.db.execute(
            "SELECT key, value FROM meta WHERE key IN ('lag_s', 'coarse_fps')").fetchall())

    def extend_event(self, alert: str, end: float) -> None:
        """Moves the end of `alert`'s latest event to `end` (its frames still fire)."""
        self.db.execute("UPDATE events SET end=? WHERE rowid=(SELECT MAX(rowid) FROM events "
                        "WHERE alert=?)", (end, alert))
        self.db.commit()

    def last_event_end(self, alert: str) -> float | None:
        return self.db.execute("SELECT MAX(end) FROM events WHERE alert=?", (alert,)).fetchone()[0]

    def level(self, alert: str):
        """The alert's running level (plan.alerts.RunningLevel) as last stored."""
        from vidsift.pipeline.plan.alerts import RunningLevel

        rows = dict(self.db.execute("SELECT key, value FROM meta WHERE key IN (?, ?, ?)",
                                    tuple(f"level:{f}:{alert}" for f in ("mean", "var", "count"))))
        if len(rows) < 3:
            return RunningLevel()
        return RunningLevel(rows[f"level:mean:{alert}"], rows[f"level:var:{alert}"],
                            int(rows[f"level:count:{alert}"]))

    def set_level(self, alert: str, level) -> None:
        self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                            [(f"level:mean:{alert}", level.mean), (f"level:var:{alert}", level.var),
                             (f"level:count:{alert}", float(level.count))])
        self.db.commit()


def verify_event(vlm, spec, alert: str, images: Sequence[np.ndarray],
                 times: Sequence[float], photo: np.ndarray | None = None) -> tuple[bool, str]:
    """Asks the VLM (generate(list of VLMRequest): open_vlm's) whether `images` show `alert`:
    plan.alerts.verify_question over each image as one still (resized to the model's patch
    grid, spec: a core.vision.VisionSpec). images: the event's best frames, (H, W, 3) uint8 RGB,
    in time order; times: their seconds (tags in the prompt). photo: a photo alert's picture,
    (H, W, 3) uint8 RGB, shown first, labelled with its file name, and asked about with
    plan.alerts.verify_photo_question. Returns (whether the answer starts with yes, the
    answer)."""
    from PIL import Image

    from vidsift.core.types import Frame, PlannedSegment, SegmentKind, TokenSet, VLMRequest
    from vidsift.core.vision import smart_resize, tokens_for
    from vidsift.pipeline.plan.alerts import (
        VERIFY_TOKENS, verified_answer, verify_photo_question, verify_question)

    def still(image: np.ndarray, t: float, k: int, video: str) -> PlannedSegment:
        height, width = smart_resize(*image.shape[:2], spec.factor)
        resized = np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC))
        return PlannedSegment(SegmentKind.IMAGE, t, t, (t,), height, width,
                              tokens_for(1, height, width, spec), frames=(Frame(resized, t, k),),
                              video=video)

    # with a photo the labels name each image's source: "[1] gate.jpg", "[2] stream"
    source = "" if photo is None else "stream"
    segments = [still(image, t, k, source) for k, (image, t) in enumerate(zip(images, times))]
    if photo is not None:
        segments.insert(0, still(photo, 0.0, len(segments), Path(alert).name))
    token_set = TokenSet("", segments, budget=sum(s.tokens for s in segments))
    question = verify_question(alert) if photo is None else verify_photo_question()
    request = VLMRequest(token_set, question, max_new_tokens=VERIFY_TOKENS,
                         request_id=f"verify:{alert}")
    answer = vlm.generate([request])[0].text.strip()
    return verified_answer(answer), answer


PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def is_photo_alert(alert: str) -> bool:
    """An alert naming an image file is a photo: frames that look like it raise it."""
    return Path(alert).suffix.lower() in PHOTO_SUFFIXES


@dataclasses.dataclass
class AlertQueries:
    """A watch's alerts as vectors: a text alert against the frames' text-space vectors, a
    photo alert against their visual vectors. photos: (A,) bool, which alerts are photos;
    text: (T, Dt) unit rows of the T text alerts, visual: (P, Dv) of the P photos, in order
    (None where there are none)."""

    photos: np.ndarray
    text: np.ndarray | None
    visual: np.ndarray | None
    pictures: list[np.ndarray] = dataclasses.field(default_factory=list)  # the P photos, RGB

    def references(self) -> list[np.ndarray | None]:
        """Per alert, in order: its photo ((H, W, 3) uint8 RGB), or None for a text alert."""
        pictures = iter(self.pictures)
        return [next(pictures) if photo else None for photo in self.photos]

    def scores(self, frame_text: np.ndarray, frame_visual: np.ndarray) -> np.ndarray:
        """(N, A) cosines of N frames' (N, Dt) text-space and (N, Dv) visual vectors."""
        out = np.zeros((len(frame_text), len(self.photos)), np.float32)
        if self.text is not None:
            out[:, ~self.photos] = frame_text @ self.text.T
        if self.visual is not None:
            out[:, self.photos] = frame_visual @ self.visual.T
        return out


def alert_queries(embedder, alerts: Sequence[str]) -> AlertQueries:
    """Embeds the alerts (embedder: embed_text and embed_images, as the ingest pool's); a photo
    alert that cannot be read is a ConfigError naming the file."""
    from PIL import Image, UnidentifiedImageError

    from vidsift.core.errors import ConfigError

    photos = np.array([is_photo_alert(alert) for alert in alerts], bool)
    texts = [alert for alert, photo in zip(alerts, photos) if not photo]
    images = []
    for alert in (a for a, photo in zip(alerts, photos) if photo):
        try:
            with Image.open(Path(alert).expanduser()) as image:
                images.append(np.asarray(image.convert("RGB")))
        except (OSError, UnidentifiedImageError) as exc:
            raise ConfigError(f"alert photo {alert}: cannot be read ({exc})") from exc
    return AlertQueries(photos, embedder.embed_text(texts) if texts else None,
                        embedder.embed_images(images) if images else None, images)


def alert_events(store: StreamStore, shard, scores: np.ndarray, alerts: Sequence[str],
                 images: Sequence[np.ndarray], thumbnails: Sequence[bytes], cfg: Config,
                 started: float, vlm=None, coarse_fps: float | None = None,
                 photos: Sequence[np.ndarray | None] = ()) -> list[AlertEvent]:
    """The events one shard raises. scores: (N, A) cosines of its N frames to the A alerts
    (AlertQueries.scores); images, thumbnails: the N frames and their JPEGs; coarse_fps: the
    rate the shard's frames were taken at (None: watch.coarse_fps); photos: per alert, its
    photo for a photo alert (AlertQueries.references: its threshold alert.photo_threshold, and
    the VLM is shown it beside the frames), None for a text alert. A frame fires for an alert
    when its cosine is at least its threshold (alert.threshold for a text) or is a peak over
    the alert's running level (plan.alerts.running_peaks, the level kept in the store); the
    event spans its firing frames and is raised unless the alert's last event ended less than
    alert.cooldown_s before its best frame. Firing frames that go on from the alert's last
    event (the first less than 1.5 coarse steps after its end: at most one frame missed, a
    needle across a shard boundary) extend that stored event's end instead, raising nothing.
    vlm: given, each event is first verified on its alert.verify_frames best frames
    (verify_event); an answer but yes ("no") drops it (logged), a VLM that fails leaves it
    unverified (logged)."""
    from vidsift.pipeline.plan.alerts import running_peaks

    conf = cfg.alert
    frame_s = 1.0 / (coarse_fps or cfg.watch.coarse_fps)
    events = []
    for column, alert in enumerate(alerts):
        reference = photos[column] if column < len(photos) else None
        photo = reference is not None
        threshold = conf.photo_threshold if photo else conf.threshold
        peaks, level = running_peaks(scores[:, column], store.level(alert), conf.peak_sigma,
                                     conf.peak_warmup, conf.peak_span, conf.peak_min_std)
        store.set_level(alert, level)
        over = np.flatnonzero((scores[:, column] >= threshold) | peaks)
        if over.size == 0:
            continue
        best = int(over[np.argmax(scores[over, column])])
        last = store.last_event_end(alert)
        if last is not None and shard.times[over[0]] - last < 1.5 * frame_s:
            store.extend_event(alert, max(last, float(shard.times[over[-1]] + frame_s)))
            continue
        if last is not None and shard.times[best] - last < conf.cooldown_s:
            continue
        verified, answer = False, None
        if vlm is not None:
            chosen = np.sort(over[np.argsort(-scores[over, column])[:conf.verify_frames]])
            try:
                verified, answer = verify_event(
                    vlm, cfg.vision_spec(), alert, [images[i] for i in chosen],
                    [float(shard.times[i] - shard.times[over[0]]) for i in chosen], reference)
            except Exception as exc:  # noqa: BLE001 - a failing VLM must not stop the watcher
                log.warning("stream %s: alert %r not verified (%s); raised unverified",
                            store.name, alert, exc)
            if answer is not None and not verified:
                log.info("stream %s: alert %r at %.1f s dropped: the VLM answered %r",
                         store.name, alert, float(shard.times[best] - started), answer)
                continue
        thumb = store.root / "thumbnails" / f"{shard.index:08d}-{column}.jpg"
        thumb.parent.mkdir(exist_ok=True)
        thumb.write_bytes(thumbnails[best])
        event = AlertEvent(store.name, alert, float(shard.times[over[0]]),
                           float(shard.times[over[-1]] + frame_s),
                           float(shard.times[best] - started), float(scores[best, column]),
                           verified, answer, str(thumb))
        store.add_event(event)
        events.append(event)
    return events


def sign(body: bytes, secret: str) -> str:
    """The X-Vidsift-Signature header of a webhook body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_event(url: str, event: AlertEvent, secret: str | None, retries: int,
               backoff_s: float = 0.5) -> bool:
    """POSTs the event as JSON, retrying with doubling backoff; whether it was accepted (2xx).
    Never raises: a dead webhook must not stop the watcher."""
    body = json.dumps(dataclasses.asdict(event)).encode()
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Vidsift-Signature"] = sign(body, secret)
    for attempt in range(retries + 1):
        try:
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=10) as reply:
                if 200 <= reply.status < 300:
                    return True
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.warning("webhook %s: %s (attempt %d)", url, exc, attempt + 1)
        if attempt < retries:
            time.sleep(backoff_s * 2 ** attempt)
    return False


def watch_stream(url: str, name: str, cfg: Config, alerts: Sequence[str] = (),
                 duration_s: float | None = None,
                 should_stop: Callable[[], bool] = lambda: False,
                 embedder=None, vlm=None) -> Iterator[AlertEvent | dict]:
    """Watches `url` until duration_s passes or should_stop(); yields each AlertEvent, a
    {"stream", "gap": [start, end]} dict per interruption, and a {"stream", "lag_s",
    "coarse_fps"} dict each time the coarse rate changes (plan.stream_rate.next_rate: thinned
    while the watcher falls behind, restored once caught up), as they happen. embedder:
    anything with encode_frames(images), embed_text(texts) and embed_images(images) (the
    service's ingest pool); alerts: texts, or paths of photos (is_photo_alert);
    None: the configured embedder, loaded in this process. vlm: what verifies events (open_vlm's,
    left running); None: opened here when alerts are given, alert.verify is set and a VLM is
    configured (vlm.enabled), and shut down when the watch ends."""
    store = StreamStore(cfg.index.dir, name)
    started = store.started()
    if embedder is None:
        from vidsift.workers.embed import get_embedder

        embedder = get_embedder(cfg.embed)
    queries = alert_queries(embedder, alerts) if alerts else None
    owns_vlm = vlm is None and bool(alerts) and cfg.alert.verify and cfg.vlm.enabled
    if owns_vlm:
        from vidsift.workers.vlm import open_vlm

        vlm = open_vlm(cfg.vlm, cfg.pool)
    if not cfg.alert.verify:
        vlm = None
    try:
        yield from _watch(url, name, cfg, alerts, store, started, embedder, queries,
                          should_stop, duration_s, vlm)
    finally:
        if owns_vlm:
            vlm.shutdown()


def _watch(url: str, name: str, cfg: Config, alerts: Sequence[str], store: StreamStore,
           started: float, embedder, queries: AlertQueries | None,
           should_stop: Callable[[], bool], duration_s: float | None,
           vlm) -> Iterator[AlertEvent | dict]:
    """watch_stream's loop over the stream's shards (its docstring)."""
    from vidsift.pipeline.plan.stream_rate import StreamRate, next_rate
    from vidsift.workers.ingest import jpeg_thumbnail
    from vidsift.workers.speech.audio import SAMPLE_RATE
    from vidsift.workers.stream import StreamGap, read_stream

    conf = cfg.watch
    photos = queries.references() if queries is not None else []  # shown to the VLM verifying
    deadline = None if duration_s is None else time.monotonic() + duration_s
    stop = lambda: should_stop() or (deadline is not None and time.monotonic() > deadline)  # noqa: E731
    indices = store.shard_indices()
    rate = StreamRate(conf.coarse_fps)  # the reader asks rate.fps at each shard's first frame
    hears = cfg.speech.mode in ("asr", "auto")  # a live stream carries no subtitles to read
    asr = None  # the recogniser, loaded at the first shard with audio
    # audio from the last pause on, held for the next shard so a sentence said across a
    # shard boundary is heard whole: (wall-clock start, samples)
    held: tuple[float, np.ndarray] | None = None
    stored = None  # the newest stored shard's index

    def flush() -> None:  # what is held, heard now and kept with the newest stored shard
        nonlocal held
        if held is not None and stored is not None:
            store.add_speech(stored, shard_speech(asr, held[1], held[0], cfg.speech.window_s))
        held = None
    for item in read_stream(url, store.segments, conf.shard_s, lambda: rate.fps,
                            cfg.decode.coarse_max_side, conf.read_timeout_s, stop,
                            first_index=indices[-1] + 1 if indices else 0, audio=hears):
        if isinstance(item, StreamGap):
            flush()
            store.add_gap(item.start, item.end)
            yield {"stream": name, "gap": [item.start, item.end]}
            continue
        before = rate.fps
        rate = next_rate(rate, item.lag_s, conf.coarse_fps, conf.min_coarse_fps,
                         conf.lag_thin_s, conf.lag_restore_s)
        store.set_rate(rate.lag_s, rate.fps)
        if rate.fps != before:
            log.info("stream %s: %.1f s behind; coarse rate %g -> %g frames/s", name,
                     rate.lag_s, before, rate.fps)
            yield {"stream": name, "lag_s": rate.lag_s, "coarse_fps": rate.fps}
        if not item.images:
            continue
        embedded = embedder.encode_frames(item.images)
        thumbnails = [jpeg_thumbnail(image) for image in item.images]
        said = []
        if item.audio is not None and len(item.audio):
            if asr is None:
                from vidsift.workers.speech import get_asr

                asr = get_asr(cfg.speech)
            start, samples = item.audio_start, item.audio
            if held is not None:
                start, samples = held[0], np.concatenate([held[1], samples])
            cut = speech_tail(samples, cfg.speech.window_s)
            held = (start + cut / SAMPLE_RATE, samples[cut:]) if cut < len(samples) else None
            said = shard_speech(asr, samples[:cut], start, cfg.speech.window_s)
        store.add_shard(item, embedded.visual, embedded.text, embedded.descriptions, thumbnails,
                        said)
        stored = item.index
        # the window ends at the newest shard, not now: the last shard of a connection is
        # stored only when the stream stops, and a stream that stopped keeps its last hours
        store.drop_before(item.end - cfg.watch.retention_h * 3600)
        if queries is not None:
            scores = queries.scores(np.asarray(embedded.text), np.asarray(embedded.visual))
            for event in alert_events(store, item, scores, alerts, item.images, thumbnails,
                                      cfg, started, vlm, item.coarse_fps, photos):
                if cfg.alert.webhook_url:  # in its own thread: retries never hold the stream
                    threading.Thread(target=post_event, daemon=True,
                                     args=(cfg.alert.webhook_url, event, cfg.alert.webhook_secret,
                                           cfg.alert.webhook_retries)).start()
                yield event
    flush()


def shard_speech(asr, samples: np.ndarray, start: float, window_s: float) -> list:
    """What `asr` (a workers.speech backend: transcribe(windows)) hears in one shard's audio:
    samples (S,) float32 mono at SAMPLE_RATE from wall-clock `start` seconds, cut into windows
    of window_s seconds; silent windows are not shown to it. -> TranscriptSegments, wall-clock."""
    from vidsift.workers.speech.audio import SAMPLE_RATE, SILENCE_DBFS, AudioWindow

    size = max(1, round(window_s * SAMPLE_RATE))
    windows = [AudioWindow(start + at / SAMPLE_RATE, samples[at:at + size])
               for at in range(0, len(samples), size)]
    audible = [w for w in windows if w.loudness_dbfs > SILENCE_DBFS]
    return [segment for _, segments in asr.transcribe(iter(audible)) for segment in segments]


PAUSE_S = 0.3  # a quiet stretch this long ends what is said (speech_tail)
PAUSE_RANGE_DB = 30.0  # quiet: this far under the loudest 20 ms, or under SILENCE_DBFS


def speech_tail(samples: np.ndarray, most_s: float) -> int:
    """Where the speech still going on at the end of `samples` ((n,) float32 mono at
    SAMPLE_RATE) begins: the middle of the last pause (PAUSE_S of 20 ms frames under
    PAUSE_RANGE_DB below the loudest one, or under SILENCE_DBFS); n when they end in a pause or
    hold most_s seconds or more (heard now, cut or not); 0 when speech fills them."""
    from vidsift.workers.speech.audio import SAMPLE_RATE, SILENCE_DBFS

    frame, n = SAMPLE_RATE // 50, len(samples)
    frames = n // frame
    if n >= most_s * SAMPLE_RATE or frames == 0:
        return n
    energy = np.square(samples[:frames * frame].reshape(frames, frame), dtype=np.float64)
    level = 10 * np.log10(np.maximum(energy.mean(axis=1), 1e-20))  # (frames,) dBFS
    quiet = level < max(SILENCE_DBFS, float(level.max()) - PAUSE_RANGE_DB)
    pause = round(PAUSE_S * SAMPLE_RATE / frame)
    run = 0
    for k in range(frames - 1, -1, -1):  # the last run of `pause` quiet frames
        run = run + 1 if quiet[k] else 0
        if run == pause:
            return n if k + pause >= frames else (k + pause // 2) * frame
    return 0


def window_transcript(shards: Sequence[dict], origin: float, since: float, until: float):
    """The stored speech of window_shards' shards said inside [since, until] wall-clock s, as
    a Transcript on the window's own timeline (seconds since `origin`, its offset 0)."""
    from vidsift.core.types import Transcript, TranscriptSegment

    segments = [TranscriptSegment(start - origin, end - origin, text, source)
                for shard in shards for start, end, text, source in shard.get("speech", ())
                if end > since and start < until]
    return Transcript(segments, sorted({s.source for s in segments}))


def parse_duration(text: str) -> float:
    """'90', '90s', '10m', '2h' -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise VidsiftError(f"--last {text!r}: give seconds, or a number with s, m or h (10m)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def parse_time(text: str, option: str = "--since") -> float:
    """A wall-clock time -> Unix seconds: Unix seconds ('1796236800.5'), or ISO 8601 with a zone
    ('2026-12-02T18:40:00Z', '...+01:00') or without one (local time)."""
    from datetime import datetime

    if re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", text):
        return float(text)
    try:
        return datetime.fromisoformat(text.strip()).timestamp()  # naive: local time
    except ValueError:
        raise VidsiftError(f"{option} {text!r}: give ISO 8601 (2026-12-02T18:40:00, with or "
                           "without a zone) or Unix seconds") from None


def window_shards(shards: Sequence[dict], name: str, last_s: float | None = None,
                  since: float | None = None, until: float | None = None) -> list[dict]:
    """The stored shards (read_shard dicts, oldest first) overlapping the window: the last
    `last_s` seconds back from the newest shard's end, or [since, until] in wall-clock seconds
    (either end left open: from the oldest / to the newest retained; neither: all retained). Whole shards: the window
    may begin up to one shard earlier and end up to one later. One-line VidsiftError for a
    window given twice, empty, inverted, or holding nothing that is retained."""
    from datetime import datetime

    def stamp(t: float) -> str:
        return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")

    if last_s is not None and (since is not None or until is not None):
        raise VidsiftError("give the window once: --last, or --since/--until")
    first, newest = float(shards[0]["start"]), float(shards[-1]["end"])
    if last_s is not None:
        if last_s <= 0:
            raise VidsiftError(f"--last {last_s:g} s: an empty window")
        since, until = newest - last_s, newest
    if since is not None and until is not None and until <= since:
        raise VidsiftError(f"--until {stamp(until)} is not after --since {stamp(since)}")
    since = first if since is None else since
    until = newest if until is None else until
    chosen = [s for s in shards if float(s["end"]) > since and float(s["start"]) < until
              and s["segment"].is_file()]
    if not chosen:
        raise VidsiftError(f"stream {name!r}: nothing recorded from {stamp(since)} to "
                           f"{stamp(until)}; retained: {stamp(first)} to {stamp(newest)}")
    return chosen


def stream_window(cfg: Config, name: str, last_s: float | None = None,
                  since: float | None = None, until: float | None = None) -> tuple[Path, float]:
    """The recorded segments of a window of stream `name` (window_shards: the last `last_s`
    seconds, or wall-clock [since, until]), remuxed (packets copied, no re-encoding) into one
    MP4 whose time 0 is the window's first frame, which the usual ask plan reads; and the
    wall-clock time its offset 0 stands for. With speech on (cfg.speech), the speech the
    watcher stored for those shards is the MP4's transcript (window_transcript, kept in the
    transcript store under the MP4's content hash), which ask reads as a file's."""
    store = StreamStore(cfg.index.dir, name)
    indices = store.shard_indices()
    if not indices:
        raise VidsiftError(f"stream {name!r}: nothing recorded under {store.root}")
    chosen = window_shards([store.read_shard(i) for i in indices], name, last_s, since, until)
    window = store.root / "window.mp4"

    def write(tmp: Path) -> None:
        import av

        first_pts = None
        with av.open(str(tmp), "w", format="mp4") as out:
            out_stream = None
            for shard in chosen:
                with av.open(str(shard["segment"])) as segment:
                    video = segment.streams.video[0]
                    if out_stream is None:
                        out_stream = out.add_stream_from_template(video)
                    for packet in segment.demux(video):
                        if packet.pts is None or packet.size == 0:
                            continue
                        first_pts = packet.pts if first_pts is None else first_pts
                        packet.pts -= first_pts  # offset 0 is the window's first frame
                        packet.dts = None if packet.dts is None else packet.dts - first_pts
                        packet.stream = out_stream
                        out.mux(packet)

    write_atomic(window, write)
    origin = float(chosen[0]["start"])
    if cfg.speech.enabled:
        from vidsift.core.media import content_hash
        from vidsift.pipeline.flows.speech import store_transcript

        transcript = window_transcript(chosen, origin, origin, float(chosen[-1]["end"]))
        store_transcript(transcript, content_hash(str(window)), cfg)
    return window, origin
