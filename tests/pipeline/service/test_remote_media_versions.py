"""A remote video played through the service's media route plays one version: the one its
ticket was issued for (moto's S3 server with a versioned bucket: read by VersionId after an
overwrite; nginx: 412 once the file changed), or the version a memory was made from when the
ticket is asked with its content_hash (409 where the store no longer has it)."""

from __future__ import annotations

import os

import pytest

from tests.pipeline.service.test_http import _config, media_root, running  # noqa: F401 (fixture)
from tests.remote_stores import NGINX, moto_s3, nginx_serving, s3_client
from vidsift.core import sources


def _ticket(client, path, content_hash=None):
    body = {"path": path} | ({"content_hash": content_hash} if content_hash else {})
    return client.post("/v1/media/tickets", json=body)


def test_a_ticket_plays_the_version_it_was_issued_for_from_a_versioned_bucket(
        media_root, tmp_path):  # noqa: F811
    old = (media_root / "short.mp4").read_bytes()
    new = old[::-1]  # other bytes under the same key (the route streams whatever is there)
    with moto_s3() as endpoint:
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket="vers")
        s3.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket="vers", Key="talks/a.mp4", Body=old)
        url = "s3://vers/talks/a.mp4"
        memory_hash = sources.source_digest(url)  # what a memory of the first version is keyed by
        cfg = _config(media_root, tmp_path / "svc", "serve.workers=0")
        cfg.serve.media_roots = ["s3://vers/"]
        with running(cfg) as client:
            first = _ticket(client, url).json()["url"]
            s3.put_object(Bucket="vers", Key="talks/a.mp4", Body=new)
            # The first ticket still reads the version it was issued for, by its VersionId.
            assert client.get(first).content == old
            part = client.get(first, headers={"Range": "bytes=10-19"})
            assert part.status_code == 206 and part.content == old[10:20]
            # A new ticket plays what is there now; one asked for the memory's version, that one.
            assert client.get(_ticket(client, url).json()["url"]).content == new
            pinned = _ticket(client, url, memory_hash)
            assert pinned.status_code == 200 and client.get(pinned.json()["url"]).content == old
            gone = _ticket(client, url, "0" * 64)
            assert gone.status_code == 409
            assert "no longer in its store" in gone.json()["error"]


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (make nginx)")
def test_a_ticket_for_a_web_file_that_changed_answers_412(media_root, tmp_path):  # noqa: F811
    served = tmp_path / "served"
    served.mkdir()
    target = served / "clip.mp4"
    old = (media_root / "short.mp4").read_bytes()
    target.write_bytes(old)
    with nginx_serving(served, tmp_path / "nginx") as web:
        cfg = _config(media_root, tmp_path / "svc", "serve.workers=0")
        cfg.serve.media_roots = [web.url]
        url = web.url + "clip.mp4"
        with running(cfg) as client:
            ticket = _ticket(client, url).json()["url"]
            assert client.get(ticket, headers={"Range": "bytes=0-99"}).content == old[:100]
            # Another size: nginx's ETag is its mtime (to the second) and size.
            (served / "new.mp4").write_bytes(old[::-1][:-100])
            os.replace(served / "new.mp4", target)
            changed = client.get(ticket, headers={"Range": "bytes=0-99"})
            assert changed.status_code == 412
            assert "changed since its media ticket was issued" in changed.json()["error"]
            assert client.get(_ticket(client, url).json()["url"]).content == old[::-1][:-100]
