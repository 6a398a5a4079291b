"""On-screen texts are embedded once per video and embedder space, not once per process: a
second Asker on the same index dir (as a second `vidsift ask` is) embeds only its question, and
plans the same evidence from the stored vectors."""

from pathlib import Path

from vidsift.core.config import load_config
from vidsift.pipeline.flows.ask import Asker
from vidsift.pipeline.flows.index import start_pool

from tests.pipeline.flows.test_ask_rewrite import QUESTION, SIGN, sign_video


class CountingPool:
    """The ingest pool, with every embed_text call's texts recorded."""

    def __init__(self, pool) -> None:
        self.pool, self.embedded = pool, []

    def embed_text(self, texts):
        self.embedded.append(list(texts))
        return self.pool.embed_text(texts)

    def __getattr__(self, name):
        return getattr(self.pool, name)


def _evidence(result) -> list:
    return [(s["kind"], s["start"], s["end"], s["timestamps"], s["tokens"])
            for s in result.segments]


def test_a_second_asker_embeds_only_its_question(ray_cluster, tmp_path: Path):
    video = sign_video(tmp_path)
    cfg = load_config("default", [
        f"index.dir={tmp_path / 'index'}", "budget.tokens=512",
        "vlm.model=none", "ingest.num_actors=1", "ingest.num_cpus_per_actor=0.5"])
    pool = CountingPool(start_pool(cfg))
    try:
        first = Asker(cfg, pool=pool).ask(str(video), QUESTION, use_index=False)
        texts_first = [t for call in pool.embedded for t in call]
        pool.embedded.clear()
        again = Asker(cfg, pool=pool).ask(str(video), QUESTION, use_index=False)
    finally:
        pool.pool.close()
    assert SIGN in texts_first  # the sign's text was read and embedded by the first ask
    assert pool.embedded == [[QUESTION]]
    assert _evidence(again) == _evidence(first) and again.plan == first.plan
    assert again.reused and any(4.0 <= t < 8.0 for s in again.segments for t in s["timestamps"])
