"""`vidsift demo` (and `make demo`): the real pipeline on the embedded default models, with no
downloads: index a video, search it, and ask it in evidence-only mode."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from vidsift.core.config import Config
from vidsift.core.errors import ConfigError, VidsiftError

# Three scenes of 8 s each from ffmpeg's built-in sources, so the index has cuts to find.
SAMPLE_SCENES = (
    "testsrc2=size=640x360:rate=25",
    "smptehdbars=size=640x360:rate=25",
    "cellauto=size=640x360:rate=25:rule=110",
)
SCENE_SECONDS = 8


def make_sample_video(path: Path) -> Path:
    """A 24 s, 640x360, 25 fps H.264 video of three synthetic scenes (ffmpeg lavfi)."""
    if shutil.which("ffmpeg") is None:
        raise ConfigError("the demo generates its sample video with ffmpeg: install ffmpeg, "
                          "or pass --video PATH")
    inputs = [arg for scene in SAMPLE_SCENES
              for arg in ("-f", "lavfi", "-t", str(SCENE_SECONDS), "-i", scene)]
    graph = "".join(f"[{i}:v]" for i in range(len(SAMPLE_SCENES)))
    graph += f"concat=n={len(SAMPLE_SCENES)}:v=1:a=0,format=yuv420p[v]"
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *inputs,
           "-filter_complex", graph, "-map", "[v]", "-c:v", "libx264", "-preset", "veryfast",
           "-g", "50", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ConfigError(f"ffmpeg could not generate the sample video: {proc.stderr.strip()}")
    return path


def run_demo(cfg: Config, out: Path, video: str | None, question: str, console) -> dict:
    """Index, search, ask --model none; print each step; write out/demo.json. Returns it.
    Index and ask share one ingest pool, and ask reads the memory the index step made."""
    from vidsift.pipeline.flows.index import start_pool

    if video is None:
        console.print("generating a sample video with ffmpeg ...")
        video_path = make_sample_video(out / "sample.mp4")
    else:
        video_path = Path(video).expanduser().resolve()
    pool = start_pool(cfg)
    try:
        return _steps(cfg, out, video_path, question, console, pool)
    finally:
        pool.close()


def _steps(cfg: Config, out: Path, video_path: Path, question: str, console, pool) -> dict:
    from vidsift.core.timeline import hms
    from vidsift.pipeline.flows.ask import Asker
    from vidsift.pipeline.flows.index import index_videos, search_clips

    console.print(f"[bold]1. index[/] {video_path} -> {cfg.index.dir}")
    indexed = index_videos([str(video_path)], cfg, pool=pool)
    if indexed.failed:
        raise VidsiftError(f"indexing failed: {indexed.failed[0][1]}")
    console.print(f"   {indexed.clips} clips from {indexed.frames} coarse frames in "
                  f"{indexed.wall_s:.1f} s ({len(indexed.skipped)} already indexed)")

    console.print(f"[bold]2. search[/] {question!r}")
    hits = search_clips(question, cfg, k=3)
    for hit in hits:
        console.print(f"   {hms(hit.start)}-{hms(hit.end)}  score {hit.score:.3f}  "
                      f"{hit.thumbnail}", highlight=False)

    console.print(f"[bold]3. ask[/] {question!r} (evidence only: no VLM weights here)")
    result = Asker(cfg, pool=pool).ask(str(video_path), question, thumbnails_dir=out / "evidence")
    for line in result.evidence_lines():
        console.print(f"   {line}", highlight=False)

    summary = {
        "video": str(video_path),
        "search": [{"start": h.start, "end": h.end, "score": h.score, "thumbnail": h.thumbnail}
                   for h in hits],
        "ask": result.to_dict(),
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=2, default=str))
    console.print(
        "\nTo get answers, point --model at a Qwen2.5-VL checkpoint (a local folder or a hub id):\n"
        f"  vidsift ask {video_path} \"{question}\" --model Qwen/Qwen2.5-VL-3B-Instruct\n"
        "  (or --config gpu for SigLIP + Qwen2.5-VL-7B on a GPU)\n"
        f"Wrote {out / 'demo.json'} and the evidence thumbnails in {out / 'evidence'}."
    )
    return summary
