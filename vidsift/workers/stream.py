"""Reading a live stream (udp:// MPEG-TS, HLS .m3u8, rtsp://, rtmp://, srt:// or a file still
being written) with PyAV, as it arrives, into shards.

A shard is the packets from one keyframe to the first keyframe at least `shard_s` seconds later.
Each shard is remuxed (packets copied, no re-encoding) into its own MPEG-TS segment file, so the
evidence can be decoded and played back later, and its coarse frames are decoded on the way:
one frame every 1/coarse_fps seconds of stream time, scaled so the longest side is `max_side`;
coarse_fps may be a callable, asked at each shard's first frame (the watcher thins its rate
while it is behind: plan/stream_rate.py). With audio=True the stream's first audio stream's
packets go into the segments too (copied), and each shard's audio is decoded on the way to mono
SAMPLE_RATE float32 samples (StreamShard.audio) for speech recognition.

Times are wall-clock: PTS plus the connection's clock, the least (arrival - PTS) of the packets
demuxed in its first second, so every shard of one connection is on one clock; an HLS playlist
that gives EXT-X-PROGRAM-DATE-TIME sets the clock itself (hls_epoch), times are then the
stream's own. A connection that drops or stalls ends its last shard;
read_stream() reopens with backoff and reports the gap (from the last frame seen to the first
frame of the new connection) instead of inventing frames. An attempt that itself waited
timeout_s (udp://'s open listens that long) is retried at once: what a publisher sends while no
socket is bound is lost.
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
    frames; images: N RGB uint8 arrays (H, W, 3). segment: the remuxed MPEG-TS file.
    coarse_fps: the rate its coarse frames were taken at (frames per stream second; None:
    unknown). lag_s: how late its newest packet was demuxed, seconds after that packet's
    wall-clock time (about 0 when the reader keeps up; grows while the consumer falls behind
    and the packets wait in FFmpeg's and the kernel's buffers). audio: (S,) float32 mono samples
    at workers.speech.audio.SAMPLE_RATE of the audio packets muxed into its segment, from
    wall-clock audio_start (None: not asked for, or the stream has no audio)."""

    index: int
    start: float
    end: float
    times: np.ndarray
    images: list[np.ndarray]
    segment: Path
    coarse_fps: float | None = None
    lag_s: float = 0.0
    audio: np.ndarray | None = None
    audio_start: float | None = None


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


# RTMP, RTSP, SRT: FFmpeg probes 5 s of packets by default before av.open returns, and hands
# them over in one burst; a 1 s probe keeps that burst (and the latency it adds) short.
LIVE_PROBE = {"analyzeduration": "1000000"}


MPEGTS_AUDIO = {"aac", "ac3", "eac3", "mp2", "mp3", "opus"}  # audio codecs MPEG-TS carries

CLOCK_SETTLE_S = 1.0  # see read_connection: how long a connection's clock is still refined


def _open_options(url: str, timeout_s: float) -> dict[str, str]:
    micros = str(int(timeout_s * 1e6))
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    network = {"protocol_whitelist": PROTOCOLS[scheme]} if scheme in PROTOCOLS else {}
    if scheme == "udp":
        # no short probe: MPEG-TS over UDP probed for 1 s can miss the codec's parameters, and
        # the segments' muxer then refuses the packets (EINVAL). fpsprobesize 0: the probe ends
        # once they are known (about 1 s, not 3 s: it no longer waits for a frame rate, and
        # open_stream sets no interrupt that would cut it short, so a probe waiting for one
        # swallowed a publisher's restart into one connection and failed as EINVAL too)
        return {"timeout": micros, "overrun_nonfatal": "1", "fifo_size": "1000000",
                "fpsprobesize": "0", **network}
    if scheme == "rtsp":
        return {"timeout": micros, "rtsp_transport": "tcp", **LIVE_PROBE, **network}
    if scheme in ("http", "https"):
        return {"rw_timeout": micros, "reconnect": "1", **network}
    live = LIVE_PROBE if scheme in PROTOCOLS else {}
    return {"rw_timeout": micros, **live, **network}


def open_stream(url: str, timeout_s: float):
    """The PyAV container of `url` and its video stream; StreamOpenError naming the URL.

    RTSP asks for RTP over the RTSP connection first (TCP: nothing lost, passes NAT); a server
    that refuses it (some cameras, rtsp-server-perl) is asked again for RTP over UDP."""
    import av

    options = _open_options(url, timeout_s)
    # udp://: no PyAV timeout (an interrupt callback). It cut the probe short (2.7 s of a 10 fps
    # stream while it waited for a frame rate, before fpsprobesize 0), and the connection then
    # ended ('Immediate exit requested') at the consumer's next pause over timeout_s, embedding
    # a shard, packets still flowing: a gap invented mid-stream. FFmpeg's own udp `timeout`
    # option bounds the open and each read instead.
    timeout = None if url.lower().startswith("udp://") else timeout_s
    attempts = [options]
    if options.get("rtsp_transport") == "tcp":
        attempts.append({**options, "rtsp_transport": "udp"})
    for number, attempt in enumerate(attempts):
        try:
            container = av.open(url, options=attempt, timeout=timeout)
            break
        except av.ProtocolNotFoundError as exc:
            scheme = url.split("://", 1)[0]
            raise StreamOpenError(f"{url}: this FFmpeg (PyAV's) has no {scheme} protocol built "
                                  f"in ({exc})") from exc
        except (av.FFmpegError, OSError) as exc:
            if number + 1 == len(attempts):
                raise StreamOpenError(f"{url}: cannot be opened ({exc})") from exc
            log.info("%s: %s; asking for RTP over UDP", url, exc)
    if not container.streams.video:
        container.close()
        raise StreamOpenError(f"{url}: has no video stream")
    return container, container.streams.video[0]


def parse_playlist(text: str, url: str) -> tuple[list[str], list[tuple[str, float | None]]]:
    """An HLS playlist's text, read from `url` -> (its variant playlists' URLs, in order; its
    segments as (URL, EXT-X-PROGRAM-DATE-TIME in Unix seconds, None where it gives none)).
    Relative URIs are resolved against `url`; a date-time without a zone is local time."""
    from datetime import datetime
    from urllib.parse import urljoin

    variants: list[str] = []
    segments: list[tuple[str, float | None]] = []
    date_time = variant = None
    for line in (line.strip() for line in text.splitlines()):
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            try:
                date_time = datetime.fromisoformat(line.split(":", 1)[1]).timestamp()
            except ValueError:
                log.warning("%s: unreadable %s", url, line)
        elif line.startswith("#EXT-X-STREAM-INF"):
            variant = True
        elif line and not line.startswith("#"):
            if variant:
                variants.append(urljoin(url, line))
            else:
                segments.append((urljoin(url, line), date_time))
            date_time = variant = None
    return variants, segments


def is_hls(url: str) -> bool:
    return url.lower().startswith(("http://", "https://")) and \
        url.split("?", 1)[0].lower().endswith(".m3u8")


def hls_epoch(url: str, timeout_s: float) -> float | None:
    """The wall-clock time of PTS 0 that an HLS playlist's EXT-X-PROGRAM-DATE-TIME gives: the
    first dated segment's date-time less that segment's first video PTS (seconds), read over
    HTTP; a master playlist's first variant is the one read (FFmpeg's video stream 0). None
    where the playlist dates no segment or cannot be read: the arrival clock is used then."""
    import io

    import av
    import httpx

    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=True) as client:
            variants, segments = parse_playlist(client.get(url).raise_for_status().text, url)
            if variants:
                variants, segments = parse_playlist(
                    client.get(variants[0]).raise_for_status().text, variants[0])
            for segment_url, date_time in segments:
                if date_time is None:
                    continue
                try:  # a live playlist's oldest segment may be deleted meanwhile: the next
                    data = client.get(segment_url).raise_for_status().content
                    with av.open(io.BytesIO(data)) as segment:
                        video = segment.streams.video[0]
                        first = min(p.pts for p in segment.demux(video) if p.pts is not None)
                        return date_time - first * float(video.time_base)
                except (httpx.HTTPError, av.FFmpegError, IndexError, ValueError) as exc:
                    log.info("%s: %s", segment_url, exc)
    except httpx.HTTPError as exc:
        log.warning("%s: playlist not read for its date-times (%s)", url, exc)
    return None


def _scaled(frame, max_side: int) -> np.ndarray:
    scale = min(1.0, max_side / max(frame.width, frame.height))
    width = max(2, int(round(frame.width * scale)) // 2 * 2)
    height = max(2, int(round(frame.height * scale)) // 2 * 2)
    return frame.to_ndarray(format="rgb24", width=width, height=height)


def read_connection(url: str, segments: Path, first_index: int, shard_s: float,
                    coarse_fps: float | Callable[[], float], max_side: int, timeout_s: float,
                    should_stop: Callable[[], bool], audio: bool = False) -> Iterator[StreamShard]:
    """The shards of one connection to `url`, until it ends, stalls past timeout_s, or
    should_stop() is true; segment files segments/<index>.ts, numbered from first_index.
    coarse_fps: frames per stream second, or a callable asked at each shard's first frame.
    audio: the first audio stream (where there is one) muxed into the segments and decoded
    into StreamShard.audio; the packets before the first keyframe are dropped with the video's."""
    import av

    from vidsift.workers.speech.audio import SAMPLE_RATE

    rate = coarse_fps if callable(coarse_fps) else lambda: coarse_fps

    container, video = open_stream(url, timeout_s)
    # one decoding thread: frame threads hold frames back, so they would land in the next shard
    video.codec_context.thread_count = 1
    time_base = float(video.time_base)
    sound = container.streams.audio[0] if audio and container.streams.audio else None
    resampler = None if sound is None else \
        av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    # what MPEG-TS carries: other codecs (an RTSP camera's G.711) are heard but left out
    muxed = sound is not None and sound.codec_context.name in MPEGTS_AUDIO
    if sound is not None and not muxed:
        log.warning("%s: %s audio is not copied into the segments (MPEG-TS carries %s)", url,
                    sound.codec_context.name, ", ".join(sorted(MPEGTS_AUDIO)))
    out_sound = None
    pieces: list[np.ndarray] = []  # the shard's audio samples so far
    sound_start = None  # stream seconds of the shard's first audio sample
    # Wall-clock time of PTS 0 on this connection: arrival minus PTS, least over the packets
    # demuxed in the first CLOCK_SETTLE_S after opening. The packets FFmpeg buffered while
    # probing come out first, in a burst, so the first one's arrival alone would put every
    # time seconds ahead. Shards finished meanwhile wait until the clock is fixed, so shards
    # of one connection never overlap. An HLS playlist's EXT-X-PROGRAM-DATE-TIME, where it
    # gives one, is the clock instead (hls_epoch), fixed from the start.
    opened = time.monotonic()
    epoch = None
    index = first_index
    out = out_stream = None
    shard_start = last_pts_s = next_coarse = None  # stream seconds (PTS x time base)
    shard_fps = None  # this shard's coarse rate, asked at its first frame
    late = 0.0  # the newest packet's demux time (Unix s) minus its stream seconds
    # one frame's duration: the stream's average rate where the probe gave one, else the least
    # step between two packets' PTS seen so far (udp:// is probed without a frame rate)
    frame_s = 1.0 / float(video.average_rate) if video.average_rate else None
    previous_pts_s = None
    times: list[float] = []  # stream seconds of the shard's coarse frames
    images: list[np.ndarray] = []
    waiting: list[tuple] = []  # finished shards, in stream seconds, until the clock is fixed

    def finish(end_s: float) -> None:
        out.close()
        samples = None if sound is None else \
            np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        waiting.append((index, shard_start, end_s, np.asarray(times, np.float64),
                        list(images), segments / f"{index:08d}.ts", shard_fps, late, samples,
                        shard_start if sound_start is None else sound_start))

    def hand_on() -> Iterator[StreamShard]:
        for (number, start_s, end_s, frame_times, frames, segment, fps, behind, samples,
             samples_s) in waiting:
            yield StreamShard(number, epoch + start_s, epoch + end_s, epoch + frame_times,
                              frames, segment, fps, max(0.0, behind - epoch), samples,
                              None if samples is None else epoch + samples_s)
        waiting.clear()

    def add_sound(packet) -> None:
        nonlocal sound_start
        try:
            frames = packet.decode()
        except av.FFmpegError as exc:
            log.info("%s: an audio packet not decoded (%s)", url, exc)
            frames = []
        for frame in frames:
            if sound_start is None and frame.time is not None:
                sound_start = float(frame.time) - sum(len(p) for p in pieces) / SAMPLE_RATE
            for resampled in resampler.resample(frame):
                pieces.append(resampled.to_ndarray()[0].astype(np.float32, copy=False))
        if muxed:
            packet.stream = out_sound
            out.mux(packet)

    if is_hls(url):  # the stream's own clock where its playlist gives one
        epoch = hls_epoch(url, timeout_s)
    settled = epoch is not None
    try:
        for packet in container.demux(video, *(() if sound is None else (sound,))):
            if should_stop():
                break
            if packet.pts is None or packet.size == 0:
                continue
            if sound is not None and packet.stream.index == sound.index:
                if out is not None:
                    add_sound(packet)
                continue
            pts_s = packet.pts * time_base
            late = time.time() - pts_s if last_pts_s is None or pts_s >= last_pts_s else late
            if not settled:
                arrival = time.time() - pts_s
                epoch = arrival if epoch is None else min(epoch, arrival)
                settled = time.monotonic() - opened >= CLOCK_SETTLE_S
            last_pts_s = pts_s if last_pts_s is None else max(last_pts_s, pts_s)
            if previous_pts_s is not None and pts_s != previous_pts_s and \
                    not video.average_rate:
                step = abs(pts_s - previous_pts_s)
                frame_s = step if frame_s is None else min(frame_s, step)
            previous_pts_s = pts_s
            if packet.is_keyframe and (out is None or pts_s - shard_start >= shard_s):
                if out is not None:
                    finish(pts_s)
                    index += 1
                    times.clear()
                    images.clear()
                    shard_fps = None
                    pieces, sound_start = [], None
                out = av.open(str(segments / f"{index:08d}.ts"), "w", format="mpegts")
                out_stream = out.add_stream_from_template(video)
                if muxed:
                    out_sound = out.add_stream_from_template(sound)
                shard_start, next_coarse = pts_s, pts_s
            if settled and waiting:
                yield from hand_on()
            if out is None:
                continue  # wait for the first keyframe: nothing before it decodes
            for frame in packet.decode():
                if frame.pts is None:
                    continue
                frame_at = frame.pts * time_base
                if frame_at >= next_coarse:
                    if shard_fps is None:  # after the watcher handled the shards before
                        shard_fps = float(rate())
                    times.append(frame_at)
                    images.append(_scaled(frame, max_side))
                    next_coarse = frame_at + 1.0 / shard_fps
            packet.stream = out_stream
            out.mux(packet)
    except (av.FFmpegError, OSError) as exc:
        log.warning("%s: connection lost (%s)", url, exc)
    finally:
        container.close()
    if out is not None:
        finish(last_pts_s + (frame_s or 0.04))
    yield from hand_on()


def read_stream(url: str, segments: Path, shard_s: float,
                coarse_fps: float | Callable[[], float], max_side: int,
                timeout_s: float = 5.0, should_stop: Callable[[], bool] = lambda: False,
                first_index: int = 0, backoff_s: tuple[float, float] = (0.5, 8.0),
                audio: bool = False) -> Iterator[StreamShard | StreamGap]:
    """Shards of `url` as they arrive, reconnecting with backoff (doubling from backoff_s[0] up
    to backoff_s[1]) when the stream drops, and a StreamGap between connections. The first
    connection failing raises StreamOpenError; later failures are retried until should_stop().
    An attempt that took timeout_s or longer is retried at once, a quicker failure after the
    rest of its delay: udp:// listens, its open waits timeout_s for packets, and what is sent
    while no socket is bound is lost, so a backoff after it would drop the first seconds of a
    returning publisher. coarse_fps, audio: as read_connection's."""
    segments.mkdir(parents=True, exist_ok=True)
    index, last_end, connected, delay = first_index, None, False, backoff_s[0]
    while not should_stop():
        attempt = time.monotonic()
        try:
            for shard in read_connection(url, segments, index, shard_s, coarse_fps, max_side,
                                         timeout_s, should_stop, audio):
                if last_end is not None and shard.start > last_end + shard_s:
                    yield StreamGap(last_end, shard.start)
                connected, delay = True, backoff_s[0]
                yield shard
                index, last_end = shard.index + 1, shard.end
        except StreamOpenError:
            if not connected:
                raise
            failed = True
        else:
            failed = False
        took = time.monotonic() - attempt
        wait = 0.0 if took >= timeout_s else max(0.0, delay - took)
        if failed:
            log.warning("%s: reopening in %.1f s", url, wait)
        if should_stop():
            break
        time.sleep(wait)
        delay = min(delay * 2, backoff_s[1])
