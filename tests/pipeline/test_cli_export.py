"""`vidsift export` as a user runs it (the venv's console script): one line saying what was
written and how, or one error line and exit code 1 with nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.videos import ffmpeg_available, make_coded_video

VIDSIFT = Path(sys.executable).parent / "vidsift"

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="ffmpeg not installed")


def vidsift(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(VIDSIFT), *args], cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=120)


def test_export_exact_fast_and_refused(tmp_path):
    make_coded_video(tmp_path / "coded.mp4", n_frames=250, fps=25, gop=25)
    exact = vidsift("export", "coded.mp4", "--start", "0:02.2", "--end", "0:05", "--out",
                    "clip.mp4", cwd=tmp_path)
    assert exact.returncode == 0, exact.stderr
    assert exact.stdout.startswith("clip.mp4: 2.200-5.000 s of coded.mp4 (70 frames, 2.800 s, "
                                   "re-encoded, no audio) in ")
    fast = vidsift("export", "coded.mp4", "--start", "2.6", "--end", "5", "-o", "fast.mp4",
                   "--fast", "--json", cwd=tmp_path)
    assert fast.returncode == 0, fast.stderr
    assert {key: json.loads(fast.stdout)[key] for key in ("start", "fast", "asked_start")} == \
        {"start": 2.0, "fast": True, "asked_start": 2.6}
    fast_line = vidsift("export", "coded.mp4", "--start", "2.6", "--end", "5", "-o", "fast.mp4",
                        "--fast", cwd=tmp_path)
    assert "stream copy from the keyframe at 2.000 s, 0.600 s before --start" in fast_line.stdout
    refused = vidsift("export", "coded.mp4", "--start", "9", "--end", "0:12", "-o", "late.mp4",
                      cwd=tmp_path)
    assert (refused.returncode, refused.stdout, refused.stderr) == (
        1, "", "error: coded.mp4: clip 9.000-12.000 s is outside the video (0.000-10.000 s)\n")
    assert not (tmp_path / "late.mp4").exists()
