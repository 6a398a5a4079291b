"""The service and videos beyond its disk: media roots that are URL prefixes (confined after
normalisation), a remote video played through the media route with its Range requests proxied
to nginx as byte ranges, and POST /v1/files storing an upload that jobs can then name."""

from __future__ import annotations

import pytest

from tests.pipeline.service.test_http import _config, media_root, running  # noqa: F401 (fixture)
from tests.remote_stores import NGINX, nginx_serving
from vidsift.core.errors import InvalidPathError, PathNotAllowedError
from vidsift.pipeline.service.security import MediaRoots


def test_url_prefix_roots_confine_after_normalisation(tmp_path):
    roots = MediaRoots(["s3://archive/talks", "https://cdn.example/media/", str(tmp_path)])
    assert roots.check("s3://archive//talks/a.mp4") == "s3://archive/talks/a.mp4"
    assert roots.check("https://cdn.example/media/x/b.mp4") == "https://cdn.example/media/x/b.mp4"
    for outside in ("s3://archive/talksX/a.mp4", "s3://other/talks/a.mp4",
                    "https://cdn.example/media/b.mp4?u=../../etc", "http://cdn.example/media/b.mp4",
                    "https://cdn.example.evil/media/b.mp4"):
        with pytest.raises(PathNotAllowedError):
            roots.check(outside)
    for escaping in ("s3://archive/talks/../secret/a.mp4", "https://cdn.example/media/%2e%2e/a.mp4",
                     "https://cdn.example/media/a%2F..%2F..%2Fb.mp4"):
        with pytest.raises(InvalidPathError):
            roots.check(escaping)
    assert roots.check(tmp_path / "a.mp4") == tmp_path / "a.mp4"  # folders as before


@pytest.fixture()
def web(media_root, tmp_path):  # noqa: F811
    if NGINX is None:
        pytest.skip("nginx is not installed (make nginx)")
    with nginx_serving(media_root, tmp_path / "nginx") as server:
        yield server


def test_a_remote_video_plays_through_the_media_route_by_ranges(web, media_root, tmp_path):  # noqa: F811
    cfg = _config(media_root, tmp_path / "svc", "serve.workers=0")
    cfg.serve.media_roots = [web.url]
    whole = (media_root / "short.mp4").read_bytes()
    with running(cfg) as client:
        part = client.get("/v1/media", params={"path": web.url + "short.mp4"},
                          headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206 and part.content == whole[100:1100]
        assert part.headers["content-range"] == f"bytes 100-1099/{len(whole)}"
        assert part.headers["content-type"] == "video/mp4"
        tail = client.get("/v1/media", params={"path": web.url + "short.mp4"},
                          headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == whole[-10:]
        past = client.get("/v1/media", params={"path": web.url + "short.mp4"},
                          headers={"Range": f"bytes={len(whole)}-"})
        assert past.status_code == 416
        ticket = client.post("/v1/media/tickets", json={"path": web.url + "short.mp4"}).json()
        assert client.get(ticket["url"]).content == whole
        missing = client.get("/v1/media", params={"path": web.url + "gone.mp4"})
        assert missing.status_code == 404
        outside = client.get("/v1/media", params={"path": "http://127.0.0.1:9/short.mp4"})
        assert outside.status_code == 403
    gets = [r for r in web.requests() if r[0] == "GET" and "gone" not in r[1]]
    assert gets and all(status == 206 and header.startswith("bytes=") for _, _, status, header, _ in gets)


def test_an_uploaded_video_is_stored_checked_and_readable_by_jobs(media_root, tmp_path):  # noqa: F811
    cfg = _config(media_root, tmp_path / "svc", "serve.workers=0", "serve.max_upload_mb=1")
    video = (media_root / "short.mp4").read_bytes()
    uploads = tmp_path / "svc" / "uploads"
    with running(cfg) as client:
        made = client.post("/v1/files", params={"name": "../../My Talk.mp4"}, content=video,
                           headers={"Content-Type": "video/mp4"})
        assert made.status_code == 201, made.text
        stored = made.json()
        assert stored["name"] == "My_Talk.mp4" and stored["size"] == len(video)
        assert stored["path"].startswith(str(uploads)) and open(stored["path"], "rb").read() == video
        # Jobs and the media route take the returned path (the uploads are a media root).
        assert client.get("/v1/media", params={"path": stored["path"]}).content == video
        queued = client.post("/v1/index", json={"paths": [stored["path"]]})
        assert queued.status_code == 202, queued.text

        not_video = client.post("/v1/files", params={"name": "notes.mp4"}, content=b"hello " * 99,
                                headers={"Content-Type": "video/mp4"})
        assert not_video.status_code == 400 and "notes.mp4: not a video" in not_video.json()["error"]
        wrong_type = client.post("/v1/files", params={"name": "a.mp4"}, content=video,
                                 headers={"Content-Type": "text/plain"})
        assert wrong_type.status_code == 415
        no_extension = client.post("/v1/files", params={"name": "a.txt"}, content=video,
                                   headers={"Content-Type": "video/mp4"})
        assert no_extension.status_code == 400

        def chunks():  # streamed with no Content-Length: refused once past the limit
            for _ in range(3):
                yield b"\0" * (512 * 1024)

        too_big = client.post("/v1/files", params={"name": "big.mp4"}, content=chunks(),
                              headers={"Content-Type": "video/mp4"})
        assert too_big.status_code == 413
    kept = sorted(p.name for p in uploads.rglob("*") if p.is_file())
    assert kept == ["My_Talk.mp4"]  # nothing of the refused uploads stays


def test_a_clip_of_a_remote_video_is_refused_in_one_line(web, media_root, tmp_path):  # noqa: F811
    cfg = _config(media_root, tmp_path / "svc", "serve.workers=0")
    cfg.serve.media_roots = [web.url]
    with running(cfg) as client:
        refused = client.get("/v1/clip", params={"video": web.url + "short.mp4", "start": 0,
                                                 "end": 1})
    assert refused.status_code == 400
    assert refused.json()["error"].endswith("short.mp4: clips are cut from local files only; "
                                            "play it through /v1/media instead")
