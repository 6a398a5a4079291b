"""workers/stream.py against real streams on loopback: ffmpeg publishing MPEG-TS over UDP."""

import socket
import subprocess
import threading
import time

import av
import pytest

from tests.videos import ffmpeg_available
from vidsift.workers.stream import StreamGap, StreamOpenError, StreamShard, read_stream

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="needs the ffmpeg CLI")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _publish(port: int, seconds: float) -> subprocess.Popen:
    """ffmpeg sending a 10 fps test pattern (a keyframe a second) in real time."""
    return subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         f"testsrc=size=160x120:rate=10:duration={seconds}", "-c:v", "libx264",
         "-preset", "ultrafast", "-g", "10", "-f", "mpegts",
         f"udp://127.0.0.1:{port}?pkt_size=1316"], stdin=subprocess.DEVNULL)


def _collect(url, tmp_path, stop_after_s, **kw):
    items, deadline = [], time.monotonic() + stop_after_s
    for item in read_stream(url, tmp_path / "segments", shard_s=1.0, coarse_fps=2.0,
                            max_side=80, timeout_s=3.0, backoff_s=(0.2, 0.5),
                            should_stop=lambda: time.monotonic() > deadline, **kw):
        items.append(item)
    return items


def test_udp_stream_is_cut_into_remuxed_shards_on_the_wall_clock(tmp_path):
    port = _free_udp_port()
    started = time.time()
    publisher = threading.Timer(0.3, lambda: _publish(port, 4).wait())
    publisher.start()
    items = _collect(f"udp://127.0.0.1:{port}", tmp_path, stop_after_s=7)
    publisher.join()
    shards = [i for i in items if isinstance(i, StreamShard)]
    assert len(shards) >= 2
    for shard in shards:
        assert started - 1 < shard.start < shard.end < time.time()
        assert shard.images and shard.images[0].shape == (60, 80, 3)
        assert all(shard.start <= t < shard.end for t in shard.times)
        # the segment is a playable file of the shard's length, not re-encoded
        with av.open(str(shard.segment)) as played:
            frames = sum(1 for _ in played.decode(video=0))
        assert abs(frames / 10 - (shard.end - shard.start)) <= 0.2
    assert [s.index for s in shards] == list(range(len(shards)))
    for earlier, later in zip(shards, shards[1:]):
        assert abs(later.start - earlier.end) < 0.2  # contiguous: no gap without a drop


def test_publisher_killed_and_restarted_gives_a_gap_and_the_watch_goes_on(tmp_path):
    port = _free_udp_port()

    def publish_twice():
        _publish(port, 2).wait()
        time.sleep(2.5)  # the stream is down
        _publish(port, 2).wait()

    publisher = threading.Thread(target=publish_twice)
    threading.Timer(0.3, publisher.start).start()
    items = _collect(f"udp://127.0.0.1:{port}", tmp_path, stop_after_s=10)
    publisher.join()
    gaps = [i for i in items if isinstance(i, StreamGap)]
    assert len(gaps) == 1
    assert 1.5 < gaps[0].end - gaps[0].start < 4.5
    after = [i for i in items[items.index(gaps[0]):] if isinstance(i, StreamShard)]
    assert after and after[0].start >= gaps[0].end


def test_a_stream_that_never_opens_names_the_url(tmp_path):
    url = f"udp://127.0.0.1:{_free_udp_port()}"
    with pytest.raises(StreamOpenError, match="udp://127.0.0.1"):
        _collect(url, tmp_path, stop_after_s=5)


def test_hls_live_playlist_served_over_http(tmp_path):
    import functools
    import http.server

    hls = tmp_path / "hls"
    hls.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(hls))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    publisher = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         "testsrc=size=160x120:rate=10:duration=5", "-c:v", "libx264", "-preset", "ultrafast",
         "-g", "10", "-f", "hls", "-hls_time", "1", "-hls_list_size", "0",
         str(hls / "live.m3u8")], stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not (hls / "live.m3u8").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    url = f"http://127.0.0.1:{server.server_port}/live.m3u8"
    items, stop_at = [], time.monotonic() + 8
    for item in read_stream(url, tmp_path / "segments", shard_s=1.0, coarse_fps=2.0,
                            max_side=80, timeout_s=3.0, backoff_s=(0.2, 0.5),
                            should_stop=lambda: time.monotonic() > stop_at):
        items.append(item)
        if sum(isinstance(i, StreamShard) for i in items) >= 3:
            break
    publisher.wait()
    server.shutdown()
    shards = [i for i in items if isinstance(i, StreamShard)]
    assert len(shards) >= 3
    for shard in shards:
        assert shard.images and shard.start < shard.end
        with av.open(str(shard.segment)) as played:
            assert sum(1 for _ in played.decode(video=0)) >= 5
