"""Caption jobs over HTTP (POST /v1/caption) on 127.0.0.1 with the tiny random Qwen2.5-VL: a
folder of lectures captioned clip by clip with exact spans, each clip's speech what its subtitles
say then, a broken file and a link out of the media root failed while the rest is captioned,
progress in the job, the SRT/WebVTT downloads, the captions in the clip index; scene clips on the
service's ingest pool; a cancelled job stops; bad requests and an evidence-only service."""

from __future__ import annotations

import os
from itertools import pairwise
from pathlib import Path

import pytest

from tests.http_jobs import follow_job
from tests.pipeline.service.test_http import _config, running
from tests.speech_videos import make_speech_video, srt
from vidsift.core.media import content_hash
from vidsift.index.memory import MemoryStore
from vidsift.pipeline.service.caption_job import JobCancelled, caption_job
from vidsift.pipeline.flows.caption import CaptionOutput
from vidsift.pipeline.service.jobs import SUCCEEDED
from vidsift.pipeline.service.security import MediaRoots

INTRO_CUES = [(0.5, 1.5, "Welcome to the lecture"), (2.5, 3.5, "Chapter two begins")]
TALK_CUES = [(1.0, 1.8, "Questions from the audience")]


@pytest.fixture(scope="module")
def media_root(tmp_path_factory):
    """root/course: intro.mp4 (a subtitle track), talk.mp4 (a sidecar talk.srt), broken.mp4 (not
    a video), escape.mp4 (a link to a real video outside the root); 4 s each."""
    root = tmp_path_factory.mktemp("lectures")
    course = root / "course"
    course.mkdir()
    make_speech_video(course / "intro.mp4", 4, audio="none", subtitle_codec="mov_text",
                      cues=INTRO_CUES)
    make_speech_video(course / "talk.mp4", 4, audio="none")
    (course / "talk.srt").write_text(srt(TALK_CUES))
    (course / "broken.mp4").write_bytes(os.urandom(4096))
    make_speech_video(root.parent / "outside.mp4", 4, audio="silent")
    os.symlink(root.parent / "outside.mp4", course / "escape.mp4")
    return root


@pytest.fixture(scope="module")
def service_cfg(media_root, tiny_qwen_dir, tmp_path_factory):
    return _config(media_root, tmp_path_factory.mktemp("caption_service"),
                   f"vlm.model={tiny_qwen_dir}", "vlm.device=cpu", "vlm.dtype=float32",
                   "caption.frames_per_clip=2", "caption.tokens_per_clip=32",
                   "caption.max_new_tokens=4", "pool.max_batch_size=2", "pool.num_actors=1",
                   "pool.num_cpus_per_actor=0.5", "speech.mode=none")  # a job's "speech" sets it


@pytest.fixture(scope="module")
def client(ray_cluster, service_cfg):
    with running(service_cfg) as http:
        http.data_dir = Path(service_cfg.serve.data_dir)
        yield http


def test_a_folder_is_captioned_clip_by_clip_with_its_subtitles(client, media_root):
    course = media_root / "course"
    response = client.post("/v1/caption", json={"paths": ["course"], "speech": "subtitles",
                                                "clip_s": 2, "to_index": True})
    assert response.status_code == 202, response.text
    job, seen = follow_job(client, response.json()["id"])
    assert job["status"] == SUCCEEDED, job["error"]
    assert job["request"] == {"paths": [str(course)], "speech": "subtitles", "clips": "fixed",
                              "clip_s": 2.0, "to_index": True}
    # progress while it ran, then its last step kept: every video found, one by one
    assert seen and {(p["stage"], p["total"]) for p in seen} == {("caption", 4)}
    assert {k: job["progress"][k] for k in ("stage", "done", "total")} == {
        "stage": "caption", "done": 4, "total": 4}

    result = job["result"]
    outside = str((media_root.parent / "outside.mp4").resolve())
    broken = str(course / "broken.mp4")
    assert {k: result[k] for k in ("videos", "captioned", "skipped", "failed", "clips")} == {
        "videos": 4, "captioned": 2, "skipped": 0, "failed": 2, "clips": 4}
    assert set(result["failures"]) == {broken, outside}
    assert "broken.mp4" in result["failures"][broken]
    assert "outside the allowed media roots" in result["failures"][outside]
    assert result["output"] == str(client.data_dir / "captions" / job["id"])

    said = {"intro.mp4": ["Welcome to the lecture", "Chapter two begins"],
            "talk.mp4": ["Questions from the audience", ""]}
    assert [v["video"] for v in result["captions"]] == [str(course / n) for n in said]
    for video in result["captions"]:
        clips = video["clips"]
        assert [(c["start"], c["end"]) for c in clips] == [(0.0, 2.0), (2.0, 4.0)]
        assert [c["speech"] for c in clips] == said[os.path.basename(video["video"])]
        assert all(isinstance(c["text"], str) for c in clips)

        subtitles = client.get(video["srt_url"])
        assert subtitles.status_code == 200
        assert subtitles.headers["content-type"].startswith("application/x-subrip")
        assert subtitles.text.startswith(f"1\n00:00:00,000 --> 00:00:02,000\n{clips[0]['text']}")
        webvtt = client.get(video["vtt_url"])
        assert webvtt.headers["content-type"].startswith("text/vtt")
        assert webvtt.text.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n")
    folder = f"/v1/jobs/{job['id']}/subtitles"
    for name in ("..%2F..%2Fjobs.sqlite3", "nothing.srt", "intro.txt"):
        assert client.get(f"{folder}/{name}").status_code == 404, name

    # to_index: the captions joined the clip index's text space; a caption finds its clip
    assert result["index"] == {"added": 2, "skipped": 0, "clips": 4}
    target = max((c | {"video": v["video"]} for v in result["captions"] for c in v["clips"]),
                 key=lambda c: len(c["text"]))
    hit = client.get("/v1/search", params={"q": target["text"], "k": 1}).json()["hits"][0]
    assert (hit["video"], hit["text"]) == (target["video"], target["text"])


def test_scene_clips_by_default_on_the_services_ingest_pool(client, service_cfg, media_root):
    """No clips given: the server's caption.clips (scenes), cut on the memory the service's
    ingest pool makes and stores (where an ask of that video finds it)."""
    video = str(media_root / "course" / "talk.mp4")
    job, _ = follow_job(client, client.post("/v1/caption", json={"paths": [video]}).json()["id"])
    assert job["status"] == SUCCEEDED, job["error"]
    assert job["request"] == {"paths": [video], "to_index": False}
    [captioned] = job["result"]["captions"]
    spans = [(c["start"], c["end"]) for c in captioned["clips"]]
    assert spans[0][0] == 0.0 and spans[-1][1] == 4.0
    assert all(a[1] == b[0] for a, b in pairwise(spans))  # contiguous, no gap
    assert all("speech" not in c for c in captioned["clips"])  # speech off: none reported
    memories = MemoryStore(service_cfg.index.dir)
    assert memories.get(content_hash(video), service_cfg.memory_key()) is not None


def test_bad_caption_requests(client, media_root):
    jobs_before = client.get("/v1/jobs").json()["total"]
    for path in ("../outside.mp4", "/etc/passwd", "course/escape.mp4"):
        refused = client.post("/v1/caption", json={"paths": ["course/intro.mp4", path]})
        assert refused.status_code == 403, path
        assert "outside the allowed media roots" in refused.json()["error"]
    for body, named in [({"paths": ["course"], "speech": "loud"}, "speech"),
                        ({"paths": ["course"], "clips": "scenes", "clip_s": 4}, "clip_s"),
                        ({"paths": ["course"], "clip_s": 0.01}, "clip_s"),
                        ({"paths": ["course"], "clips": "chapters"}, "clips"),
                        ({"paths": []}, "paths"),
                        ({"paths": ["course"], "colour": 1}, "colour")]:
        invalid = client.post("/v1/caption", json=body)
        assert invalid.status_code == 422 and named in invalid.json()["error"], (body, invalid.text)
    assert client.get("/v1/jobs").json()["total"] == jobs_before  # none was queued


def test_an_evidence_only_service_says_captioning_needs_a_vlm(media_root, tmp_path):
    with running(_config(media_root, tmp_path / "svc")) as evidence_only:
        response = evidence_only.post("/v1/caption", json={"paths": ["course"]})
        assert response.status_code == 400
        assert "captioning needs a VLM" in response.json()["error"]
        assert evidence_only.get("/v1/jobs").json()["total"] == 0


def test_a_cancelled_caption_job_stops_after_the_video_in_progress(ray_cluster, service_cfg,
                                                                    media_root, tmp_path):
    """DELETE marks the job cancelled: its next progress step (a video finished) is refused, and
    the job stops there, what it committed kept."""
    steps = []

    def cancelled_after_start(done, total, video):
        steps.append((done, total, video))
        return video is None  # the first step, before any video, is taken

    cfg = service_cfg.model_copy(update={"caption": service_cfg.caption.model_copy(
        update={"clips": "fixed", "clip_s": 2.0})})
    with pytest.raises(JobCancelled, match="cancelled after 1 of 2 videos"):
        caption_job([str(media_root / "course" / n) for n in ("intro.mp4", "talk.mp4")],
                    tmp_path / "out", cfg, MediaRoots([str(media_root)]).check,
                    cancelled_after_start)
    assert [step[:2] for step in steps] == [(0, 2), (1, 2)]
    assert CaptionOutput(tmp_path / "out").is_done(steps[1][2])
    assert len(list((tmp_path / "out" / "done").iterdir())) == 1
