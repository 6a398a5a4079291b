"""flows/watch.py on real streams with the packaged offline embedder (EfficientNet + MiniLM +
OCR): ffmpeg publishing MPEG-TS over UDP on loopback, a needle (drawn text) shown at known
stream times, a publisher killed and back 20 s later, and a watcher too slow for its stream."""

import subprocess
import threading
import time

import pytest

from tests.streams import stored_shards, wait_for_shards
from tests.videos import ffmpeg_available
from tests.workers.test_stream_reader import _free_udp_port
from vidsift.core.config import Config
from vidsift.pipeline.flows.watch import AlertEvent, StreamStore, watch_stream

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="needs the ffmpeg CLI")

ALERT = "fire in aisle four"
NEVER = "a red car in a parking lot"  # an alert nothing in the stream shows


def _publish(port: int, seconds: float, needle: tuple[float, float] | None = None,
             fps: int = 10) -> subprocess.Popen:
    """ffmpeg sending testsrc2 (320x180, a keyframe a second) in real time, FIRE IN AISLE FOUR
    drawn on it between needle's stream seconds."""
    draw = ""
    if needle is not None:
        draw = (",drawtext=text='FIRE IN AISLE FOUR':fontsize=28:fontcolor=white:box=1:"
                "boxcolor=black@0.8:boxborderw=8:x=(w-text_w)/2:y=h-60:"
                f"enable='between(t,{needle[0]},{needle[1]})'")
    return subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         f"testsrc2=size=320x180:rate={fps}:duration={seconds},format=yuv420p{draw}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", str(fps), "-f", "mpegts",
         f"udp://127.0.0.1:{port}?pkt_size=1316"], stdin=subprocess.DEVNULL)


def _config(tmp_path) -> Config:
    cfg = Config()
    cfg.index.dir = str(tmp_path / "index")
    cfg.watch.shard_s, cfg.watch.read_timeout_s, cfg.watch.coarse_fps = 1.0, 2.0, 2.0
    # testsrc2's own frames score up to ~0.21 against ALERT, the needle's 0.6-0.8
    cfg.alert.threshold, cfg.alert.cooldown_s = 0.4, 10.0
    return cfg


NEEDLE = (1.45, 3.45)  # stream seconds: frames 1.5 .. 3.4 at 10 fps show it


def test_needles_before_and_after_a_20_s_publisher_outage_each_raise_their_alert_once(
        tmp_path, offline_embedder):
    cfg = _config(tmp_path)
    port = _free_udp_port()

    done = threading.Event()
    stop_asked: list[float] = []

    def publish_killed_then_back():
        first = _publish(port, 60, NEEDLE)
        time.sleep(5.0)
        first.kill()  # killed mid-stream, not ended
        first.wait()
        time.sleep(20.0)
        stored_before = stored_shards(cfg.index.dir, "aisle")
        _publish(port, 5, NEEDLE).wait()
        wait_for_shards(cfg.index.dir, "aisle", stored_before + 4)  # 4 shards of it read
        stop_asked.append(time.monotonic())
        done.set()

    publisher = threading.Thread(target=publish_killed_then_back)
    threading.Timer(0.5, publisher.start).start()
    items = list(watch_stream(f"udp://127.0.0.1:{port}", "aisle", cfg, alerts=(ALERT, NEVER),
                              duration_s=60, should_stop=done.is_set,
                              embedder=offline_embedder))
    returned = time.monotonic()
    publisher.join()

    gaps = [item["gap"] for item in items if isinstance(item, dict) and "gap" in item]
    events = [item for item in items if isinstance(item, AlertEvent)]
    store = StreamStore(cfg.index.dir, "aisle")
    # the watcher reconnected: one gap, in the stream's status (its store), of the outage
    assert len(gaps) == 1 and store.gaps() == [tuple(gaps[0])]
    assert 19.0 < gaps[0][1] - gaps[0][0] < 22.0, gaps
    shards = [store.read_shard(i) for i in store.shard_indices()]
    before = [s for s in shards if s["end"] <= gaps[0][0]]
    after = [s for s in shards if s["start"] >= gaps[0][1]]
    assert len(before) >= 4 and len(after) >= 4 and len(before) + len(after) == len(shards)
    # each publisher's stream begins at its first shard (the watcher listened before it sent)
    windows = [(part[0]["start"] + NEEDLE[0], part[0]["start"] + NEEDLE[1])
               for part in (before, after)]
    # each needle raised ALERT exactly once, nothing raised NEVER, as yielded and as stored:
    # start at the needle's first coarse frame, end at its last one plus a coarse step (the
    # stored end follows it across the shards it spans), within one coarse step (0.5 s)
    assert [e.alert for e in events] == [ALERT, ALERT]
    stored = store.events()
    assert [(e.alert, e.start) for e in stored] == [(e.alert, e.start) for e in events]
    step = 1.0 / cfg.watch.coarse_fps
    for event, (on, off) in zip(stored, windows):
        assert on <= event.start <= on + step, (event, on)
        assert off - 0.05 <= event.end <= off + step, (event, off)
        assert event.score > cfg.alert.threshold and not event.verified
    # the stop is honoured within a read timeout (a demux waiting for packets) and a shard
    assert returned - stop_asked[0] < cfg.watch.read_timeout_s + 5.0




def test_a_watcher_slower_than_its_stream_reports_its_lag_and_thins_its_coarse_rate(
        tmp_path, offline_embedder):
    # every frame of testsrc2 embedded, OCR included (its clock is drawn text: ~0.4 CPU s a
    # frame here), 10 a second, is several times slower than real time: the lag really grows,
    # and the rate comes down until the backlog drains, then goes back up
    cfg = _config(tmp_path)
    cfg.watch.coarse_fps, cfg.decode.coarse_max_side, cfg.embed.ocr_gate = 10.0, 320, 0.0
    cfg.watch.lag_thin_s, cfg.watch.lag_restore_s, cfg.watch.min_coarse_fps = 1.0, 0.3, 0.5
    port = _free_udp_port()
    publisher = []
    threading.Timer(0.5, lambda: publisher.append(_publish(port, 25))).start()
    changes = []
    try:
        for item in watch_stream(f"udp://127.0.0.1:{port}", "slow", cfg, duration_s=25,
                                 embedder=offline_embedder):
            if isinstance(item, dict) and "coarse_fps" in item:
                changes.append(item)
                if len(changes) >= 2 and item["coarse_fps"] > changes[-2]["coarse_fps"]:
                    break  # caught up: the rate is on its way back
    finally:
        publisher[0].kill()
        publisher[0].wait()
    store = StreamStore(cfg.index.dir, "slow")
    rates = [c["coarse_fps"] for c in changes]
    # behind by more than lag_thin_s: halved (once or more), never under the floor ...
    assert changes[0]["lag_s"] > 1.0 and rates[0] == 5.0
    assert min(rates) >= 0.5 and rates == sorted(rates[:-1], reverse=True) + rates[-1:]
    # ... until the lag was under lag_restore_s: doubled back
    assert changes[-1]["lag_s"] < 0.3 and rates[-1] == 2 * rates[-2]
    # the thinned shards took fewer frames: frames per second of each stored shard
    density = [len(d["times"]) / float(d["end"] - d["start"])
               for d in map(store.read_shard, store.shard_indices())]
    assert max(density) >= 8 and min(density) <= 5.5
    # the stream's status: the lag and the rate the watcher last decided
    assert store.rate() == {"lag_s": changes[-1]["lag_s"], "coarse_fps": rates[-1]}
