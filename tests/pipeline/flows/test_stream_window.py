"""flows/watch.py's stream windows (--last, --since/--until) over a StreamStore filled by hand
with real one-second MPEG-TS segments from ffmpeg: no live stream needed."""

import subprocess
from datetime import datetime

import av
import numpy as np
import pytest

from tests.videos import ffmpeg_available
from vidsift.core.config import Config
from vidsift.core.errors import VidsiftError
from vidsift.pipeline.flows.watch import StreamStore, parse_time, stream_window
from vidsift.workers.stream import StreamShard

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="needs the ffmpeg CLI")

T0 = 1796236800.0  # 2026-12-02T18:40:00Z, the first shard's wall-clock start


def test_parse_time_reads_iso_8601_with_or_without_a_zone_and_unix_seconds():
    assert parse_time("1796236800.5") == 1796236800.5
    assert parse_time("2026-12-02T18:40:00Z") == T0
    assert parse_time("2026-12-02T19:40:00+01:00") == T0
    assert parse_time("2026-12-02T18:40:00") == datetime(2026, 12, 2, 18, 40).timestamp()
    with pytest.raises(VidsiftError, match="--until 'yesterday'"):
        parse_time("yesterday", "--until")


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A config whose index holds stream 'gate': three 1 s shards (10 fps, a keyframe a
    second) starting at T0, T0 + 1, T0 + 2, each with its segment and two coarse frames."""
    root = tmp_path_factory.mktemp("window")
    cfg = Config()
    cfg.index.dir = str(root / "index")
    store = StreamStore(cfg.index.dir, "gate")
    store.segments.mkdir()
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
         "testsrc=size=64x48:rate=10:duration=3", "-c:v", "libx264", "-preset", "ultrafast",
         "-g", "10", "-f", "segment", "-segment_time", "1", "-segment_format", "mpegts",
         str(store.segments / "%08d.ts")], check=True, stdin=subprocess.DEVNULL)
    frames = []
    for index in range(3):
        segment = store.segments / f"{index:08d}.ts"
        with av.open(str(segment)) as played:
            frames.append(sum(1 for _ in played.decode(video=0)))
        shard = StreamShard(index, T0 + index, T0 + index + 1, T0 + index + np.array([0, 0.5]),
                            [], segment)
        store.add_shard(shard, np.zeros((2, 4), np.float32), np.zeros((2, 4), np.float32),
                        ["", ""], [b"a", b"b"])
    store.close()
    return cfg, frames


def _frames(path) -> int:
    with av.open(str(path)) as played:
        return sum(1 for _ in played.decode(video=0))


def test_since_until_picks_the_overlapping_shards_and_their_start(stored):
    cfg, frames = stored
    window, start = stream_window(cfg, "gate", since=T0 + 1.2, until=T0 + 2.5)
    assert start == T0 + 1  # offset 0 of the window is the second shard's first frame
    assert _frames(window) == frames[1] + frames[2]
    window, start = stream_window(cfg, "gate", since=T0 + 0.5)  # open end: to the newest
    assert start == T0 and _frames(window) == sum(frames)
    window, start = stream_window(cfg, "gate", last_s=1.5)
    assert start == T0 + 1 and _frames(window) == frames[1] + frames[2]


@pytest.mark.parametrize("window, message", [
    ({"since": T0 + 2, "until": T0 + 1}, r"^--until .* is not after --since"),
    ({"since": T0 + 2, "until": T0 + 2}, r"^--until .* is not after --since"),
    ({"last_s": 0.0}, r"^--last 0 s: an empty window$"),
    ({"last_s": 60.0, "since": T0}, r"^give the window once"),
    ({"since": T0 + 10, "until": T0 + 20}, r"nothing recorded from .*; retained: \S+ to \S+$"),
    ({"until": T0 - 5}, r"nothing recorded from .*; retained: \S+ to \S+$"),
])
def test_bad_windows_are_one_line_errors(stored, window, message):
    with pytest.raises(VidsiftError, match=message) as raised:
        stream_window(stored[0], "gate", **window)
    assert "\n" not in str(raised.value)


def test_ask_reads_since_until_and_a_bad_window_is_one_red_line(stored):
    from typer.testing import CliRunner

    from vidsift.pipeline.cli import app

    cfg = stored[0]
    common = ["ask", "--stream", "gate", "what is shown?", "--index-dir", cfg.index.dir]
    twice = CliRunner().invoke(app, [*common, "--last", "2s", "--since", str(T0)])
    assert twice.exit_code == 1 and "give the window once" in twice.output
    late = CliRunner().invoke(app, [*common, "--since", "2026-12-02T18:50:00Z",
                                    "--until", "2026-12-02T19:00:00Z"])
    assert late.exit_code == 1 and "retained: " in late.output
    assert "Traceback" not in late.output
