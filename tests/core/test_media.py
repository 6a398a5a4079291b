"""vidsift.core.media: which files are a job's videos, and what identifies a video's content."""

from __future__ import annotations

import json
import os

import pytest

from vidsift.core.errors import ConfigError, VideoNotFoundError
from vidsift.core.media import content_hash, find_videos, video_key


def touch(path, data: bytes = b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_gives_its_videos_recursive_sorted_hidden_left_out(tmp_path):
    touch(tmp_path / "b.mp4")
    touch(tmp_path / "a.MKV")
    touch(tmp_path / "sub" / "c.webm")
    touch(tmp_path / "notes.txt")
    touch(tmp_path / ".hidden.mp4")
    touch(tmp_path / "clips.jsonl", b'"b.mp4"\n')  # a manifest inside a folder is not a video
    found = find_videos([tmp_path])
    assert found == [str((tmp_path / name).resolve()) for name in ("a.MKV", "b.mp4", "sub/c.webm")]
    assert all(os.path.isabs(p) for p in found)


def test_files_and_folders_deduplicated_in_order_found(tmp_path):
    touch(tmp_path / "v" / "a.mp4")
    touch(tmp_path / "v" / "b.mp4")
    other = touch(tmp_path / "z.anyext")
    found = find_videos([other, tmp_path / "v", tmp_path / "v" / "a.mp4"])
    assert found == [str(other.resolve()), str((tmp_path / "v" / "a.mp4").resolve()),
                     str((tmp_path / "v" / "b.mp4").resolve())]


def test_missing_file_is_kept_so_it_is_reported(tmp_path):
    missing = tmp_path / "gone.mp4"
    assert find_videos([missing]) == [str(missing.resolve())]


def test_jsonl_manifest_relative_to_its_folder(tmp_path):
    touch(tmp_path / "media" / "one.mp4")
    manifest = tmp_path / "media" / "list.jsonl"
    lines = ['"one.mp4"', json.dumps({"path": "sub/two.mov"}), "", json.dumps({"video": "/abs/three.mkv"}),
             '"one.mp4"']
    manifest.write_text("\n".join(lines) + "\n")
    assert find_videos([manifest]) == [
        str((tmp_path / "media" / "one.mp4").resolve()),
        str((tmp_path / "media" / "sub" / "two.mov").resolve()),  # missing: kept, reported later
        "/abs/three.mkv",
    ]


def test_csv_manifest_path_or_video_column(tmp_path):
    (tmp_path / "a.csv").write_text("path,label\nx.mp4,cat\n,empty\nd/y.mp4,dog\n")
    assert find_videos([tmp_path / "a.csv"]) == [str((tmp_path / "x.mp4").resolve()),
                                                 str((tmp_path / "d" / "y.mp4").resolve())]
    (tmp_path / "b.csv").write_text("video\nz.mp4\n")
    assert find_videos([tmp_path / "b.csv"]) == [str((tmp_path / "z.mp4").resolve())]


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("bad.jsonl", '"a.mp4"\n{not json\n', ":2:"),
        ("bad.ndjson", '"a.mp4"\n\n{"label": "x"}\n', ":3:"),
        ("num.jsonl", "42\n", ":1:"),
        ("bad.csv", "file,label\na.mp4,x\n", ""),
    ],
)
def test_bad_manifest_raises_config_error_naming_file_and_line(tmp_path, name, text, where):
    manifest = tmp_path / name
    manifest.write_text(text)
    with pytest.raises(ConfigError) as err:
        find_videos([manifest])
    assert str(manifest) + where in str(err.value)


def test_content_hash_follows_bytes_not_path(tmp_path):
    a = touch(tmp_path / "a.mp4", b"same bytes" * 1000)
    b = touch(tmp_path / "elsewhere" / "b.mp4", b"same bytes" * 1000)
    assert content_hash(a) == content_hash(b)
    assert len(content_hash(a)) == 64 and int(content_hash(a), 16) >= 0
    before = content_hash(a)
    a.write_bytes(b"same bytes" * 999 + b"other byte")
    os.utime(a, ns=(os.stat(a).st_atime_ns, os.stat(a).st_mtime_ns + 1_000_000))
    assert content_hash(a) != before
    assert content_hash(b) == before


def test_content_hash_of_missing_file(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(VideoNotFoundError) as err:
        content_hash(missing)
    assert err.value.path == str(missing)


def test_video_key_is_safe_stable_and_unique_per_path():
    key = video_key("/videos/My Holiday (2023).mp4")
    assert key == video_key("/videos/My Holiday (2023).mp4")
    stem, digest = key.rsplit("-", 1)
    assert stem == "My_Holiday__2023_" and len(digest) == 10
    assert all(c.isalnum() or c in "-_" for c in key)
    assert video_key("/a/clip.mp4") != video_key("/b/clip.mp4")
    assert video_key("/a/clip.mp4").startswith("clip-")
    assert len(video_key("/x/" + "n" * 300 + ".mp4")) == 60 + 1 + 10
