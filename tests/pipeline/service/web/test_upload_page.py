"""The page uploads a video (POST /v1/files) and indexes it: the upload lands in the service's
own storage and its index job shows as one typed path's would."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pipeline.service.web.conftest import KEY
from tests.pipeline.service.web.test_page import one, wait
from tests.videos import make_scene_video

pytestmark = pytest.mark.slow


def test_a_video_uploaded_from_the_page_is_stored_and_indexed(browser, site, tmp_path):
    video = make_scene_video(tmp_path / "from my phone.mp4", ["color=c=blue", "testsrc"],
                             seconds=2)
    browser.get(site["url"])
    if one(browser, "#key-status").text != "key accepted":
        one(browser, "#api-key").send_keys(KEY)
        one(browser, "#save-key").click()
        wait(browser, lambda d: one(d, "#key-status").text == "key accepted", "the key accepted")
    one(browser, "#upload-file").send_keys(str(video))
    one(browser, "#upload-button").click()
    wait(browser, lambda d: one(d, ".index-job .summary").text.startswith("1 indexed")
         if d.find_elements("css selector", ".index-job .summary") else False,
         "the uploaded video's index job")
    stored = list((Path(site["cfg"].serve.data_dir) / "uploads").rglob("*.mp4"))
    assert [p.name for p in stored] == ["from_my_phone.mp4"]
    assert stored[0].read_bytes() == video.read_bytes()
