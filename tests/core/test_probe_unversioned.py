"""core.probe.scan_video of a remote video with no version (nginx with `etag off` under /weak/:
Last-Modified only): its scan is kept for the recording of its pieces it was made in (one
shard, one driver's probe: core.sources.recording), never across recordings, and not once a
piece read twice in the recording has shown the object changed."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.remote_stores import NGINX, nginx_serving
from tests.videos import make_coded_video, run_ffmpeg
from vidsift.core import sources
from vidsift.core.probe import pinned, scan_video
from vidsift.core.sources import SourceReadError

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (make nginx)")


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    (root / "weak").mkdir()
    make_coded_video(root / "clip.mp4", n_frames=250, output_args=("-movflags", "+faststart"))
    make_coded_video(root / "short.mp4", n_frames=100, output_args=("-movflags", "+faststart"))
    # lossless: 1 s is ~0.5 MB, a few pieces of 256 KiB (the coded clips are one)
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=640x360:r=25", "-t", "1", "-c:v", "libx264",
               "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", "-movflags",
               "+faststart", str(root / "large.mp4"))
    with nginx_serving(root, tmp_path_factory.mktemp("nginx")) as server:
        yield server


def _weak(web, name: str, of: str = "clip.mp4") -> str:
    shutil.copy(web.root / of, web.root / "weak" / name)
    return web.url + "weak/" + name


def test_a_scan_is_kept_within_its_recording_only(web):
    url = _weak(web, "kept.mp4")
    info = sources.stat_source(url)
    assert not info.token and info.weak
    sources.start_pieces(url, info.size)
    try:
        first = scan_video(url, source=info)
        asked = len(web.requests())
        # the driver's second ask and a shard's every piece (pinned: no HEAD either)
        assert scan_video(url, source=info) is first
        with pinned(first):
            assert scan_video(url) is first
            assert len(web.requests()) == asked  # before: every scan opened and read it again
    finally:
        sources.take_pieces(url)
    assert scan_video(url, source=info) is not first  # no recording: nothing tells it unchanged
    sources.start_pieces(url, info.size)
    try:
        asked = len(web.requests())
        assert scan_video(url, source=info) is not first  # another recording scans anew
        assert len(web.requests()) > asked
    finally:
        sources.take_pieces(url)
    shutil.copy(web.root / "short.mp4", web.root / "weak" / "new.mp4")
    os.replace(web.root / "weak" / "new.mp4", web.root / "weak" / "kept.mp4")  # another size
    # a shard reading it after the change is told so (its weak validators asked again)
    with pytest.raises(SourceReadError, match="kept.mp4: cannot be read .changed while it"):
        with pinned(first):
            pass
    sources.start_pieces(url, info.size)
    try:
        assert scan_video(url).frame_count == 100
    finally:
        sources.take_pieces(url)


def test_a_piece_that_reads_otherwise_the_second_time_ends_the_scans_reuse(web):
    saved = dict(sources._settings)
    sources.configure(sources.PIECE_BYTES // 1024, 1)  # a block is a piece; one kept
    url = _weak(web, "changing.mp4", "large.mp4")
    path = web.root / "weak" / "changing.mp4"
    info = sources.stat_source(url)
    assert sources.piece_count(info.size) > 1
    sources.start_pieces(url, info.size)
    try:
        scan_video(url, source=info)  # reads the header: piece 0 hashed
        data = bytearray(path.read_bytes())
        data[100] ^= 0xFF  # rewritten in place, same size
        path.write_bytes(bytes(data))
        handle = sources.open_info(info)
        handle.seek(info.size - 10)
        handle.read(10)  # piece 0's block falls out of the cache
        handle.seek(0)
        handle.read(200)  # and is fetched again: another digest
        handle.close()
        with pytest.raises(SourceReadError, match="changing.mp4: cannot be read .changed while"):
            scan_video(url, source=info)
    finally:
        sources.configure(saved["block"] // 1024, saved["blocks"])
        with pytest.raises(SourceReadError, match="a piece read twice differs"):
            sources.take_pieces(url)  # its pieces are of two versions: no digest from them
    assert sources.recording(url) == ""
