"""Reading a live stream (udp:// MPEG-TS, HLS .m3u8, rtsp://, rtmp://, srt:// or a file still
being written) with PyAV, as it arrives, into shards.

A shard is the packets from one keyframe to the first keyframe at least `shard_s` seconds later.
Each shard is remuxed (packets copied, no re-encoding) into its own MPEG-TS segment file, so the
evidence can be decoded and played back later, and its coarse frames are decoded on the way:
one frame every 1/coarse_fps seconds of stream time, scaled so the longest side is `max_side`.

Times are wall-clock: the first frame's arrival (time.time()) plus its PTS offset, so every
shard of one connection is on one clock. A connection that drops or stalls ends its last shard;
read_stream() reopens with backoff and reports the gap (from the last frame seen to the first
frame of the new connection) instead of inventing frames.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from vidsift.core.errors import VidsiftError

log = logging.getLogger(__name__)


class StreamOpenError(VidsiftError):
    """The stream could not be opened: names the URL and the cause."""


@dataclasses.dataclass
class StreamShard:
    """One shard of a stream. start/end: wall-clock seconds (Unix time) of its first frame and
    of its last frame plus one frame's duration. times: (N,) wall-clock seconds of its coarse
    frames; images: N RGB uint8 arrays (H, W, 3). segment: the remuxed MPEG-TS file."""

    index: int
    start: float
    end: float
    times: np.ndarray
    images: list[np.ndarray]
    segment: Path


@dataclasses.dataclass
class StreamGap:
    """Nothing was received between start and end (wall-clock seconds)."""

    start: float
    end: float


# The FFmpeg protocols a network stream may use, by its URL's scheme: a playlist or an RTSP
# description naming a file:, concat: or other protocol's URL is refused by FFmpeg, so a URL
# allowed by its prefix cannot make the reader open a local file.
PROTOCOLS = {
    "udp": "udp", "rtp": "rtp,udp", "rtsp": "rtsp,rtp,srtp,udp,tcp", "rtmp": "rtmp,tcp",
    "rtmps": "rtmps,rtmp,tcp,tls", "srt": "srt,udp",
    "http": "http,https,tcp,tls,crypto", "https": "http,https,tcp,tls,crypto",
}


def _open_options(url: str, timeout_s: float) -> dict[str, str]:
    micros = str(int(timeout_s * 1e6))
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    network = {"protocol_whitelist": PROTOCOLS[scheme]} if scheme in PROTOCOLS else {}
    if scheme == "udp":
        return {"timeout": micros, "overrun_nonfatal": "1", "fifo_size": "1000000", **network}
    if scheme == "rtsp":
        return {"timeout": micros, "rtsp_transport": "tcp", **network}
    if scheme in ("http", "https"):
        return {"rw_timeout": micros, "reconnect": "1", **network}
    return {"rw_timeout": micros, **network}


def open_stream(url: str, timeout_s: float):
    """The PyAV container of `url` and its video stream; StreamOpenError naming the URL."""
    import av

    try:
        container = av.open(url, options=_open_options(url, timeout_s), timeout=timeout_s)
    except (av.FFmpegError, OSError) as exc:
        raise StreamOpenError(f"{url}: cannot be opened ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise StreamOpenError(f"{url}: has no video stream")
    return container, container.streams.video[0]


def _scaled(frame, max_side: int) -> np.ndarray:
    scale = min(1.0, max_side / max(frame.width, frame.height))
    width = max(2, int(round(frame.width * scale)) // 2 * 2)
    height = max(2, int(round(frame.height * scale)) // 2 * 2)
    return frame.to_ndarray(format="rgb24", width=width, height=height)


def read_connection(url: str, segments: Path, first_index: int, shard_s: float,
                    coarse_fps: float, max_side: int, timeout_s: float,
                    should_stop: Callable[[], bool]) -> Iterator[StreamShard]:
    """The shards of one connection to `url`, until it ends, stalls past timeout_s, or
    should_stop() is true; segment files segments/<index>.ts, numbered from first_index."""
    import av

    container, video = open_stream(url, timeout_s)
    # one decoding thread: frame threads hold frames back, so they would land in the next shard
    video.codec_context.thread_count = 1
    time_base = float(video.time_base)
    epoch = None  # wall-clock time of PTS 0 on this connection
    index = first_index
    out = out_stream = None
    shard_start = last_time = next_coarse = None
    frame_s = 1.0 / float(video.average_rate or 25)
    times: list[float] = []
    images: list[np.ndarray] = []

    def finish(end: float) -> StreamShard:
        out.close()
        return StreamShard(index, shard_start, end, np.asarray(times, np.float64),
                           list(images), segments / f"{index:08d}.ts")

    try:
        for packet in container.demux(video):
            if should_stop():
                break
            if packet.pts is None or packet.size == 0:
                continue
            if epoch is None:
                epoch = time.time() - packet.pts * time_base
            wall = epoch + packet.pts * time_base
            last_time = wall if last_time is None else max(last_time, wall)
            if packet.is_keyframe and (out is None or wall - shard_start >= shard_s):
                if out is not None:
                    yield finish(wall)
                    index += 1
                    times.clear()
                    images.clear()
                out = av.open(str(segments / f"{index:08d}.ts"), "w", format="mpegts")
                out_stream = out.add_stream_from_template(video)
                shard_start, next_coarse = wall, wall
            if out is None:
                continue  # wait for the first keyframe: nothing before it decodes
            for frame in packet.decode():
                if frame.pts is None:
                    continue
                frame_wall = epoch + frame.pts * time_base
                if frame_wall >= next_coarse:
                    times.append(frame_wall)
                    images.append(_scaled(frame, max_side))
                    next_coarse = frame_wall + 1.0 / coarse_fps
            packet.stream = out_stream
            out.mux(packet)
    except (av.FFmpegError, OSError) as exc:
        log.warning("%s: connection lost (%s)", url, exc)
    finally:
        container.close()
    if out is not None:
        yield finish(last_time + frame_s)


def read_stream(url: str, segments: Path, shard_s: float, coarse_fps: float, max_side: int,
                timeout_s: float = 5.0, should_stop: Callable[[], bool] = lambda: False,
                first_index: int = 0, backoff_s: tuple[float, float] = (0.5, 8.0),
                ) -> Iterator[StreamShard | StreamGap]:
    """Shards of `url` as they arrive, reconnecting with backoff (doubling from backoff_s[0] up
    to backoff_s[1]) when the stream drops, and a StreamGap between connections. The first
    connection failing raises StreamOpenError; later failures are retried until should_stop()."""
    segments.mkdir(parents=True, exist_ok=True)
    index, last_end, connected, delay = first_index, None, False, backoff_s[0]
    while not should_stop():
        try:
            for shard in read_connection(url, segments, index, shard_s, coarse_fps, max_side,
                                         timeout_s, should_stop):
                if last_end is not None and shard.start > last_end + shard_s:
                    yield StreamGap(last_end, shard.start)
                connected, delay = True, backoff_s[0]
                yield shard
                index, last_end = shard.index + 1, shard.end
        except StreamOpenError:
            if not connected:
                raise
            log.warning("%s: reopening in %.1f s", url, delay)
        if should_stop():
            break
        time.sleep(delay)
        delay = min(delay * 2, backoff_s[1])
