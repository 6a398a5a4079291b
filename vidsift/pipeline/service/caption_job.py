"""A caption job of the HTTP service: the videos its paths name, each checked against the media
roots, captioned by the caption flow (flows.caption.run_caption) into the job's own folder, and
the result every clip's caption read back from that folder.

The job's videos are written to OUT/videos.jsonl, the manifest run_caption reads, so the flow
sees only videos the service may read (a folder's symlink or a manifest's entry that leads out of
the roots is a failure, never read). OUT is the flow's resumable folder: a job re-queued by a
restart skips the videos it had committed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from vidsift.core.config import Config
from vidsift.core.errors import PathNotAllowedError, VidsiftError
from vidsift.core.files import write_atomic
from vidsift.core.media import find_videos

MANIFEST = "videos.jsonl"

# (videos finished, videos in all, the video just finished or None) -> False once the job is no
# longer running (cancelled): the job then stops at that video
JobProgress = Callable[[int, int, str | None], bool]


class JobCancelled(VidsiftError):
    """The job was cancelled while it ran; what it had committed stays in its folder."""


def caption_job(paths: Sequence[str], out: str | Path, cfg: Config,
                check: Callable[[str], object], progress: JobProgress, to_index: bool = False,
                pool=None) -> dict:
    """Caption every video under `paths` (folders, manifests, files) into `out`, as
    `vidsift caption PATHS --out OUT [--to-index]` does. check(video) raises PathNotAllowedError
    for a video the service may not read (MediaRoots.check); pool: the service's IngestPool
    (scene clips). JobCancelled when progress() says the job was cancelled. Returns
    run_caption's report (videos, skipped, captioned, failed, clips, seconds, failures
    {video: error}) with
      output    the job's folder (Parquet, SRT and WebVTT per video, as the flow writes them)
      captions  per captioned video, in the order found: {video, clips: [{start, end, text}]},
                each clip with its `speech` too (what is said during it) when captions used speech
      index     with to_index: add_captions_to_index's {added, skipped, clips}"""
    from vidsift.pipeline.flows.caption import CaptionOutput, add_captions_to_index, run_caption

    out = Path(out)
    videos = find_videos(paths)
    allowed, refused = [], {}
    for video in videos:
        try:
            check(video)
        except PathNotAllowedError as exc:  # failed like a video the flow cannot read
            refused[video] = f"{type(exc).__name__}: {exc}"
        else:
            allowed.append(video)
    output = CaptionOutput(out)
    write_atomic(out / MANIFEST, "".join(json.dumps(video) + "\n" for video in allowed))
    progress(len(refused), len(videos), None)

    def step(report, video: str, _status: str) -> None:
        done = len(refused) + report.skipped + report.captioned + report.failed
        if not progress(done, len(videos), video):
            raise JobCancelled(f"cancelled after {done} of {len(videos)} videos")

    report = run_caption(out / MANIFEST, out, cfg, progress=step, pool=pool)
    result = report.to_dict()
    result.update(videos=len(videos), failed=report.failed + len(refused),
                  failures={**refused, **report.failures}, output=str(out),
                  captions=_captions(output, allowed,
                                     cfg.speech.enabled and cfg.caption.speech_chars > 0))
    if to_index:
        result["index"] = add_captions_to_index(out, cfg)
    return result


def _captions(output, videos: list[str], speech: bool) -> list[dict]:
    """The committed clips of each of `videos` that has them, from output's Parquet rows."""
    table = output.read_rows()
    by_video: dict[str, list[dict]] = {}
    for row in table.to_pylist() if table is not None else []:
        by_video.setdefault(row["video"], []).append(row)
    captions = []
    for video in videos:
        rows = sorted(by_video.get(video, []), key=lambda row: row["clip"])
        if rows:
            captions.append({"video": video, "clips": [
                {"start": row["start"], "end": row["end"], "text": row["caption"],
                 **({"speech": row["speech"]} if speech else {})} for row in rows]})
    return captions
