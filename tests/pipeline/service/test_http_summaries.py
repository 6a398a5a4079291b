"""Summaries over HTTP (POST /v1/summaries) on 127.0.0.1, evidence-only: a video of three titled
slides summarized as a job, its chapters at the joins titled by the slides, each thumbnail a
JPEG behind the key, the chapters exported as WebVTT (read back with webvtt-py), ffmetadata,
site lines and Markdown; bad requests refused before any job is queued."""

from __future__ import annotations

import io
from urllib.parse import unquote

import pytest
import webvtt

from tests.http_jobs import follow_job
from tests.pipeline.flows.test_summarize import SCENE_S, SLIDES, _slide
from tests.pipeline.service.test_http import _config, running
from tests.videos import make_scene_video

pytestmark = pytest.mark.slow

KEY = "summary-key"


@pytest.fixture(scope="module")
def media_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("summary_media")
    cards = [_slide(root / f"{word}.png", word, colour) for word, colour in SLIDES]
    make_scene_video(root / "slides.mp4", cards, seconds=SCENE_S)
    (root / "notes.txt").write_text("not a video")
    return root


@pytest.fixture(scope="module")
def client(ray_cluster, media_root, tmp_path_factory):
    cfg = _config(media_root, tmp_path_factory.mktemp("summary_service"), "embed.ocr=true",
                  "summary.min_chapter_s=3", "summary.max_chapter_s=60",
                  "ingest.shard_minutes=0.2", f"serve.api_key={KEY}")
    with running(cfg) as http:
        http.headers["X-API-Key"] = KEY
        yield http


@pytest.fixture(scope="module")
def summary_job(client):
    response = client.post("/v1/summaries", json={"video": "slides.mp4"})
    assert response.status_code == 202, response.text
    job, seen = follow_job(client, response.json()["id"])
    stages = [progress["stage"] for progress in seen]
    assert job["status"] == "succeeded", job["error"]
    return job, stages


def test_a_summary_job_gives_the_chapters_at_the_joins_with_thumbnails(client, summary_job,
                                                                       media_root):
    job, stages = summary_job
    assert job["kind"] == "summarize" and job["request"]["video"] == str(media_root / "slides.mp4")
    assert "ingest" in stages
    result = job["result"]
    assert result["extractive"] and result["summary"] is None and result["model"] == "none"
    chapters = result["chapters"]
    assert [c["start"] for c in chapters] == pytest.approx([0, SCENE_S, 2 * SCENE_S], abs=0.5)
    assert [c["title"] for c in chapters] == [word for word, _ in SLIDES]
    assert len(result["highlights"]) == 3
    for number, chapter in enumerate(chapters):
        assert "thumbnail" not in chapter  # no path on the server leaks out
        assert chapter["thumbnail_url"] == f"/v1/jobs/{job['id']}/chapters/{number}.jpg"
        picture = client.get(chapter["thumbnail_url"])
        assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
        assert picture.headers["content-type"] == "image/jpeg"
    assert client.get(f"/v1/jobs/{job['id']}/chapters/3.jpg").status_code == 404
    anonymous = client.get(chapters[0]["thumbnail_url"], headers={"X-API-Key": "wrong"})
    assert anonymous.status_code == 401


def test_the_chapters_download_in_every_export_format(client, summary_job):
    job, _ = summary_job
    exports = job["result"]["exports"]
    assert set(exports) == {"md", "vtt", "ffmetadata", "youtube"}
    vtt = client.get(exports["vtt"])
    assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
    assert unquote(vtt.headers["content-disposition"]).endswith("slides.chapters.vtt")
    cues = webvtt.from_buffer(io.StringIO(vtt.text))
    assert [cue.text for cue in cues] == [word for word, _ in SLIDES]
    assert [cue.start_in_seconds for cue in cues] == pytest.approx(
        [c["start"] for c in job["result"]["chapters"]], abs=0.002)
    ffmetadata = client.get(exports["ffmetadata"]).text
    assert ffmetadata.startswith(";FFMETADATA1") and ffmetadata.count("[CHAPTER]") == 3
    # video sites take chapters of 10 s or more only: these 8 s ones are refused, saying so
    site = client.get(exports["youtube"])
    assert site.status_code == 400 and "at least 10 s" in site.json()["error"]
    assert "MOUNTAIN HIKES" in client.get(exports["md"]).text
    assert client.get(f"/v1/jobs/{job['id']}/chapters.srt").status_code == 404


def test_bad_summary_requests_are_refused_before_a_job(client, media_root, tmp_path):
    before = len(client.get("/v1/jobs").json()["jobs"])
    outside = tmp_path / "elsewhere.mp4"
    outside.write_bytes(b"x")
    cases = [({"video": str(outside)}, 403), ({"video": "../elsewhere.mp4"}, 403),
             ({"video": "slides.mp4", "chapters": 0}, 422),
             ({"video": "slides.mp4", "chapters": "many"}, 422),
             ({"video": "slides.mp4", "speech": "loud"}, 422),
             ({"video": "slides.mp4", "colour": "red"}, 422), ({}, 422)]
    for body, status in cases:
        response = client.post("/v1/summaries", json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]
    assert len(client.get("/v1/jobs").json()["jobs"]) == before


def test_a_file_that_is_no_video_fails_its_job_by_name(client):
    response = client.post("/v1/summaries", json={"video": "notes.txt"})
    assert response.status_code == 202
    job, _ = follow_job(client, response.json()["id"])
    assert job["status"] == "failed" and "notes.txt" in job["error"]
    chapters = client.get(f"/v1/jobs/{job['id']}/chapters.vtt")
    assert chapters.status_code == 409 and "failed" in chapters.json()["error"]


def test_chapters_of_a_job_of_another_kind_are_not_found(client):
    response = client.post("/v1/jobs", json={"video": "slides.mp4", "question": "what is shown?"})
    assert response.status_code == 202
    assert client.get(f"/v1/jobs/{response.json()['id']}/chapters.vtt").status_code == 404


def test_a_summary_job_of_a_file_that_is_no_video_starts_no_pool(media_root, tmp_path):
    """The video is checked before the service's pools start: before, the job reached for the
    shared ingest pool (Ray's actors, seconds) and only then found the file unreadable."""
    from fastapi.testclient import TestClient

    from vidsift.pipeline.service.http import create_app

    app = create_app(_config(media_root, tmp_path / "svc"))
    with TestClient(app) as http:
        created = http.post("/v1/summaries", json={"video": "notes.txt"})
        assert created.status_code == 202, created.text
        job, _ = follow_job(http, created.json()["id"], timeout_s=20)
        assert job["status"] == "failed" and "notes.txt" in job["error"]
        service = app.state.service
        assert service._asker is None or service._asker._pool is None
