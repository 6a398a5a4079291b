"""A stream's alert events verified by a VLM before they are stored: flows.watch.alert_events
over a synthetic shard and a real StreamStore, asking a real OpenAI-compatible server on
127.0.0.1 that answers as the test tells it. A yes keeps the event (verified, the answer kept),
a no drops it; the peak rule's running level is kept in the store across a reopen."""

import dataclasses
from pathlib import Path

import numpy as np

from vidsift.core.config import load_config
from vidsift.pipeline.flows.watch import StreamStore, alert_events
from vidsift.workers.vlm import open_vlm

from tests.http_servers import serve

ALERT = "a red car at the gate"
AT = np.array([[1.0], [0.0]])  # the alert's (2, 1) column: its cosine to each frame's text


def answering_server(replies: list[str], seen: list[dict]):
    """Chat completions answered with replies.pop(0); each request's text, image count and image
    data URLs appended to `seen`."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/chat/completions")
    def chat(body: dict) -> dict:
        parts = body["messages"][-1]["content"]
        urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
        seen.append({"text": " ".join(p.get("text", "") for p in parts if p["type"] == "text"),
                     "images": len(urls), "urls": urls})
        return {"model": "judge", "choices": [{"message": {"role": "assistant",
                                                           "content": replies.pop(0)}}]}

    return app


@dataclasses.dataclass
class Shard:  # what read_stream yields, as alert_events reads it
    index: int
    times: np.ndarray


def shard_scores(index: int, hit: int | None, n: int = 10) -> tuple[Shard, np.ndarray]:
    """A shard of n frames 1 s apart starting at 1000 + 100 * index, and (n, 2) unit text
    vectors whose cosine to the alert ([1, 0]) is 0.1, except 0.9, 0.8, 0.7 around frame hit."""
    cos = np.full(n, 0.1)
    if hit is not None:
        cos[hit - 1:hit + 2] = [0.8, 0.9, 0.7]
    text = np.stack([cos, np.sqrt(1 - cos ** 2)], axis=1)
    return Shard(index, 1000.0 + 100 * index + np.arange(n, dtype=float)), text


def test_a_yes_keeps_the_event_verified_and_a_no_drops_it(tmp_path: Path):
    replies, seen = ["Yes, a red car.", "No."], []
    images = [np.full((48, 64, 3), 20 * k, np.uint8) for k in range(10)]
    thumbnails = [b"jpeg%d" % k for k in range(10)]
    with serve(answering_server(replies, seen)) as url:
        cfg = load_config("default", [
            f"index.dir={tmp_path}", "vlm.backend=openai", f"vlm.base_url={url}",
            "vlm.model=judge", "alert.threshold=0.5", "alert.cooldown_s=5",
            "alert.peak_sigma=4", "alert.peak_warmup=5", "watch.coarse_fps=1"])
        vlm = open_vlm(cfg.vlm, cfg.pool)
        store = StreamStore(cfg.index.dir, "gate")
        try:
            shard, text = shard_scores(0, hit=4)
            kept = alert_events(store, shard, text @ AT, [ALERT], images,
                                thumbnails, cfg, started=990.0, vlm=vlm)
            shard, text = shard_scores(1, hit=6)
            dropped = alert_events(store, shard, text @ AT, [ALERT], images,
                                   thumbnails, cfg, started=990.0, vlm=vlm)
            events = store.events()
        finally:
            store.close()
            vlm.shutdown()
    assert len(kept) == 1 and kept[0].verified and kept[0].answer == "Yes, a red car."
    assert (kept[0].start, kept[0].end, kept[0].offset_s) == (1003.0, 1006.0, 14.0)
    assert dropped == [] and events == kept  # the "no" was neither stored nor returned
    # the best three frames were asked about, with the alert in the question
    assert [s["images"] for s in seen] == [3, 3]
    assert f"Does this show: {ALERT}? Answer yes or no." in seen[0]["text"]
    # the running level outlives the store: 20 frames seen, near the 0.1 background
    level = StreamStore(cfg.index.dir, "gate").level(ALERT)
    assert level.count == 20 and 0.1 < level.mean < 0.5 and level.var > 0


def test_a_photo_alert_is_verified_with_the_photo_shown_first(tmp_path: Path):
    import base64
    import io

    from PIL import Image

    replies, seen = ["Yes, the same gate.", "No."], []
    photo = np.zeros((60, 80, 3), np.uint8)
    photo[..., 0] = 255  # red: told apart from the grey frames in what the server got
    alert = str(tmp_path / "gate.jpg")
    images = [np.full((48, 64, 3), 20 * k, np.uint8) for k in range(10)]
    with serve(answering_server(replies, seen)) as url:
        cfg = load_config("default", [
            f"index.dir={tmp_path}", "vlm.backend=openai", f"vlm.base_url={url}",
            "vlm.model=judge", "alert.photo_threshold=0.5", "alert.cooldown_s=5",
            "watch.coarse_fps=1"])
        vlm = open_vlm(cfg.vlm, cfg.pool)
        store = StreamStore(cfg.index.dir, "gate")
        try:
            shard, visual = shard_scores(0, hit=4)
            kept = alert_events(store, shard, visual @ AT, [alert], images, [b"j"] * 10, cfg,
                                started=990.0, vlm=vlm, photos=[photo])
            shard, visual = shard_scores(1, hit=6)
            dropped = alert_events(store, shard, visual @ AT, [alert], images, [b"j"] * 10,
                                   cfg, started=990.0, vlm=vlm, photos=[photo])
        finally:
            store.close()
            vlm.shutdown()
    assert len(kept) == 1 and kept[0].verified and kept[0].answer == "Yes, the same gate."
    assert dropped == []
    # the photo first, labelled with its name, then the event's three best frames
    assert [s["images"] for s in seen] == [4, 4]
    assert "[1] gate.jpg" in seen[0]["text"] and "reference photo" in seen[0]["text"]
    assert alert not in seen[0]["text"]  # its path is no question: the photo is shown
    shown = [np.asarray(Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1]))))
             .reshape(-1, 3).mean(axis=0) for u in seen[0]["urls"]]
    assert shown[0][0] > 200 and shown[0][1] < 60  # red
    assert all(abs(c[0] - c[1]) < 10 for c in shown[1:])  # grey


def test_without_a_vlm_a_peak_over_the_running_level_raises_an_unverified_event(tmp_path):
    cfg = load_config("default", [f"index.dir={tmp_path}", "alert.threshold=0.95",
                                  "alert.peak_sigma=4", "alert.peak_warmup=5",
                                  "watch.coarse_fps=1"])
    images = [np.zeros((48, 64, 3), np.uint8)] * 10
    store = StreamStore(cfg.index.dir, "gate")
    try:
        shard, text = shard_scores(0, hit=None)  # the warm-up: the level learns 0.1
        assert alert_events(store, shard, text @ AT, [ALERT], images,
                            [b"j"] * 10, cfg, started=1000.0) == []
        shard, text = shard_scores(1, hit=5)  # 0.9 is under the threshold but a peak
        events = alert_events(store, shard, text @ AT, [ALERT], images,
                              [b"j"] * 10, cfg, started=1000.0)
    finally:
        store.close()
    assert [(e.start, e.verified, e.answer) for e in events] == [(1104.0, False, None)]


def test_a_vlm_that_cannot_be_reached_leaves_the_event_unverified(tmp_path: Path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = load_config("default", [
        f"index.dir={tmp_path}", "vlm.backend=openai", f"vlm.base_url=http://127.0.0.1:{port}",
        "vlm.model=judge", "vlm.retries=0", "alert.threshold=0.5", "watch.coarse_fps=1"])
    vlm = open_vlm(cfg.vlm, cfg.pool)
    store = StreamStore(cfg.index.dir, "gate")
    try:
        shard, text = shard_scores(0, hit=4)
        events = alert_events(store, shard, text @ AT, [ALERT],
                              [np.zeros((48, 64, 3), np.uint8)] * 10, [b"j"] * 10, cfg,
                              started=1000.0, vlm=vlm)
        assert store.events() == events
    finally:
        store.close()
        vlm.shutdown()
    assert [(e.start, e.verified, e.answer) for e in events] == [(1003.0, False, None)]
