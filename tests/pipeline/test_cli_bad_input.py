"""The installed `vidsift` console script, run as a user runs it, on files that are no video: one
line naming the file and the problem, exit code 1, and fast: the path is checked before Ray or
any model starts (asking once took 15-25 s to say a file was empty)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.videos import make_empty_file, make_text_file

VIDSIFT = Path(sys.executable).parent / "vidsift"  # the venv's console script
# Refusing takes 0.7-1.5 s on an idle 2-core machine (the acceptance is 3 s); the bound leaves
# room for a loaded one and still fails a run that starts Ray (15-25 s). That no Ray started at
# all is checked directly: its temp dir (under the run's TMPDIR) stays empty.
FAST_S = 6.0

PROBLEMS = {
    "empty.mp4": "file is empty",
    "notes.mp4": "not a video (no decodable video stream) (not a media container: Invalid "
                 "data found when processing input)",
    "clip.mp4": "not a regular file (a directory with no videos in it: none named .avi, .flv, .m2ts, .m4v, .mkv, .mov, .mp4, .mpeg, .mpg, .ts, .webm, .wmv)",
    "loop.mp4": "symlink loop (too many levels of symbolic links)",
}


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> Path:
    """A 0-byte file, a text file named .mp4, a directory named like a video, a symlink loop."""
    folder = tmp_path_factory.mktemp("bad_inputs")
    make_empty_file(folder / "empty.mp4")
    make_text_file(folder / "notes.mp4")
    (folder / "clip.mp4").mkdir()
    os.symlink(folder / "loop_back.mp4", folder / "loop.mp4")
    os.symlink(folder / "loop.mp4", folder / "loop_back.mp4")
    return folder


def vidsift(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    """Run the console script with a TMPDIR of its own (Ray would make its session dir there);
    raises if anything was left in it."""
    tmp = cwd / "process-tmp"
    tmp.mkdir(exist_ok=True)
    started = time.perf_counter()
    done = subprocess.run([str(VIDSIFT), *args], cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=120, env={**os.environ, "TMPDIR": str(tmp)})
    seconds = time.perf_counter() - started
    assert list(tmp.iterdir()) == [], "the refused command started Ray or left files behind"
    return done, seconds


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_ask_about_a_file_that_is_no_video_fails_at_once_in_one_line(bad_inputs, tmp_path, name):
    done, seconds = vidsift("ask", str(bad_inputs / name), "what happens?", "--model", "none",
                            "--index-dir", str(tmp_path / "index"), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [f"error: {bad_inputs / name}: {PROBLEMS[name]}"]
    assert done.stdout == ""
    assert seconds < FAST_S, f"{seconds:.1f} s to refuse {name}"


def test_a_relative_path_is_named_as_given(bad_inputs):
    done, _ = vidsift("ask", "empty.mp4", "q", "--model", "none", "--index-dir", "index",
                      cwd=bad_inputs)
    assert done.stderr.splitlines() == ["error: empty.mp4: file is empty"]


@pytest.mark.parametrize("command", ["probe", "transcribe"])
@pytest.mark.parametrize("name", ["loop.mp4", "clip.mp4"])
def test_probe_or_transcribe_of_a_loop_or_a_directory_is_one_line(bad_inputs, tmp_path, command,
                                                                   name):
    extra = ["--index-dir", str(tmp_path / "index")] if command == "transcribe" else []
    done, seconds = vidsift(command, str(bad_inputs / name), *extra, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"error: {bad_inputs / name}: {PROBLEMS[name]}"]
    assert seconds < FAST_S
