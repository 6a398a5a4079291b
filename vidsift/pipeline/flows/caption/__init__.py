"""Batch captioning: every video of a folder tree or a manifest, cut into clips, each clip
captioned by a VLM on Ray Data, written as Parquet rows plus per-video SRT and WebVTT.

Data flow, one module per role:
  reader  videos not yet committed in OUT -> per video a ClipPlan: scene clips from the shared
          ingest chain (its memory, else ingested once; cut_clips, the clip index's spans) or
          fixed-length clips over the probe, frame times and size by the VLM's token arithmetic
  mapper  Ray Data: ClipFrames (CPU actor pool) decodes each clip's frames -> CaptionActor (the
          VLM's actor pool) captions batches of clips; Ray restarts a dead actor and retries its
          batch, so no clip is lost; a video that cannot be read becomes one failure row
  writer  rows grouped per video, committed once all its clips are in (done marker last), or
          recorded in failures.jsonl; add_captions_to_index feeds committed captions to the index
  runner  run_caption wires them and returns a CaptionReport
"""

from vidsift.pipeline.flows.caption.mapper import CaptionActor, ClipFrames, caption_rows
from vidsift.pipeline.flows.caption.reader import (
    ClipPlan,
    clip_frame_size,
    fixed_clips,
    plan_clips,
    read_clips,
    videos_to_caption,
)
from vidsift.pipeline.flows.caption.runner import CaptionReport, ProgressFn, run_caption
from vidsift.pipeline.flows.caption.writer import (
    CAPTION_COLUMNS,
    CAPTION_HASH_SUFFIX,
    CaptionOutput,
    CaptionWriter,
    add_captions_to_index,
)

__all__ = [
    "CAPTION_COLUMNS", "CAPTION_HASH_SUFFIX", "CaptionActor", "CaptionOutput", "CaptionReport",
    "CaptionWriter", "ClipFrames", "ClipPlan", "ProgressFn", "add_captions_to_index",
    "caption_rows", "clip_frame_size", "fixed_clips", "plan_clips", "read_clips",
    "run_caption", "videos_to_caption",
]
