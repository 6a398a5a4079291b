"""`vidsift summarize` with a VLM end to end on a real local Ray: the offline embedder's memory,
the tiny random-weight Qwen2.5-VL on a pool of two actors (one request a batch, so the pool's
batch counts are its calls), and the openai backend against serve-vlm's app on 127.0.0.1.

The map-reduce makes one VLM call per chapter plus the reduce, chapters in parallel on both
actors; each chapter is shown exactly the tokens planned for it; results are stored, so a
summary asked again calls nothing and a run stopped after some chapters redoes only the rest.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.http_servers import serve
from tests.ingest_pools import ingest_config, running_pool
from tests.videos import make_scene_video
from vidsift.core.errors import NotAVideoError
from vidsift.pipeline.cli import app
from vidsift.pipeline.flows.caption import CaptionOutput
from vidsift.pipeline.flows.summarize import Summarizer

pytestmark = pytest.mark.slow

SCENES = ["smptebars", "testsrc", "rgbtestsrc", "color=c=orange"]
SCENE_S = 6.0
SUMMARY = ("summary.min_chapter_s=3", "summary.max_chapter_s=60", "summary.chapter_tokens=64",
           "budget.min_pixels=3136", "budget.tokens_per_slot=16", "summary.map_tokens=160",
           "summary.reduce_tokens=160", "vlm.max_new_tokens=160",
           # the tiny tokenizer spends a token a UTF-8 byte, six on an escape
           "summary.json_tokens_per_char=6")


def vlm_settings(model_dir) -> tuple[str, ...]:
    return (f"vlm.model={model_dir}", "vlm.device=cpu", "vlm.dtype=float32", "pool.num_actors=2",
            "pool.max_batch_size=1", "pool.num_cpus_per_actor=0.5")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("summary_vlm")


@pytest.fixture(scope="module")
def video(root):
    return str(make_scene_video(root / "scenes.mp4", SCENES, seconds=SCENE_S))


@pytest.fixture(scope="module")
def cfg(root, tiny_qwen_dir):
    return ingest_config(root, 5.0, *SUMMARY, *vlm_settings(tiny_qwen_dir))


@pytest.fixture(scope="module")
def pools(ray_cluster, cfg):
    from vidsift.workers.pool import VLMPool

    for ingest in running_pool(cfg):
        vlm = VLMPool(cfg.vlm, cfg.pool)
        try:
            yield ingest, vlm
        finally:
            vlm.shutdown()


def calls(vlm) -> list[int]:
    """Requests each actor has answered so far (one request a batch)."""
    return vlm.stats()["batches"]


def test_one_call_per_chapter_plus_the_reduce_on_both_actors_then_stored(cfg, pools, video):
    ingest, vlm = pools
    summarizer = Summarizer(cfg, pool=ingest, vlm=vlm)
    before = calls(vlm)
    result = summarizer.summarize(video)
    after = calls(vlm)
    chapters = result.chapters
    assert len(chapters) == len(SCENES)
    assert [c["start"] for c in chapters] == pytest.approx(
        [n * SCENE_S for n in range(len(SCENES))], abs=0.5)
    assert sum(after) - sum(before) == len(chapters) + 1
    assert all(a > b for a, b in zip(after, before))  # both actors answered: in parallel
    for chapter in chapters:
        planned = chapter["evidence"]["tokens"]
        assert 0 < planned <= 64 and planned == sum(s["tokens"] for s in chapter["evidence"]["plan"])
        assert chapter["evidence"]["vlm"]["visual_tokens"] == planned  # shown what was planned
        # constrained to the chapter schema: a random model's reply is still its JSON
        assert chapter["evidence"]["vlm"]["read"] == "schema", chapter["evidence"]["vlm"]
        assert isinstance(chapter["title"], str) and chapter["title"]
        assert isinstance(chapter["summary"], str) and len(chapter["summary"]) <= 21
    payload = result.to_dict()
    assert payload["model"] == cfg.vlm.model and not payload["extractive"]
    assert payload["tokens"] == sum(c["evidence"]["tokens"] for c in chapters)
    assert set(payload) >= {"video", "duration", "summary", "chapters", "highlights", "model",
                            "tokens", "timings"}
    assert payload["stored"] == {"chapters_reused": 0, "chapters_run": len(chapters),
                                 "reduce_reused": False}
    for highlight in payload["highlights"]:
        assert set(highlight) == {"start", "end", "title", "why"}
        assert 0 <= highlight["start"] < highlight["end"] <= payload["duration"] + 0.01

    again = summarizer.summarize(video)
    assert calls(vlm) == after  # every chapter and the reduce read back
    assert again.stored == {"chapters_reused": len(chapters), "chapters_run": 0,
                            "reduce_reused": True}
    assert [(c["title"], c["summary"]) for c in again.chapters] == [
        (c["title"], c["summary"]) for c in chapters]
    assert again.summary == result.summary and again.highlights == result.highlights


def test_a_run_stopped_after_a_chapter_resumes_with_the_missing_ones(cfg, pools, video):
    ingest, vlm = pools
    changed = cfg.model_copy(update={"summary": cfg.summary.model_copy(
        update={"map_tokens": 150})})  # other settings: nothing stored for them yet
    summarizer = Summarizer(changed, pool=ingest, vlm=vlm)

    def crash(number, chapter):
        raise RuntimeError(f"stopped after chapter {number + 1}")

    before = sum(calls(vlm))
    with pytest.raises(RuntimeError, match="stopped after chapter"):
        summarizer.summarize(video, on_chapter=crash)
    first = sum(calls(vlm)) - before
    assert 1 <= first < len(SCENES)  # stopped before every chapter and the reduce

    before = sum(calls(vlm))
    result = summarizer.summarize(video)
    second = sum(calls(vlm)) - before
    assert second == len(SCENES) - first + 1  # only the missing chapters, then the reduce
    assert result.stored == {"chapters_reused": first, "chapters_run": len(SCENES) - first,
                             "reduce_reused": False}


def test_a_short_video_is_one_chapter_and_an_unreadable_one_fails_alone(cfg, pools, root):
    ingest, vlm = pools
    short = str(make_scene_video(root / "short.mp4", ["smptebars"], seconds=4))
    notes = root / "notes.mp4"
    notes.write_text("not a video")
    summarizer = Summarizer(cfg, pool=ingest, vlm=vlm)
    before = sum(calls(vlm))
    (bad, failed), (good, result) = summarizer.summarize_many([str(notes), short])
    assert bad == str(notes) and isinstance(failed, NotAVideoError) and "notes.mp4" in str(failed)
    assert good == short and len(result.chapters) == 1
    assert sum(calls(vlm)) - before == 2  # its chapter and the reduce


def test_the_openai_backend_and_captions_standing_in_for_frames(root, video, ray_cluster,
                                                               tiny_qwen_dir):
    from vidsift.core.config import VLMConfig
    from vidsift.pipeline.service.openai_server import create_app
    from vidsift.workers.vlm import get_vlm

    captions = CaptionOutput(root / "captions")
    captions.commit(video, [{"video": video, "clip": n, "start": n * 3.0, "end": n * 3.0 + 3,
                             "caption": f"caption {n}", "model": "m", "tokens": 0, "speech": ""}
                            for n in range(4)])  # the first two chapters, 0-12 s
    served = get_vlm(VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32",
                               max_new_tokens=8))
    with serve(create_app(served, "tiny-qwen")) as url:
        cfg = ingest_config(root, 5.0, *SUMMARY, "vlm.backend=openai", f"vlm.base_url={url}",
                            "vlm.model=tiny-qwen", f"summary.captions_dir={root / 'captions'}",
                            "index.dir=" + str(root / "index"))
        summarizer = Summarizer(cfg)
        try:
            result = summarizer.summarize(video)
        finally:
            summarizer.close()
    assert result.model == "tiny-qwen" and len(result.chapters) == len(SCENES)
    used = [c["evidence"].get("captions", 0) for c in result.chapters]
    assert used == [2, 2, 0, 0]
    assert result.stored["chapters_run"] == len(SCENES)


def test_cli_reel_of_three_highlights_and_a_batch(root, video, ray_cluster):
    reel = root / "reel.mp4"
    notes = root / "notes.txt.mp4"
    notes.write_text("not a video")
    common = ["--index-dir", str(root / "cli-index"), "--model", "none",
              *(a for s in SUMMARY for a in ("--set", s)), "--set", "summary.highlights=3",
              "--set", "embed.ocr=false"]
    result = CliRunner().invoke(app, ["summarize", video, "--reel", str(reel), "--json", *common])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert len(payload["highlights"]) == 3 and payload["highlights_from"] == "extractive"
    probed = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_chapters", "-show_format", "-of", "json", str(reel)],
        check=True, capture_output=True, text=True).stdout)
    assert [c["tags"]["title"] for c in probed["chapters"]] == [
        h["title"] for h in payload["highlights"]]
    spans = [float(h["end"]) - float(h["start"]) for h in payload["highlights"]]
    assert float(probed["format"]["duration"]) == pytest.approx(sum(spans), abs=0.3)

    batch = CliRunner().invoke(app, ["summarize", str(notes), video, "--json", *common])
    assert batch.exit_code == 0, batch.stderr
    first, second = json.loads(batch.stdout)
    assert first["video"] == str(notes) and "NotAVideoError" in first["error"]
    assert len(second["chapters"]) == len(SCENES) and second["reused_memory"]
    assert Path(second["chapters"][0]["thumbnail"]).is_file()


def test_a_chapter_budget_too_small_for_one_image_names_the_field(cfg, pools, video):
    from vidsift.core.errors import BudgetError

    ingest, vlm = pools
    small = cfg.model_copy(update={"summary": cfg.summary.model_copy(
        update={"chapter_tokens": 2})})
    before = calls(vlm)
    with pytest.raises(BudgetError, match=r"summary.chapter_tokens=2: a budget of 2 tokens "
                                          r"cannot hold one image .* lower budget.min_pixels"):
        Summarizer(small, pool=ingest, vlm=vlm).summarize(video)
    assert calls(vlm) == before  # planned before any request
