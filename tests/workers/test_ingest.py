"""The ingest pool on a real local Ray: calls work, a hang is killed by the timeout and the pool
keeps serving, errors arrive typed, shards run on every actor."""

from __future__ import annotations

import time

import pytest

from tests.videos import read_code
from vidsift.core.config import Config
from vidsift.core.errors import CorruptVideoError, DecodeTimeoutError, NotAVideoError
from vidsift.workers.decode import DECODERS
from vidsift.workers.ingest import IngestPool


def _cfg(backend="pyav", actors=1, **ingest) -> Config:
    return Config.model_validate({
        "decode": {"backend": backend, "timeout_s": 60},
        "ingest": {"num_actors": actors, "num_cpus_per_actor": 0.5, **ingest},
    })


@pytest.fixture(scope="module")
def pool(ray_cluster):
    decode_pool = IngestPool(_cfg(), embed=False)
    yield decode_pool
    decode_pool.close()


def test_pool_decodes_and_probes(pool, coded_video):
    assert pool.probe(coded_video).frame_count == 250
    frames = pool.frames_at(coded_video, [1.0, 2.5], max_side=80)
    assert [read_code(f.image) for f in frames] == [25, 62]
    assert [f.pts for f in frames] == pytest.approx([1.0, 2.48])


def test_bad_files_arrive_typed(pool, truncated_video, text_file_video):
    with pytest.raises(CorruptVideoError) as err:
        pool.frames_at(truncated_video, [3.5])
    assert err.value.path == str(truncated_video) and err.value.readable_until is not None
    with pytest.raises(NotAVideoError):
        pool.probe(text_file_video)


def _hanging_decoder(**kwargs):
    """A pyav decoder whose frames_at() never returns, standing in for a spinning backend."""
    from vidsift.workers.decode.pyav_backend import PyAVDecoder

    class HangingDecoder(PyAVDecoder):
        name = "hanging"

        def frames_at(self, *args, **kw):
            while True:
                time.sleep(0.05)

    return HangingDecoder(**kwargs)


def test_hanging_decode_is_killed_and_pool_recovers(ray_cluster, coded_video, monkeypatch):
    monkeypatch.setitem(DECODERS, "hanging", _hanging_decoder)
    cfg = _cfg()
    cfg.decode = cfg.decode.model_copy(update={"backend": "hanging"})  # a test-only registry entry
    hanging_pool = IngestPool(cfg, embed=False)
    try:
        started = time.monotonic()
        with pytest.raises(DecodeTimeoutError) as err:
            hanging_pool.frames_at(coded_video, [1.0], timeout_s=1.5)
        assert time.monotonic() - started < 20
        assert err.value.path == str(coded_video)
        # the replacement actor answers the next call (a probe: this decoder only hangs on frames)
        assert hanging_pool.probe(coded_video).frame_count == 250
    finally:
        hanging_pool.close()


def test_tasks_are_read_ahead_in_order_and_errors_arrive_in_their_place():
    from vidsift.workers.ingest import _read_ahead

    def source():
        yield from (1, 2, 3)
        raise CorruptVideoError("/v/bad.mp4", "unreadable")

    got = []
    with pytest.raises(CorruptVideoError, match="bad.mp4"):
        for item in _read_ahead(source(), depth=2):
            got.append(item)
    assert got == [1, 2, 3]


def test_read_ahead_stops_drawing_when_the_caller_stops():
    from vidsift.workers.ingest import _read_ahead

    drawn = []

    def source():
        for number in range(1000):
            drawn.append(number)
            yield number

    ahead = _read_ahead(source(), depth=2)
    assert next(ahead) == 0
    ahead.close()
    time.sleep(0.5)
    assert len(drawn) <= 5  # the one taken, `depth` waiting, one blocked on the full queue
