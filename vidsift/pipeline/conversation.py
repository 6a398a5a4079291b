"""Conversations: follow-up questions that remember the earlier turns.

A conversation is a name. Its turns (question, answer, the evidence shown with its times and
videos, the citations) persist in the job store's SQLite file (pipeline.jobs.JobStore under
serve.data_dir), so they survive restarts and the CLI and the HTTP service share them.
A follow-up picks fresh evidence for its own question from the video's stored memory (nothing
is decoded but the planned frames) and shows the earlier turns to the VLM as text
(workers.vlm.prompt.history_text) within budget.history_tokens text tokens, oldest dropped
first; the visual budget is untouched.

A conversation keeps the scope of its first question: one video, or the whole clip index.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

from vidsift.core.config import VLMConfig
from vidsift.core.errors import VidsiftError
from vidsift.core.types import HistoryTurn

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 200
APPROXIMATE = "approximate"
TOKENIZER = "tokenizer"


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
    """Stored turns (JobStore.turns) as the prompt shows them, oldest first. A turn asked in
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
                        **options):
    """Ask `question` as the next turn of conversation `name` (asker: flows.ask.Asker; store:
    jobs.JobStore) and record it; returns the AskResult with its conversation filled."""
    from pathlib import Path

    check_name(name)
    if video is not None:
        video = str(Path(video).expanduser().resolve())
    turns = store.turns(name)
    result = asker.ask(scope_of(name, turns, video), question, history=history_turns(turns),
                       **options)
    result.conversation = {"name": name, "turn": store.add_turn(name, turn_record(result))}
    return result
