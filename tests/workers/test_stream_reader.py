"""workers/stream.py against real streams on loopback: ffmpeg publishing MPEG-TS over UDP."""

import re
import socket
import subprocess
import threading
import time

import av
import pytest

from tests.videos import ffmpeg_available
from vidsift.workers.stream import (
    StreamGap, StreamOpenError, StreamShard, parse_playlist, read_stream,
)

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


def _hls(tmp_path, *flags: str, serve_playlist=None):
    """ffmpeg writing a 5 s HLS live playlist (1 s segments) in real time into tmp_path/hls,
    served over loopback HTTP: the publisher, the server and the playlist's URL, once the
    playlist exists. serve_playlist: the playlist's text -> the text served."""
    import functools
    import http.server

    hls = tmp_path / "hls"
    hls.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            if serve_playlist is None or not self.path.endswith(".m3u8"):
                return super().do_GET()
            body = serve_playlist((hls / self.path.lstrip("/")).read_text()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.apple.mpegurl")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    handler = functools.partial(Handler, directory=str(hls))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    publisher = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         "testsrc=size=160x120:rate=10:duration=5", "-c:v", "libx264", "-preset", "ultrafast",
         "-g", "10", "-f", "hls", "-hls_time", "1", "-hls_list_size", "0", *flags,
         str(hls / "live.m3u8")], stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not (hls / "live.m3u8").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return publisher, server, f"http://127.0.0.1:{server.server_port}/live.m3u8"


def _read_shards(url, tmp_path, count: int) -> list[StreamShard]:
    items, stop_at = [], time.monotonic() + 8
    for item in read_stream(url, tmp_path / "segments", shard_s=1.0, coarse_fps=2.0,
                            max_side=80, timeout_s=3.0, backoff_s=(0.2, 0.5),
                            should_stop=lambda: time.monotonic() > stop_at):
        items.append(item)
        if sum(isinstance(i, StreamShard) for i in items) >= count:
            break
    return [i for i in items if isinstance(i, StreamShard)]


def test_hls_live_playlist_served_over_http(tmp_path):
    publisher, server, url = _hls(tmp_path)
    shards = _read_shards(url, tmp_path, 3)
    publisher.wait()
    server.shutdown()
    assert len(shards) >= 3
    for shard in shards:
        assert shard.images and shard.start < shard.end
        with av.open(str(shard.segment)) as played:
            assert sum(1 for _ in played.decode(video=0)) >= 5


def _an_hour_earlier(playlist: str) -> str:
    """The playlist of a camera whose clock is an hour behind: each date-time less 3600 s."""
    from datetime import datetime, timedelta

    def shift(match):
        return (datetime.fromisoformat(match.group(1)) - timedelta(hours=1)).isoformat()

    return re.sub(r"(?<=#EXT-X-PROGRAM-DATE-TIME:)(\S+)", shift, playlist)


def test_hls_program_date_time_is_the_streams_clock(tmp_path):
    # the playlist's date-times are an hour behind the wall clock: on the arrival clock every
    # shard would start an hour after its segment's date-time
    publisher, server, url = _hls(tmp_path, "-hls_flags", "program_date_time",
                                  serve_playlist=_an_hour_earlier)
    shards = _read_shards(url, tmp_path, 2)
    publisher.terminate()  # the playlist dates every segment written so far
    publisher.wait()
    server.shutdown()
    playlist = _an_hour_earlier((tmp_path / "hls" / "live.m3u8").read_text())
    _, segments = parse_playlist(playlist, url)
    dates = [date for _, date in segments]
    assert len(dates) >= 2 and None not in dates
    assert len(shards) >= 2
    for shard in shards:  # 1 s shards cut at the keyframes that begin the 1 s segments
        assert min(abs(shard.start - date) for date in dates) < 0.1  # within a frame


def test_parse_playlist_resolves_variants_and_dates_segments():
    master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow/index.m3u8\n"
    assert parse_playlist(master, "http://h/a/master.m3u8") == (
        ["http://h/a/low/index.m3u8"], [])
    media = ("#EXTM3U\n#EXTINF:1.0,\n#EXT-X-PROGRAM-DATE-TIME:2026-12-02T18:40:00.500Z\n"
             "s0.ts\n#EXTINF:1.0,\ns1.ts\n")
    assert parse_playlist(media, "http://h/a/live.m3u8") == (
        [], [("http://h/a/s0.ts", 1796236800.5), ("http://h/a/s1.ts", None)])
