"""run_caption: reader -> mapper -> writer, resumable.

Videos OUT has committed are skipped; the rest are read into clip plans first (scene clips on
the ingest pool, which is then closed, so ingest and the VLM never compete for the same CPUs and
GPUs), then captioned on Ray Data, each video committed as its last clip lands. An interrupted
run loses only uncommitted videos, and with scene clips their memories are kept: the re-run
decodes no coarse pass again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vidsift.core.config import Config
from vidsift.core.errors import ConfigError
from vidsift.pipeline.flows.caption.mapper import caption_rows
from vidsift.pipeline.flows.caption.reader import read_clips, videos_to_caption
from vidsift.pipeline.flows.caption.writer import CaptionOutput, CaptionWriter


@dataclass
class CaptionReport:
    videos: int = 0  # videos found
    skipped: int = 0  # already captioned by an earlier run
    captioned: int = 0  # committed by this run
    failed: int = 0
    clips: int = 0  # rows written by this run
    seconds: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)  # video -> error

    def to_dict(self) -> dict:
        return {
            "videos": self.videos, "skipped": self.skipped, "captioned": self.captioned,
            "failed": self.failed, "clips": self.clips, "seconds": round(self.seconds, 3),
            "failures": self.failures,
        }


ProgressFn = Callable[[CaptionReport, str, str], None]  # (report so far, video, "done" | "failed")


def run_caption(
    source: str | Path,
    out: str | Path,
    cfg: Config,
    progress: ProgressFn | None = None,
    pool=None,
) -> CaptionReport:
    """Caption every video of `source` (folder tree, manifest or file) into `out`; see the
    package doc. pool: an IngestPool for scene clips (else one is started and closed)."""
    if not cfg.vlm.enabled:
        raise ConfigError("caption needs a VLM: set --model (or vlm.model) to a Qwen2.5-VL "
                          "checkpoint path or hub id")
    started = time.perf_counter()
    output = CaptionOutput(out)
    videos, todo = videos_to_caption(source, output.is_done)
    report = CaptionReport(videos=len(videos), skipped=len(videos) - len(todo))
    pending = set(todo)
    writer = CaptionWriter(output, {v: e for v, e in output.read_failures().items() if v in pending})
    notify = progress or (lambda report, video, status: None)

    def failed(video: str) -> None:
        report.failed += 1
        notify(report, video, "failed")

    plans = []
    if todo:
        owned = pool is None and cfg.caption.clips == "scenes"
        if owned:
            from vidsift.pipeline.flows.index import start_pool

            pool = start_pool(cfg)
        try:
            for video, plan in read_clips(todo, cfg, pool):
                if isinstance(plan, Exception):
                    writer.fail(video, f"{type(plan).__name__}: {plan}")
                    failed(video)
                else:
                    plans.append(plan.to_row())
        finally:
            if owned:
                pool.close()
    if plans:
        for row in caption_rows(plans, cfg):
            status = writer.add(row)
            if status == "done":
                report.captioned += 1
                report.clips += int(row["n_clips"])
                notify(report, str(row["video"]), "done")
            elif status == "failed":
                failed(str(row["video"]))
    writer.close()
    report.failures = writer.failures
    report.seconds = time.perf_counter() - started
    return report
