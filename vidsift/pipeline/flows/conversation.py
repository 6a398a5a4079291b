"""Conversations: follow-up questions that remember the earlier turns.

A conversation is a name. Its turns (question, answer, the evidence shown with its times and
videos, the citations) persist in the job store's SQLite file (pipeline.service.jobs.JobStore under
serve.data_dir), so they survive restarts and the CLI and the HTTP service share them.
A follow-up picks fresh evidence for its own question from the video's stored memory (nothing
is decoded but the planned frames) and shows the earlier turns to the VLM as text
(workers.vlm.prompt.history_text) within budget.history_tokens text tokens, oldest dropped
first; the visual budget is untouched.

A conversation keeps the scope of its first question: one video, or the whole clip index.
A turn the HTTP service's job asked keeps the job's id: it is written once however often the job
is re-run, and only while the job runs (the service withdraws it when the job is cancelled).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from vidsift.core.config import VLMConfig
from vidsift.core.errors import VidsiftError
from vidsift.core.files import open_sqlite
from vidsift.core.types import HistoryTurn

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 200
APPROXIMATE = "approximate"
TOKENIZER = "tokenizer"
STORE_FILE = "jobs.sqlite3"  # under serve.data_dir, beside the service's jobs

_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    conversation TEXT NOT NULL,
    number INTEGER NOT NULL,
    turn TEXT NOT NULL,
    created_at REAL NOT NULL,
    job TEXT,
    PRIMARY KEY (conversation, number)
);
"""
# A service job's turn is written once (NULLs are distinct: the CLI's turns have no job).
_JOB_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS turns_job ON turns (job)"


class ConversationStore:
    """The turns of every conversation in `data_dir/STORE_FILE`, numbered per name. Cheap to
    construct; every call opens its own short connection (safe across threads and processes)."""

    def __init__(self, data_dir: str | Path, busy_timeout_s: float = 30.0) -> None:
        self.data_dir = Path(data_dir).expanduser()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / STORE_FILE
        self.busy_timeout_s = busy_timeout_s
        with closing(open_sqlite(self.path, busy_timeout_s)) as conn:
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN IMMEDIATE")  # two processes opening an older file: one alters it
            columns = {row[1] for row in conn.execute("PRAGMA table_info(turns)")}
            if "job" not in columns:  # a store written before turns knew their job
                conn.execute("ALTER TABLE turns ADD COLUMN job TEXT")
            conn.execute(_JOB_INDEX)
            conn.execute("COMMIT")

    def add_turn(self, conversation: str, turn: dict[str, Any], job: str | None = None,
                 only_if: Callable[[sqlite3.Connection], bool] | None = None) -> int | None:
        """Append a turn (JSON) to a conversation, creating it; returns the turn's number
        (1, 2, ...), taken in the write's own transaction: two writers never get the same one.
        job: the service job that asked it; a job's turn is written once, and a re-run of the
        job (re-queued after a crash) gets the number of the turn already there.
        only_if(conn), when given, is asked inside that transaction, with no other writer between
        it and the write (the service: whether the job still runs); False: nothing is written,
        and None is returned."""
        with closing(open_sqlite(self.path, self.busy_timeout_s)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if only_if is not None and not only_if(conn):
                    return None
                if job is not None:
                    written = conn.execute("SELECT number FROM turns WHERE job = ?",
                                           (job,)).fetchone()
                    if written is not None:
                        return written[0]
                [(number,)] = conn.execute(
                    "INSERT INTO turns (conversation, number, turn, created_at, job) VALUES (?, "
                    "(SELECT COALESCE(MAX(number), 0) + 1 FROM turns WHERE conversation = ?),"
                    " ?, ?, ?) RETURNING number",
                    (conversation, conversation, json.dumps(turn), time.time(), job),
                ).fetchall()
                conn.execute("COMMIT")
                return number
            finally:
                if conn.in_transaction:  # refused, or already written: nothing to keep
                    conn.execute("ROLLBACK")

    def turns(self, conversation: str) -> list[dict[str, Any]]:
        """A conversation's turns, oldest first, each with its "number"; [] for a new name."""
        with closing(open_sqlite(self.path, self.busy_timeout_s)) as conn:
            rows = conn.execute(
                "SELECT number, turn FROM turns WHERE conversation = ? ORDER BY number",
                (conversation,),
            ).fetchall()
        return [{**json.loads(turn), "number": number} for number, turn in rows]


def approximate_tokens(text: str) -> int:
    """An estimate of a text's token count for when no tokenizer is at hand: one token per
    digit (Qwen's and Llama's tokenizers split numbers into single digits) plus one per 3 UTF-8
    bytes of the rest, rounded up. BPE tokenizers spend about 4 bytes per token on English
    prose and 3 per CJK character, so the estimate errs high: a history that fits by it fits
    when the model counts."""
    digits = sum(character.isdigit() for character in text)
    rest = len(text.encode("utf-8")) - digits
    return digits + math.ceil(rest / 3)


def text_token_counter(vlm: VLMConfig) -> tuple[Callable[[str], int], str]:
    """(count, how): the VLM's own tokenizer (how = "tokenizer") when there is one to load
    (an in-process model's checkpoint, or vlm.tokenizer for a remote server), else
    approximate_tokens (how = "approximate"). count(text) counts the text's tokens as the
    prompt holds them (no special tokens added)."""
    source = vlm.tokenizer if vlm.tokenizer else (
        vlm.model if vlm.enabled and not vlm.remote else None)
    if source:
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(source)
        except (OSError, ValueError) as exc:
            log.warning("%s: no tokenizer to count the conversation's history with (%s); "
                        "estimating", source, exc)
        else:
            return (lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"]),
                    TOKENIZER)
    return approximate_tokens, APPROXIMATE


def check_name(name: str) -> str:
    """A conversation name: 1..MAX_NAME_CHARS printable characters."""
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise VidsiftError(
            f"conversation name {name[:40]!r}: give 1 to {MAX_NAME_CHARS} printable characters")
    return name


def history_turns(turns: Sequence[dict]) -> list[HistoryTurn]:
    """Stored turns (ConversationStore.turns) as the prompt shows them, oldest first. A turn asked in
    evidence-only mode has no answer and says so."""
    return [
        HistoryTurn(
            question=turn["question"],
            answer=turn["answer"] if turn.get("answer") is not None else "(not answered)",
            evidence=tuple((s["video"], s["start"], s["end"]) for s in turn["segments"]),
        )
        for turn in turns
    ]


def scope_of(name: str, turns: Sequence[dict], video: str | None) -> str | None:
    """The video a question of conversation `name` is about: the conversation's video (a
    follow-up may leave the video out), or None across the whole index. A new conversation
    takes the question's scope. Raises when the question names another video than the
    conversation's, or one at all in a conversation across the index."""
    if not turns:
        return video
    scope = turns[0]["video"] or None
    if video is not None and scope is None:
        raise VidsiftError(f"conversation {name!r} asks across the clip index, not about"
                           f" {video}: leave the video out, or start another conversation")
    if video is not None and video != scope:
        raise VidsiftError(f"conversation {name!r} is about {scope}, not {video}: leave the"
                           " video out, or start another conversation")
    return scope


def turn_record(result) -> dict:
    """What a turn keeps of an AskResult: enough to show it again and to cite its evidence."""
    return {
        "video": result.video,
        "question": result.question,
        "answer": result.answer,
        "model": result.model,
        "segments": [{"video": s["video"], "start": s["start"], "end": s["end"],
                      "kind": s["kind"]} for s in result.segments],
        "citations": result.citations,
    }


def ask_in_conversation(asker, store, name: str, video: str | None, question: str,
                        job: str | None = None,
                        only_if: Callable[[sqlite3.Connection], bool] | None = None, **options):
    """Ask `question` as the next turn of conversation `name` (asker: flows.ask.Asker; store:
    ConversationStore) and record it (job, only_if: as ConversationStore.add_turn takes them);
    returns the AskResult with its conversation filled: {name, turn}, turn None when only_if
    refused the write."""
    check_name(name)
    if video is not None:
        video = str(Path(video).expanduser().resolve())
    turns = store.turns(name)
    result = asker.ask(scope_of(name, turns, video), question, history=history_turns(turns),
                       **options)
    number = store.add_turn(name, turn_record(result), job=job, only_if=only_if)
    result.conversation = {"name": name, "turn": number}
    return result
