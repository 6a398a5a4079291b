import json
from pathlib import Path

import numpy as np
import pytest

from vidsift.core.config import IndexConfig
from vidsift.core.errors import ClipIndexError
from vidsift.index.clip_index import ClipIndex, VideoClips
from vidsift.index.store import NO_SPEECH, NewClip

DV, DT = 48, 24


def unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def record(name, n, seed, visual=None, text=None):
    rng = np.random.default_rng(seed)
    return VideoClips(
        path=f"/videos/{name}.mp4",
        content_hash=f"hash-{name}",
        duration=4.0 * n,
        clips=[NewClip(4.0 * i, 4.0 * (i + 1), f"thumbs/{name}/{i:05d}.jpg", f"{name} {i}") for i in range(n)],
        visual=unit(rng.normal(size=(n, DV))) if visual is None else visual,
        text=unit(rng.normal(size=(n, DT))) if text is None else text,
    )


def hits_key(hits):
    return [(h.video, h.start, h.end, round(h.score, 5)) for h in hits]


@pytest.fixture
def filled(tmp_path):
    """An index of three committed videos (40 clips each)."""
    with ClipIndex(tmp_path / "idx", embedder="test") as index:
        for j, name in enumerate(["a", "b", "c"]):
            assert index.add_video(record(name, 40, seed=j))
    return tmp_path / "idx"


def test_planted_vector_found_first_in_each_space(tmp_path):
    a = record("a", 30, seed=0)
    with ClipIndex(tmp_path / "idx") as index:
        index.add_video(a)
        index.add_video(record("b", 30, seed=1))
        hits = index.search(visual=a.visual[7] + 0.05 * unit(np.ones(DV)), k=5)
        assert (hits[0].video, hits[0].start, hits[0].end) == ("/videos/a.mp4", 28.0, 32.0)
        assert hits[0].visual_score > 0.9 and hits[0].text_score == 0.0
        hits = index.search(text=a.text[12], k=5)
        assert (hits[0].start, hits[0].text) == (48.0, "a 12")
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_two_spaces_fused_by_visual_weight(tmp_path):
    qv, qt = unit(np.eye(DV)[0]), unit(np.eye(DT)[0])
    filler = record("filler", 50, seed=3)
    # orthogonal-ish background, then three planted clips:
    # strong_text: text 0.9, visual 0; strong_visual: visual 0.9, text 0; balanced: 0.6 and 0.6
    def planted(v_score, t_score):
        v = np.zeros(DV, np.float32); v[0] = v_score; v[1] = np.sqrt(1 - v_score**2)
        t = np.zeros(DT, np.float32); t[0] = t_score; t[1] = np.sqrt(1 - t_score**2)
        return v, t
    vs, ts = zip(planted(0.0, 0.9), planted(0.9, 0.0), planted(0.6, 0.6))
    special = record("special", 3, seed=4, visual=np.stack(vs), text=np.stack(ts))
    filler.visual[:, :2] = 0; filler.visual = unit(filler.visual)
    filler.text[:, :2] = 0; filler.text = unit(filler.text)
    for weight, first_start in [(0.5, 8.0), (1.0, 4.0), (0.0, 0.0)]:
        path = f"idx{weight}"
        with ClipIndex(tmp_path / path, IndexConfig(visual_weight=weight)) as index:
            index.add_video(filler)
            index.add_video(special)
            top = index.search(visual=qv, text=qt, k=3)[0]
            assert (top.video, top.start) == ("/videos/special.mp4", first_start)
            assert top.score == pytest.approx(weight * top.visual_score + (1 - weight) * top.text_score)


def test_persistence_round_trip(filled):
    q = record("a", 40, seed=0)
    with ClipIndex(filled, readonly=True) as reader:
        before = hits_key(reader.search(visual=q.visual[3], text=q.text[3], k=10))
        stats = reader.stats()
    assert before[0][:3] == ("/videos/a.mp4", 12.0, 16.0)
    assert stats["videos"] == 3 and stats["clips"] == 120 and stats["generation"] == 1
    assert stats["spaces"]["visual"] == {"dim": DV, "factory": "IDMap2,Flat", "vectors": 120, "params": {}, "on_gpu": False}
    with ClipIndex(filled, readonly=True) as again:
        assert hits_key(again.search(visual=q.visual[3], text=q.text[3], k=10)) == before


def test_add_is_incremental_and_readd_is_noop(filled):
    with ClipIndex(filled) as index:
        faiss_index = index._spaces["visual"].index
        assert index.add_video(record("a", 40, seed=0)) is False  # same content hash
        assert index.add_video(record("d", 5, seed=9))
        assert index._spaces["visual"].index is faiss_index  # appended, not rebuilt
        assert faiss_index.ntotal == 125
    with ClipIndex(filled) as index:
        assert index.stats()["generation"] == 2
        assert index.add_video(record("d", 5, seed=9)) is False
        index.commit()  # nothing changed: no new generation
        assert index.generation == 2


def _thumbnail_of_b(root: Path) -> Path:
    """A thumbnail file of video b's clip 5, as an earlier run wrote it."""
    thumb = root / "thumbs/b/00005.jpg"
    thumb.parent.mkdir(parents=True)
    thumb.write_bytes(b"jpeg")
    return thumb


def test_remove_video_removes_vectors_rows_and_thumbnails(filled):
    b = record("b", 40, seed=1)
    thumb = _thumbnail_of_b(filled)
    with ClipIndex(filled) as index:
        assert index.remove_video("hash-b") == 40
        assert all(h.video != "/videos/b.mp4" for h in index.search(visual=b.visual[5], k=50))
        assert index.remove_video("/videos/nothing.mp4") == 0
    assert not thumb.exists()
    with ClipIndex(filled, readonly=True) as reader:
        assert reader.stats()["clips"] == 80
        assert reader.stats()["spaces"]["text"]["vectors"] == 80
        assert [v.path for v in reader.videos()] == ["/videos/a.mp4", "/videos/c.mp4"]
    with ClipIndex(filled) as index:  # removed content can be indexed again
        assert index.remove_video("/videos/a.mp4") == 40
        assert index.add_video(b)


def test_video_filter(filled):
    a = record("a", 40, seed=0)
    with ClipIndex(filled, readonly=True) as reader:
        hits = reader.search(visual=a.visual[0], k=5, videos=["/videos/c.mp4"])
        assert len(hits) == 5 and {h.video for h in hits} == {"/videos/c.mp4"}
        hits = reader.search(visual=a.visual[0], k=200, videos=["hash-a", "hash-b"])
        assert len(hits) == 80 and hits[0].start == 0.0 and hits[0].video == "/videos/a.mp4"
        assert reader.search(visual=a.visual[0], videos=["/videos/none.mp4"]) == []


@pytest.mark.parametrize("crash_in", ["second_faiss_file", "manifest"])
def test_crash_mid_commit_leaves_previous_index(filled, monkeypatch, crash_in):
    a, d = record("a", 40, seed=0), record("d", 10, seed=5)
    with ClipIndex(filled, readonly=True) as reader:
        before = hits_key(reader.search(visual=a.visual[1], text=a.text[1], k=10))
    manifest_before = (filled / "manifest.json").read_text()

    index = ClipIndex(filled)
    index.add_video(d)
    index.remove_video("hash-c")
    if crash_in == "manifest":
        def crash(self, manifest):
            raise OSError("power cut")
        monkeypatch.setattr(ClipIndex, "_write_manifest", crash)
    else:
        real = ClipIndex._write_faiss
        def crash(self, name, space, generation):
            if name == "text":  # the visual file of generation 2 is already on disk
                raise OSError("power cut")
            return real(self, name, space, generation)
        monkeypatch.setattr(ClipIndex, "_write_faiss", crash)
    with pytest.raises(OSError):
        index.commit()
    assert (filled / "visual.2.faiss").exists()  # half a commit is on disk
    index.close()  # the process dies: lock and files released, nothing more written
    monkeypatch.undo()

    assert (filled / "manifest.json").read_text() == manifest_before
    with ClipIndex(filled, readonly=True) as reader:  # readers see generation 1 exactly
        assert hits_key(reader.search(visual=a.visual[1], text=a.text[1], k=10)) == before
        assert reader.stats()["clips"] == 120
        assert not reader.search(visual=d.visual[0], k=200, videos=["hash-d"])
    with ClipIndex(filled) as writer:  # the next writer cleans up and carries on
        assert not (filled / "visual.2.faiss").exists()
        assert [v.content_hash for v in writer.videos()] == ["hash-a", "hash-b", "hash-c"]
        assert writer.add_video(d)
    with ClipIndex(filled, readonly=True) as reader:
        assert reader.stats()["clips"] == 130 and reader.generation == 2
        assert reader.search(visual=d.visual[4], k=1)[0].video == "/videos/d.mp4"


def test_growth_past_threshold_rechooses_factory(tmp_path):
    cfg = IndexConfig(flat_max_vectors=200)
    videos = [record(f"v{j}", 100, seed=10 + j) for j in range(4)]
    with ClipIndex(tmp_path / "idx", cfg) as index:
        index.add_video(videos[0])
    with ClipIndex(tmp_path / "idx", cfg) as index:
        assert index.stats()["spaces"]["visual"]["factory"] == "IDMap2,Flat"
        for v in videos[1:]:
            index.add_video(v)
    with ClipIndex(tmp_path / "idx", cfg, readonly=True) as reader:
        stats = reader.stats()
        assert stats["spaces"]["visual"]["factory"].startswith("IVF")
        assert stats["spaces"]["text"]["vectors"] == 400 and "nprobe" in stats["spaces"]["text"]["params"]
        manifest = json.loads((tmp_path / "idx/manifest.json").read_text())
        assert manifest["spaces"]["visual"]["choice"]["valid_up_to"] == 1600
        for v in videos:
            hit = reader.search(visual=v.visual[42], text=v.text[42], k=3)[0]
            assert (hit.video, hit.start) == (v.path, 168.0)


def test_missing_faiss_file_is_rebuilt_from_metadata(filled):
    a = record("a", 40, seed=0)
    (filled / "text.1.faiss").unlink()
    with ClipIndex(filled, readonly=True) as reader:
        assert reader.search(text=a.text[9], k=1)[0].start == 36.0


def test_gpu_setting_gives_same_results(filled):
    a = record("a", 40, seed=0)
    answers = []
    for gpu in ("auto", "never"):
        with ClipIndex(filled, IndexConfig(gpu=gpu), readonly=True) as reader:
            answers.append(hits_key(reader.search(visual=a.visual[2], text=a.text[2], k=10)))
    assert answers[0] == answers[1]


def test_refusals(filled, tmp_path):
    with pytest.raises(ClipIndexError, match="read-only"):
        with ClipIndex(filled, readonly=True) as reader:
            reader.add_video(record("z", 2, seed=1))
    with pytest.raises(ClipIndexError, match="no clip index"):
        ClipIndex(tmp_path / "empty", readonly=True)
    with pytest.raises(ClipIndexError, match="embedder"):
        ClipIndex(filled, embedder="other")
    with ClipIndex(filled) as writer:
        with pytest.raises(ClipIndexError, match="another process"):
            ClipIndex(filled)
        wrong = record("w", 2, seed=1, visual=unit(np.ones((2, DV + 1))))
        with pytest.raises(ClipIndexError, match="dimension"):
            writer.add_video(wrong)
        with pytest.raises(ClipIndexError, match="dimension"):
            writer.search(text=np.ones(DT + 2))


def thumbnailed(index, name, n, seed, speech):
    """record(name, ...) made with `speech`, its thumbnails written where the index puts them."""
    new = record(name, n, seed)
    new.speech = speech
    for number, clip in enumerate(new.clips):
        absolute, relative = index.thumbnail_path(new.content_hash, number)
        absolute.parent.mkdir(parents=True, exist_ok=True)
        absolute.write_bytes(b"jpeg %d" % number)
        new.clips[number] = NewClip(clip.start, clip.end, relative, f"{name} said {number}")
    return new


def test_replace_video_swaps_clips_in_one_commit(filled):
    old_b = record("b", 40, seed=1)
    old_thumb = _thumbnail_of_b(filled)
    with ClipIndex(filled) as index:
        assert index.indexed_speech("hash-b") == NO_SPEECH and index.indexed_speech("hash-z") is None
        new_b = thumbnailed(index, "b", 30, seed=7, speech="k1")
        assert index.replace_video(new_b) == 40
        assert index.indexed_speech("hash-b") == "k1"
        with ClipIndex(filled, readonly=True) as reader:  # not committed: readers see the old clips
            assert reader.stats()["clips"] == 120 and reader.indexed_speech("hash-b") == NO_SPEECH
    with ClipIndex(filled, readonly=True) as reader:
        assert reader.stats()["clips"] == 110 and reader.stats()["spaces"]["text"]["vectors"] == 110
        assert [(v.path, v.clips, v.speech) for v in reader.videos()] == [
            ("/videos/a.mp4", 40, NO_SPEECH), ("/videos/c.mp4", 40, NO_SPEECH), ("/videos/b.mp4", 30, "k1")]
        hit = reader.search(text=new_b.text[4], k=1)[0]
        assert (hit.video, hit.start, hit.text) == ("/videos/b.mp4", 16.0, "b said 4")
        assert not any(h.text == "b 5" for h in reader.search(visual=old_b.visual[5], k=200))
        # the old clips' thumbnails went with them; the new ones (generation 2) stay
        assert not old_thumb.exists()
        assert hit.thumbnail == str(filled / "thumbs/hash-b/2-00004.jpg")
        assert (filled / "thumbs/hash-b/2-00004.jpg").read_bytes() == b"jpeg 4"


def test_replace_refuses_a_bad_record_and_changes_nothing(filled):
    with ClipIndex(filled) as index:
        with pytest.raises(ClipIndexError, match="dimension"):
            index.replace_video(record("b", 2, seed=1, visual=unit(np.ones((2, DV + 1)))))
        assert index.indexed_speech("hash-b") == NO_SPEECH and index.stats()["clips"] == 120


@pytest.mark.parametrize("crash_in", ["between_remove_and_add", "manifest"])
def test_crash_while_replacing_keeps_the_old_clips(filled, monkeypatch, crash_in):
    b = record("b", 40, seed=1)
    index = ClipIndex(filled)
    new_b = thumbnailed(index, "b", 30, seed=7, speech="k1")
    if crash_in == "between_remove_and_add":
        def crash(*args, **kwargs):
            raise OSError("power cut")
        monkeypatch.setattr(index.store, "add_video", crash)
        with pytest.raises(OSError):
            index.replace_video(new_b)
    else:
        index.replace_video(new_b)
        def crash(self, manifest):
            raise OSError("power cut")
        monkeypatch.setattr(ClipIndex, "_write_manifest", crash)
        with pytest.raises(OSError):
            index.commit()
    index.close()  # the process dies
    monkeypatch.undo()
    with ClipIndex(filled) as writer:  # recovery: generation 1, b as it was
        assert writer.generation == 1 and writer.stats()["clips"] == 120
        assert writer.indexed_speech("hash-b") == NO_SPEECH
        hit = writer.search(visual=b.visual[5], text=b.text[5], k=1)[0]
        assert (hit.video, hit.start, hit.text) == ("/videos/b.mp4", 20.0, "b 5")
        if crash_in == "manifest":  # the unfinished clips' thumbnails went with their rows
            assert not (filled / "thumbs/hash-b/2-00004.jpg").exists()
        assert writer.replace_video(new_b) == 40  # and the re-do can run again
    with ClipIndex(filled, readonly=True) as reader:
        assert reader.indexed_speech("hash-b") == "k1" and reader.stats()["clips"] == 110


def test_index_written_before_speech_keys_reads_as_made_without_speech(filled):
    import sqlite3

    db = sqlite3.connect(filled / "meta.sqlite")
    db.execute("ALTER TABLE videos DROP COLUMN speech")  # the file as an older vidsift wrote it
    db.close()
    with ClipIndex(filled, readonly=True) as reader:
        assert [v.speech for v in reader.videos()] == [NO_SPEECH] * 3
        assert reader.indexed_speech("hash-a") == NO_SPEECH and reader.stats()["clips"] == 120
    with ClipIndex(filled) as writer:  # a writer adds the column; the videos keep NO_SPEECH
        assert writer.indexed_speech("hash-c") == NO_SPEECH
        writer.replace_video(thumbnailed(writer, "c", 3, seed=8, speech="k2"))
    with ClipIndex(filled, readonly=True) as reader:
        assert [(v.content_hash, v.speech) for v in reader.videos()] == [
            ("hash-a", NO_SPEECH), ("hash-b", NO_SPEECH), ("hash-c", "k2")]
