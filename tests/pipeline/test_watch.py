"""flows/watch.py on a real UDP stream from ffmpeg on loopback, embedded by a tiny SigLIP."""

import hashlib
import hmac
import http.server
import json
import threading
import time

import av
import pytest

from tests.videos import ffmpeg_available
from tests.workers.test_stream_reader import _free_udp_port, _publish
from vidsift.core.config import Config
from vidsift.pipeline.flows.watch import AlertEvent, StreamStore, post_event, watch_stream

pytestmark = pytest.mark.skipif(not ffmpeg_available(), reason="needs the ffmpeg CLI")


def _config(tmp_path, model_dir, **alert) -> Config:
    cfg = Config()
    cfg.index.dir = str(tmp_path / "index")
    cfg.embed.backend, cfg.embed.model, cfg.embed.device = "siglip", str(model_dir), "cpu"
    cfg.watch.shard_s, cfg.watch.read_timeout_s, cfg.watch.coarse_fps = 1.0, 3.0, 2.0
    cfg.decode.coarse_max_side = 64
    for key, value in alert.items():
        setattr(cfg.alert, key, value)
    return cfg


def _watch(url, cfg, port, seconds=3, duration=6, alerts=("a test pattern",)):
    threading.Timer(0.3, lambda: _publish(port, seconds).wait()).start()
    return list(watch_stream(url, "gate", cfg, alerts=alerts, duration_s=duration))


def _receiver(failures: int):
    """A webhook receiver on loopback answering 500 to the first `failures` POSTs; its URL and
    the (body, signature header) of each POST it accepted."""
    received, seen = [], []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(body)
            if len(seen) <= failures:
                self.send_response(500)
            else:
                received.append((body, self.headers["X-Vidsift-Signature"]))
                self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/hook", received


def test_a_dead_webhook_is_retried_then_given_up_without_raising():
    event = AlertEvent("s", "a", 1.0, 2.0, 0.5, 0.3, False, None, "t.jpg")
    url, received = _receiver(failures=10)
    started = time.monotonic()
    assert post_event(url, event, "k", retries=2, backoff_s=0.05) is False
    assert received == [] and time.monotonic() - started >= 0.15  # 0.05 + 0.1 of backoff
    closed = f"http://127.0.0.1:{_free_udp_port()}/hook"  # nothing listens there
    assert post_event(closed, event, None, retries=1, backoff_s=0.01) is False


def test_watch_stores_shards_and_debounces_alerts_then_resumes(tmp_path, tiny_siglip_dir):
    # threshold -1: every frame is over it, so what is tested is the debounce: one event per
    # cooldown, kept across a restart of the watcher
    receiver, received = _receiver(failures=1)
    cfg = _config(tmp_path, tiny_siglip_dir, threshold=-1.0, cooldown_s=3600,
                  webhook_url=receiver, webhook_secret="s3cret")
    port = _free_udp_port()
    url = f"udp://127.0.0.1:{port}"
    events = [e for e in _watch(url, cfg, port) if isinstance(e, AlertEvent)]
    assert len(events) == 1 and events[0].alert == "a test pattern"
    assert events[0].start < events[0].end and events[0].offset_s >= 0
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.1)
    [(body, signature)] = received  # the 500 was retried, the event delivered once
    assert json.loads(body)["offset_s"] == events[0].offset_s
    assert signature == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    store = StreamStore(cfg.index.dir, "gate")
    first = store.shard_indices()
    assert len(first) >= 2
    shard = store.read_shard(first[0])
    assert shard["visual"].shape[0] == len(shard["times"]) == len(shard["descriptions"])
    with av.open(str(shard["segment"])) as played:  # the evidence plays back
        assert sum(1 for _ in played.decode(video=0)) > 0

    # the watcher restarted: numbering continues, memory and events kept, none duplicated
    again = [e for e in _watch(url, cfg, port) if isinstance(e, AlertEvent)]
    assert again == []
    store = StreamStore(cfg.index.dir, "gate")
    assert store.shard_indices()[: len(first)] == first
    assert len(store.shard_indices()) > len(first)
    assert len(store.events()) == 1


def test_retention_drops_old_shards_and_their_segments(tmp_path, tiny_siglip_dir):
    cfg = _config(tmp_path, tiny_siglip_dir)
    cfg.watch.retention_h = 1.5 / 3600  # 1.5 s
    port = _free_udp_port()
    _watch(f"udp://127.0.0.1:{port}", cfg, port, seconds=5, duration=8, alerts=())
    store = StreamStore(cfg.index.dir, "gate")
    kept = store.shard_indices()
    assert kept and kept[0] >= 2  # the first shards ended long before the last
    assert len(list(store.segments.glob("*.ts"))) <= len(kept) + 1


def test_watch_command_prints_events_as_json_lines(tmp_path, tiny_siglip_dir):
    import json

    from typer.testing import CliRunner

    from vidsift.pipeline.cli import app

    port = _free_udp_port()
    threading.Timer(0.3, lambda: _publish(port, 3).wait()).start()
    args = ["watch", f"udp://127.0.0.1:{port}", "--name", "cam", "--duration", "6", "--json",
            "--alert", "a test pattern", "--index-dir", str(tmp_path / "index")]
    for setting in ("embed.backend=siglip", f"embed.model={tiny_siglip_dir}", "embed.device=cpu",
                    "watch.shard_s=1", "watch.read_timeout_s=3", "alert.threshold=-1",
                    "decode.coarse_max_side=64",
                    f"alert.webhook_url=http://127.0.0.1:{_free_udp_port()}/dead"):
        args += ["--set", setting]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(e["stream"], e["alert"]) for e in lines] == [("cam", "a test pattern")]
    assert set(lines[0]) == {"stream", "alert", "start", "end", "offset_s", "score", "verified",
                             "answer", "thumbnail"}

    sets = [a for a in args[args.index("--set"):] if a != "--set"]
    asked = CliRunner().invoke(app, ["ask", "--stream", "cam", "--last", "2s", "what is shown?",
                                     "--model", "none", "--json", "--index-dir",
                                     str(tmp_path / "index"),
                                     *[x for s in sets for x in ("--set", s)]])
    assert asked.exit_code == 0, asked.output
    evidence = json.loads(asked.stdout[asked.stdout.index("{"):])
    assert evidence["segments"] and evidence["answer"] is None
    assert evidence["video"].endswith("streams/cam/window.mp4")

    args[1], args[3] = f"udp://127.0.0.1:{_free_udp_port()}", "none"  # nobody publishes
    silent = CliRunner().invoke(app, args)
    assert silent.exit_code == 1
    assert "udp://127.0.0.1" in silent.output and "cannot be opened" in silent.output
