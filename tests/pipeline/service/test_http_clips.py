"""GET /v1/clip over real HTTP: the MP4 a user downloads (probed and decoded: the coded video
shows its frame numbers), kept for range requests and a second download, and every refused
request a JSON error with its status and nothing written."""

from __future__ import annotations

import json
import os
import subprocess

import av
import pytest

from tests.pipeline.service.test_http import _config, running
from tests.videos import (
    add_tone,
    ffmpeg_available,
    make_coded_video,
    read_code,
    run_ffmpeg,
)

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg not installed")


@pytest.fixture(scope="module")
def clip_root(tmp_path_factory):
    """coded.mp4 (8 s, 25 fps, a keyframe a second, with a tone) inside the root; a video and a
    link to it outside; a text file inside."""
    root = tmp_path_factory.mktemp("clip_media")
    add_tone(make_coded_video(root.parent / "silent.mp4", n_frames=200, fps=25, gop=25),
             root / "coded.mp4", 8)
    run_ffmpeg("-i", str(root / "coded.mp4"), "-c", "copy", str(root.parent / "outside.mp4"))
    os.symlink(root.parent / "outside.mp4", root / "escape.mp4")
    (root / "notes.txt").write_text("not a video")
    return root


@pytest.fixture()
def served(clip_root, tmp_path):
    data_dir = tmp_path / "svc"
    with running(_config(clip_root, data_dir, "export.max_s=5")) as http:
        yield http, data_dir / "clips"


def probe_and_codes(path):
    streams = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,duration", "-of", "json",
         str(path)], capture_output=True, text=True, check=True).stdout)["streams"]
    with av.open(str(path)) as container:
        codes = [read_code(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    return {s["codec_type"]: float(s["duration"]) for s in streams}, codes


def test_a_clip_is_the_asked_frames_as_an_mp4_kept_for_ranges(served, clip_root, tmp_path):
    http, kept = served
    asked = {"video": str(clip_root / "coded.mp4"), "start": 2.2, "end": 4.0}
    response = http.get("/v1/clip", params=asked)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-disposition"] == 'attachment; filename="coded_2.2-4.mp4"'
    saved = tmp_path / "download.mp4"
    saved.write_bytes(response.content)
    streams, codes = probe_and_codes(saved)
    assert codes == list(range(55, 100))
    assert streams["video"] == pytest.approx(1.8, abs=1e-3)
    assert streams["audio"] == pytest.approx(1.8, abs=0.03)
    (cut,) = kept.iterdir()
    cut_at = cut.stat().st_mtime_ns
    part = http.get("/v1/clip", params=asked, headers={"Range": "bytes=0-99"})
    assert (part.status_code, part.content) == (206, response.content[:100])
    assert [p.name for p in kept.iterdir()] == [cut.name]  # not cut again
    assert cut.stat().st_mtime_ns >= cut_at
    fast = http.get("/v1/clip", params={**asked, "start": 2.6, "fast": "true"})
    assert fast.status_code == 200, fast.text
    saved.write_bytes(fast.content)
    assert probe_and_codes(saved)[1][0] == 50  # the keyframe at 2.0 s
    assert len(list(kept.iterdir())) == 2


@pytest.mark.parametrize(("params", "status", "error"), [
    ({"video": "{root}/coded.mp4", "start": 5, "end": 4}, 400,
     "clip 5.000-4.000 s: the end must be after the start"),
    ({"video": "{root}/coded.mp4", "start": 6, "end": 9}, 400,
     "{root}/coded.mp4: clip 6.000-9.000 s is outside the video (0.000-8.000 s)"),
    ({"video": "{root}/coded.mp4", "start": 0, "end": 6}, 400,
     ("clip 0.000-6.000 s: 6.000 s is longer than export.max_s=5 s (raise it with --set "
      "export.max_s=SECONDS)")),
    ({"video": "{root}/escape.mp4", "start": 0, "end": 1}, 403,
     "{root}/escape.mp4: path is outside the allowed media roots"),
    ({"video": "{root}/../outside.mp4", "start": 0, "end": 1}, 403,
     "{root}/../outside.mp4: path is outside the allowed media roots"),
    ({"video": "{root}/notes.txt", "start": 0, "end": 1}, 403,
     "{root}/notes.txt: not a video file (only videos are streamed)"),
    ({"video": "{root}/missing.mp4", "start": 0, "end": 1}, 404,
     "{root}/missing.mp4: no such video"),
    ({"video": "{root}/coded.mp4", "start": "nan", "end": 1}, 422,
     "invalid request: query.start: Input should be a finite number"),
    ({"video": "{root}/coded.mp4", "start": -1, "end": 1}, 422,
     "invalid request: query.start: Input should be greater than or equal to 0"),
    ({"video": "{root}/coded.mp4", "start": 0}, 422, "invalid request: query.end: Field required"),
])
def test_refused_clips_are_json_errors_and_write_nothing(served, clip_root, params, status,
                                                         error):
    http, kept = served
    params = {key: value.format(root=clip_root) if isinstance(value, str) else value
              for key, value in params.items()}
    response = http.get("/v1/clip", params=params)
    assert (response.status_code, response.json()["error"]) == \
        (status, error.format(root=clip_root))
    assert not kept.exists() or list(kept.iterdir()) == []


def test_the_clip_route_is_documented_as_an_mp4_file(served):
    http, _ = served
    route = http.get("/openapi.json").json()["paths"]["/v1/clip"]["get"]
    assert set(route["responses"]["200"]["content"]) == {"video/mp4"}
    assert {"400", "401", "403", "404", "416", "422"} <= set(route["responses"])
    assert [p["name"] for p in route["parameters"]] == ["video", "start", "end", "fast",
                                                        "X-API-Key", "Range"]
