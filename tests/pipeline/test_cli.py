"""What the `vidsift` command prints, as scripts and logs read it: each message one whole line
(never folded at the console's width when the output is not a terminal), one line per failure."""

from __future__ import annotations

from typer.testing import CliRunner

from vidsift.pipeline.cli import app


def test_an_error_is_one_line_however_long_the_path(tmp_path):
    missing = tmp_path / ("a-folder-with-a-long-name-" * 4) / "missing-video.mp4"
    result = CliRunner().invoke(app, ["probe", str(missing)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(missing) in lines[0]


def test_each_failed_video_of_an_index_run_is_named_once(ray_cluster, tmp_path):
    not_a_video = tmp_path / ("x" * 90 + ".mp4")
    not_a_video.write_text("this is text, not a video")
    result = CliRunner().invoke(app, ["index", str(not_a_video), "--index-dir",
                                      str(tmp_path / "index"), "--set", "embed.ocr=false"])
    assert result.exit_code == 1  # nothing indexed
    naming = [line for line in result.stderr.splitlines() if str(not_a_video) in line]
    assert len(naming) == 1 and naming[0].startswith("failed: "), result.stderr
