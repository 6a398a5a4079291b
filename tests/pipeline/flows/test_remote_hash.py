"""A remote video with no strong version (nginx with `etag off`: Last-Modified only) is hashed
while the coarse pass streams it: its first ingest reads it once (the shards' ranges plus the
pieces between them), not once to hash and once to decode; its digest is the one a whole read
gives (core.sources.pieces_digest); an unchanged re-ask reads it once and decodes nothing; a
changed one, also one whose size and Last-Modified stay the same, is ingested anew."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.ingest_pools import ingest_config, running_pool
from tests.remote_stores import NGINX, nginx_serving
from tests.videos import run_ffmpeg
from vidsift.core import sources
from vidsift.index.memory import MemoryStore
from vidsift.pipeline.flows.ingest import ingest_one

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (make nginx)")

BLOCK_KIB = 64


def _cfg(root):
    # 3 s shards: the 12 s video gets 4, about 1.5 MB (6 pieces) each.
    return ingest_config(root, 0.05, f"decode.source_block_kib={BLOCK_KIB}",
                         "decode.source_cache_blocks=8")


def _video(path, colour: str | None = None):
    # Lossless, so 12 s of 640x360 is 5.9 MB: 23 pieces of 256 KiB.
    source = f"color=c={colour}:s=640x360:r=25" if colour else "testsrc2=s=640x360:r=25"
    run_ffmpeg("-f", "lavfi", "-i", source, "-t", "12", "-c:v", "libx264", "-preset", "ultrafast",
               "-qp", "0", "-g", "25", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path))
    return path


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    (root / "weak").mkdir()
    _video(root / "weak" / "talk.mp4")
    shutil.copy(root / "weak" / "talk.mp4", root / "strong.mp4")
    with nginx_serving(root, tmp_path_factory.mktemp("nginx")) as server:
        yield server


@pytest.fixture(scope="module")
def pool(ray_cluster, tmp_path_factory):
    yield from running_pool(_cfg(tmp_path_factory.mktemp("pool")))


def _served(web, name: str) -> int:
    """Bytes nginx has sent of /name so far."""
    return sum(sent for method, path, _, _, sent in web.requests()
               if method == "GET" and path == f"/{name}")


def test_a_weak_source_is_read_once_hashed_as_it_is_decoded(web, pool, tmp_path):
    cfg = _cfg(tmp_path)
    url = web.url + "weak/talk.mp4"
    size = os.path.getsize(web.root / "weak" / "talk.mp4")
    info = sources.stat_source(url)
    assert info.hashed_in_pieces and info.weak and not info.token
    assert sources.stat_source(web.url + "strong.mp4").token  # nginx's own ETag elsewhere
    memory = ingest_one(url, cfg, pool, MemoryStore(cfg.index.dir))
    first = _served(web, "weak/talk.mp4")
    # Before, the digest was a read of the whole file ahead of the coarse pass, which itself
    # reads about the whole file (1.1x here: 4 shards, each with the header and a GOP at its
    # edges): over 2x. Now the shards hash the pieces they fetch and the driver reads only the
    # pieces between their ranges: measured 1.14x (6.75 MB of 5.90 MB; the driver 0.33 MB, its
    # header scan and those pieces).
    print({"size": size, "first_ingest": first, "driver": sources.bytes_fetched().get(url),
           "actors": [a.get(url) for a in pool.bytes_read()]})
    assert first <= 1.3 * size, (first, size)
    assert sources.bytes_fetched()[url] <= 8 * sources.PIECE_BYTES
    # The digest is the one a whole read gives, and the memory is keyed by it.
    before = _served(web, "weak/talk.mp4")
    assert memory.content_hash == sources.source_digest(url)
    assert _served(web, "weak/talk.mp4") - before == size  # what hashing it alone reads
    assert sum(pool.shards_done) >= 4


def test_a_weak_source_unchanged_is_reused_changed_is_ingested_anew(web, pool, tmp_path):
    cfg = _cfg(tmp_path)
    store = MemoryStore(cfg.index.dir)
    path = web.root / "weak" / "again.mp4"
    shutil.copy(web.root / "weak" / "talk.mp4", path)
    url = web.url + "weak/again.mp4"
    size = path.stat().st_size
    first = ingest_one(url, cfg, pool, store)
    # Unchanged (same Last-Modified and size): read once to hash it, no shard decoded.
    events, done, before = [], sum(pool.shards_done), _served(web, "weak/again.mp4")
    again = ingest_one(url, cfg, pool, store, events.append)
    assert [e.reused for e in events] == [True] and sum(pool.shards_done) == done
    assert again.content_hash == first.content_hash
    assert _served(web, "weak/again.mp4") - before == size
    # Other bytes of the same size under the same Last-Modified: what the server says is the
    # same, the content is not; the hash tells, and the memory is made anew.
    stamp, said = path.stat(), sources.stat_source(url).weak
    with open(path, "r+b") as handle:  # one byte of the last frames' data
        handle.seek(size - 4096)
        byte = handle.read(1)
        handle.seek(size - 4096)
        handle.write(bytes([byte[0] ^ 0x55]))
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert sources.stat_source(url).weak == said
    events.clear()
    changed = ingest_one(url, cfg, pool, store, events.append)
    assert not any(e.reused for e in events) and changed.content_hash != first.content_hash
    assert changed.content_hash == sources.source_digest(url)
    # A new Last-Modified: a change, ingested anew at once (read once, not hashed first).
    _video(tmp_path / "blue.mp4", "blue")
    os.replace(tmp_path / "blue.mp4", path)
    events.clear()
    newest = ingest_one(url, cfg, pool, store, events.append)
    assert not any(e.reused for e in events) and newest.info.duration == pytest.approx(12.0)
    assert newest.content_hash not in (first.content_hash, changed.content_hash)
    assert newest.content_hash == sources.source_digest(url)
