"""Search matches a question against each clip's own texts (on-screen text, speech), sentence
against sentence, not only against the clip's fused text vector (flows.index.match_clips)."""

import numpy as np
import pytest

from vidsift.core.config import Config, EmbedConfig
from vidsift.index.clip_index import ClipIndex, VideoClips
from vidsift.index.store import NewClip
from vidsift.pipeline.flows.index import clip_sentences, search_clips


def unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def index_labelled_clips(cfg: Config, clips, embedder) -> None:
    """One 4 s clip a (labels, on-screen text) pair in cfg's clip index, its text and text
    vector as the offline embedder fuses them (the labels' vectors plus the text's), its visual
    vector random."""
    texts, vectors = [], []
    for labels, shown in clips:
        texts.append("labels: " + ", ".join(labels) + (f" | text: {shown}" if shown else ""))
        fused = np.sum(embedder.embed_text(labels), axis=0)
        if shown:
            fused = fused + embedder.embed_text([shown])[0]
        vectors.append(fused)
    rng = np.random.default_rng(0)
    with ClipIndex(cfg.index.dir, cfg.index, embedder=cfg.embed.space_id) as index:
        index.add_video(VideoClips(
            path="/videos/film.mp4", content_hash="film", duration=4.0 * len(clips),
            clips=[NewClip(4.0 * i, 4.0 * i + 4, f"t/{i}.jpg", t) for i, t in enumerate(texts)],
            visual=unit(rng.normal(size=(len(clips), 48))), text=unit(vectors)))


@pytest.fixture(scope="module")
def embedder():
    from vidsift.workers.embed import get_embedder

    return get_embedder(EmbedConfig(ocr=False))


# (labels, on-screen text): the clip's text and text vector as the offline embedder fuses them
CLIPS = [
    (["hare", "meadow", "wood rabbit"], ""),
    (["jigsaw puzzle", "comic book", "envelope"], "NEXT STATION: BERLIN"),
    (["passenger car", "meadow"], ""),
    (["theater curtain", "stage"], "OPENING SOON"),
]


def test_clip_sentences_are_its_texts_and_speech_without_labels():
    text = ("labels: hare, meadow | text: NEXT STATION: BERLIN; labels: hare | text: GATE 4;"
            " labels: hare | speech: the train leaves now")
    assert clip_sentences(text) == ["NEXT STATION: BERLIN", "GATE 4", "the train leaves now"]
    assert clip_sentences("labels: hare, meadow") == []


@pytest.mark.parametrize("sentence_match", [True, False])
def test_a_sign_asked_about_in_other_words_is_found_first(tmp_path, embedder, sentence_match):
    """"Which city is the train going to?" matches the sign NEXT STATION: BERLIN on its own at
    0.45 but its clip's fused vector (with the labels of a cartoon) at 0.33, under a clip of a
    passenger car (0.40): before, search's top hit was the passenger car."""
    cfg = Config.model_validate({"index": {"dir": str(tmp_path / "idx")},
                                 "selection": {"sentence_match": sentence_match}})
    index_labelled_clips(cfg, CLIPS, embedder)
    hits = search_clips("Which city is the train going to?", cfg, k=4, embedder=embedder)
    if sentence_match:
        assert "BERLIN" in hits[0].text
        assert hits[0].text_score == pytest.approx(0.45, abs=0.02) == hits[0].score
    else:
        assert "passenger car" in hits[0].text
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
