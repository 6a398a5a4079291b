"""The service lends its one VLM to every stream it watches: a watcher verifies its events with
the VLM the Streams registry is given (the asker's, in the service), not one it opens from the
config, and leaves it running when it stops. The configured VLM here listens nowhere (a watcher
opening its own could verify nothing); the lent one is a real OpenAI-compatible server on
127.0.0.1 answering yes, so a verified event proves the lent VLM was asked."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.http_servers import serve
from tests.pipeline.flows.test_watch_verify import answering_server
from tests.pipeline.service.test_http import _free_port
from tests.videos import ffmpeg_available
from tests.workers.test_stream_reader import _free_udp_port, _publish
from vidsift.core.config import load_config
from vidsift.core.vision import QWEN2_5_VL
from vidsift.pipeline.flows.watch import StreamStore, verify_event
from vidsift.pipeline.service.streams import Streams
from vidsift.workers.vlm import open_vlm

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="needs the ffmpeg CLI")

ALERT = "a test pattern"


def test_watchers_verify_with_the_lent_vlm_and_leave_it_running(offline_embedder, tmp_path,
                                                               request):
    replies, seen = ["Yes, a test pattern."] * 50, []
    nowhere = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    cfg = load_config("default", [
        f"index.dir={tmp_path / 'index'}", "embed.backend=offline", "embed.ocr=false",
        "vlm.backend=openai", f"vlm.base_url={nowhere}", "vlm.model=judge", "vlm.retries=0",
        "watch.shard_s=1", "watch.read_timeout_s=3", "watch.coarse_fps=2",
        "decode.coarse_max_side=64", "alert.threshold=-1", "alert.cooldown_s=1.5",
        "alert.verify_frames=1",
    ])
    port = _free_udp_port()
    with serve(answering_server(replies, seen)) as url:
        lent_cfg = cfg.vlm.model_copy(update={"base_url": url})
        lent = open_vlm(lent_cfg, cfg.pool)
        try:
            streams = Streams(cfg, tmp_path / "svc", lambda: offline_embedder, lambda: lent)
            publisher = _publish(port, 30)
            request.addfinalizer(publisher.kill)
            streams.add("gate", f"udp://127.0.0.1:{port}", [ALERT], None)
            store = StreamStore(cfg.index.dir, "gate")
            deadline = time.monotonic() + 40
            while not store.events():
                assert time.monotonic() < deadline, streams.status("gate")
                time.sleep(0.2)
            streams.remove("gate", purge=False)
            events = store.events()
            store.close()
            asked = len(seen)
            # the watcher stopped; the VLM it was lent still answers
            still = verify_event(lent, QWEN2_5_VL, ALERT, [np.zeros((56, 56, 3), np.uint8)], [0.0])
        finally:
            lent.shutdown()
    assert events and all(e.verified and e.answer == "Yes, a test pattern." for e in events)
    assert asked >= len(events) and all(s["images"] == 1 for s in seen)
    assert still == (True, "Yes, a test pattern.") and len(seen) == asked + 1
