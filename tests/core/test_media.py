"""vidsift.core.media: which files are a job's videos, and what identifies a video's content."""

from __future__ import annotations

import json
import os

import pytest

from vidsift.core.errors import (
    ConfigError,
    EmptyVideoError,
    InvalidPathError,
    NotAFileError,
    SymlinkLoopError,
    VideoNotFoundError,
)
from vidsift.core.media import (
    check_video_file,
    content_hash,
    find_videos,
    resolve_path,
    video_key,
)


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


def test_content_hash_of_a_loop_or_a_directory_names_the_problem(hostile):
    with pytest.raises(SymlinkLoopError, match="loop_a.mp4: symlink loop"):
        content_hash(hostile / "loop_a.mp4")
    with pytest.raises(NotAFileError, match=r"clip.mp4: not a regular file \(a directory with no videos in it: none named \.avi, "):
        content_hash(hostile / "clip.mp4")


def test_video_key_is_safe_stable_and_unique_per_path():
    key = video_key("/videos/My Holiday (2023).mp4")
    assert key == video_key("/videos/My Holiday (2023).mp4")
    stem, digest = key.rsplit("-", 1)
    assert stem == "My_Holiday__2023_" and len(digest) == 10
    assert all(c.isalnum() or c in "-_" for c in key)
    assert video_key("/a/clip.mp4") != video_key("/b/clip.mp4")
    assert video_key("/a/clip.mp4").startswith("clip-")
    assert len(video_key("/x/" + "n" * 300 + ".mp4")) == 60 + 1 + 10


@pytest.fixture()
def hostile(tmp_path):
    """A folder of paths that look like videos but are not: a symlink-loop pair, a dangling
    link, a directory named like a video, a named pipe, an empty file."""
    os.symlink(tmp_path / "loop_b.mp4", tmp_path / "loop_a.mp4")
    os.symlink(tmp_path / "loop_a.mp4", tmp_path / "loop_b.mp4")
    os.symlink(tmp_path / "gone.mp4", tmp_path / "dangling.mp4")
    (tmp_path / "clip.mp4").mkdir()
    (tmp_path / "talks").mkdir()  # a folder of videos, given where one video is expected
    touch(tmp_path / "talks" / "intro.mkv", b"\x1a\x45\xdf\xa3")
    os.mkfifo(tmp_path / "pipe.mp4")
    touch(tmp_path / "empty.mp4", b"")
    return tmp_path


@pytest.mark.parametrize(("name", "error", "message"), [
    ("loop_a.mp4", SymlinkLoopError, "loop_a.mp4: symlink loop (too many levels of symbolic links)"),
    ("dangling.mp4", VideoNotFoundError, "dangling.mp4: file not found (a dangling symlink to {root}/gone.mp4)"),
    ("clip.mp4", NotAFileError, "clip.mp4: not a regular file (a directory with no videos in "
                                "it: none named .avi, .flv, .m2ts, .m4v, .mkv, .mov, .mp4, .mpeg, "
                                ".mpg, .ts, .webm, .wmv)"),
    ("talks", NotAFileError, "talks: not a regular file (a directory)"),
    ("pipe.mp4", NotAFileError, "pipe.mp4: not a regular file (a named pipe)"),
    ("empty.mp4", EmptyVideoError, "empty.mp4: file is empty"),
    ("absent.mp4", VideoNotFoundError, "absent.mp4: file not found"),
    ("nul\0.mp4", InvalidPathError, "nul\\x00.mp4: invalid path (a NUL byte in it)"),
])
def test_check_video_file_names_the_path_and_the_problem(hostile, name, error, message):
    with pytest.raises(error) as err:
        check_video_file(hostile / name)
    assert str(err.value) == f"{hostile}/" + message.format(root=hostile)


def test_check_video_file_gives_the_resolved_path(tmp_path):
    video = touch(tmp_path / "real" / "a.mp4")
    os.symlink(video, tmp_path / "alias.mp4")
    assert check_video_file(tmp_path / "alias.mp4") == video.resolve()


def test_a_folders_broken_video_entries_are_listed_so_each_fails_by_name(hostile):
    touch(hostile / "good.mp4")
    touch(hostile / "clip.mp4" / "inside.mp4")  # a folder named like a video is walked
    os.symlink(hostile / "nowhere", hostile / "notes.txt")  # not named like a video: left out
    found = find_videos([hostile])
    assert found == [str(hostile / name) for name in (
        "clip.mp4/inside.mp4", "dangling.mp4", "empty.mp4", "good.mp4", "loop_a.mp4",
        "loop_b.mp4", "pipe.mp4", "talks/intro.mkv")]


def test_a_loop_or_nul_given_by_name_is_listed_as_given(hostile):
    assert find_videos([hostile / "loop_a.mp4", "bad\0.mp4"]) == [str(hostile / "loop_a.mp4"),
                                                                 "bad\0.mp4"]


def test_a_folder_with_no_videos_is_listed_itself_so_it_is_reported(tmp_path):
    touch(tmp_path / "lectures.mp4" / "notes.txt")
    assert find_videos([tmp_path / "lectures.mp4"]) == [str(tmp_path / "lectures.mp4")]
    with pytest.raises(NotAFileError, match="lectures.mp4: not a regular file"):
        check_video_file(find_videos([tmp_path / "lectures.mp4"])[0])


def test_resolve_path_refuses_a_nul_byte_and_leaves_a_loop_where_it_stops(hostile):
    with pytest.raises(InvalidPathError, match="invalid path"):
        resolve_path("a\0b.mp4")
    assert resolve_path(hostile / "loop_a.mp4") == hostile / "loop_a.mp4"


def test_a_tilde_user_with_no_home_here_is_a_name_not_a_crash(tmp_path):
    """The API fuzzer's find: `~nosuchuser/...` raised pathlib's RuntimeError ('Could not
    determine home directory.'), a 500 from every route that takes a path."""
    name = "~vidsift-no-such-user/talk.mp4"
    assert resolve_path(name, base=tmp_path) == tmp_path / name
    with pytest.raises(VideoNotFoundError, match="talk.mp4: file not found"):
        check_video_file(tmp_path / name)
    assert find_videos([tmp_path / name]) == [str(tmp_path / name)]
