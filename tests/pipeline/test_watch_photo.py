"""A photo as a standing query: ffmpeg publishes testsrc2 over UDP on loopback with a photo
(scikit-image's cat) laid over it between known stream seconds; `watch` with that photo's file
as an alert raises it once, at the photo's times, scored on the frames' visual vectors by the
packaged offline embedder; a photo never shown raises nothing; an unreadable photo is one error
naming it."""

import subprocess
import threading

import pytest
from PIL import Image
from skimage import data

from tests.streams import wait_for_shards
from tests.videos import ffmpeg_available
from tests.workers.test_stream_reader import _free_udp_port
from vidsift.core.config import Config
from vidsift.core.errors import ConfigError
from vidsift.pipeline.flows.watch import AlertEvent, StreamStore, watch_stream

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="needs the ffmpeg CLI")

SHOWN = (2.0, 4.0)  # stream seconds the cat is on screen


def _publish(port: int, seconds: float, photo) -> subprocess.Popen:
    """testsrc2 320x180 at 10 fps in real time (a keyframe a second), the photo scaled to 160
    px wide in the middle between SHOWN's seconds."""
    return subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
         f"testsrc2=size=320x180:rate=10:duration={seconds}", "-loop", "1", "-i", str(photo),
         "-filter_complex", "[1:v]scale=160:-2[cat];[0:v][cat]overlay=x=80:y=(H-h)/2:"
         f"enable='between(t,{SHOWN[0]},{SHOWN[1]})':shortest=1,format=yuv420p",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-f", "mpegts",
         f"udp://127.0.0.1:{port}?pkt_size=1316"], stdin=subprocess.DEVNULL)


def test_a_photo_alert_is_raised_once_while_the_photo_is_shown(tmp_path, offline_embedder):
    cat, astronaut = tmp_path / "cat.png", tmp_path / "astronaut.jpg"
    Image.fromarray(data.chelsea()).save(cat)
    Image.fromarray(data.astronaut()).save(astronaut)
    cfg = Config()
    cfg.index.dir = str(tmp_path / "index")
    # read_timeout_s 3: the open waits that long for the publisher's first packet
    cfg.watch.shard_s, cfg.watch.read_timeout_s, cfg.watch.coarse_fps = 1.0, 3.0, 2.0
    cfg.alert.cooldown_s = 10.0
    port = _free_udp_port()
    done = threading.Event()

    def publish():
        _publish(port, 7, cat).wait()
        wait_for_shards(cfg.index.dir, "porch", 6)  # what it sent is read meanwhile
        done.set()

    threading.Timer(0.5, publish).start()
    items = list(watch_stream(f"udp://127.0.0.1:{port}", "porch", cfg,
                              alerts=(str(cat), str(astronaut)), duration_s=30,
                              should_stop=done.is_set, embedder=offline_embedder))
    events = [item for item in items if isinstance(item, AlertEvent)]
    store = StreamStore(cfg.index.dir, "porch")
    first = store.read_shard(store.shard_indices()[0])["start"]  # the stream's first frame
    stored = store.events()
    assert [e.alert for e in events] == [str(cat)] and len(stored) == 1
    step = 1.0 / cfg.watch.coarse_fps
    on, off = first + SHOWN[0], first + SHOWN[1]
    event = stored[0]
    assert on - 0.05 <= event.start <= on + step, (event, on)
    assert off - 0.05 <= event.end <= off + step, (event, off)
    assert event.score > cfg.alert.photo_threshold and not event.verified


def test_a_photo_alert_that_cannot_be_read_is_one_error_naming_it(tmp_path, offline_embedder):
    broken = tmp_path / "gate.jpg"
    broken.write_bytes(b"not a jpeg")
    cfg = Config()
    cfg.index.dir = str(tmp_path / "index")
    with pytest.raises(ConfigError, match=rf"^alert photo {broken}: cannot be read \("):
        next(watch_stream("udp://127.0.0.1:9", "gate", cfg, alerts=[str(broken)],
                          embedder=offline_embedder))
