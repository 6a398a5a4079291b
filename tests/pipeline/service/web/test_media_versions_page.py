"""The page plays the version of a remote video its memory was made from (a real browser, the
service on a real socket, moto's S3 server with a versioned bucket): the object overwritten
after it was indexed, the page's ticket asks for the memory's content_hash (/v1/videos), so
the player loads the old version (its duration, its bytes), not what the store holds now."""

from __future__ import annotations

import numpy as np
import pytest

from tests.pipeline.service.test_http import _free_port, running
from tests.pipeline.service.web.conftest import KEY
from tests.pipeline.service.web.test_page import one, wait
from tests.remote_stores import moto_s3, s3_client
from tests.videos import make_coded_video
from vidsift.core import sources
from vidsift.core.config import load_config
from vidsift.index.clip_index import ClipIndex, VideoClips
from vidsift.index.store import NewClip

URL = "s3://vers/talks/a.mp4"


def _indexed(cfg, url: str, content_hash: str, duration: float) -> None:
    """The index holding one memory of url: its content hash and one clip (vectors as any
    embedder's: unit, one per clip), as an ingest of that version leaves it."""
    unit = np.eye(1, 8, dtype=np.float32)
    with ClipIndex(cfg.index.dir, cfg.index, embedder="test") as index:
        index.add_video(VideoClips(path=url, content_hash=content_hash, duration=duration,
                                   clips=[NewClip(0.0, duration, "thumbs/none.jpg", "")],
                                   visual=unit, text=unit))


def test_the_page_plays_the_version_its_memory_names_after_an_overwrite(browser, tmp_path):
    old = make_coded_video(tmp_path / "old.mp4", n_frames=20, fps=10, size=(160, 120)).read_bytes()
    new = make_coded_video(tmp_path / "new.mp4", n_frames=50, fps=10, size=(160, 120)).read_bytes()
    with moto_s3() as endpoint:
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket="vers")
        s3.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket="vers", Key="talks/a.mp4", Body=old)
        cfg = load_config("default", [
            f"serve.data_dir={tmp_path / 'svc'}", f"index.dir={tmp_path / 'index'}",
            "serve.media_roots=[s3://vers/]", f"serve.api_key={KEY}", "serve.workers=0",
            "vlm.model=none"])
        _indexed(cfg, URL, sources.source_digest(URL), 2.0)
        s3.put_object(Bucket="vers", Key="talks/a.mp4", Body=new)  # after it was indexed
        port = _free_port()
        with running(cfg, port):
            browser.get(f"http://127.0.0.1:{port}/")
            wait(browser, lambda d: "API key" in one(d, "#key-status").text, "the key prompt")
            one(browser, "#api-key").send_keys(KEY)
            one(browser, "#save-key").click()
            wait(browser, lambda d: one(d, "#key-status").text == "key accepted", "the key")
            wait(browser, lambda d: d.execute_script(
                "return [...document.querySelectorAll('#ask-video option')]"
                ".some((o) => o.value === arguments[0])", URL), "the indexed video listed")
            browser.execute_script("playAt(arguments[0], 0.5)", URL)  # what a result's click does
            wait(browser, lambda d: d.execute_script(
                "return document.getElementById('player').readyState") >= 1, "the player loaded")
            duration = browser.execute_script("return document.getElementById('player').duration")
            assert abs(duration - 2.0) < 0.2, duration  # the old version (the new one is 5 s)
            served = browser.execute_async_script(
                "const done = arguments[0];"
                "fetch(document.getElementById('player').src).then((r) => r.arrayBuffer())"
                ".then((b) => done(Array.from(new Uint8Array(b))))")
            assert bytes(served) == old
