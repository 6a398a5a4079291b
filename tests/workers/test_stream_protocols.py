"""workers/stream.py on the stream protocols besides UDP and HLS, each against a real server on
loopback: RTMP (the ffmpeg CLI as the RTMP server: `-listen 1` serves one player), RTSP (Debian's
rtsp-server-perl, with ffmpeg publishing into it), and SRT (PyAV's wheel is built without libsrt:
the reader says so by name)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import av
import pytest

from tests.videos import ffmpeg_available
from vidsift.workers.stream import StreamOpenError, StreamShard, read_stream

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="needs the ffmpeg CLI")

PATTERN = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration={seconds}",
           "-c:v", "libx264", "-preset", "ultrafast", "-g", "10"]


def _free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ffmpeg(seconds: float, *output: str) -> subprocess.Popen:
    """ffmpeg sending a 10 fps test pattern (a keyframe a second) in real time to `output`."""
    pattern = [arg.format(seconds=seconds) for arg in PATTERN]
    return subprocess.Popen(["ffmpeg", "-loglevel", "error", "-re", *pattern, *output],
                            stdin=subprocess.DEVNULL)


def _wait_for_listener(port: int, seconds: float = 10.0) -> None:
    """Until a socket listens on TCP `port`, read from /proc/net/tcp: connecting to find out
    would take the one player an `ffmpeg -listen 1` RTMP server serves."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as table:
            rows = [line.split() for line in table.readlines()[1:]]
        if any(int(row[1].split(":")[1], 16) == port and row[3] == "0A" for row in rows):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def _shards(url: str, tmp_path, want: int, stop_after_s: float) -> list[StreamShard]:
    shards, deadline = [], time.monotonic() + stop_after_s
    for item in read_stream(url, tmp_path / "segments", shard_s=1.0, coarse_fps=2.0,
                            max_side=80, timeout_s=4.0, backoff_s=(0.2, 0.5),
                            should_stop=lambda: time.monotonic() > deadline):
        if isinstance(item, StreamShard):
            shards.append(item)
            if len(shards) >= want:
                break
    return shards


def _assert_played_shards(shards: list[StreamShard], started: float) -> None:
    assert len(shards) >= 2
    for shard in shards:
        assert started < shard.start < shard.end < time.time() + 1
        assert shard.images and shard.images[0].shape == (60, 80, 3)
        assert all(shard.start <= t < shard.end for t in shard.times)
        with av.open(str(shard.segment)) as played:  # remuxed, playable, the shard's length
            frames = sum(1 for _ in played.decode(video=0))
        assert abs(frames / 10 - (shard.end - shard.start)) <= 0.25
    assert [s.index for s in shards] == list(range(len(shards)))


def test_rtmp_stream_from_a_listening_server_is_cut_into_shards(tmp_path):
    port = _free_tcp_port()
    url = f"rtmp://127.0.0.1:{port}/live/cam"
    started = time.time()
    server = _ffmpeg(8, "-f", "flv", "-listen", "1", url)
    try:
        _wait_for_listener(port)
        shards = _shards(url, tmp_path, want=3, stop_after_s=12)
    finally:
        server.kill()
        server.wait()
    _assert_played_shards(shards, started)


@pytest.mark.skipif(shutil.which("rtsp-server-perl") is None,
                    reason="needs Debian's rtsp-server-perl (make rtsp)")
def test_rtsp_stream_from_a_server_that_only_carries_udp(tmp_path):
    """rtsp-server-perl refuses RTP over the RTSP connection (400 to the TCP SETUP), as some
    cameras do: the reader asks for TCP first (no loss through NAT) and falls back to UDP."""
    client_port, source_port = _free_tcp_port(), _free_tcp_port()
    server = subprocess.Popen(
        ["rtsp-server-perl", "--clientport", str(client_port), "--serverport", str(source_port),
         "--client_listen_address", "127.0.0.1", "--source_listen_address", "127.0.0.1",
         "--rtp_start_port", str(20000 + source_port % 20000)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    publisher = None
    try:
        _wait_for_listener(client_port)
        _wait_for_listener(source_port)
        started = time.time()
        publisher = _ffmpeg(10, "-f", "rtsp", "-rtsp_transport", "udp",
                            f"rtsp://127.0.0.1:{source_port}/cam")
        time.sleep(1.0)  # the publisher's ANNOUNCE reaches the server before a player asks
        shards = _shards(f"rtsp://127.0.0.1:{client_port}/cam", tmp_path, want=3,
                         stop_after_s=14)
    finally:
        for process in (publisher, server):
            if process is not None:
                process.kill()
                process.wait()
    _assert_played_shards(shards, started)


def test_srt_without_libsrt_in_this_pyav_is_a_clear_error(tmp_path):
    url = f"srt://127.0.0.1:{_free_tcp_port()}?mode=caller"
    with pytest.raises(StreamOpenError) as raised:
        _shards(url, tmp_path, want=1, stop_after_s=5)
    message = str(raised.value)
    assert message.startswith(url) and "protocol" in message.lower()
