"""Search puts each clip's best own text on the scale of the clips' fused text scores
(flows.index.match_clips with plan.matching): a sign that stands out among the video's signs is
found first though its raw cosine is under a cartoon clip's fused vector."""

from tests.pipeline.flows.test_search_sentences import index_labelled_clips
from vidsift.core.config import Config, EmbedConfig
from vidsift.pipeline.flows.index import search_clips

# (labels, on-screen text), clips with signs as in bench/evidence.py's video: the question
# "Which dish is recommended today?" scores the menu clip's fused vector at 0.42, the sign
# TODAY'S SPECIAL: TOMATO SOUP on its own at 0.38, the other signs at 0.0-0.25 (MiniLM)
CLIPS = [
    (["menu", "restaurant"], ""),
    (["broccoli", "agama", "window screen", "coral reef", "eel"], ""),
    (["hare", "meadow", "wood rabbit"], "TODAY'S SPECIAL: TOMATO SOUP"),
    (["maze", "labyrinth", "lakeside"], "EXIT"),
    (["tractor", "worm fence"], "OPENING HOURS 9 AM-5 PM"),
    (["stole", "poncho", "mitten"], "NEXT STATION: BERLIN"),
    (["envelope", "web site", "menu"], "SECRET WORD: ORCHID"),
    (["padlock", "chain", "binoculars"], "GRAND HOTEL ASTORIA"),
    (["rocking chair", "mosque"], "CAUTION: WET FLOOR"),
    (["ox", "American black bear"], "SCORE 2-1"),
    (["titi", "titi monkey", "indri"], "SALE: 50% OFF"),
    (["acorn", "maraca"], "PLATFORM 9"),
]


def test_a_sign_standing_out_among_the_signs_is_the_top_clip(tmp_path):
    from vidsift.workers.embed import get_embedder

    embedder = get_embedder(EmbedConfig(ocr=False))
    cfg = Config.model_validate({"index": {"dir": str(tmp_path / "idx")}})
    index_labelled_clips(cfg, CLIPS, embedder)
    hits = search_clips("Which dish is recommended today?", cfg, k=3, embedder=embedder)
    # before (the raw better of fused and own text), the menu clip (0.42) came first
    assert "TOMATO SOUP" in hits[0].text
    assert hits[0].text_score == hits[0].score > hits[1].score
    assert "menu" in hits[1].text
