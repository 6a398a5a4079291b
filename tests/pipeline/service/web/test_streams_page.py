"""The page's live streams section in a real browser (conftest: chromium through Selenium) against
the service on a real socket, key required. The service starts with one stream it watched before
(serve.data_dir/streams.json, stopped, its URL carrying a password) and that stream's stored
alert event (StreamStore, a JPEG thumbnail): the page lists it redacted, replays its events over
Server-Sent Events read with fetch (key header), shows an event the store gains while the page
listens, and after its connection is cut (a relay between browser and service) asks again with
Last-Event-ID; it refuses a URL outside serve.stream_urls in the form. Then a stream ffmpeg publishes over
UDP is started from the form and watched on the service's ingest pool (a tiny SigLIP, every frame
over the threshold): its alert appears live with its thumbnail, it is stopped, then forgotten.
The tests run in file order on one page."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time

import httpx
import pytest
from PIL import Image

from tests.pipeline.service.test_http import _free_port, running
from tests.pipeline.service.web.conftest import KEY
from tests.pipeline.service.web.test_page import by_css, loaded_thumbnails, one, wait
from tests.pipeline.service.web.test_phone_and_axe import PHONE, assert_fits
from tests.workers.test_stream_reader import _free_udp_port, _publish
from vidsift.core.config import load_config
from vidsift.pipeline.flows.watch import AlertEvent, StreamStore

SECRET_URL = "rtsp://cam:s3cret@127.0.0.1:8554/gate?token=abc"
SHOWN_URL = "rtsp://127.0.0.1:8554/gate?token=***"
WAIT_S = 20


def _store_event(index_dir, alert, start, colour, score, verified, answer):
    """An alert event stored as a watcher stores one: its thumbnail JPEG beside the events."""
    store = StreamStore(index_dir, "gate")
    try:
        thumb = store.root / "thumbnails" / f"{int(start)}-0.jpg"
        thumb.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), colour).save(buffer, "JPEG")
        thumb.write_bytes(buffer.getvalue())
        store.add_event(AlertEvent("gate", alert, start, start + 2.0, 3.0, score, verified,
                                   answer, str(thumb)))
    finally:
        store.close()


class Relay:
    """A TCP relay on loopback to 127.0.0.1:target, as a proxy between the browser and the
    service: cut() closes every connection through it (a proxy or a network dropping them);
    new ones are relayed again."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []

    def __enter__(self) -> Relay:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.listener.close()
        self.cut()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self.lock:
            ends, self.open = self.open, []
        for end in ends:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()


@pytest.fixture(scope="module")
def stream_site(tmp_path_factory, ray_cluster, tiny_siglip_dir):
    work = tmp_path_factory.mktemp("stream_site")
    (work / "media").mkdir()
    cfg = load_config("default", [
        f"index.dir={work / 'index'}", f"serve.data_dir={work / 'svc'}",
        f"serve.media_roots=[{work / 'media'}]", f"serve.api_key={KEY}", "serve.workers=0",
        "vlm.model=none", 'serve.stream_urls=["udp://127.0.0.1:"]',
        # a watched stream: a tiny SigLIP on a one-actor pool, 1 s shards, every frame over
        # the threshold (an event per cooldown), as tests/pipeline/service/test_http_streams
        "embed.backend=siglip", f"embed.model={tiny_siglip_dir}", "embed.device=cpu",
        "ingest.num_actors=1", "watch.shard_s=1", "watch.read_timeout_s=3",
        "watch.coarse_fps=2", "decode.coarse_max_side=64", "alert.threshold=-1",
        "alert.cooldown_s=30",
    ])
    (work / "svc").mkdir()
    (work / "svc" / "streams.json").write_text(json.dumps({"gate": {
        "url": SECRET_URL, "alerts": ["a red car"], "webhook": None, "active": False}}))
    _store_event(work / "index", "a red car", time.time() - 60, "red", 0.3125, True,
                 "yes, a red car by the gate")
    port = _free_port()
    with running(cfg, port), Relay(port) as relay:
        # the page is loaded through the relay, so a test can cut its connections
        yield {"url": f"http://127.0.0.1:{relay.port}/", "index": work / "index",
               "relay": relay}


@pytest.fixture(scope="module")
def page(browser, stream_site):
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.get(stream_site["url"])
    wait(browser, lambda d: "API key" in one(d, "#key-status").text, "the key prompt", WAIT_S)
    one(browser, "#api-key").send_keys(KEY)
    one(browser, "#save-key").click()
    wait(browser, lambda d: one(d, "#key-status").text == "key accepted", "the key accepted",
         WAIT_S)
    yield browser
    # the page's open event stream would hold the service's shutdown (uvicorn waits for it)
    browser.get("about:blank")


def _row(driver, name):
    """The stream's row as {column: text}, or None; read in one script (the list is redrawn)."""
    return driver.execute_script(
        "const row = document.querySelector(`#streams tbody tr[data-stream='${arguments[0]}']`);"
        "return row ? Object.fromEntries([...row.cells].map("
        "  (c) => [c.dataset.label, c.textContent])) : null;", name)


def test_the_sse_parser_takes_any_chunking_and_every_line_ending(page):
    # the page's own parser (app.js): CRLF split between chunks, CR alone, comments, multi-line
    # data, an id without data (kept for the next), a field with no colon, retry
    got = page.execute_script("""
        const messages = [], retries = [];
        const feed = sseParser((m) => messages.push(m), (ms) => retries.push(ms));
        for (const chunk of ["retry: 1500\\r", "\\n\\r\\n: keep-alive\\n\\nid: 7\\nevent: al",
                             "ert\\ndata: {\\"a\\":\\ndata:1}\\r\\rid: 8\\n\\ndata\\n",
                             "\\nevent: alert\\ndata: x", "y\\n"]) feed(chunk);
        feed("\\n");
        return {messages, retries};""")
    assert got["retries"] == [1500]
    assert got["messages"] == [
        {"id": "7", "event": "alert", "data": '{"a":\n1}'},
        {"id": "8", "event": "message", "data": ""},
        {"id": "8", "event": "alert", "data": "xy"},
    ]


def test_a_watched_stream_is_listed_with_its_url_redacted(page, stream_site):
    wait(page, lambda d: _row(d, "gate"), "the stream listed", WAIT_S)
    row = _row(page, "gate")
    assert row["name"] == "gate" and row["url"] == SHOWN_URL
    assert row["state"] == "stopped" and row["events"] == "1" and row["lag"] == "-"
    assert "s3cret" not in page.page_source and "token=abc" not in page.page_source
    assert "udp://127.0.0.1:" in one(page, "#stream-hint").text
    assert one(page, "#events-panel").get_attribute("hidden") is not None


def test_its_events_are_replayed_then_shown_live_with_thumbnails(page, stream_site):
    # the route and thumbnails need the key: the page sends it (fetch, not EventSource)
    base = stream_site["url"].rstrip("/")
    assert httpx.get(f"{base}/v1/streams/gate/events").status_code == 401
    one(page, '#streams tr[data-stream="gate"] .show-events').click()
    wait(page, lambda d: loaded_thumbnails(d, "#stream-events .event img") == 1,
         "the stored event and its thumbnail", WAIT_S)
    event = one(page, "#stream-events .event")
    assert event.find_element("css selector", ".name").text == "a red car"
    assert event.find_element("css selector", ".score").text == "score 0.313"
    assert event.find_element("css selector", ".verdict").text == \
        "verified: yes, a red car by the gate"
    assert " - " in event.find_element("css selector", ".time").text
    assert one(page, "#events-title").text == "Events of gate"
    # an event stored while the page listens appears at the top, live
    _store_event(stream_site["index"], "a blue van", time.time(), "blue", 0.25, False, None)
    started = time.monotonic()
    wait(page, lambda d: loaded_thumbnails(d, "#stream-events .event img") == 2,
         "the new event, live", WAIT_S)
    assert time.monotonic() - started < 5  # the service looks every 0.5 s
    names = [e.text for e in by_css(page, "#stream-events .event .name")]
    assert names == ["a blue van", "a red car"]
    assert one(page, "#stream-events .event .verdict").text == "not verified"
    assert one(page, "#events-status").text == "live: 2 events of gate"
    # the list's count follows: every 30 s with nothing running, at once after an action (the
    # refused start below)


def test_a_cut_event_stream_reconnects_after_the_last_event_shown(page, stream_site):
    # every connection cut (the relay: a proxy dropping them); the page asks again with
    # Last-Event-ID, so only the event stored meanwhile comes, not the two shown (the page shows
    # what it is sent: a replay from the start would make it 5)
    stream_site["relay"].cut()
    _store_event(stream_site["index"], "a green bike", time.time(), "green", 0.5, False, None)
    wait(page, lambda d: "reconnecting" in one(d, "#events-status").text, "the cut seen", WAIT_S)
    wait(page, lambda d: loaded_thumbnails(d, "#stream-events .event img") == 3,
         "the event stored meanwhile", WAIT_S)
    assert one(page, "#events-status").text == "live: 3 events of gate"
    time.sleep(1.0)  # two polls of the service: nothing more comes
    names = [e.text for e in by_css(page, "#stream-events .event .name")]
    assert names == ["a green bike", "a blue van", "a red car"]
    # what the console said meanwhile: the cut connection only
    errors = [e["message"] for e in page.get_log("browser") if e["level"] == "SEVERE"]
    assert all("net::ERR_" in message for message in errors), errors


def test_the_form_names_a_refused_url_and_the_section_fits_a_phone(page, shots):
    one(page, "#stream-url").send_keys("udp://10.0.0.1:5000")
    one(page, "#stream-name").send_keys("elsewhere")
    one(page, "#stream-alerts").send_keys("a person\na dog")
    one(page, "#stream-button").click()
    wait(page, lambda d: "not allowed" in one(d, "#stream-status").text, "the refusal", WAIT_S)
    assert "error" in one(page, "#stream-status").get_attribute("class")
    wait(page, lambda d: _row(d, "gate")["events"] == "3", "the list refreshed", WAIT_S)
    assert [r.get_attribute("data-stream") for r in by_css(page, "#streams tbody tr")] == ["gate"]
    page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    page.execute_script("document.getElementById('streams-panel').scrollIntoView()")
    assert_fits(page, PHONE["width"], "streams", shots)
    page.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    width = page.execute_script("return window.innerWidth")
    assert_fits(page, width, "streams-desktop", shots)


def test_a_stream_started_from_the_form_shows_its_alert_live_then_stops(page, request):
    # ffmpeg publishes a test pattern over UDP; the page's form starts the watcher, the page
    # follows its events at once (the first arrives after the ingest pool starts)
    port = _free_udp_port()
    publisher = _publish(port, 120)
    request.addfinalizer(publisher.kill)
    for field, text in (("#stream-url", f"udp://127.0.0.1:{port}"), ("#stream-name", "live"),
                        ("#stream-alerts", "a test pattern")):
        one(page, field).clear()
        one(page, field).send_keys(text)
    one(page, "#stream-button").click()
    wait(page, lambda d: (_row(d, "live") or {}).get("state") == "running", "it listed, running",
         WAIT_S)
    assert one(page, "#events-title").text == "Events of live"
    wait(page, lambda d: loaded_thumbnails(d, "#stream-events .event img") >= 1,
         "its first alert, live, with its thumbnail", 150)
    assert one(page, "#stream-events .event .name").text == "a test pattern"
    wait(page, lambda d: (_row(d, "live") or {}).get("events", "0") != "0"
         and re.match(r"\d+\.\d s", _row(d, "live")["lag"]), "its lag and count listed", WAIT_S)
    one(page, '#streams tr[data-stream="live"] .stop').click()
    wait(page, lambda d: (_row(d, "live") or {}).get("state") == "stopped", "it stopped", 60)
    assert one(page, "#stream-status").text == "live stopped"
    one(page, '#streams tr[data-stream="live"] .forget').click()
    wait(page, lambda d: _row(d, "live") is None, "it gone", WAIT_S)


def test_a_forgotten_stream_is_gone_with_its_events(page, stream_site):
    one(page, '#streams tr[data-stream="gate"] .forget').click()
    wait(page, lambda d: _row(d, "gate") is None, "the stream gone", WAIT_S)
    assert one(page, "#stream-status").text == "gate forgotten, its memory and events deleted"
    assert one(page, "#events-panel").get_attribute("hidden") is not None
    assert not (stream_site["index"] / "streams" / "gate").exists()
