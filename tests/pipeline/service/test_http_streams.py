"""Live streams in the service over real HTTP (uvicorn on 127.0.0.1): a stream published by the
ffmpeg CLI over UDP is watched by the service on its ingest pool (Ray actors, a tiny SigLIP),
its alert events read by httpx as Server-Sent Events, live and replayed after Last-Event-ID;
stopped and purged; URLs outside serve.stream_urls refused."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.pipeline.service.test_http import running
from tests.videos import ffmpeg_available
from tests.workers.test_stream_reader import _free_udp_port, _publish
from vidsift.core.config import load_config

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="needs the ffmpeg CLI")


def _config(tmp_path, model_dir):
    return load_config("default", [
        f"serve.data_dir={tmp_path / 'svc'}", f"index.dir={tmp_path / 'svc' / 'index'}",
        'serve.stream_urls=["udp://127.0.0.1:"]', "serve.workers=0", "vlm.model=none",
        "embed.backend=siglip", f"embed.model={model_dir}", "embed.device=cpu",
        "ingest.num_actors=1", "watch.shard_s=1", "watch.read_timeout_s=3",
        "watch.coarse_fps=2", "decode.coarse_max_side=64",
        # every frame is over the threshold: each alert's one event opens with the first shard
        # and is extended by every shard after it
        "alert.threshold=-1", "alert.cooldown_s=1.5",
    ])


def _sse(client, name, count, headers=None, params=None, timeout_s=40):
    """The first `count` events of GET /v1/streams/NAME/events, each (id, event, data)."""
    events, fields = [], {}
    deadline = time.monotonic() + timeout_s
    with client.stream("GET", f"/v1/streams/{name}/events", headers=headers, params=params,
                       timeout=httpx.Timeout(timeout_s)) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        for line in reply.iter_lines():
            if line == "":
                if "data" in fields:
                    events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
                    if len(events) == count:
                        return events
                fields = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value
            assert time.monotonic() < deadline, events
    return events


def test_a_stream_watched_by_the_service_sends_its_events(ray_cluster, tiny_siglip_dir,
                                                          tmp_path, request):
    cfg = _config(tmp_path, tiny_siglip_dir)
    port = _free_udp_port()
    url = f"udp://127.0.0.1:{port}"
    with running(cfg) as client:
        for refused in ("file:///etc/passwd", "/etc/passwd", "udp://10.0.0.1:5000",
                        f"concat:{url}", f"udp://127.0.0.1:{port}\n"):
            reply = client.post("/v1/streams", json={"url": refused, "name": "x"})
            assert reply.status_code in (403, 422), refused
        # a photo alert is a file the service reads: outside the media roots it is refused
        reply = client.post("/v1/streams", json={"url": url, "name": "x",
                                                 "alerts": ["/etc/gate.jpg"]})
        assert reply.status_code == 403 and "/etc/gate.jpg" in reply.json()["error"]
        assert client.get("/v1/streams").json() == {"streams": []}

        publisher = _publish(port, 60)  # until killed: the pool starts with the first stream
        request.addfinalizer(publisher.kill)
        reply = client.post("/v1/streams", json={"url": url, "name": "gate",
                                                 "alerts": ["a test pattern", "colour bars"]})
        assert reply.status_code == 201, reply.text
        assert reply.json()["state"] == "running"
        assert client.post("/v1/streams", json={"url": url, "name": "gate"}).status_code == 409

        # live: the connection opened before any event exists (and before the ingest pool's
        # actors, started by this first stream, are up: tens of seconds on a loaded machine)
        (first_id, kind, first), (second_id, _, second) = _sse(client, "gate", 2, timeout_s=150)
        assert kind == "alert" and first_id < second_id and second["alert"] == "colour bars"
        assert set(first) == {"id", "stream", "alert", "start", "end", "offset_s", "score",
                              "verified", "answer", "thumbnail"}
        assert first["stream"] == "gate" and first["alert"] == "a test pattern"
        assert time.time() - 120 < first["start"] < first["end"] < time.time() + 3
        thumb = client.get(first["thumbnail"])
        assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"

        deadline = time.monotonic() + 30  # both events come with the first shard: one more
        while (status := client.get("/v1/streams/gate").json())["shards"] < 2:
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status["state"] == "running"
        assert status["lag_s"] is not None and 0 <= status["lag_s"] < 30
        # the reader keeps up with a 10 fps stream: no thinning, read within seconds
        assert status["coarse_fps"] == 2 and 0 <= status["read_lag_s"] < 10
        # the packets FFmpeg buffers while probing put the clock up to ~2 s ahead (known)
        assert status["last_shard_end"] <= time.time() + 3
        assert [s["name"] for s in client.get("/v1/streams").json()["streams"]] == ["gate"]

        # replay: from the start, then after the first event (an EventSource reconnecting)
        assert [e[0] for e in _sse(client, "gate", 2, params={"last_event_id": 0})] == \
            [first_id, second_id]
        assert _sse(client, "gate", 1, headers={"Last-Event-ID": str(first_id)})[0][0] == \
            second_id

        stopped = client.delete("/v1/streams/gate")
        assert stopped.status_code == 200
        status = client.get("/v1/streams/gate").json()
        assert status["state"] == "stopped" and status["lag_s"] is None
        assert status["shards"] >= 2 and status["events"] >= 2  # memory kept
        assert client.delete("/v1/streams/gate", params={"purge": True}).status_code == 200
        assert client.get("/v1/streams/gate").status_code == 404
        assert not (tmp_path / "svc" / "index" / "streams" / "gate").exists()
        assert client.get("/v1/streams/nope/events").status_code == 404
