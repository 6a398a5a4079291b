"""The ask flow: probe -> coarse decode (decode pool) -> [clip index retrieval] -> embed ->
plan_evidence (select + budget) -> fine decode at the planned sizes -> VLM pool -> answer.

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

from vidsift.pipeline.config import Config, VLMConfig
from vidsift.pipeline.errors import VidsiftError


def vlm_enabled(cfg: VLMConfig) -> bool:
    """False in evidence-only mode: no model configured, or the model is the word "none"."""
    return bool(cfg.model) and cfg.model.strip().lower() != "none"


def hms(seconds: float) -> str:
    """seconds -> h:mm:ss (whole seconds, rounded down)."""
    total = max(0, int(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


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
    vlm: dict = field(default_factory=dict)  # visual tokens seen/kept, prefill/decode seconds

    @property
    def evidence_only(self) -> bool:
        return self.answer is None

    def to_dict(self) -> dict:
        return {
            "video": self.video, "question": self.question, "answer": self.answer,
            "model": self.model, "evidence_only": self.evidence_only,
            "segments": self.segments, "tokens": self.tokens, "budget": self.budget,
            "timings": self.timings, "retrieved": self.retrieved, "vlm": self.vlm,
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
    """Decode pool, embedder and (unless evidence-only) VLM pool, on Ray; reused across asks."""

    def __init__(self, cfg: Config) -> None:
        from vidsift.workers.decode.actor import DecodePool
        from vidsift.workers.embed.actor import start_embed_actor
        from vidsift.workers.ray_runtime import ensure_ray

        self.cfg = cfg
        ensure_ray(cfg.ray)
        # The embedder loads its models in its actor while the decode pool starts and the coarse
        # pass runs; the first ray.get on it waits only for what is left.
        self.embed = start_embed_actor(cfg.embed)
        self.decode = DecodePool(cfg.decode)
        self._vlm = None

    @property
    def vlm(self):
        if self._vlm is None:
            from vidsift.workers.pool import VLMPool

            self._vlm = VLMPool(self.cfg.vlm, self.cfg.pool)
        return self._vlm

    def close(self) -> None:
        """Release the actors (decode pool, embedder, VLM pool)."""
        import ray

        if self._vlm is not None:
            self._vlm.shutdown()
            self._vlm = None
        ray.kill(self.embed, no_restart=True)
        self.decode.close()

    def _retrieve(self, video: str, query_vector: np.ndarray, k: int) -> list[dict]:
        """Clips of this video from the clip index that match the question (Goldfish-style), or []
        when there is no index or the video is not in it."""
        from vidsift.index.clip_index import MANIFEST, ClipIndex
        from vidsift.pipeline.flows.index import embedder_id

        index_dir = Path(self.cfg.index.dir).expanduser()
        if not (index_dir / MANIFEST).is_file():
            return []
        with ClipIndex(index_dir, self.cfg.index, readonly=True,
                       embedder=embedder_id(self.cfg)) as index:
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
    ) -> AskResult:
        import ray

        from vidsift.pipeline.evidence import plan_evidence
        from vidsift.pipeline.types import VLMRequest

        cfg = self.cfg
        budget_cfg = cfg.budget.model_copy(update={"tokens": budget}) if budget else cfg.budget
        timer = _Timer()
        started = time.perf_counter()
        video = str(Path(video).expanduser().resolve())

        with timer.stage("probe"):
            info = self.decode.probe(video)
        with timer.stage("coarse"):
            frames = self.decode.coarse(
                video, cfg.decode.coarse_max_side, cfg.selection.max_coarse_gap_s,
                cfg.selection.coarse_fps,
            )
        with timer.stage("embed_query"):
            query_vector = ray.get(self.embed.embed_text.remote([question]))[0]
        retrieved: list[dict] = []
        if use_index:
            with timer.stage("retrieve"):
                retrieved = self._retrieve(video, query_vector, k=cfg.selection.max_anchors)
            if retrieved:
                inside = [f for f in frames
                          if any(h["start"] <= f.pts <= h["end"] for h in retrieved)]
                frames = inside or frames
        if not frames:
            raise VidsiftError(f"{video}: the coarse pass decoded no frames")
        with timer.stage("embed"):
            embeddings = ray.get(self.embed.encode_frames.remote([f.image for f in frames]))
        with timer.stage("plan"):
            token_set = plan_evidence(
                np.array([f.pts for f in frames], dtype=np.float64),
                embeddings.visual, embeddings.text, query_vector,
                info.start_time, info.end_time, cfg.selection, budget_cfg,
                (info.height, info.width), video=video,
            )
        with timer.stage("fine"), ThreadPoolExecutor(cfg.decode.num_actors) as threads:
            # One call per segment, spread over the decode pool's actors.
            decoded = list(threads.map(
                lambda s: self.decode.frames_at(video, s.timestamps, size=(s.height, s.width)),
                token_set.segments,
            ))
            token_set.segments = [
                dataclasses.replace(s, frames=tuple(f)) for s, f in zip(token_set.segments, decoded)
            ]
        segments = [_segment_dict(s) for s in token_set.segments]
        if thumbnails_dir is not None:
            from vidsift.pipeline.flows.index import save_thumbnail

            with timer.stage("thumbnails"):
                for number, (seg, planned) in enumerate(zip(segments, token_set.segments)):
                    if planned.frames:
                        path = Path(thumbnails_dir) / f"{number}.jpg"
                        save_thumbnail(planned.frames[len(planned.frames) // 2].image, path)
                        seg["thumbnail"] = str(path)
        answer, model, vlm_info = None, "none", {}
        if vlm_enabled(cfg.vlm):
            with timer.stage("vlm"):
                result = self.vlm.generate([VLMRequest(token_set, question, max_new_tokens)])[0]
            answer, model = result.text.strip(), result.model or str(cfg.vlm.model)
            vlm_info = {
                "visual_tokens": result.visual_tokens,
                "visual_tokens_kept": result.visual_tokens_kept,
                "prefill_s": round(result.prefill_s, 4), "decode_s": round(result.decode_s, 4),
            }
        timer.timings["total"] = round(time.perf_counter() - started, 4)
        return AskResult(
            video=video, question=question, answer=answer, model=model, segments=segments,
            tokens=token_set.total_tokens, budget=budget_cfg.tokens, timings=timer.timings,
            retrieved=retrieved, vlm=vlm_info,
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
