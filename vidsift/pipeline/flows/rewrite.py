"""selection.rewrite in a flow: the configured VLM (in-process or an OpenAI-compatible server)
is asked once per question for the literal words likely on screen or said (plan.rewrite), and
its phrases are cached on disk under index.dir/rewrites/<key>.json, key = sha256 of the prompt
version, the VLM's backend and model and the question: a question asked again, in this process
or another, costs no model call."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from vidsift.core.config import Config

log = logging.getLogger(__name__)


def rewrite_cache_path(cfg: Config, question: str) -> Path:
    """Where one question's phrases are cached (the file may not exist yet)."""
    from vidsift.pipeline.plan.rewrite import PROMPT_VERSION

    key = json.dumps([PROMPT_VERSION, cfg.vlm.backend, str(cfg.vlm.model),
                      " ".join(question.split())])
    digest = hashlib.sha256(key.encode()).hexdigest()
    return Path(cfg.index.dir).expanduser() / "rewrites" / f"{digest[:32]}.json"


def rewrite_question(cfg: Config, question: str, vlm) -> tuple[list[str], bool]:
    """The question's phrases (plan.rewrite.parse_phrases of the model's answer) and whether
    they came from the cache. vlm: a zero-argument callable giving the VLM (generate(list of
    VLMRequest)), called only on a cache miss. The model's answer is cached even when it holds
    no phrase (asking again would give the same: it decodes greedily)."""
    from vidsift.core.files import write_atomic
    from vidsift.core.types import TokenSet, VLMRequest
    from vidsift.pipeline.plan.rewrite import MAX_NEW_TOKENS, parse_phrases, rewrite_prompt

    path = rewrite_cache_path(cfg, question)
    try:
        return list(json.loads(path.read_text())["phrases"]), True
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:  # damaged: ask again, rewrite it
        log.warning("%s: unreadable rewrite cache (%s); asking the model again", path, exc)
    request = VLMRequest(TokenSet(video=""), rewrite_prompt(question),
                         max_new_tokens=MAX_NEW_TOKENS, request_id="rewrite")
    answer = vlm().generate([request])[0].text
    phrases = parse_phrases(answer, question)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"question": question, "model": str(cfg.vlm.model),
                                   "answer": answer, "phrases": phrases}, indent=1))
    return phrases, False


def rewritten_query(cfg: Config, question: str, query_vector, embed_text, vlm):
    """The question's vector and, with selection.rewrite and a VLM configured, its phrases'
    (rewrite_question: cached per question): ((1 + P, Dt) float32 rows, question first, or the
    (Dt,) query_vector as it was when rewriting is off or the model gave none; {phrases, cached}
    or None when off). embed_text: list[str] -> (n, Dt) unit rows (the same embedder as
    query_vector's); vlm: as rewrite_question takes it. One rule for ask (its plan and its
    retrieval) and search, so each scores a frame, a text or a clip by its best row."""
    import numpy as np

    if not (cfg.selection.rewrite and cfg.vlm.enabled):
        return query_vector, None
    phrases, cached = rewrite_question(cfg, question, vlm)
    if not phrases:
        return query_vector, {"phrases": phrases, "cached": cached}
    vectors = np.asarray(embed_text(phrases), dtype=np.float32)
    rows = np.vstack([np.asarray(query_vector, dtype=np.float32).reshape(1, -1), vectors])
    return rows, {"phrases": phrases, "cached": cached}
