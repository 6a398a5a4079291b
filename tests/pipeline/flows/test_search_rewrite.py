"""selection.rewrite in search: `vidsift search` asks the configured OpenAI-compatible server
(a real HTTP server on 127.0.0.1) for the query's literal words once, as ask does, scores every
clip by its best row (the query or a phrase) and reads the phrases from the same cache after."""

import numpy as np
import pytest

from vidsift.core.config import load_config
from vidsift.pipeline.flows.index import match_clips, search_clips
from vidsift.pipeline.flows.rewrite import rewrite_cache_path

from tests.http_servers import serve
from tests.pipeline.flows.test_ask_rewrite import QUESTION, SIGN, rewriting_server
from tests.pipeline.flows.test_search_sentences import embedder, index_labelled_clips  # noqa: F401

CLIPS = [
    (["web site", "monitor", "screen"], "ENTER YOUR PASSWORD"),
    (["jigsaw puzzle", "comic book"], SIGN),
    (["hare", "meadow"], ""),
]


def test_search_scores_the_rewritten_words_and_caches_them(tmp_path, embedder):  # noqa: F811
    counts: dict[str, int] = {}
    with serve(rewriting_server(counts)) as url:
        cfg = load_config("default", [
            f"index.dir={tmp_path / 'index'}", "vlm.backend=openai", f"vlm.base_url={url}",
            "vlm.model=rewriter", "selection.rewrite=true"])
        index_labelled_clips(cfg, CLIPS, embedder)
        first = search_clips(QUESTION, cfg, k=3, embedder=embedder)
        again = search_clips(QUESTION, cfg, k=3, embedder=embedder)
        plain = search_clips(QUESTION, cfg.model_copy(update={"selection": cfg.selection.model_copy(
            update={"rewrite": False})}), k=3, embedder=embedder)
    assert counts == {"rewrite": 1}  # the second search read the phrases from disk
    assert rewrite_cache_path(cfg, QUESTION).is_file()
    assert SIGN in first[0].text and first[0].text_score == pytest.approx(1.0, abs=1e-3)
    assert [(h.clip_id, h.score) for h in again] == [(h.clip_id, h.score) for h in first]
    assert "ENTER YOUR PASSWORD" in plain[0].text  # the question alone: the password prompt


def test_a_clip_scores_its_best_row_in_the_fused_vectors_too(tmp_path, embedder):  # noqa: F811
    """Without sentence matching (index.search on the fused vectors only) a (2, D) query scores
    each clip by its better row, as the plan scores frames."""
    cfg = load_config("default", [f"index.dir={tmp_path / 'index'}",
                                  "selection.sentence_match=false"])
    index_labelled_clips(cfg, CLIPS, embedder)
    from vidsift.index.clip_index import ClipIndex

    rows = embedder.embed_text(["a hare in a meadow", "a monitor showing a web site"])
    with ClipIndex(cfg.index.dir, cfg.index, readonly=True, embedder=cfg.embed.space_id) as index:
        both = match_clips(index, cfg, 3, text=rows)
        each = [{h.clip_id: h.score for h in match_clips(index, cfg, 3, text=row)}
                for row in rows]
    assert {h.clip_id: h.score for h in both} == pytest.approx(
        {c: max(each[0][c], each[1][c]) for c in each[0]})
    assert [h.score for h in both] == sorted((h.score for h in both), reverse=True)
    assert np.isclose(both[0].score, max(max(e.values()) for e in each))
