"""The ask flow: the video's memory (the shared ingest chain: stored once per content, else
sharded coarse decode + embed on the ingest pool) -> [clip index retrieval] -> plan_evidence
(select + budget) -> fine decode at the planned sizes -> VLM pool -> answer.

A second question about a video reads its memory: nothing is decoded but the planned frames.

With vlm.model None or "none" it stops before the VLM (evidence-only mode): the result is the
evidence the VLM would be shown (segments with start/end seconds, token counts, thumbnails).
An Asker keeps its pools alive, so the HTTP service pays the model loads once.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidsift.core.config import Config
from vidsift.core.errors import VidsiftError
from vidsift.core.timeline import hms


@dataclass
class AskResult:
    video: str
    question: str
    answer: str | None  # None in evidence-only mode
    model: str  # the VLM that answered, or "none"
    segments: list[dict]  # kind, start, end (seconds), timestamps, height, width, tokens, ...
    tokens: int  # visual tokens planned for the whole question
    budget: int
    timings: dict[str, float]  # seconds per stage, and "total"
    retrieved: list[dict] = field(default_factory=list)  # clip-index hits the coarse pass used
    reused: bool = False  # the video's memory was read, nothing ingested
    vlm: dict = field(default_factory=dict)  # visual tokens seen/kept, prefill/decode seconds
    # the evidence the answer cites: {segment (1-based, as numbered in the prompt), start, end,
    # video}, in order of first mention; [] when it cites none (the segments are still all here)
    citations: list[dict] = field(default_factory=list)

    @property
    def evidence_only(self) -> bool:
        return self.answer is None

    def citation_line(self) -> str:
        """The cited evidence as timestamps: "[2] 0:00:12-0:00:16, [5] 0:01:03"; "" if none."""
        return ", ".join(
            f"[{c['segment']}] " + (hms(c["start"]) if c["start"] == c["end"]
                                    else f"{hms(c['start'])}-{hms(c['end'])}")
            for c in self.citations
        )

    def evidence_lines(self) -> list[str]:
        """One line per segment shown (time span, kind, frames, size, tokens, thumbnail), then
        the token total and the timings: what the CLI and the demo print."""
        lines = []
        for number, seg in enumerate(self.segments, start=1):
            span = hms(seg["start"]) if seg["kind"] == "image" else (
                f"{hms(seg['start'])}-{hms(seg['end'])}")
            lines.append(f"[{number}] {span}  {seg['kind']:5s} {len(seg['timestamps'])} frame(s) "
                         f"{seg['width']}x{seg['height']}  {seg['tokens']} tokens  "
                         f"{seg.get('thumbnail', '')}".rstrip())
        lines.append(f"{self.tokens} of {self.budget} visual tokens"
                     + (" (memory reused)" if self.reused else "") + "; timings "
                     + ", ".join(f"{k} {v:.2f}s" for k, v in self.timings.items()))
        return lines

    def to_dict(self) -> dict:
        return {
            "video": self.video, "question": self.question, "answer": self.answer,
            "model": self.model, "evidence_only": self.evidence_only,
            "segments": self.segments, "tokens": self.tokens, "budget": self.budget,
            "timings": self.timings, "retrieved": self.retrieved, "vlm": self.vlm,
            "reused_memory": self.reused, "citations": self.citations,
        }


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - started, 4)


class Asker:
    """The ingest pool (decode + embed actors, on Ray), the memory store and, unless
    evidence-only, the VLM pool; reused across asks."""

    def __init__(self, cfg: Config, pool=None) -> None:
        from vidsift.index.memory import MemoryStore
        from vidsift.pipeline.flows.index import start_pool

        self.cfg = cfg
        self._owns_pool = pool is None
        self.pool = start_pool(cfg) if pool is None else pool
        self.memory = MemoryStore(cfg.index.dir)
        self._vlm = None

    @property
    def vlm(self):
        """The VLM pool's actors, or a remote backend called in-process (its own thread pool)."""
        if self._vlm is None:
            if self.cfg.vlm.remote:
                from vidsift.workers.vlm import get_vlm

                self._vlm = get_vlm(self.cfg.vlm)
            else:
                from vidsift.workers.pool import VLMPool

                self._vlm = VLMPool(self.cfg.vlm, self.cfg.pool)
        return self._vlm

    def close(self) -> None:
        """Release the actors (the ingest pool unless it was lent, the VLM pool)."""
        if self._vlm is not None:
            self._vlm.shutdown()
            self._vlm = None
        if self._owns_pool:
            self.pool.close()

    def _retrieve(self, video: str, query_vector: np.ndarray, k: int) -> list[dict]:
        """Clips of this video from the clip index that match the question (Goldfish-style), or []
        when there is no index or the video is not in it."""
        from vidsift.index.clip_index import MANIFEST, ClipIndex

        index_dir = Path(self.cfg.index.dir).expanduser()
        if not (index_dir / MANIFEST).is_file():
            return []
        with ClipIndex(index_dir, self.cfg.index, readonly=True,
                       embedder=self.cfg.embed.space_id) as index:
            hits = index.search(text=query_vector, k=k, videos=[video])
        return [{"start": h.start, "end": h.end, "score": h.score, "text": h.text} for h in hits]

    def ask(
        self,
        video: str,
        question: str,
        budget: int | None = None,
        max_new_tokens: int | None = None,
        thumbnails_dir: str | Path | None = None,
        use_index: bool = True,
        progress=None,
    ) -> AskResult:
        """progress: called with each pipeline.ingest.IngestProgress while the video is
        ingested (shards done / total)."""
        from vidsift.pipeline.evidence import plan_evidence
        from vidsift.pipeline.ingest import ingest_one
        from vidsift.core.types import VLMRequest
        from vidsift.workers.vlm.prompt import parse_citations

        cfg = self.cfg
        budget_cfg = cfg.budget.model_copy(update={"tokens": budget}) if budget else cfg.budget
        timer = _Timer()
        started = time.perf_counter()
        video = str(Path(video).expanduser().resolve())
        reused = []

        def track(event) -> None:
            reused.append(event.reused)
            if progress is not None:
                progress(event)

        with timer.stage("ingest"):
            memory = ingest_one(video, cfg, self.pool, self.memory, track)
        info, frames = memory.info, memory.frames
        with timer.stage("embed_query"):
            query_vector = self.pool.embed_text([question])[0]
        retrieved: list[dict] = []
        keep = np.ones(len(frames), dtype=bool)
        if use_index:
            with timer.stage("retrieve"):
                retrieved = self._retrieve(video, query_vector, k=cfg.selection.max_anchors)
            if retrieved:
                inside = np.zeros(len(frames), dtype=bool)
                for hit in retrieved:
                    inside |= (frames.times >= hit["start"]) & (frames.times <= hit["end"])
                keep = inside if inside.any() else keep
        if not keep.any():
            raise VidsiftError(f"{video}: the coarse pass decoded no frames")
        with timer.stage("plan"):
            token_set = plan_evidence(
                frames.times[keep], frames.embeddings.visual[keep], frames.embeddings.text[keep],
                query_vector, info.start_time, info.end_time, cfg.selection, budget_cfg,
                (info.height, info.width), video=video, spec=cfg.vision_spec(),
            )
        with timer.stage("fine"), ThreadPoolExecutor(self.pool.size) as threads:
            # One call per segment, spread over the pool's actors.
            decoded = list(threads.map(
                lambda s: self.pool.frames_at(video, s.timestamps, size=(s.height, s.width)),
                token_set.segments,
            ))
            token_set.segments = [
                dataclasses.replace(s, frames=tuple(f)) for s, f in zip(token_set.segments, decoded)
            ]
        segments = [_segment_dict(s) for s in token_set.segments]
        if thumbnails_dir is not None:
            from vidsift.core.files import save_thumbnail

            with timer.stage("thumbnails"):
                for number, (seg, planned) in enumerate(zip(segments, token_set.segments)):
                    if planned.frames:
                        path = Path(thumbnails_dir) / f"{number}.jpg"
                        save_thumbnail(planned.frames[len(planned.frames) // 2].image, path)
                        seg["thumbnail"] = str(path)
        answer, model, vlm_info, citations = None, "none", {}, []
        if cfg.vlm.enabled:
            with timer.stage("vlm"):
                result = self.vlm.generate([VLMRequest(token_set, question, max_new_tokens)])[0]
            answer, model = result.text.strip(), result.model or str(cfg.vlm.model)
            citations = parse_citations(answer, token_set)
            vlm_info = {
                "visual_tokens": result.visual_tokens,
                "visual_tokens_kept": result.visual_tokens_kept,
                "prefill_s": round(result.prefill_s, 4), "decode_s": round(result.decode_s, 4),
                **({"usage": result.usage} if result.usage else {}),
            }
        timer.timings["total"] = round(time.perf_counter() - started, 4)
        return AskResult(
            video=video, question=question, answer=answer, model=model, segments=segments,
            tokens=token_set.total_tokens, budget=budget_cfg.tokens, timings=timer.timings,
            retrieved=retrieved, vlm=vlm_info, reused=all(reused), citations=citations,
        )


def _segment_dict(segment) -> dict:
    return {
        "kind": segment.kind.value, "start": segment.start, "end": segment.end,
        "start_hms": hms(segment.start), "end_hms": hms(segment.end),
        "timestamps": list(segment.timestamps), "height": segment.height,
        "width": segment.width, "tokens": segment.tokens, "score": segment.score,
        "source": segment.source,
    }


def ask(cfg: Config, video: str, question: str, **options) -> AskResult:
    """One question from the command line: build the pools, ask, release them."""
    asker = Asker(cfg)
    try:
        return asker.ask(video, question, **options)
    finally:
        asker.close()
