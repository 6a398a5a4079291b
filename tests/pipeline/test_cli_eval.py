"""`vidsift eval` as a user runs it: the installed console script over the synthetic Video-MME
set, asking serve-vlm's app serving the tiny random Qwen2.5-VL (vlm.backend=openai; the app
counts the chat requests it gets), killed with SIGKILL once some answers are stored, then run
again: only the questions without a stored answer are asked, and the three-way table and
results.json come out."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from vidsift.core.config import VLMConfig
from vidsift.pipeline.cli import app
from vidsift.pipeline.flows.eval import ARMS, RESULTS, STORE
from vidsift.pipeline.service.openai_server import create_app
from vidsift.workers.vlm import get_vlm

from tests.eval_sets import VIDEOMME_ROWS, eval_sets  # noqa: F401  (the session fixture)
from tests.http_servers import serve

VIDSIFT = Path(sys.executable).parent / "vidsift"  # the venv's console script
KILL_AFTER = 4  # stored answers before the first run is killed


def _stored(out: Path) -> dict[tuple[str, str], float]:
    """(item, arm) -> asked_at of every stored answer; {} before the store exists."""
    try:
        with sqlite3.connect(f"file:{out / STORE}?mode=ro", uri=True) as conn:
            return {(i, a): t for i, a, t in conn.execute(
                "SELECT item, arm, asked_at FROM answers WHERE error IS NULL")}
    except sqlite3.OperationalError:  # not made yet
        return {}


def test_eval_killed_midway_resumes_without_asking_answered_questions_again(
        ray_cluster, eval_sets, tiny_qwen_dir, tmp_path):
    backend = get_vlm(VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32",
                                max_new_tokens=64))
    server = create_app(backend, "tiny-qwen")
    chats: list[float] = []

    @server.middleware("http")
    async def count(request, call_next):
        if request.url.path.endswith("/chat/completions"):
            chats.append(time.monotonic())
        return await call_next(request)

    annotations, root = eval_sets["videomme"]
    out = tmp_path / "out"
    total = len(VIDEOMME_ROWS) * len(ARMS)
    with serve(server) as url:
        args = ["eval", str(annotations), "--format", "videomme", "--videos", str(root),
                "--out", str(out), "--budget", "256",
                "--set", "vlm.backend=openai", "--set", f"vlm.base_url={url}",
                "--set", "vlm.model=tiny-qwen", "--set", "embed.ocr=false",
                "--set", "speech.mode=none", "--set", f"index.dir={tmp_path / 'index'}",
                "--set", f"ray.address={ray_cluster.get_runtime_context().gcs_address}"]
        with open(tmp_path / "first.log", "w") as log:
            first = subprocess.Popen([str(VIDSIFT), *args], cwd=tmp_path, stdout=log,
                                     stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 240
            while len(_stored(out)) < KILL_AFTER:
                assert first.poll() is None, (tmp_path / "first.log").read_text()
                assert time.monotonic() < deadline, "no answers stored in 240 s"
                time.sleep(0.05)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(30)
        kept = _stored(out)
        assert KILL_AFTER <= len(kept) < total
        # a request in flight when it was killed has no stored answer: it is asked again
        assert len(chats) in (len(kept), len(kept) + 1)
        chats_before = len(chats)

        again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    # only the questions without an answer were asked, each once
    assert len(chats) - chats_before == total - len(kept)
    stored = _stored(out)
    assert len(stored) == total
    assert all(stored[key] == asked_at for key, asked_at in kept.items())  # not asked again
    shown = again.stdout
    assert f"{total - len(kept)} asked, {len(kept)} already answered, 0 failed" in shown
    assert "videomme: accuracy % at 256 visual tokens (tiny-qwen)" in shown
    for word in (*ARMS, "short", "medium", "overall", "visual tokens (mean)"):
        assert word in shown
    results = json.loads((out / RESULTS).read_text())
    assert results["asked"] == total - len(kept) and results["skipped"] == len(kept)
    for arm in ARMS:
        assert results["results"][arm]["answered"] == len(VIDEOMME_ROWS)
        assert set(results["results"][arm]["buckets"]) == {"short", "medium"}
        assert results["results"][arm]["tokens_mean"] <= 256


def test_bad_eval_input_is_one_line_before_any_pool_starts(eval_sets, tmp_path):
    annotations, root = eval_sets["videomme"]
    base = [str(annotations), "--videos", str(root), "--out", str(tmp_path / "out")]
    for args, message in [
        (["--format", "egoschema"], "error: eval format 'egoschema': choose one of videomme | "
                                    "longvideobench | mlvu | lvbench"),
        (["--format", "lvbench"], f"error: {annotations}: not lvbench annotations"),
        (["--format", "videomme", "--model", "tiny", "--arms", "vidsift,random"],
         "error: eval arm 'random': choose from vidsift | uniform | downsample"),
        (["--format", "videomme", "--model", "none"],
         "error: vidsift eval needs a VLM: give --model (or vlm.model)"),
    ]:
        result = CliRunner().invoke(app, ["eval", *base, *args])
        assert result.exit_code == 1, result.output
        assert result.stderr.splitlines()[0].startswith(message), result.stderr
    assert not (tmp_path / "out").exists()
