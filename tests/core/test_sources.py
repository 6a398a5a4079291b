"""core.sources on real servers on loopback: nginx (Debian's, `make nginx`) and moto's S3 server.
Remote videos probe as their local copies do, their identity follows the object's version,
and a source that cannot be read is one error naming the URL, credentials redacted."""

from __future__ import annotations

import http.server
import threading

import pytest

from tests.remote_stores import NGINX, moto_s3, nginx_serving, s3_client
from tests.videos import make_coded_video
from vidsift.core import sources
from vidsift.core.errors import (
    InvalidPathError,
    NotAFileError,
    VideoError,
    VideoNotFoundError,
)
from vidsift.core.media import check_video_file, content_hash, find_videos
from vidsift.core.probe import probe, scan_video

needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (make nginx)")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    make_coded_video(root / "clip.mp4", n_frames=250, output_args=("-movflags", "+faststart"))
    return root


@pytest.fixture(scope="module")
def web(served, tmp_path_factory):
    if NGINX is None:
        pytest.skip("nginx is not installed (make nginx)")
    with nginx_serving(served, tmp_path_factory.mktemp("nginx")) as server:
        yield server


@pytest.fixture(scope="module")
def bucket(served):
    with moto_s3() as endpoint:
        client = s3_client(endpoint)
        client.create_bucket(Bucket="videos")
        client.upload_file(str(served / "clip.mp4"), "videos", "talks/clip.mp4")
        yield client


def test_urls_are_told_from_paths_and_normalised():
    assert sources.is_url("s3://b/k.mp4") and sources.is_url("HTTPS://h/a.mp4")
    assert sources.is_url("abfs://c/a.mp4") and sources.is_url("gs://b/a.mp4")
    assert not sources.is_url("/data/a.mp4") and not sources.is_url("c:/x.mp4")
    assert not sources.is_url("ftpx://h/a.mp4")
    assert sources.normalise_url("S3://b//talks///a.mp4") == "s3://b/talks/a.mp4"
    for escaping in ("s3://b/talks/../secret.mp4", "https://h/a/%2E%2E/b.mp4", "s3://b/./a.mp4"):
        with pytest.raises(InvalidPathError):
            sources.normalise_url(escaping)


def test_messages_never_show_credentials():
    shown = sources.redact("https://user:hunter2@h:8080/a.mp4?X-Amz-Signature=abc&sig=s3cret")
    assert "hunter2" not in shown and "abc" not in shown and "s3cret" not in shown
    assert shown.startswith("https://h:8080/a.mp4?")


@needs_nginx
def test_a_video_behind_nginx_probes_as_its_file_does_by_ranges(web, served):
    url = web.url + "clip.mp4"
    local = probe(served / "clip.mp4")
    remote = probe(url)
    assert (remote.frame_count, remote.duration, remote.keyframe_times) == (
        local.frame_count, local.duration, local.keyframe_times)
    assert remote.path == url
    gets = [r for r in web.requests() if r[0] == "GET"]
    assert gets and all(status == 206 and header.startswith("bytes=") for _, _, status, header, _ in gets)
    # nginx's ETag and Last-Modified identify it: no read of the content for the digest.
    before = len(web.requests())
    assert content_hash(url) == content_hash(url) != content_hash(served / "clip.mp4")
    assert all(r[0] == "HEAD" for r in web.requests()[before:])


@needs_nginx
def test_a_404_a_403_and_a_refused_port_are_one_error_naming_the_url(web):
    with pytest.raises(VideoNotFoundError, match="gone.mp4: file not found"):
        check_video_file(web.url + "gone.mp4")
    with pytest.raises(VideoError, match=r"http://127\.0\.0\.1:9/a\.mp4: cannot be read"):
        probe("http://127.0.0.1:9/a.mp4")
    with pytest.raises(VideoError, match=r"/private/a\.mp4: cannot be read \(access denied: HTTP 403\)"):
        probe(web.url + "private/a.mp4")


class _DroppingHandler(http.server.BaseHTTPRequestHandler):
    """Says it has the whole file, answers a range with half its bytes, then hangs up."""

    body = b""

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.send_header("ETag", '"v1"')
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()

    def do_GET(self):
        start, end = self.headers["Range"].removeprefix("bytes=").split("-")
        part = self.body[int(start): int(end) + 1]
        self.send_response(206)
        self.send_header("Content-Length", str(len(part)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(self.body)}")
        self.end_headers()
        self.wfile.write(part[: len(part) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_a_server_that_drops_the_connection_mid_read_is_a_clear_error(served):
    handler = type("Handler", (_DroppingHandler,), {"body": (served / "clip.mp4").read_bytes()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/clip.mp4?token=private"
    try:
        with pytest.raises(VideoError) as caught:
            probe(url)
    finally:
        server.shutdown()
    message = str(caught.value)
    assert message.startswith(f"http://127.0.0.1:{server.server_address[1]}/clip.mp4?token=***")
    assert "private" not in message


def test_a_video_in_a_bucket_probes_lists_and_changes_identity(bucket, served):
    url = "s3://videos/talks/clip.mp4"
    assert probe(url).frame_count == probe(served / "clip.mp4").frame_count
    assert find_videos(["s3://videos/talks/"]) == [url]
    digest = content_hash(url)
    assert content_hash(url) == digest
    # The same bytes under another key are the same content (S3's ETag is their MD5).
    bucket.upload_file(str(served / "clip.mp4"), "videos", "copy/clip.mp4")
    assert content_hash("s3://videos/copy/clip.mp4") == digest
    other = served.parent / "other.mp4"
    make_coded_video(other, n_frames=50)
    bucket.upload_file(str(other), "videos", "talks/clip.mp4")
    assert content_hash(url) != digest
    assert scan_video(url).frame_count == 50  # a new version is scanned anew, never the old scan


def test_bucket_errors_name_the_url(bucket):
    with pytest.raises(VideoNotFoundError, match="s3://videos/talks/missing.mp4: file not found"):
        probe("s3://videos/talks/missing.mp4")
    with pytest.raises(VideoError, match="s3://no-such-bucket/a.mp4: .*NoSuchBucket"):
        probe("s3://no-such-bucket/a.mp4")
    with pytest.raises(NotAFileError, match="s3://videos/talks/"):
        check_video_file("s3://videos/talks/")


def test_a_bucket_videos_audio_decodes_as_its_files_does(bucket, served):
    import numpy as np

    from tests.videos import add_tone
    from vidsift.workers.speech.audio import AudioReader

    toned = add_tone(served / "clip.mp4", served.parent / "toned.mp4", 10.0)
    bucket.upload_file(str(toned), "videos", "talks/toned.mp4")
    local = list(AudioReader(str(toned), window_s=4).windows(start=3.0, end=7.0))
    remote = list(AudioReader("s3://videos/talks/toned.mp4", window_s=4).windows(start=3.0, end=7.0))
    assert [w.start for w in remote] == [w.start for w in local] and local
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(local, remote))


@needs_nginx
def test_decoders_that_read_files_only_refuse_a_url_by_name(web):
    from vidsift.core.errors import UnsupportedVideoError
    from vidsift.workers.decode import get_decoder

    url = web.url + "clip.mp4"
    assert len(get_decoder("pyav").frames_at(url, [0.5, 2.0], max_side=64)) == 2
    for backend in ("decord", "ffmpeg"):
        with pytest.raises(UnsupportedVideoError, match=f"decode.backend={backend} reads local"):
            get_decoder(backend).frames_at(url, [0.5])


def test_a_manifest_may_name_urls_beside_paths(tmp_path):
    manifest = tmp_path / "videos.jsonl"
    (tmp_path / "local.mp4").write_bytes(b"x")
    manifest.write_text('"s3://videos//talks/a.mp4"\n{"path": "local.mp4"}\n'
                        '{"video": "https://cdn.example/m/b.mp4"}\n')
    assert find_videos([manifest]) == ["s3://videos/talks/a.mp4", str(tmp_path / "local.mp4"),
                                       "https://cdn.example/m/b.mp4"]


def test_a_denied_bucket_is_one_error_naming_the_url_and_the_rest_of_the_job_is_read(
        bucket, served, monkeypatch):
    import os

    import s3fs

    from tests.remote_stores import iam_enforced
    from vidsift.core.sources import SourceReadError

    bucket.create_bucket(Bucket="locked")
    bucket.upload_file(str(served / "clip.mp4"), "locked", "talks/clip.mp4")
    # moto authenticates and authorises from here: the user may read "videos" only.
    with iam_enforced(os.environ["AWS_ENDPOINT_URL_S3"], ["videos"]) as keys:
        for name, value in keys.items():
            monkeypatch.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()  # as a process started with these keys
        try:
            # The denied prefix is listed as itself, as a missing folder is, so the job goes on
            # and checking it names it: before, the listing's error ended the whole job.
            found = find_videos(["s3://locked/talks/", "s3://videos/talks/"])
            assert found[0] == "s3://locked/talks/" and "s3://videos/talks/clip.mp4" in found
            for denied in ("s3://locked/talks/", "s3://locked/talks/clip.mp4"):
                with pytest.raises(SourceReadError) as caught:
                    check_video_file(denied)
                assert str(caught.value) == f"{denied}: cannot be read (access denied: Forbidden)"
                with pytest.raises(SourceReadError, match="access denied"):
                    probe(denied)
            assert probe("s3://videos/talks/clip.mp4").frame_count > 0  # the rest is read
            # A wrong secret: moto checks the request's signature, as S3 does.
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
            s3fs.S3FileSystem.clear_instance_cache()
            with pytest.raises(SourceReadError) as caught:
                probe("s3://videos/talks/clip.mp4")
            assert str(caught.value) == ("s3://videos/talks/clip.mp4: cannot be read "
                                         "(access denied: Forbidden)")
        finally:
            s3fs.S3FileSystem.clear_instance_cache()


@needs_nginx
def test_a_remote_mp4_is_scanned_from_its_header_not_read_through(web, served, small_blocks):
    import numpy as np

    from tests.videos import run_ffmpeg

    # B-frames (PTS != DTS) and an edit list hiding a cut's GOP head: both come from the index.
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25", "-f", "lavfi", "-i", "sine",
               "-t", "12", "-c:v", "libx264", "-bf", "3", "-g", "50", "-pix_fmt", "yuv420p",
               "-c:a", "aac", str(served / "bframes.mp4"))
    run_ffmpeg("-ss", "1.3", "-i", str(served / "bframes.mp4"), "-c", "copy", "-t", "8",
               str(served / "cut.mp4"))
    for name in ("bframes.mp4", "cut.mp4"):
        url = web.url + name
        size = (served / name).stat().st_size
        before = sources.bytes_fetched().get(url, 0)
        remote, local = scan_video(url), scan_video(served / name)
        read = sources.bytes_fetched()[url] - before
        for field in ("pts", "is_key"):
            assert np.array_equal(getattr(remote, field), getattr(local, field)), (name, field)
        assert (remote.end_pts, remote.hidden_frames, remote.lead_in_pts, remote.rotation) == (
            local.end_pts, local.hidden_frames, local.lead_in_pts, local.rotation)
        # the moov and the first frame's blocks, not the packets: before, all of it and more
        assert read < 0.5 * size, (name, read, size)
    assert scan_video(web.url + "cut.mp4").hidden_frames > 0


def test_a_container_without_a_full_index_is_scanned_reading_it_all(bucket, served, small_blocks):
    from tests.videos import run_ffmpeg

    run_ffmpeg("-i", str(served / "clip.mp4"), "-c", "copy", str(served / "clip.mkv"))
    bucket.upload_file(str(served / "clip.mkv"), "videos", "talks/clip.mkv")
    url = "s3://videos/talks/clip.mkv"
    assert scan_video(url).frame_count == scan_video(served / "clip.mkv").frame_count == 250
    assert sources.bytes_fetched()[url] >= (served / "clip.mkv").stat().st_size


def test_a_read_pinned_to_the_probed_version_never_mixes_two(bucket, served):
    from vidsift.core.probe import pinned
    from vidsift.core.sources import SourceReadError
    from vidsift.workers.decode import get_decoder

    other = served.parent / "short.mp4"
    make_coded_video(other, n_frames=50)  # 2 s, where the original is 10 s
    decoder = get_decoder("pyav")
    bucket.create_bucket(Bucket="versioned")
    bucket.put_bucket_versioning(Bucket="versioned",
                                 VersioningConfiguration={"Status": "Enabled"})
    for name in ("versioned", "videos"):
        bucket.upload_file(str(served / "clip.mp4"), name, "pin/clip.mp4")
    versioned, plain = "s3://versioned/pin/clip.mp4", "s3://videos/pin/clip.mp4"
    seen = {url: scan_video(url) for url in (versioned, plain)}
    assert seen[versioned].source.pin and not seen[plain].source.pin
    for name in ("versioned", "videos"):  # overwritten after the probe, during the ingest
        bucket.upload_file(str(other), name, "pin/clip.mp4")
    # A versioned bucket: the version probed is read (its VersionId), frames past 2 s included.
    with pinned(seen[versioned]):
        assert len(decoder.frames_at(versioned, [1.0, 8.0], max_side=64)) == 2
        assert scan_video(versioned).frame_count == 250
    assert scan_video(versioned).frame_count == 50  # unpinned: the new version
    # No version to ask for: the read of the new bytes is refused as a change, by name.
    with pytest.raises(SourceReadError, match=f"{plain}: cannot be read .changed while it"):
        with pinned(seen[plain]):
            decoder.frames_at(plain, [1.0], max_side=64)


@needs_nginx
def test_a_web_file_replaced_after_its_probe_fails_by_its_etag(web, served):
    import os

    from vidsift.core.probe import pinned
    from vidsift.core.sources import SourceReadError
    from vidsift.workers.decode import get_decoder

    target = served / "replaced.mp4"
    make_coded_video(target, n_frames=100)
    url = web.url + "replaced.mp4"
    seen = scan_video(url)
    assert dict(seen.source.pin)["headers"][0][0] == "If-Match"
    make_coded_video(served / "new.mp4", n_frames=60)
    os.replace(served / "new.mp4", target)
    with pytest.raises(SourceReadError, match="replaced.mp4: cannot be read .changed since it was"):
        with pinned(seen):
            get_decoder("pyav").frames_at(url, [1.0], max_side=64)
    assert scan_video(url).frame_count == 60


def test_identity_takes_strong_versions_only():
    from vidsift.core.sources import SourceInfo, _pin

    info = {"ETag": 'W/"abc"', "Last-Modified": "Wed, 02 Dec 2026 17:00:00 GMT", "size": 5}
    assert _pin("https://h/a.mp4", info) == ()
    strong = {**info, "ETag": '"abc"'}
    assert _pin("https://h/a.mp4", strong) == (("headers", (("If-Match", '"abc"'),)),)
    assert _pin("s3://b/a.mp4", {"VersionId": "null", "ETag": '"x"'}) == ()
    assert SourceInfo("s3://b/a", 5, None, ()).token == ""  # nothing to cache it under
