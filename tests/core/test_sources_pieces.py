"""core.sources' identity of objects with no strong version, hashed in pieces wherever their
bytes are read (nginx on loopback, `etag off` under /weak/), and of GCS objects by generation
(no GCS server runs on loopback here: gcsfs's info() dicts as gcsfs builds them, from the JSON
API's object resource)."""

from __future__ import annotations

import datetime
import hashlib
import os
import random

import pytest

from tests.remote_stores import NGINX, nginx_serving
from vidsift.core import sources
from vidsift.core.sources import PIECE_BYTES, described, pieces_digest

SIZE = 5 * PIECE_BYTES + 12345  # 6 pieces, the last one short


def _piece_digests(data: bytes) -> list[bytes]:
    return [hashlib.sha256(data[i: i + PIECE_BYTES]).digest()
            for i in range(0, len(data), PIECE_BYTES)]


@pytest.fixture(scope="module")
def data() -> bytes:
    return random.Random(7).randbytes(SIZE)


@pytest.fixture(scope="module")
def web(data, tmp_path_factory):
    if NGINX is None:
        pytest.skip("nginx is not installed (make nginx)")
    root = tmp_path_factory.mktemp("served")
    (root / "weak").mkdir()
    (root / "weak" / "blob.mp4").write_bytes(data)
    with nginx_serving(root, tmp_path_factory.mktemp("nginx")) as server:
        yield server


@pytest.mark.parametrize("block", [32 * 1024, 100_000, 1 << 20])
def test_blocks_fetched_in_any_order_give_the_pieces_a_whole_read_gives(data, block):
    recorder = sources._PieceRecorder(SIZE)
    starts = list(range(0, SIZE, block))
    random.Random(block).shuffle(starts)
    for start in starts:  # aligned blocks, as fsspec's block cache fetches them
        recorder.add(start, data[start: start + block])
    assert [recorder.done[n] for n in range(6)] == _piece_digests(data)
    assert not recorder.partial


def test_pieces_digest_is_of_the_size_and_the_ordered_digests(data):
    digests = _piece_digests(data)
    expected = hashlib.sha256(f"vidsift pieces {PIECE_BYTES} {SIZE}\n".encode()
                              + b"".join(digests)).hexdigest()
    assert pieces_digest(SIZE, digests) == expected
    assert pieces_digest(SIZE, digests[::-1]) != expected  # the order is part of it
    with pytest.raises(ValueError):
        pieces_digest(SIZE, digests[:-1])


def test_a_weak_object_is_hashed_from_the_pieces_read_and_only_the_gaps_fetched(
        web, data, small_blocks):
    url = web.url + "weak/blob.mp4"
    info = sources.stat_source(url)
    assert info.hashed_in_pieces and not info.token and not info.pin
    assert info.weak[-1] == f"size={SIZE}" and info.weak[0].startswith("Last-Modified=")
    whole = sources.source_digest(url)
    assert whole == pieces_digest(SIZE, _piece_digests(data))
    # A process that records while it reads some ranges (a shard) hashes the pieces inside them.
    sources.start_pieces(url, SIZE)
    handle = sources.open_info(info)
    handle.seek(PIECE_BYTES + 40000)  # pieces 1 and 2 in part (blocks of 32 KiB): not hashed
    handle.read(PIECE_BYTES)
    handle.seek(3 * PIECE_BYTES)
    handle.read(2 * PIECE_BYTES)  # pieces 3 and 4 whole
    handle.close()
    have = sources.take_pieces(url)
    assert sorted(have) == [3, 4]
    assert sources.take_pieces(url) == {}  # the recording is over
    before = sources.bytes_fetched()[url]
    assert sources.hash_pieces(info, have) == whole
    gaps = sum(min(PIECE_BYTES, SIZE - n * PIECE_BYTES) for n in range(6) if n not in have)
    assert sources.bytes_fetched()[url] - before == gaps


def test_a_weak_object_changed_under_the_same_name_is_another_digest(web, data):
    path = web.root / "weak" / "blob.mp4"
    url = web.url + "weak/blob.mp4"
    first, stamp, said = sources.source_digest(url), path.stat(), sources.stat_source(url).weak
    changed = bytearray(data)
    changed[SIZE // 2] ^= 0xFF
    path.write_bytes(bytes(changed))
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # what nginx tells is the same
    try:
        assert sources.stat_source(url).weak == said
        assert sources.source_digest(url) != first
    finally:
        path.write_bytes(data)


# What gcsfs's info() returns for an object (GCSFileSystem._process_object: the JSON API's
# object resource, size as an int, name with its bucket, type, mtime/ctime parsed).
GCS_OBJECT = {
    "kind": "storage#object", "id": "archive/talks/a.mp4/1733150000123456",
    "name": "archive/talks/a.mp4", "bucket": "archive", "generation": "1733150000123456",
    "metageneration": "1", "contentType": "video/mp4", "storageClass": "STANDARD",
    "size": 5900583, "md5Hash": "XrY7u+Ae7tCTyyK7j1rNww==", "crc32c": "AAAAAA==",
    "etag": "CMDi5/2h6YkDEAE=", "timeCreated": "2026-12-02T17:00:00.123Z",
    "updated": "2026-12-02T17:00:00.123Z", "type": "file",
    "mtime": datetime.datetime(2026, 12, 2, 17, 0, 0, 123000, tzinfo=datetime.timezone.utc),
}


def test_a_gcs_object_is_keyed_by_its_content_and_read_at_its_generation():
    info = described("gs://archive/talks/a.mp4", GCS_OBJECT)
    assert info.md5 == "5eb63bbbe01eeed093cb22bb8f5acdc3"  # md5Hash, base64 -> hex
    assert info.version == ("generation=1733150000123456", f"size={GCS_OBJECT['size']}")
    assert info.pin == (("generation", "1733150000123456"),) and not info.weak
    # A metadata change (new metageneration and etag) is the same content and version.
    touched = {**GCS_OBJECT, "metageneration": "2", "etag": "CMDi5/2h6YkDEAI="}
    assert described("gs://archive/talks/a.mp4", touched) == info
    # A composite object has no md5Hash: its generation is its identity and its pin.
    composite = {k: v for k, v in GCS_OBJECT.items() if k != "md5Hash"}
    plain = described("gs://archive/talks/a.mp4", composite)
    assert plain.md5 is None and not plain.hashed_in_pieces
    rewritten = described("gs://archive/talks/a.mp4", {**composite, "generation": "1733160000000001"})
    assert sources.source_digest(rewritten) != sources.source_digest(plain)
    assert rewritten.pin == (("generation", "1733160000000001"),)
