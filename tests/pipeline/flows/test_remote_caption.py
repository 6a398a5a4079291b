"""A video that exists only in a bucket (moto's S3 server on loopback, IAM enforced) is captioned
by the caption flow with the tiny random Qwen2.5-VL, in fixed clips and on the scene clips of its
memory (ingested in shards by the pool's actors reading the object's ranges): the clips have exact
spans, the output names the URL (no credential anywhere in it); a broken object and a bucket the
keys may not read fail alone in the same batch, each in one line naming its URL.

Ray's workers take the environment of the process that starts Ray, as real nodes find their AWS
settings in theirs, so the run is its own process: it starts moto, sets the standard AWS
environment, then Ray (the session's shared cluster started before any S3 endpoint existed).

    python -m tests.pipeline.flows.test_remote_caption MODEL_DIR WORKDIR OUT_JSON
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
URL = "s3://videos/talks/clip.mp4"
BROKEN = "s3://videos/talks/broken.mp4"
DENIED = "s3://locked/talks/clip.mp4"


def main(model_dir: str, workdir: str, out_json: str) -> None:
    import ray

    from tests.remote_stores import iam_enforced, moto_s3, s3_client
    from tests.videos import make_coded_video
    from vidsift.core.config import load_config
    from vidsift.core.media import video_key
    from vidsift.index.memory import MemoryStore
    from vidsift.pipeline.flows.caption import CaptionOutput, run_caption
    from vidsift.pipeline.flows.ingest import cut_clips, ingest_one
    from vidsift.workers.ingest import IngestPool

    work = Path(workdir)
    video = make_coded_video(work / "clip.mp4", n_frames=60, fps=10, size=(160, 120))
    with contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(moto_s3())
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket="videos")
        s3.upload_file(str(video), "videos", "talks/clip.mp4")
        s3.put_object(Bucket="videos", Key="talks/broken.mp4", Body=os.urandom(4096))
        s3.create_bucket(Bucket="locked")
        s3.upload_file(str(video), "locked", "talks/clip.mp4")
        manifest = work / "batch.jsonl"
        manifest.write_text("".join(json.dumps(url) + "\n" for url in (URL, BROKEN, DENIED)))
        keys = stack.enter_context(iam_enforced(endpoint, ["videos"]))
        os.environ.update(keys)  # the node's credentials: they may read "videos" only
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 _temp_dir=str(work / "ray"), namespace="vidsift-remote-caption")
        try:
            small = [
                f"index.dir={work / 'memories'}", f"vlm.model={model_dir}", "vlm.device=cpu",
                "vlm.dtype=float32", "vlm.max_new_tokens=4", "caption.clip_s=3",
                "caption.frames_per_clip=2", "caption.tokens_per_clip=32",
                "caption.max_new_tokens=4", "pool.max_batch_size=1", "pool.num_actors=1",
                "pool.num_cpus_per_actor=0.5",
            ]
            cfg = load_config("default", [*small, "caption.clips=fixed"])
            out = work / "out"
            report = run_caption(manifest, out, cfg)
            # Scene clips: the bucket video ingested in shards on the pool, whose actors read
            # its byte ranges, then captioned on its memory's clips, as the index cuts them.
            scenes_cfg = load_config("default", [
                *small, "caption.clips=scenes", "embed.ocr=false",
                "index.max_clip_s=2", "ingest.num_actors=1", "ingest.num_cpus_per_actor=0.5"])
            pool = IngestPool(scenes_cfg)
            try:
                memory = ingest_one(URL, scenes_cfg, pool, MemoryStore(scenes_cfg.index.dir))
                scenes = run_caption(URL, work / "scenes", scenes_cfg, pool=pool)
            finally:
                pool.close()
            scene_spans = cut_clips(memory, scenes_cfg).spans
        finally:
            ray.shutdown()
    rows = CaptionOutput(out).read_rows().to_pylist()
    files = {str(p.relative_to(out)): p.read_bytes().decode("utf-8", "replace")
             for p in out.rglob("*") if p.is_file()}
    secrets = [keys["AWS_SECRET_ACCESS_KEY"].encode(), b"testing-secret"]
    leaks = [str(p) for folder in (out, work / "scenes", work / "memories")
             for p in folder.rglob("*") if p.is_file()
             and any(secret in p.read_bytes() for secret in secrets)]
    Path(out_json).write_text(json.dumps({
        "report": report.to_dict(), "rows": rows, "files": files,
        "scenes": scenes.to_dict(), "scene_spans": scene_spans,
        "scene_rows": CaptionOutput(work / "scenes").read_rows().to_pylist(),
        "key": video_key(URL), "leaks": leaks,
    }))


@pytest.mark.timeout(240)
def test_a_bucket_video_is_captioned_with_exact_spans_naming_its_url(tiny_qwen_dir, tmp_path):
    work = Path(tempfile.mkdtemp(prefix="vscap"))  # Ray's socket paths stay short
    out = tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_TMPDIR": str(work)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tests.pipeline.flows.test_remote_caption", str(tiny_qwen_dir),
             str(work), str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=220)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text())
    report = result["report"]
    counts = (report["videos"], report["captioned"], report["failed"], report["clips"])
    assert counts == (3, 1, 2, 2)
    # The broken object and the denied bucket fail alone, each in one line naming its URL.
    assert sorted(report["failures"]) == [DENIED, BROKEN]
    assert BROKEN in report["failures"][BROKEN] and "\n" not in report["failures"][BROKEN]
    assert report["failures"][DENIED] == (
        f"SourceReadError: {DENIED}: cannot be read (access denied: Forbidden)")
    # The 6 s object in 3 s clips: exact spans, each clip's row naming the URL.
    rows = sorted(result["rows"], key=lambda r: r["clip"])
    assert [(r["video"], r["clip"], r["start"], r["end"]) for r in rows] == [
        (URL, 0, 0.0, 3.0), (URL, 1, 3.0, 6.0)]
    assert all(isinstance(r["caption"], str) and r["tokens"] == 24 for r in rows)
    files = result["files"]
    srt = files[f"subtitles/{result['key']}.srt"]
    assert srt.startswith("1\n00:00:00,000 --> 00:00:03,000\n")
    assert "2\n00:00:03,000 --> 00:00:06,000\n" in srt
    # Scene clips: the memory's clips, as the index cuts them, each captioned once.
    spans = [tuple(span) for span in result["scene_spans"]]
    assert len(spans) > 1 and result["scenes"]["captioned"] == 1
    scene_rows = sorted(result["scene_rows"], key=lambda r: r["clip"])
    assert [(r["video"], r["start"], r["end"]) for r in scene_rows] == [
        (URL, pytest.approx(a), pytest.approx(b)) for a, b in spans]
    # No credential in anything the runs wrote: captions, subtitles, failures, memories.
    assert result["leaks"] == []


if __name__ == "__main__":
    main(*sys.argv[1:])
