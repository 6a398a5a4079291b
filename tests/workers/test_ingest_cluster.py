"""Ingest on a real multi-node Ray cluster (three raylets on 127.0.0.1): one video's shards run on
more than one node, and a worker node removed mid-ingest loses nothing and doubles nothing, of its
frames or of its speech (recognised in the same shards)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.speech_videos import Line, espeak_available, make_speech_video

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_shards_spread_over_nodes_and_survive_a_node_loss(tmp_path):
    # 30 s, keyframe every second: 3 s shards give 10 shards for 3 actors on 3 nodes.
    if not espeak_available():
        pytest.fail("espeak-ng must be on PATH (make test installs it: make espeak)")
    video = tmp_path / "long.mp4"
    make_speech_video(video, 30, [Line(1.0 + 6 * n, text) for n, text in enumerate(
        ["The delivery truck arrives at the north gate", "Meeting at nine in the library",
         "The password is falcon", "Turn left at the bridge", "Bring your passport"])],
        keyframe_every_s=1)
    work = Path(tempfile.mkdtemp(prefix="vsclu"))  # Ray's socket paths stay short
    out = tmp_path / "report.json"
    # RAY_TMPDIR: ray.cluster_utils.Cluster writes the cluster's address under Ray's default temp
    # dir (/tmp/ray/ray_current_cluster), which exists only where Ray ran before; here it is the
    # test's own folder, which Cluster's head_node_args temp_dir (work/ray) creates.
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(ROOT),
           "RAY_TMPDIR": str(work)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tests.cluster_ingest", str(video), str(work), str(out)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=540,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report["nodes"] == 3
    assert report["actor_nodes"] >= 2 and report["nodes_that_ran_shards"] >= 2
    # The node went away mid-ingest; the run still produced the same memory.
    assert report["removed"] == 1 and report["shards_rerun"] >= 1, report
    assert report["frames"][0] == report["frames"][1] > 0
    assert report["same_times"] and report["same_descriptions"] and report["same_clips"]
    assert report["visual_max_diff"] < 1e-5 and report["text_max_diff"] < 1e-5
    assert report["stored_equal"]
    assert report["segments"][0] >= 4 and report["same_transcript"], report
