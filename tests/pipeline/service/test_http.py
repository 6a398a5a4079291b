"""The HTTP service over real HTTP on 127.0.0.1 (uvicorn in a thread, and Ray Serve): concurrent
jobs, a restart with jobs queued, path traversal, malformed requests, the API key."""

from __future__ import annotations

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from tests.videos import make_coded_video
from vidsift.core.config import load_config
from vidsift.core.errors import ConfigError
from vidsift.pipeline.service.http import create_app
from vidsift.pipeline.service.jobs import FINAL_STATUSES, SUCCEEDED, JobStore


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(cfg, port=None):
    """The app on a real socket at 127.0.0.1 (port: a free one unless given); yields an httpx
    client bound to it."""
    import uvicorn

    port = port or _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def media_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("served_media")
    make_coded_video(root / "short.mp4", n_frames=40, fps=10, size=(160, 120), gop=10)
    (root.parent / "outside.mp4").write_bytes(b"secret")
    os.symlink(root.parent / "outside.mp4", root / "escape.mp4")
    return root


def _config(media_root, data_dir, *extra):
    return load_config("default", [
        f"serve.data_dir={data_dir}", f"serve.media_roots=[{media_root}]",
        f"index.dir={data_dir}/index", "vlm.model=none", "embed.ocr=false",
        "budget.tokens=256", "serve.workers=2", *extra,
    ])


def _wait_all(client, ids, timeout_s=150):
    deadline = time.monotonic() + timeout_s
    while True:
        jobs = {i: client.get(f"/v1/jobs/{i}").json() for i in ids}
        if all(j["status"] in FINAL_STATUSES for j in jobs.values()):
            return jobs
        assert time.monotonic() < deadline, {i: j["status"] for i, j in jobs.items()}
        time.sleep(0.3)


def test_twenty_concurrent_jobs_then_a_restart_with_jobs_queued(ray_cluster, media_root,
                                                                 tmp_path):
    cfg = _config(media_root, tmp_path / "svc")
    video = str(media_root / "short.mp4")
    body = {"video": video, "question": "what is shown?", "options": {"budget": 256}}
    with running(cfg) as client:
        with ThreadPoolExecutor(max_workers=20) as pool:
            responses = list(pool.map(lambda _: client.post("/v1/jobs", json=body), range(20)))
        assert [r.status_code for r in responses] == [202] * 20
        ids = [r.json()["id"] for r in responses]
        assert len(set(ids)) == 20
        jobs = _wait_all(client, ids)
        errors = [j["error"] for j in jobs.values()]
        assert {j["status"] for j in jobs.values()} == {SUCCEEDED}, errors
        for job in jobs.values():
            result = job["result"]
            assert result["answer"] is None and result["segments"]
            for seg in result["segments"]:
                assert 0.0 <= seg["start"] <= seg["end"] <= 4.0 + 1e-6
            assert result["tokens"] <= 256 and "total" in result["timings"]
        thumb = jobs[ids[0]]["result"]["segments"][0]["thumbnail_url"]
        image = client.get(thumb)
        assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"  # a JPEG
        pages = [client.get("/v1/jobs", params={"limit": 6, "offset": o}).json()
                 for o in range(0, 24, 6)]
        assert [p["total"] for p in pages] == [20] * 4
        assert [len(p["jobs"]) for p in pages] == [6, 6, 6, 2]
        paged = [j["id"] for p in pages for j in p["jobs"]]
        assert sorted(paged) == sorted(ids)  # every job once across the pages

        # Submit more, then stop the service before its workers can finish them.
        # (40: a question about a video whose memory exists takes well under a second)
        later = [client.post("/v1/jobs", json=body).json()["id"] for _ in range(40)]
    store = JobStore(tmp_path / "svc")
    pending = [i for i in later if store.get(i).status not in FINAL_STATUSES]
    assert pending, "every job finished before the restart; nothing was left to pick up"
    with running(cfg) as client:
        jobs = _wait_all(client, later)
        assert {j["status"] for j in jobs.values()} == {SUCCEEDED}
        # Results from before the restart are still there.
        assert client.get(f"/v1/jobs/{ids[0]}").json()["result"]["segments"]


@pytest.fixture()
def client(media_root, tmp_path):
    with running(_config(media_root, tmp_path / "svc")) as http:
        yield http


@pytest.mark.parametrize("video", ["../../etc/passwd", "/etc/passwd", "escape.mp4"])
def test_paths_outside_the_media_root_are_403(client, video):
    response = client.post("/v1/jobs", json={"video": video, "question": "q"})
    assert response.status_code == 403
    assert "outside the allowed media roots" in response.json()["error"]
    response = client.post("/v1/index", json={"paths": [video]})
    assert response.status_code == 403


def test_an_index_job_never_reads_a_video_its_manifest_or_folder_leads_out_to(client, media_root):
    """The paths an index job names are inside the roots, but a manifest's entry or a folder's
    symlink may lead out: each such video fails by name and is never hashed or indexed. A job
    whose every video fails is failed, its failures still in its result, shaped as the CLI's
    JSON ({path, error})."""
    import json
    import shutil

    outside = media_root.parent / "elsewhere.mp4"
    shutil.copy(media_root / "short.mp4", outside)
    course = media_root / "course"
    course.mkdir(exist_ok=True)
    (course / "list.jsonl").write_text(json.dumps(str(outside)) + "\n" + json.dumps("../short.mp4") + "\n")
    os.symlink(outside, course / "linked.mp4")
    ids = [client.post("/v1/index", json={"paths": [path]}).json()["id"]
           for path in ("course/list.jsonl", "course")]
    jobs = _wait_all(client, ids)
    refused = {"path": str(outside),
               "error": f"{outside}: path is outside the allowed media roots"}
    for job in jobs.values():
        assert job["result"]["failed"] == [refused]
    listed = jobs[ids[0]]
    assert listed["status"] == SUCCEEDED, listed["error"]
    assert listed["result"]["indexed"] + listed["result"]["skipped"] == [
        str(media_root / "short.mp4")]
    folder = jobs[ids[1]]  # the folder held only the link
    assert folder["status"] == "failed" and not folder["result"]["indexed"]
    assert folder["error"] == f"no video indexed: {refused['error']}"


def test_malformed_and_unknown_fields_are_422_with_a_message(client, media_root):
    bad_json = client.post("/v1/jobs", content=b'{"video": "short.mp4", "question": ',
                           headers={"content-type": "application/json"})
    assert bad_json.status_code == 422
    assert "JSON" in bad_json.json()["error"] and "Traceback" not in bad_json.text
    unknown = client.post("/v1/jobs", json={"video": "short.mp4", "question": "q", "colour": 1})
    assert unknown.status_code == 422 and "colour" in unknown.json()["error"]
    nested = client.post("/v1/jobs", json={"video": "short.mp4", "question": "q",
                                           "options": {"temperature": 2}})
    assert nested.status_code == 422 and "temperature" in nested.json()["error"]
    too_long = client.post("/v1/jobs", json={"video": "short.mp4", "question": "q" * 2001})
    # The server's own limit answers like the schema's checks: the message and its details.
    assert too_long.status_code == 422 and too_long.json() == {
        "error": "invalid request: question: at most 2000 characters",
        "details": ["question: at most 2000 characters"]}
    assert client.get("/v1/jobs/nope").status_code == 404
    assert client.get("/v1/jobs/nope").json() == {"error": "no job 'nope'"}
    assert client.get("/v1/jobs", params={"limit": 10_000}).status_code == 422
    # An offset past SQLite's integers is refused, one at its end is an empty page (was a 500).
    beyond = client.get("/v1/jobs", params={"offset": 2**63})
    assert beyond.status_code == 422 and beyond.json()["details"] == [
        f"query.offset: Input should be less than or equal to {2**63 - 1}"]
    assert client.get("/v1/jobs", params={"offset": 2**63 - 1}).json()["jobs"] == []


def test_max_new_tokens_is_capped_and_cancel_works(client):
    created = client.post("/v1/jobs", json={"video": "short.mp4", "question": "q",
                                            "options": {"max_new_tokens": 10**6}})
    assert created.status_code == 202
    job_id = created.json()["id"]
    job = client.delete(f"/v1/jobs/{job_id}").json()
    assert job["request"]["options"]["max_new_tokens"] == 256  # vlm.max_new_tokens
    assert job["status"] in FINAL_STATUSES  # cancelled, unless it had already finished
    assert client.get("/docs").status_code == 200
    assert "/v1/jobs" in client.get("/openapi.json").json()["paths"]


def test_api_key_rule(media_root, tmp_path):
    with pytest.raises(ConfigError, match="api_key"):
        create_app(_config(media_root, tmp_path, "serve.host=0.0.0.0"))
    with running(_config(media_root, tmp_path / "svc", "serve.api_key=s3cret")) as http:
        assert http.get("/v1/jobs").status_code == 401
        assert "X-API-Key" in http.get("/v1/jobs").json()["error"]
        assert http.get("/v1/jobs", headers={"X-API-Key": "wrong"}).status_code == 401
        assert http.get("/v1/jobs", headers={"X-API-Key": "s3cret"}).status_code == 200


def test_ray_serve_hosts_the_app_on_loopback(ray_cluster, media_root, tmp_path):
    from ray import serve

    from vidsift.pipeline.service.http import build_deployment

    port = _free_port()
    cfg = _config(media_root, tmp_path / "svc", f"serve.port={port}")
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(build_deployment(cfg), name="vidsift", route_prefix="/")
        response = httpx.get(f"http://127.0.0.1:{port}/v1/jobs", timeout=30)
        assert response.status_code == 200 and response.json()["total"] == 0
        bad = httpx.post(f"http://127.0.0.1:{port}/v1/jobs", json={"video": "../../etc/passwd",
                                                                   "question": "q"}, timeout=30)
        assert bad.status_code == 403
    finally:
        serve.shutdown()


def test_an_ask_completes_while_an_index_job_ingests(ray_cluster, media_root, tmp_path):
    # A 90 s video in 3 s shards keeps the ingest pool busy; the ask's short video gets its
    # shard between them and answers before the archive job is done.
    long_video = make_coded_video(media_root / "long.mp4", n_frames=900, fps=10, size=(160, 120),
                                  gop=10)
    cfg = _config(media_root, tmp_path / "svc", "ingest.shard_minutes=0.05")
    with running(cfg) as client:
        indexing = client.post("/v1/index", json={"paths": [str(long_video)]}).json()["id"]
        time.sleep(1.0)
        asking = client.post("/v1/jobs", json={"video": str(media_root / "short.mp4"),
                                               "question": "what is shown?"}).json()["id"]
        jobs = _wait_all(client, [indexing, asking], timeout_s=300)
        assert {j["status"] for j in jobs.values()} == {SUCCEEDED}, [j["error"] for j in jobs.values()]
        assert jobs[asking]["result"]["segments"]
        assert jobs[asking]["finished_at"] < jobs[indexing]["finished_at"]
        assert jobs[indexing]["result"]["indexed"] == [str(long_video)]
        # The index job left the long video's memory: asking about it now decodes nothing.
        again = client.post("/v1/jobs", json={"video": str(long_video), "question": "q"}).json()["id"]
        assert _wait_all(client, [again])[again]["result"]["reused_memory"] is True


def test_a_conversation_job_cancelled_while_it_runs_records_no_turn(ray_cluster, media_root,
                                                                   tmp_path):
    video = make_coded_video(media_root / "cancelled.mp4", n_frames=300, fps=10,
                             size=(160, 120), gop=10)
    # One worker: the next job starts only once the cancelled one's run is over.
    with running(_config(media_root, tmp_path / "svc", "serve.workers=1")) as client:
        asked = client.post("/v1/jobs", json={"video": str(video), "question": "what is shown?",
                                              "conversation": "chat"}).json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/v1/jobs/{asked}").json()["status"] == "queued":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.02)
        assert client.delete(f"/v1/jobs/{asked}").json()["status"] == "cancelled"
        again = client.post("/v1/jobs", json={"video": str(video), "question": "and now?",
                                              "conversation": "chat"}).json()["id"]
        jobs = _wait_all(client, [asked, again])
        assert jobs[asked]["status"] == "cancelled" and jobs[asked]["result"] is None
        assert jobs[again]["status"] == SUCCEEDED, jobs[again]["error"]
        assert jobs[again]["result"]["conversation"] == {"name": "chat", "turn": 1}
        turns = client.get("/v1/conversations/chat").json()["turns"]
        assert [(t["number"], t["question"]) for t in turns] == [(1, "and now?")]


def test_follow_ups_and_asks_across_the_index_over_http(ray_cluster, media_root, tmp_path):
    cfg = _config(media_root, tmp_path / "svc")
    short = str((media_root / "short.mp4").resolve())
    index_dir = tmp_path / "svc" / "index"
    with running(cfg) as client:
        # Before anything is indexed, a question without a video fails naming the index dir.
        no_index = client.post("/v1/jobs", json={"question": "what is shown?"}).json()["id"]
        first = client.post("/v1/jobs", json={"video": "short.mp4", "question": "what is shown?",
                                              "conversation": "chat"}).json()["id"]
        # The follow-up leaves the video out and is sent before the first turn is done: it
        # waits for it, then asks about the conversation's video, read from its memory.
        follow = client.post("/v1/jobs", json={"question": "and then?", "conversation": "chat"})
        assert follow.status_code == 202
        jobs = _wait_all(client, [no_index, first, follow.json()["id"]])
        assert jobs[no_index]["status"] == "failed"
        assert f"{index_dir}: no clip index here" in jobs[no_index]["error"]
        assert jobs[first]["result"]["conversation"] == {"name": "chat", "turn": 1}
        job = jobs[follow.json()["id"]]
        assert job["status"] == SUCCEEDED, job["error"]
        assert job["started_at"] >= jobs[first]["finished_at"]
        result = job["result"]
        assert result["conversation"] == {"name": "chat", "turn": 2}
        assert result["video"] == short and result["reused_memory"]
        assert result["history"]["turns"] == 1 and result["history"]["dropped"] == 0
        turns = client.get("/v1/conversations/chat").json()["turns"]
        assert [(t["number"], t["question"]) for t in turns] == [(1, "what is shown?"),
                                                                 (2, "and then?")]
        assert client.get("/v1/conversations/nope").json() == {"error": "no conversation 'nope'"}
        # Now that the conversation has its video, a follow-up is checked against the roots
        # when it is sent.
        checked = client.post("/v1/jobs", json={"question": "q", "conversation": "chat"})
        assert client.get(f"/v1/jobs/{checked.json()['id']}").json()["request"]["video"] == short
        other = client.post("/v1/jobs", json={"video": "other.mp4", "question": "q",
                                              "conversation": "chat"})
        assert other.status_code == 400 and "conversation 'chat' is about" in other.json()["error"]
        long_name = client.post("/v1/jobs", json={"video": "short.mp4", "question": "q",
                                                  "conversation": "c" * 201})
        assert long_name.status_code == 422 and "conversation" in long_name.json()["error"]
        # Indexed, a question without a video goes across the index.
        indexing = client.post("/v1/index", json={"paths": ["short.mp4"]}).json()["id"]
        assert _wait_all(client, [indexing])[indexing]["status"] == SUCCEEDED
        thumbnail = next((index_dir / "thumbs").glob("*/*.jpg")).relative_to(index_dir)
        shown = client.get(f"/v1/index/{thumbnail}")
        assert shown.status_code == 200 and shown.content[:2] == b"\xff\xd8"
        across = client.post("/v1/jobs", json={"question": "what is shown?"}).json()["id"]
        job = _wait_all(client, [across])[across]
        assert job["status"] == SUCCEEDED, job["error"]
        assert job["result"]["video"] == "" and job["result"]["videos"] == [short]
        assert {s["video"] for s in job["result"]["segments"]} == {short}
        assert job["result"]["tokens"] <= 256
    # The same index served with media roots that hold none of its videos: nothing to read.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with running(_config(elsewhere, tmp_path / "svc")) as client:
        refused = client.post("/v1/jobs", json={"question": "what is shown?"}).json()["id"]
        job = _wait_all(client, [refused])[refused]
        assert job["status"] == "failed"
        assert "holds no clips of videos this service may read" in job["error"]
        # Nor does it show their thumbnails.
        hidden = client.get(f"/v1/index/{thumbnail}")
        assert hidden.status_code == 404
        assert hidden.json() == {"error": f"no thumbnail {thumbnail.relative_to('thumbs')}"}
