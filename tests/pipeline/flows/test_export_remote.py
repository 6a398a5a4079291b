"""`vidsift export` of a video behind a URL: one clear error naming the URL (its secrets
redacted), before anything is read or written; ffmpeg's CLI, which writes clips, reads local
files only."""

from __future__ import annotations

from typer.testing import CliRunner

from vidsift.pipeline.cli import app


def test_exporting_a_url_is_one_line_naming_it(tmp_path):
    out = tmp_path / "clip.mp4"
    for url, shown in (("s3://archive/talks/a.mp4", "s3://archive/talks/a.mp4"),
                       ("https://cdn.example/a.mp4?sig=s3cret", "https://cdn.example/a.mp4?sig=***")):
        result = CliRunner().invoke(app, ["export", url, "--start", "1", "--end", "2", "-o", str(out)])
        assert result.exit_code == 1, result.output
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {shown}: export reads local files"), lines
        assert "s3cret" not in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []
