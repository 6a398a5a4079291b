"""vidsift eval end to end on the four synthetic sets: ask on Ray with the offline embedder and the
tiny random Qwen2.5-VL (its answers are noise: the plumbing is checked, not a score), three arms
at one budget, answers stored per question and arm, the per-bucket results, and a rerun that asks
only what has no stored answer."""

from __future__ import annotations

import json
import sqlite3

import pytest

from vidsift.core.config import load_config
from vidsift.core.errors import ConfigError
from vidsift.pipeline.flows.eval import ARMS, RESULTS, STORE, arm_config, run_eval, table_rows
from vidsift.pipeline.flows.eval_sets import FORMATS, extract_choice, read_set

from tests.eval_sets import eval_sets  # noqa: F401  (the session fixture)

BUDGET = 256


def eval_config(model_dir, index_dir, *extra):
    """Small and quick: no OCR, no speech, clips decoded up to the videos' own 25 fps (so the
    uniform arms' frame counts are set by the budget, not capped by a 1.5 s video's length)."""
    return load_config("default", ["embed.ocr=false", "speech.mode=none", "vlm.device=cpu",
                                   "vlm.dtype=float32", f"vlm.model={model_dir}",
                                   f"index.dir={index_dir}", "selection.clip_fps=25", *extra])


@pytest.fixture(scope="module")
def lent(ray_cluster, tiny_qwen_dir, tmp_path_factory):
    """(config, ingest pool, VLM) shared by the runs of this module."""
    from vidsift.pipeline.flows.index import start_pool
    from vidsift.workers.vlm import open_vlm

    cfg = eval_config(tiny_qwen_dir, tmp_path_factory.mktemp("eval_index"))
    pool, vlm = start_pool(cfg), open_vlm(cfg.vlm, cfg.pool)
    yield cfg, pool, vlm
    vlm.shutdown()
    pool.close()


def _rows(out):
    with sqlite3.connect(out / STORE) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM answers")]


def test_arms_plan_what_they_say(tiny_qwen_dir, tmp_path):
    cfg = eval_config(tiny_qwen_dir, tmp_path)
    assert arm_config(cfg, "vidsift") is cfg
    uniform, down = arm_config(cfg, "uniform"), arm_config(cfg, "downsample")
    assert uniform.selection.selector == down.selection.selector == "uniform_video"
    assert uniform.budget == cfg.budget
    assert down.budget.min_pixels == cfg.budget.min_pixels // 4
    with pytest.raises(ConfigError, match="choose from vidsift"):
        arm_config(cfg, "random")


def test_four_sets_three_arms_stored_per_question_and_rerun_asks_only_the_rest(
        eval_sets, lent, tmp_path):
    cfg, pool, vlm = lent
    for fmt in FORMATS:
        items = read_set(fmt, *eval_sets[fmt])
        out = tmp_path / fmt
        report = run_eval(cfg, fmt, items, out, budget=BUDGET, pool=pool, vlm=vlm)
        missing = [i for i in items if i.video.endswith("vidGone.mp4")]  # LVBench's undownloaded
        assert report.asked == 3 * len(items) and report.skipped == 0
        assert report.errors == 3 * len(missing)
        rows = _rows(out)
        assert sorted((r["item"], r["arm"]) for r in rows) == sorted(
            (i.id, a) for i in items for a in ARMS)
        by_id = {i.id: i for i in items}
        for row in rows:
            item = by_id[row["item"]]
            assert (row["gold"], row["bucket"]) == (item.answer, item.bucket)
            if item in missing:
                assert "vidGone.mp4" in row["error"] and "not found" in row["error"]
                assert row["correct"] == 0
                continue
            assert row["error"] is None
            # the letter is the set's rule applied to the stored reply
            assert row["choice"] == extract_choice(item, row["response"])
            assert row["correct"] == (row["choice"] == item.answer)
            assert 0 < row["tokens"] <= BUDGET and row["visual_tokens"] == row["tokens"]
        results = json.loads((out / RESULTS).read_text())
        assert results["results"] == report.results and results["format"] == fmt
        for arm in ARMS:
            arm_result = report.results[arm]
            assert arm_result["answered"] + arm_result["errors"] == len(items)
            assert arm_result["errors"] == len(missing)
            assert set(arm_result["buckets"]) == {i.bucket for i in items}
            assert sum(b["n"] for b in arm_result["buckets"].values()) == len(items)
            assert arm_result["accuracy"] == round(arm_result["correct"] / len(items), 4)
        # the uniform arms: evenly spread frames at min_pixels, four times as many downsampled
        frames = {arm: report.results[arm]["frames_mean"] for arm in ARMS}
        assert frames["downsample"] >= 3 * frames["uniform"] > 0
        header, table = table_rows(report.results)
        buckets = list(dict.fromkeys(i.bucket for i in items))
        assert header == ["bucket", *ARMS]
        assert sorted(row[0] for row in table[:len(buckets)]) == sorted(buckets)
        assert [row[0] for row in table[len(buckets):]] == [
            "overall", "visual tokens (mean)", "frames (mean)", *(["errors"] if missing else [])]
        overall = report.results["vidsift"]
        assert table[len(buckets)][1] == (f"{100 * overall['accuracy']:.1f} "
                                          f"({overall['correct']}/{len(items)})")

    # Run again: every stored answer is kept, only the failed questions are asked again.
    for fmt in ("videomme", "lvbench"):
        items = read_set(fmt, *eval_sets[fmt])
        before = {(r["item"], r["arm"]): r for r in _rows(tmp_path / fmt)}
        again = run_eval(cfg, fmt, items, tmp_path / fmt, budget=BUDGET, pool=pool, vlm=vlm)
        failed = [key for key, row in before.items() if row["error"] is not None]
        assert again.asked == len(failed) and again.skipped == 3 * len(items) - len(failed)
        after = {(r["item"], r["arm"]): r for r in _rows(tmp_path / fmt)}
        assert all(after[key] == row for key, row in before.items() if key not in failed)
        assert again.results == json.loads((tmp_path / fmt / RESULTS).read_text())["results"]

    # Another budget into the same folder is refused, naming both.
    with pytest.raises(ConfigError, match="budget 256 \\(this run: 512\\)"):
        run_eval(cfg, "videomme", read_set("videomme", *eval_sets["videomme"]),
                 tmp_path / "videomme", budget=512, pool=pool, vlm=vlm)
