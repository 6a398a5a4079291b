"""What the `vidsift` command prints, as scripts and logs read it: each message one whole line
(never folded at the console's width when the output is not a terminal), one line per failure;
and as people read it: --version, -h, help that lists an option's values, a search table that
fits an 80-column terminal."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

from vidsift.index.clip_index import ClipHit
from vidsift.pipeline.cli import app, print_hits, short_names


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


COMMANDS = ["config", "ask", "caption", "index", "search", "serve", "serve-vlm", "demo",
            "transcribe", "probe", "sample"]


def test_version_and_h_as_help():
    from vidsift import __version__

    runner = CliRunner()
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout == f"vidsift {__version__}\n"
    for command in ([], ["search"], ["ask"]):
        short, long = runner.invoke(app, [*command, "-h"]), runner.invoke(app, [*command, "--help"])
        assert short.exit_code == long.exit_code == 0 and short.stdout == long.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_show_no_value_placeholder(command):
    """typer's help printed `--json <bool>` (and `--help <bool>`) though a flag takes no value."""
    shown = CliRunner().invoke(app, [command, "--help"]).stdout
    assert "<bool>" not in shown
    flags = [line for line in shown.splitlines() if re.search(r"--(json|help|to-index)\b", line)]
    assert flags and all("<" not in line for line in flags), flags


@pytest.mark.parametrize(("args", "message"), [
    (["ask", "v.mp4", "q", "--selector", "fast"],
     "error: --selector fast: choose one of uniform | query | keyclips | coverage | balanced"
     " | uniform_video"),
    (["ask", "v.mp4", "q", "--pruner", "magic"],
     "error: --pruner magic: choose one of none | divprune | kcenter | coverage | temporal | evs"
     " | vidcom2 | hiprune | fastervlm"),
    (["index", "v.mp4", "--speech", "loud"],
     "error: --speech loud: choose one of none | subtitles | asr | auto"),
    (["transcribe", "v.mp4", "--speech", "none"],
     "error: --speech none: choose one of subtitles | asr | auto"),
    (["probe", "v.mp4", "--set", "decode.backend=vlc"],
     "error: default: decode.backend=vlc: choose one of pyav | decord | ffmpeg"),
])
def test_an_enumerated_option_refuses_another_value_in_one_line_naming_the_choices(
        tmp_path, args, message):
    """A bad --selector was a pydantic error over several lines with a link to its docs."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and result.stderr.splitlines() == [message]


@pytest.mark.parametrize(("command", "option", "choices"), [
    ("ask", "--selector",
     "uniform | query | keyclips | coverage | balanced | uniform_video"),
    ("ask", "--pruner",
     "none | divprune | kcenter | coverage | temporal | evs | vidcom2 | hiprune | fastervlm"),
    ("ask", "--speech", "none | subtitles | asr | auto"),
    ("index", "--speech", "none | subtitles | asr | auto"),
    ("caption", "--speech", "none | subtitles | asr | auto"),
])
def test_an_enumerated_option_lists_its_values_in_help(command, option, choices):
    # the help's table, its frame taken out and the lines of each cell joined
    shown = " ".join(re.sub(r"[│╭╮╰╯─]", " ", CliRunner().invoke(app, [command, "--help"]).stdout).split())
    assert re.search(rf"{option} <str> [\w/ -]{{1,40}}: {re.escape(choices)} \(default: ", shown)


def _hit(video: str, start: float, score: float) -> ClipHit:
    return ClipHit(clip_id=0, video=video, content_hash="h", start=start, end=start + 5,
                   score=score, visual_score=0.0, text_score=score,
                   thumbnail="/index/thumbs/0123456789abcdef/1-00003.jpg", text="")


def test_search_table_fits_80_columns_with_whole_file_names(tmp_path):
    """On an 80-column terminal the table folded video and thumbnail paths mid-name: it shows
    file names whole, one line per clip (the paths are in --json)."""
    folder = tmp_path / ("a-folder-with-a-long-name-" * 3)
    hits = [_hit(str(folder / "big_buck_bunny_trailer.mp4"), 5.0, 0.91),
            _hit(str(folder / "talks" / "intro.mp4"), 65.0, 0.5),
            _hit(str(tmp_path / "intro.mp4"), 3605.0, 0.25)]
    screen = io.StringIO()
    print_hits(hits, Console(file=screen, width=80, force_terminal=True, color_system=None))
    lines = screen.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = [line for line in lines if re.match(r"^│ \d", line)]
    assert len(rows) == 3  # no row folded onto a second line
    assert "big_buck_bunny_trailer.mp4" in rows[0] and "0:00:05-0:00:10" in rows[0]
    # two videos named alike are told apart by their folders
    assert "talks/intro.mp4" in rows[1] and "1:00:05-1:00:10" in rows[2]
    assert f"{tmp_path.name}/intro.mp4" in rows[2]
    assert lines[-1] == "each clip's video path and thumbnail: --json"


def test_short_names():
    assert short_names(["/a/x.mp4", "/b/y.mp4"]) == {"/a/x.mp4": "x.mp4", "/b/y.mp4": "y.mp4"}
    assert short_names(["/a/c/x.mp4", "/b/c/x.mp4", "/a/x.mp4"]) == {
        "/a/c/x.mp4": "a/c/x.mp4", "/b/c/x.mp4": "b/c/x.mp4", "/a/x.mp4": "a/x.mp4"}


def test_the_command_list_wraps_each_summary_as_one_paragraph():
    """`vidsift -h` kept the docstrings' own line breaks inside the 80-column panel, so a summary
    broke off mid-sentence halfway across ('... clip index (no VIDEO);' / 'prints the answer')."""
    shown = CliRunner().invoke(app, ["-h"], terminal_width=80).stdout
    panel = [line for line in shown[shown.index("─ Commands ─"):].splitlines()
             if line.startswith("│")]
    cells = [re.match(r"│ (\S*) +(.*?) *│$", line).groups() for line in panel]
    width = max(len(text) for _, text in cells)
    for (_, before), (name, after) in zip(cells, cells[1:]):
        if not name:  # the same command's summary goes on: its first word did not fit before
            assert len(before) + 1 + len(after.split()[0]) > width, (before, after)
