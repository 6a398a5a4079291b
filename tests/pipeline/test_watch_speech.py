"""flows/watch.py with speech on: ffmpeg publishing over UDP a video whose espeak-ng sentence is
said at a known time; each shard's audio is muxed into its segment, recognised by the offline
default (Moonshine), kept with wall-clock times in the stream's memory, and the window that
ask --stream reads has it as its transcript. A stream without audio is watched as before."""

import json
import subprocess
import threading
import time

import pytest

from tests.speech_videos import Line, espeak_available, make_speech_video
from tests.videos import ffmpeg_available
from tests.workers.test_stream_reader import _free_udp_port, _publish
from vidsift.core.config import Config
from vidsift.pipeline.flows.speech import video_transcript
from vidsift.pipeline.flows.watch import StreamStore, stream_window, watch_stream

pytestmark = pytest.mark.skipif(not (ffmpeg_available() and espeak_available()),
                                reason="needs the ffmpeg CLI and espeak-ng")

SAID_AT = 2.0  # stream seconds
SENTENCE = "Please open the red door now."


def _config(tmp_path, model_dir) -> Config:
    cfg = Config()
    cfg.index.dir = str(tmp_path / "index")
    cfg.embed.backend, cfg.embed.model, cfg.embed.device = "siglip", str(model_dir), "cpu"
    cfg.watch.shard_s, cfg.watch.read_timeout_s, cfg.watch.coarse_fps = 1.0, 3.0, 1.0
    cfg.decode.coarse_max_side = 64
    cfg.speech.mode = "asr"
    return cfg


def _watch(cfg, port, publish) -> list:
    done = threading.Event()

    def run():
        publish().wait()
        time.sleep(1.0)  # what it sent is read meanwhile
        done.set()

    threading.Timer(0.3, run).start()
    return list(watch_stream(f"udp://127.0.0.1:{port}", "talk", cfg, duration_s=20,
                             should_stop=done.is_set))


def test_a_streams_speech_is_kept_with_wall_clock_times_and_is_the_windows_transcript(
        tmp_path, tiny_siglip_dir):
    video = tmp_path / "talk.mp4"
    (line,) = make_speech_video(video, 6.0, [Line(SAID_AT, SENTENCE)], keyframe_every_s=1.0)
    cfg = _config(tmp_path, tiny_siglip_dir)
    port = _free_udp_port()
    sent = []

    def publish():
        sent.append(time.time())  # -re: stream second s goes out about sent + s
        return subprocess.Popen(["ffmpeg", "-loglevel", "error", "-re", "-i", str(video),
                                 "-c", "copy", "-f", "mpegts",
                                 f"udp://127.0.0.1:{port}?pkt_size=1316"],
                                stdin=subprocess.DEVNULL)

    _watch(cfg, port, publish)
    store = StreamStore(cfg.index.dir, "talk")
    shards = [store.read_shard(i) for i in store.shard_indices()]
    said = [entry for shard in shards for entry in shard["speech"]]
    words = " ".join(text for _, _, text, _ in said).lower()
    assert {"open", "red", "door"} <= set(words.replace(".", " ").replace(",", " ").split()), said
    truth = sent[0] + SAID_AT
    first = min(start for start, _, _, _ in said)
    assert abs(first - truth) < cfg.watch.shard_s + 0.5, (first - truth, said)
    assert max(end for _, end, _, _ in said) < sent[0] + line.end + cfg.watch.shard_s + 0.5

    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type",
                            "-of", "json", str(shards[0]["segment"])],
                           capture_output=True, text=True, check=True)
    kinds = [s["codec_type"] for s in json.loads(probe.stdout)["streams"]]
    assert kinds.count("audio") == 1 and kinds.count("video") == 1

    window, origin = stream_window(cfg, "talk", last_s=60)
    transcript = video_transcript(str(window), cfg)  # stored by stream_window: nothing re-heard
    assert transcript.warnings == []
    heard = " ".join(s.text for s in transcript.segments).lower()
    assert "door" in heard
    assert abs(transcript.segments[0].start + origin - first) < 1e-3


def test_a_stream_without_audio_is_watched_with_speech_on(tmp_path, tiny_siglip_dir):
    cfg = _config(tmp_path, tiny_siglip_dir)
    port = _free_udp_port()
    _watch(cfg, port, lambda: _publish(port, 3))
    store = StreamStore(cfg.index.dir, "talk")
    shards = [store.read_shard(i) for i in store.shard_indices()]
    assert len(shards) >= 2 and all(shard["speech"] == [] for shard in shards)
    assert stream_window(cfg, "talk", last_s=60)[0].is_file()


def test_speech_tail_holds_back_the_speech_still_going_on_at_the_end():
    import numpy as np

    from vidsift.pipeline.flows.watch import speech_tail

    rate = 16_000
    tone = lambda s: 0.3 * np.sin(np.arange(int(s * rate)) * 0.2).astype(np.float32)  # noqa: E731
    quiet = lambda s: np.zeros(int(s * rate), np.float32)  # noqa: E731
    said_then_pause = np.concatenate([tone(0.5), quiet(0.5)])
    assert speech_tail(said_then_pause, 30.0) == len(said_then_pause)
    cut_off = np.concatenate([tone(0.5), quiet(0.5), tone(0.4)])
    cut = speech_tail(cut_off, 30.0)
    assert 0.5 * rate < cut < 1.0 * rate  # inside the pause, before the words going on
    assert speech_tail(tone(1.0), 30.0) == 0
    assert speech_tail(tone(1.0), 0.5) == rate  # held no longer than most_s
