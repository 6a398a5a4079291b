"""Follow-up questions on Ray: a generated video, the offline embedder (OCR off), evidence-only
and the tiny random Qwen2.5-VL; turns kept in the conversation store across store objects and the CLI."""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import closing

import pytest
from typer.testing import CliRunner

from vidsift.core.config import load_config
from vidsift.core.errors import PathNotAllowedError, VidsiftError
from vidsift.pipeline.cli import app
from vidsift.pipeline.flows.conversation import (
    STORE_FILE, ConversationStore, approximate_tokens, ask_in_conversation, history_turns,
)
from vidsift.pipeline.flows.ask import Asker
from vidsift.workers.vlm.prompt import history_text


def _config(tmp_path, *extra):
    return load_config("default", [
        "embed.ocr=false", "budget.tokens=512", "vlm.device=cpu", "vlm.dtype=float32",
        f"index.dir={tmp_path / 'index'}", f"serve.data_dir={tmp_path / 'service'}", *extra])


def test_conversation_turns_are_numbered_and_survive_a_new_store(tmp_path):
    store = ConversationStore(tmp_path)
    assert store.turns("talk") == []
    first = {"video": "/v/talk.mp4", "question": "where?", "answer": "at [1]",
             "segments": [{"video": "/v/talk.mp4", "start": 3.0, "end": 3.0, "kind": "image"}]}
    assert store.add_turn("talk", first) == 1
    assert store.add_turn("other", {"question": "x"}) == 1  # numbered per conversation
    assert store.add_turn("talk", {"question": "and then?"}) == 2
    reopened = ConversationStore(tmp_path)
    assert reopened.turns("talk") == [{**first, "number": 1},
                                      {"question": "and then?", "number": 2}]
    assert [t["number"] for t in reopened.turns("other")] == [1]


def test_a_store_written_before_turns_knew_their_job_gains_the_column(tmp_path):
    with closing(sqlite3.connect(tmp_path / STORE_FILE)) as conn:  # the older schema, as it was
        conn.executescript("""
            CREATE TABLE turns (conversation TEXT NOT NULL, number INTEGER NOT NULL,
                                turn TEXT NOT NULL, created_at REAL NOT NULL,
                                PRIMARY KEY (conversation, number));
            INSERT INTO turns VALUES ('old', 1, '{"question": "before"}', 0);
        """)
    store = ConversationStore(tmp_path)
    assert store.turns("old") == [{"question": "before", "number": 1}]
    assert store.add_turn("old", {"question": "a job's"}, job="job-1") == 2
    assert store.add_turn("old", {"question": "a job's, run again"}, job="job-1") == 2
    assert store.add_turn("old", {"question": "the CLI's"}) == 3
    assert [t["question"] for t in ConversationStore(tmp_path).turns("old")] == [
        "before", "a job's", "the CLI's"]


def test_concurrent_turns_of_one_conversation_get_distinct_numbers(tmp_path):
    store = ConversationStore(tmp_path)
    numbers: list[int] = []
    lock = threading.Lock()

    def add(n: int) -> None:
        number = store.add_turn("busy", {"question": f"q{n}"})
        with lock:
            numbers.append(number)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == list(range(1, 13))
    assert sorted(t["question"] for t in store.turns("busy")) == sorted(f"q{n}" for n in range(12))


def test_a_follow_up_reads_the_videos_memory_and_the_turns_persist(ray_cluster, coded_video,
                                                                   tmp_path):
    cfg = _config(tmp_path, "vlm.model=none")
    store = ConversationStore(cfg.serve.data_dir)
    asker = Asker(cfg)
    try:
        first = ask_in_conversation(asker, store, "bars", str(coded_video), "where are the bars?")
        shards = sum(asker.pool.shards_done)
        assert first.conversation == {"name": "bars", "turn": 1} and first.history == {}
        # The follow-up leaves the video out: the conversation's video, its stored memory.
        second = ask_in_conversation(asker, store, "bars", None, "what colour is the top left?")
        assert sum(asker.pool.shards_done) == shards  # no shard decoded again
        assert second.reused and second.video == first.video == str(coded_video.resolve())
        assert second.conversation == {"name": "bars", "turn": 2}
        assert second.segments and second.tokens <= 512  # fresh evidence, the visual budget intact
        # Without a VLM the history is estimated, and says so.
        expected = approximate_tokens(history_text(history_turns(store.turns("bars")[:1])))
        assert second.history == {"turns": 1, "dropped": 0, "tokens": expected,
                                  "allowance": 1024, "counted_by": "approximate"}
        with pytest.raises(VidsiftError, match=r"conversation 'bars' is about .*coded.mp4, not"):
            ask_in_conversation(asker, store, "bars", str(tmp_path / "other.mp4"), "q")
        # The service's media roots apply to the conversation's video too.
        with pytest.raises(PathNotAllowedError, match="coded.mp4"):
            ask_in_conversation(asker, store, "bars", None, "q", allow_video=lambda path: False)
        assert len(store.turns("bars")) == 2
    finally:
        asker.close()
    turns = ConversationStore(cfg.serve.data_dir).turns("bars")  # a new store object: a restart
    assert [t["question"] for t in turns] == ["where are the bars?", "what colour is the top left?"]
    assert [t["number"] for t in turns] == [1, 2]
    assert turns[1]["segments"] == [
        {"video": s["video"], "start": s["start"], "end": s["end"], "kind": s["kind"]}
        for s in second.segments]


def test_history_with_the_tiny_vlm_is_counted_by_its_tokenizer_and_trimmed_oldest_first(
        ray_cluster, coded_video, tiny_qwen_dir, tmp_path):
    questions = ["where are the bars?", "which frame number shows at the start?",
                 "and at the end?"]
    cfg = _config(tmp_path, f"vlm.model={tiny_qwen_dir}", "vlm.max_new_tokens=4")
    store = ConversationStore(cfg.serve.data_dir)
    asker = Asker(cfg)
    try:
        for question in questions[:2]:
            ask_in_conversation(asker, store, "talk", str(coded_video), question)
        earlier = history_turns(store.turns("talk"))
        # The tiny tokenizer spends one token per UTF-8 byte: the exact counts are known.
        both = len(history_text(earlier).encode())
        newest = len(history_text(earlier[1:]).encode())
        asker.cfg = cfg.model_copy(update={"budget": cfg.budget.model_copy(
            update={"history_tokens": both - 1})})
        third = ask_in_conversation(asker, store, "talk", None, questions[2])
    finally:
        asker.close()
    assert third.history == {"turns": 1, "dropped": 1, "tokens": newest,
                             "allowance": both - 1, "counted_by": "tokenizer"}
    assert isinstance(third.answer, str) and third.conversation["turn"] == 3
    assert third.vlm["visual_tokens"] == third.tokens <= 512  # the visual budget stays exact
    assert [t["answer"] for t in store.turns("talk")][2] == third.answer


def test_cli_conversation_follow_up_without_the_video(ray_cluster, coded_video, tmp_path):
    base = ["--model", "none", "--json", "--budget", "300", "--set", "embed.ocr=false",
            "--set", f"index.dir={tmp_path / 'index'}",
            "--set", f"serve.data_dir={tmp_path / 'service'}"]
    runner = CliRunner()
    first = runner.invoke(app, ["ask", str(coded_video), "where are the bars?",
                                "--conversation", "cli", *base])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["ask", "and the top left?", "--conversation", "cli", *base])
    assert second.exit_code == 0, second.output
    payload = json.loads(second.stdout)
    assert payload["conversation"] == {"name": "cli", "turn": 2}
    assert payload["video"] == str(coded_video.resolve()) and payload["reused_memory"]
    assert payload["history"]["turns"] == 1 and payload["history"]["counted_by"] == "approximate"
    assert all(s["video"] == payload["video"] for s in payload["segments"])
    # Printed for people: the conversation line with its history count.
    shown = runner.invoke(app, ["ask", "one more?", "--conversation", "cli",
                                *[a for a in base if a != "--json"]])
    assert shown.exit_code == 0, shown.output
    assert "conversation: cli turn 3; 2 earlier turns in the prompt (" in shown.output
    assert "of 1024 text tokens, approximate)" in " ".join(shown.output.split())
