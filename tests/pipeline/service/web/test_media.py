"""The page's server side without a browser: the page and its headers, media streaming with
range requests inside the media roots only, media tickets, the videos list, the key rule."""

import base64
import io
import os

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from skimage import data

from tests.videos import make_coded_video
from vidsift.core.config import load_config
from vidsift.pipeline.service.http import create_app
from vidsift.pipeline.service.web.media import MediaTickets, TicketError

KEY = "s3cret"


@pytest.fixture(scope="module")
def media_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("web_media")
    make_coded_video(root / "clip.mp4", n_frames=20, fps=10, size=(160, 120), gop=10)
    (root / "notes.txt").write_text("not media")
    (root.parent / "outside.mp4").write_bytes(b"secret bytes")
    os.symlink(root.parent / "outside.mp4", root / "escape.mp4")
    return root


def client_for(media_root, tmp_path, *extra):
    cfg = load_config("default", [f"serve.data_dir={tmp_path / 'svc'}",
                                  f"serve.media_roots=[{media_root}]",
                                  f"index.dir={tmp_path / 'index'}", *extra])
    return TestClient(create_app(cfg))


@pytest.fixture()
def client(media_root, tmp_path):
    with client_for(media_root, tmp_path) as http:
        yield http


def test_the_page_and_its_assets_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert '<script src="/static/app.js"' in page.text
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "X-API-Key" in script.text
    assert "innerHTML" not in script.text  # every text goes in as textContent
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/../http.py").status_code == 404


def test_range_requests_read_exact_bytes_and_refuse_what_is_outside(client, media_root):
    whole = (media_root / "clip.mp4").read_bytes()
    full = client.get("/v1/media", params={"path": str(media_root / "clip.mp4")})
    assert full.status_code == 200 and full.content == whole
    assert full.headers["content-type"] == "video/mp4" and full.headers["accept-ranges"] == "bytes"
    part = client.get("/v1/media", params={"path": "clip.mp4"}, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    tail = client.get("/v1/media", params={"path": "clip.mp4"}, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == whole[-10:]
    past = client.get("/v1/media", params={"path": "clip.mp4"},
                      headers={"Range": f"bytes={len(whole)}-{len(whole) + 100}"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(whole)}"
    for outside in ("../outside.mp4", "/etc/passwd", "escape.mp4"):
        refused = client.get("/v1/media", params={"path": outside}, headers={"Range": "bytes=0-5"})
        assert refused.status_code == 403, outside
        assert "outside the allowed media roots" in refused.json()["error"]
    not_media = client.get("/v1/media", params={"path": "notes.txt"})
    assert not_media.status_code == 403 and "not a video file" in not_media.json()["error"]
    missing = client.get("/v1/media", params={"path": "gone.mp4"})
    assert missing.status_code == 404 and missing.json() == {"error": "gone.mp4: no such video"}


def test_tickets_stream_one_file_and_cannot_be_forged(client, media_root):
    whole = (media_root / "clip.mp4").read_bytes()
    ticket = client.post("/v1/media/tickets", json={"path": "clip.mp4"}).json()
    assert ticket["path"] == str(media_root / "clip.mp4")
    part = client.get(ticket["url"], headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == whole[:10]
    expires, encoded, signature = ticket["url"].rsplit("/", 1)[1].split(".")
    other = base64.urlsafe_b64encode(str(media_root.parent / "outside.mp4").encode()).decode()
    forged = client.get(f"/v1/media/t/{expires}.{other.rstrip('=')}.{signature}")
    assert forged.status_code == 403 and "signature" in forged.json()["error"]
    later = client.get(f"/v1/media/t/{int(expires) + 9999}.{encoded}.{signature}")
    assert later.status_code == 403
    assert client.get("/v1/media/t/nonsense").status_code == 403
    assert client.post("/v1/media/tickets", json={"path": "../outside.mp4"}).status_code == 403
    assert client.post("/v1/media/tickets", json={"path": "notes.txt"}).status_code == 403


def test_tickets_expire():
    tickets = MediaTickets(ttl_s=60)
    ticket, expires = tickets.issue("/media/a.mp4", now=1000.0)
    assert expires == 1060 and str(tickets.verify(ticket, now=1059.0)) == "/media/a.mp4"
    with pytest.raises(TicketError, match="expired"):
        tickets.verify(ticket, now=1061.0)
    with pytest.raises(TicketError, match="signature"):
        MediaTickets(ttl_s=60).verify(ticket, now=1000.0)  # another service's secret


def test_the_key_rule_covers_the_pages_data_but_not_the_page(media_root, tmp_path):
    with client_for(media_root, tmp_path, f"serve.api_key={KEY}") as http:
        assert http.get("/").status_code == 200
        assert http.get("/static/app.js").status_code == 200
        for path in ("/v1/info", "/v1/videos", "/v1/media?path=clip.mp4"):
            assert http.get(path).status_code == 401, path
        assert http.post("/v1/media/tickets", json={"path": "clip.mp4"}).status_code == 401
        assert http.post("/v1/search", content=b"x").status_code == 401
        keyed = {"X-API-Key": KEY}
        info = http.get("/v1/info", headers=keyed).json()
        assert info["media_roots"] == [str(media_root)]
        ticket = http.post("/v1/media/tickets", json={"path": "clip.mp4"}, headers=keyed).json()
        assert KEY not in ticket["url"]
        assert http.get(ticket["url"], headers={"Range": "bytes=0-1"}).status_code == 206


def _jpeg():
    buffer = io.BytesIO()
    Image.fromarray(data.coffee()).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_videos_and_search_name_only_videos_inside_the_roots(photo_library, tmp_path):
    root, index_dir, _ = photo_library
    cfg = load_config("default", [f"serve.data_dir={tmp_path}", f"serve.media_roots=[{root}]",
                                  f"index.dir={index_dir}"])
    with TestClient(create_app(cfg)) as http:
        [video] = http.get("/v1/videos").json()["videos"]
        assert len(http.get("/v1/search", params={"q": "coffee", "k": 3}).json()["hits"]) == 3
    assert video["path"] == str(root / "photos.mp4")
    assert video["duration"] == pytest.approx(25.0, abs=0.2) and video["clips"] >= 5
    elsewhere = load_config("default", [f"serve.data_dir={tmp_path}", f"index.dir={index_dir}",
                                        f"serve.media_roots=[{tmp_path}]", "embed.ocr=false"])
    with TestClient(create_app(elsewhere)) as http:  # indexed, but outside the roots: unnamed
        assert http.get("/v1/videos").json() == {"videos": []}
        assert http.get("/v1/search", params={"q": "coffee"}).json()["hits"] == []
        assert http.post("/v1/search", content=_jpeg()).json()["hits"] == []
    with client_for(root, tmp_path / "empty") as http:
        assert http.get("/v1/videos").json() == {"videos": []}
