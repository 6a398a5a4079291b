"""Videos that exist only in a bucket (moto's S3 server) and behind nginx, on a real multi-node
Ray cluster (tests/cluster_remote.py, in its own process): probed, indexed in shards spread over
the nodes, each actor reading byte ranges of the object in place; searched and asked; a missing
object and a 404 fail alone; an unchanged object's memory is reused, an overwritten one is
ingested anew."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.remote_stores import NGINX
from tests.videos import run_ffmpeg

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (make nginx)")
def test_a_bucket_video_is_indexed_searched_and_asked_on_a_cluster_by_ranges(tmp_path):
    video, other = tmp_path / "talk.mp4", tmp_path / "other.mp4"
    # 20 s, a keyframe every second: shards of at most 3 s for 3 actors on 3 nodes.
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25", "-t", "20", "-c:v", "libx264",
               "-g", "25", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(video))
    run_ffmpeg("-f", "lavfi", "-i", "color=c=red:s=320x240:r=25", "-t", "8", "-c:v", "libx264",
               "-g", "25", "-pix_fmt", "yuv420p", str(other))
    work = Path(tempfile.mkdtemp(prefix="vsrem"))  # Ray's socket paths stay short
    out = tmp_path / "report.json"
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(ROOT),
           "RAY_TMPDIR": str(work)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tests.cluster_remote", str(video), str(other), str(work),
             str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(out.read_text())
    url = "s3://archive/talks/talk.mp4"
    assert report["probe_s3"] == report["probe_http"] == 20.0
    assert report["nodes"] == 3 and report["actor_nodes"] >= 2
    http_url = report["http_url"]
    assert sorted(report["indexed"]) == sorted([url, http_url])
    errors = sorted(f["error"] for f in report["failed"])
    assert errors[0].endswith("/gone.mp4: file not found") and errors[0].startswith("http://127.0.0.1:")
    assert errors[1] == "s3://archive/talks/missing.mp4: file not found"
    # Every shard ran where its actor was, reading byte ranges of the object, and the driver's
    # probe read its header only: what every process read of each video for its first ingest
    # is the driver's one header block (32 KiB: 4% of this 0.8 MB file) and the shards' bytes:
    # each reads its share plus the header and the blocks and GOP at its edges, 1.55-1.6x the
    # file in all for 7+ shards of 3 s at 32 KiB blocks (2.6x when the probe read it all).
    size, done = report["size"], report["shards_done"]
    assert sum(done) >= 14 and sum(1 for d in done if d) >= 2, report
    print(json.dumps({k: report[k] for k in ("size", "first_ingest_bytes", "unchanged_bytes")}))
    for name, (driver, *actors) in report["first_ingest_bytes"].items():
        assert driver <= 4 * 32 * 1024, (name, report)  # the header's blocks
        assert driver + sum(actors) <= 1.75 * size, (name, report)
    # Reused unchanged: asked of the store, no byte of the video read again.
    assert report["unchanged_bytes"] == {url: 0, http_url: 0}, report
    assert report["hits"] and set(report["hits"]) <= {url, http_url}
    assert report["ask_video"] == url and report["segments"] >= 1
    assert report["unchanged_reused"] == [True, True] and not report["changed_reused"], report
    assert report["hash_before"] != report["hash_after"] and report["changed_duration"] == 8.0
    # nginx answered every read of the content with 206 Partial Content for a Range.
    gets = [(status, header) for method, status, header in report["http_ranges"]
            if method == "GET" and status != 404]
    assert gets and all(status == 206 and header.startswith("bytes=") for status, header in gets)
