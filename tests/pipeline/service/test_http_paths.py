"""Hostile paths over real HTTP: a NUL byte, a symlink loop, a directory named like a video.
Each is a 4xx with a JSON error naming the path and the problem, never a 500; the four routes
that take a path answer a NUL byte alike (400: the same typed error the CLI prints, found by
the core path check, not by the request schema)."""

from __future__ import annotations

import os

import pytest

from tests.http_jobs import follow_job
from tests.pipeline.service.test_http import _config, media_root, running  # noqa: F401 (fixture)

NUL_PATH = "short\0.mp4"
NUL_ERROR = {"error": "short\\x00.mp4: invalid path (a NUL byte in it)"}


@pytest.fixture()
def client(media_root, tmp_path):  # noqa: F811
    with running(_config(media_root, tmp_path / "svc")) as http:
        yield http


@pytest.fixture(scope="module")
def hostile(media_root):  # noqa: F811
    """A symlink-loop pair and a directory named like a video, inside the media root."""
    os.symlink(media_root / "loop_b.mp4", media_root / "loop_a.mp4")
    os.symlink(media_root / "loop_a.mp4", media_root / "loop_b.mp4")
    (media_root / "clip.mp4").mkdir()
    return media_root


@pytest.mark.parametrize("route", ["index", "jobs", "tickets", "media"])
def test_a_nul_byte_is_400_naming_the_path_on_every_route(client, route):
    send = {
        "index": lambda: client.post("/v1/index", json={"paths": [NUL_PATH]}),
        "jobs": lambda: client.post("/v1/jobs", json={"video": NUL_PATH, "question": "q"}),
        "tickets": lambda: client.post("/v1/media/tickets", json={"path": NUL_PATH}),
        "media": lambda: client.get("/v1/media", params={"path": NUL_PATH}),
    }[route]
    response = send()
    assert (response.status_code, response.json()) == (400, NUL_ERROR)


@pytest.mark.parametrize(("name", "problem"), [
    ("loop_a.mp4", "symlink loop (too many levels of symbolic links)"),
    ("clip.mp4", "not a regular file (a directory with no videos in it: none named .avi, .flv, .m2ts, .m4v, .mkv, .mov, .mp4, .mpeg, .mpg, .ts, .webm, .wmv)"),
])
def test_media_of_a_loop_or_a_directory_is_400_naming_it(client, hostile, name, problem):
    expected = (400, {"error": f"{hostile / name}: {problem}"})
    streamed = client.get("/v1/media", params={"path": name})
    assert (streamed.status_code, streamed.json()) == expected
    ticket = client.post("/v1/media/tickets", json={"path": name})
    assert (ticket.status_code, ticket.json()) == expected


def test_a_question_about_a_symlink_loop_fails_by_name_before_any_pool(client, hostile):
    """No ray_cluster: the job fails on the path check, before the ask flow starts Ray."""
    created = client.post("/v1/jobs", json={"video": "loop_a.mp4", "question": "q"})
    assert created.status_code == 202, created.text
    job, _ = follow_job(client, created.json()["id"], timeout_s=20)
    assert job["status"] == "failed"
    assert job["error"] == f"{hostile / 'loop_a.mp4'}: symlink loop (too many levels of symbolic links)"


def test_an_index_job_whose_videos_all_fail_their_checks_starts_no_pool(media_root, hostile,
                                                                        tmp_path):  # noqa: F811
    """The job's videos are checked before any ingest actor starts: before, reaching the
    service's shared pool started it (Ray's actors, seconds) for a job that then failed every
    video on a stat call."""
    from fastapi.testclient import TestClient

    from vidsift.pipeline.service.http import create_app

    app = create_app(_config(media_root, tmp_path / "svc"))
    with TestClient(app) as http:
        created = http.post("/v1/index", json={"paths": ["loop_a.mp4", "clip.mp4"]})
        assert created.status_code == 202, created.text
        job, _ = follow_job(http, created.json()["id"], timeout_s=20)
        assert job["status"] == "failed" and len(job["result"]["failed"]) == 2
        service = app.state.service
        assert service._asker is None or service._asker._pool is None
