"""The summarize flow: a video's summary, chapters and highlights.

  memory   the shared ingest chain: stored once per content, so a second summary of the same
           video decodes nothing (no coarse pass)
  chapters cut from its coarse frames and, with speech.mode set, its transcript
           (pipeline.plan.chapters); each titled extractively with what was read or heard in
           it, its thumbnail from the stored thumbnails
  plan     each chapter's own token set (plan.evidence.plan_evidence with no question:
           summary.chapter_selector over the chapter's coarse frames within
           summary.chapter_tokens), timed per chapter; nothing is decoded yet
  map      with a VLM: every chapter in parallel on the VLM pool (a remote server: up to
           vlm.concurrency at once), its planned frames decoded on the ingest pool at their
           planned sizes, the lines said in it (speech.mode; fitted to summary.speech_tokens),
           or, where a caption run's clip captions (summary.captions_dir) cover it, those
           captions instead of frames; the VLM writes its title and summary as JSON
           following summary_replies.chapter_schema (VLMRequest.schema: constrained decoding
           in-process, response_format on a server), bounded to the request's token cap
  reduce   one text request over the chapters' titles and summaries: the video's summary and
           up to summary.highlights highlights {start, end, title, why}
Each chapter's reply is stored as it lands, and the reduce's too (summary_store, keyed by the
video's content, the memory's settings, the chapter's span, the model and the settings that
shape the request), so a re-run after a crash redoes only the chapters that are missing and a
summary asked again calls no VLM.

Without a VLM (--model none) it is extractive and honest: no prose (summary None, each
chapter's summary None), titles read or heard in the chapter, and highlights picked from the
memory by a stated rule (extractive_highlights); the plans are still made, so each chapter's
evidence shows what a VLM would be shown and its token count.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidsift.core.config import Config, SummaryConfig
from vidsift.core.errors import VidsiftError

# Bumped when the map or reduce requests change shape: results stored before are not reused.
REQUEST_VERSION = 2


@dataclass
class SummaryResult:
    """video: the resolved path; duration: seconds; summary: the video's summary (None:
    extractive); chapters: {start, end (seconds), title, summary (None: extractive), thumbnail
    (a JPEG path), evidence: {source ("text" | "speech" | "labels" | ""), text (on-screen texts
    read, in order), keywords (spoken), labels, frames (coarse frames in the chapter), speech
    (what is said in it, with speech on), tokens (visual tokens planned for it), plan (its
    planned segments), plan_s (seconds planning it), captions (clip captions used instead of
    frames), vlm ({read: "schema" (the constrained JSON) | "json" | "text" | "empty" (read
    back from free text: summary_replies), visual_tokens, stored}, with a VLM)}};
    highlights: {start, end, title, why}, in time order; highlights_from: "model" or
    "extractive"; model: the VLM, or "none"; tokens: the visual tokens planned over all the
    chapters; stored: {chapters_reused, chapters_run, reduce_reused}."""

    video: str
    duration: float
    chapters: list[dict]
    timings: dict[str, float]
    summary: str | None = None
    highlights: list[dict] = field(default_factory=list)
    highlights_from: str = "extractive"
    model: str = "none"
    tokens: int = 0
    reused: bool = False  # the memory was read: no coarse pass ran
    speech_sources: list[str] = field(default_factory=list)
    speech_warnings: list[str] = field(default_factory=list)
    stored: dict = field(default_factory=dict)

    @property
    def extractive(self) -> bool:
        return self.model == "none"

    def to_dict(self) -> dict:
        return {
            "video": self.video, "duration": self.duration, "summary": self.summary,
            "chapters": self.chapters, "highlights": self.highlights,
            "highlights_from": self.highlights_from, "extractive": self.extractive,
            "model": self.model, "tokens": self.tokens, "timings": self.timings,
            "reused_memory": self.reused, "stored": self.stored,
            "speech": {"sources": self.speech_sources, "warnings": self.speech_warnings},
        }

    def lines(self) -> list[str]:
        """One line per chapter: its span and title, then its summary (with a VLM) or where
        the title came from (extractive)."""
        from vidsift.core.timeline import hms

        lines = []
        for c in self.chapters:
            line = f"{hms(c['start'])}-{hms(c['end'])}  {c['title'] or '(nothing read or heard)'}"
            if c["summary"]:
                line += f": {c['summary']}"
            elif c["evidence"]["source"]:
                line += f"  [{c['evidence']['source']}]"
            lines.append(line)
        return lines

    def highlight_lines(self) -> list[str]:
        from vidsift.core.timeline import hms

        return [f"{hms(h['start'])}-{hms(h['end'])}  {h['title']}" + (f": {h['why']}"
                                                                      if h["why"] else "")
                for h in self.highlights]


ChapterFn = Callable[[int, dict], None]  # (chapter index, the chapter as written), as each lands


class Summarizer:
    """The ingest pool, the VLM (pool, or remote backend) and the stores, reused across
    summaries. The pools start on first use (a file that is no video fails before any does);
    pools lent to it are left running by close(). pool, vlm: the ones to use, or functions
    giving them (a service's shared pools, started on first use: called only when needed)."""

    def __init__(self, cfg: Config, pool=None, vlm=None) -> None:
        from vidsift.index.memory import MemoryStore
        from vidsift.pipeline.flows.summary_store import SummaryStore

        self.cfg = cfg
        self._owns_pool, self._pool = pool is None, pool
        self._owns_vlm, self._vlm = vlm is None, vlm
        self._text_counter = None
        self.memory = MemoryStore(cfg.index.dir)
        self.store = SummaryStore(cfg.index.dir)

    @property
    def pool(self):
        if self._pool is None:
            from vidsift.pipeline.flows.index import start_pool

            self._pool = start_pool(self.cfg)
        elif callable(self._pool):
            self._pool = self._pool()
        return self._pool

    @property
    def vlm(self):
        """The VLM pool's actors, or a remote backend called in-process (its own threads)."""
        if self._vlm is None:
            from vidsift.workers.vlm import open_vlm

            self._vlm = open_vlm(self.cfg.vlm, self.cfg.pool)
        elif callable(self._vlm):
            self._vlm = self._vlm()
        return self._vlm

    @property
    def text_counter(self):
        if self._text_counter is None:
            from vidsift.pipeline.flows.conversation import text_token_counter

            self._text_counter = text_token_counter(self.cfg.vlm)
        return self._text_counter

    def close(self) -> None:
        if self._owns_vlm and self._vlm is not None:
            if hasattr(self._vlm, "shutdown"):
                self._vlm.shutdown()
            self._vlm = None
        if self._owns_pool and self._pool is not None:
            self._pool.close()
            self._pool = None

    def summarize(self, video: str, thumbnails_dir: str | Path | None = None,
                  progress=None, on_chapter: ChapterFn | None = None) -> SummaryResult:
        """The summary of `video` (see the module doc). thumbnails_dir: where each chapter's
        thumbnail is written (NN.jpg); None: index.dir/chapters/<content hash>/. progress:
        called with each pipeline.flows.ingest.IngestProgress. on_chapter: called as each
        chapter's VLM reply lands (an exception from it stops the run: the chapters already
        replied to stay stored). A file that is no readable video fails first, by name,
        before any pool starts."""
        from vidsift.core.media import resolve_path
        from vidsift.core.probe import check_video
        from vidsift.pipeline.flows.ingest import ingest_one

        check_video(video)
        video = str(resolve_path(video))
        cfg, timings, started, reused = self.cfg, {}, time.perf_counter(), []

        def track(event) -> None:
            reused.append(event.reused)
            if progress is not None:
                progress(event)

        def lap(name: str, since: float) -> float:
            now = time.perf_counter()
            timings[name] = round(now - since, 4)
            return now

        memory = ingest_one(video, cfg, self.pool, self.memory, track)
        mark = lap("ingest", started)
        speech = self._speech(memory)
        mark = lap("speech", mark)
        chapters = chapters_of(memory, cfg, speech)
        moments = [float(memory.frames.times[int(c["thumbnail"])]) for c in chapters]
        folder = (Path(thumbnails_dir) if thumbnails_dir is not None else
                  Path(cfg.index.dir).expanduser() / "chapters" / memory.content_hash)
        _write_thumbnails(chapters, memory, folder, named_by_frame=thumbnails_dir is None)
        mark = lap("chapters", mark)
        plans = []
        for chapter in chapters:
            began = time.perf_counter()
            plan = plan_chapter(memory, chapter["start"], chapter["end"], cfg)
            chapter["evidence"].update(tokens=plan.total_tokens, plan=_plan_dicts(plan),
                                       plan_s=round(time.perf_counter() - began, 4))
            plans.append(plan)
        mark = lap("plan", mark)
        summary, stored = None, {"chapters_reused": 0, "chapters_run": 0, "reduce_reused": False}
        highlights = extractive_highlights(chapters, moments, cfg.summary)
        highlights_from, model = "extractive", "none"
        if cfg.vlm.enabled:
            model = str(cfg.vlm.model)
            stored.update(self._map(memory, chapters, plans, on_chapter))
            mark = lap("map", mark)
            summary, picked, stored["reduce_reused"] = self._reduce(memory, chapters)
            if picked:
                highlights, highlights_from = picked, "model"
            lap("reduce", mark)
        timings["total"] = round(time.perf_counter() - started, 4)
        transcript = memory.transcript
        return SummaryResult(
            video=video, duration=memory.info.duration, chapters=chapters, timings=timings,
            summary=summary, highlights=highlights, highlights_from=highlights_from,
            model=model, tokens=sum(plan.total_tokens for plan in plans), reused=all(reused),
            speech_sources=list(transcript.sources) if transcript else [],
            speech_warnings=list(transcript.warnings) if transcript else [], stored=stored,
        )

    def summarize_many(self, videos: Iterable[str], thumbnails_dir: str | Path | None = None,
                       **options) -> Iterator[tuple[str, SummaryResult | VidsiftError]]:
        """(video, its SummaryResult) for each video, or (video, the error) for one that cannot
        be summarized (unreadable, a failed request): the others go on. thumbnails_dir: as
        summarize's for one video; for several, one folder per video inside it, named by
        media.video_key."""
        from vidsift.core.media import video_key

        videos = list(videos)
        for video in videos:
            folder = (Path(thumbnails_dir) / video_key(video)
                      if thumbnails_dir is not None and len(videos) > 1 else thumbnails_dir)
            try:
                yield video, self.summarize(video, thumbnails_dir=folder, **options)
            except VidsiftError as exc:
                yield video, exc

    def _speech(self, memory):
        """plan.chapters.SpeechLines of the memory's transcript with speech.mode set and
        something said, else None. The lines' vectors are stored beside the
        transcript (flows.speech.transcript_vectors): a second summary embeds nothing."""
        from vidsift.pipeline.flows.speech import transcript_vectors
        from vidsift.pipeline.plan.chapters import SpeechLines

        transcript = memory.transcript
        if transcript is None or not transcript.segments:
            return None
        vectors = transcript_vectors(transcript, memory.content_hash, self.cfg,
                                     self.pool.embed_text)
        spans = np.array([(s.start, s.end) for s in transcript.segments], dtype=np.float64)
        return SpeechLines(spans, vectors)

    def _in_flight(self) -> int:
        """Chapters asked at once: what the remote server takes, or every pool actor's batch."""
        if self.cfg.vlm.remote:
            return self.cfg.vlm.concurrency
        return self.cfg.pool.num_actors * self.cfg.pool.max_batch_size

    def _request_settings(self) -> dict:
        """What shapes a request and its reply besides its inputs."""
        cfg = self.cfg
        return {
            "version": REQUEST_VERSION, "model": [cfg.vlm.backend, cfg.vlm.model],
            "vlm": cfg.vlm.model_dump(include={"pruner", "prune_ratio", "clips", "image_format",
                                               "jpeg_quality", "max_new_tokens"}),
        }

    def _cap(self, wanted: int) -> int:
        """New tokens a request may generate: what summary.* wants, within vlm.max_new_tokens."""
        return min(wanted, self.cfg.vlm.max_new_tokens)

    def _generate(self, request) -> tuple:
        """(the VLM's result for one request, why its schema was given up or ""). A reply that
        still breaks its schema (escapes cost more tokens than the characters they stand for,
        so the cap can cut the JSON) is asked again once as free text, which the readers of
        summary_replies take in any shape: a summary never fails on the format."""
        try:
            return self.vlm.generate([request])[0], ""
        except VidsiftError as exc:  # AnswerSchemaError, or the pool's RequestFailedError
            if request.schema is None:
                raise
            why = str(exc).splitlines()[0][:300]
            return self.vlm.generate([dataclasses.replace(request, schema=None)])[0], why

    def _map(self, memory, chapters: list[dict], plans: list, on_chapter) -> dict:
        """Each chapter's title and summary from the VLM (stored ones read back), in parallel;
        -> {chapters_reused, chapters_run}."""
        from vidsift.core.types import TokenSet, VLMRequest
        from vidsift.pipeline.flows.summary_replies import (chapter_question, chapter_schema,
                                                            read_chapter)
        from vidsift.pipeline.flows.summary_store import digest

        cfg, video = self.cfg, memory.info.path
        schema = chapter_schema(self._cap(cfg.summary.map_tokens),
                                cfg.summary.json_tokens_per_char)
        captions = _captions_covering(chapters, cfg.summary, video)
        said = self._chapter_lines(memory, chapters)
        settings = {**self._request_settings(), "memory": memory.key, "count": len(chapters),
                    "selection": cfg.selection.model_dump(),
                    "budget": cfg.budget.model_dump(exclude={"tokens", "history_tokens",
                                                             "speech_tokens"}),
                    "summary": cfg.summary.model_dump(include={
                        "chapter_tokens", "chapter_selector", "speech_tokens", "map_tokens"}),
                    "speech": cfg.speech.key() if cfg.speech.enabled else "none",
                    "schema": schema}
        keys = [digest({**settings, "number": n, "span": [c["start"], c["end"]],
                        "captions": captions[n]}) for n, c in enumerate(chapters)]

        def land(n: int, value: dict, reused: bool) -> None:
            chapter = chapters[n]
            chapter["title"] = value["title"] or chapter["title"]
            chapter["summary"] = value["summary"] or None
            chapter["evidence"]["vlm"] = {"read": value["read"],
                                          "visual_tokens": value["visual_tokens"],
                                          "stored": reused}
            if "schema_error" in value:  # constrained JSON given up: read from free text
                chapter["evidence"]["vlm"]["schema_error"] = value["schema_error"]
            if captions[n]:
                chapter["evidence"]["captions"] = len(captions[n])

        todo = []
        for n, key in enumerate(keys):
            value = self.store.get("chapter", memory.content_hash, key)
            if value is None:
                todo.append(n)
            else:
                land(n, value, reused=True)

        def ask(n: int):
            chapter = chapters[n]
            token_set = (TokenSet(video, [], budget=0) if captions[n]
                         else self._decoded(plans[n], video))
            question = chapter_question(n + 1, len(chapters), chapter["start"], chapter["end"],
                                        captions[n])
            request = VLMRequest(token_set, question, self._cap(cfg.summary.map_tokens),
                                 request_id=f"{Path(video).name} chapter {n + 1}",
                                 transcript=() if captions[n] else said[n], schema=schema)
            return self._generate(request)

        def reply(n: int, outcome) -> None:
            result, schema_error = outcome
            if isinstance(result.answer_json, dict):
                answer = result.answer_json
                title, summary, read = str(answer["title"]).strip(), " ".join(
                    str(answer["summary"]).split()), "schema"
            else:
                title, summary, read = read_chapter(result.text)
            value = {"title": title, "summary": summary, "read": read,
                     "visual_tokens": result.visual_tokens,
                     **({"schema_error": schema_error} if schema_error else {})}
            self.store.put("chapter", memory.content_hash, keys[n], value)
            land(n, value, reused=False)

        # A chapter is handed to a thread only as another lands (after on_chapter): when the
        # run stops, only those already on their way are asked, and they still land in the
        # store, so a re-run does not ask for them again.
        waiting, running = list(todo), {}
        width = max(1, min(self._in_flight(), len(todo) or 1))
        threads = ThreadPoolExecutor(width)

        def start() -> None:
            while waiting and len(running) < width:
                n = waiting.pop(0)
                running[threads.submit(ask, n)] = n

        try:
            start()
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    n = running.pop(future)
                    reply(n, future.result())
                    if on_chapter is not None:
                        on_chapter(n, chapters[n])
                start()
        except BaseException:
            waiting.clear()
            for future, n in running.items():
                try:
                    reply(n, future.result())
                except Exception:  # noqa: BLE001 - the first error is the one raised
                    pass
            raise
        finally:
            threads.shutdown(wait=True)
        return {"chapters_reused": len(chapters) - len(todo), "chapters_run": len(todo)}

    def _decoded(self, plan, video: str):
        """The plan with every segment's frames decoded at its planned size (ingest pool)."""
        segments = [dataclasses.replace(s, frames=tuple(self.pool.frames_at(
            video, s.timestamps, size=(s.height, s.width)))) for s in plan.segments]
        return dataclasses.replace(plan, segments=segments)

    def _chapter_lines(self, memory, chapters: list[dict]) -> list[tuple]:
        """Per chapter, the transcript lines said in it, spread evenly over it when they do not
        all fit summary.speech_tokens text tokens; () with speech off or nothing said."""
        from vidsift.core.transcript import overlapping
        from vidsift.workers.vlm.prompt import fit_text, transcript_text

        transcript = memory.transcript
        if transcript is None or not transcript.segments:
            return [() for _ in chapters]
        count, _ = self.text_counter
        lines = []
        for chapter in chapters:
            said = list(overlapping(transcript.segments, chapter["start"], chapter["end"]))
            choices = [tuple(said[int(i)] for i in np.unique(np.linspace(0, len(said) - 1, n)
                                                              .round().astype(int)))
                       for n in range(len(said), 0, -1)]
            lines.append(fit_text(choices, transcript_text, self.cfg.summary.speech_tokens,
                                  count)[0])
        return lines

    def _reduce(self, memory, chapters: list[dict]) -> tuple[str | None, list[dict], bool]:
        """The video's summary and the model's highlights from the chapters (stored, or one
        text request) -> (summary or None, highlights, whether it was stored)."""
        from vidsift.core.types import TokenSet, VLMRequest
        from vidsift.pipeline.flows.summary_replies import (read_reduce, reduce_question,
                                                            reduce_schema)
        from vidsift.pipeline.flows.summary_store import digest

        cfg, info = self.cfg, memory.info
        cap = self._cap(cfg.summary.reduce_tokens)
        schema = reduce_schema(cap, cfg.summary.highlights, info.start_time, info.end_time,
                               cfg.summary.json_tokens_per_char)
        inputs = [{k: c[k] for k in ("start", "end", "title", "summary")} for c in chapters]
        key = digest({**self._request_settings(), "chapters": inputs, "schema": schema,
                      "duration": info.duration,
                      "summary": cfg.summary.model_dump(include={
                          "reduce_tokens", "highlights", "max_highlight_s"})})
        value = self.store.get("reduce", memory.content_hash, key)
        reused = value is not None
        if value is None:
            question = reduce_question(info.duration, inputs, cfg.summary.highlights,
                                       cfg.summary.max_highlight_s)
            request = VLMRequest(TokenSet(info.path, [], budget=0), question, cap,
                                 request_id=f"{Path(info.path).name} summary", schema=schema)
            result, _ = self._generate(request)
            # the constrained JSON is read by the same rules (times clipped, overlaps dropped)
            summary, highlights, read = read_reduce(
                result.text, info.start_time, info.end_time, cfg.summary.highlights,
                cfg.summary.max_highlight_s)
            if result.answer_json is not None:
                read = "schema"
            value = {"summary": summary, "highlights": highlights, "read": read}
            self.store.put("reduce", memory.content_hash, key, value)
        return value["summary"] or None, value["highlights"], reused


def plan_chapter(memory, start: float, end: float, cfg: Config):
    """The token set planned for the chapter [start, end] seconds of a memory (core.types
    .VideoMemory): plan.evidence.plan_evidence over the chapter's coarse frames, no question,
    summary.chapter_selector within summary.chapter_tokens (the budget's other limits as
    configured), by the configured VLM's token arithmetic. Nothing is decoded."""
    from vidsift.core.errors import BudgetError
    from vidsift.pipeline.plan.evidence import plan_evidence

    frames, info = memory.frames, memory.info
    times = frames.times
    last = end >= info.end_time - 1e-3
    lo = int(np.searchsorted(times, start, side="left"))
    hi = int(np.searchsorted(times, end, side="right" if last else "left"))
    rows = slice(lo, hi)  # a chapter's frames are a run of the memory's: its vectors stay mapped
    try:
        return plan_evidence(
            times[rows], frames.embeddings.visual[rows], frames.embeddings.text[rows], None,
            start, end, cfg.selection.model_copy(update={"selector": cfg.summary.chapter_selector}),
            cfg.budget.model_copy(update={"tokens": cfg.summary.chapter_tokens}),
            (info.height, info.width), video=info.path, spec=cfg.vision_spec(),
        )
    except BudgetError as exc:
        raise BudgetError(f"summary.chapter_tokens={cfg.summary.chapter_tokens}: {exc} (raise "
                          "it, or lower budget.min_pixels)") from None


def _plan_dicts(plan) -> list[dict]:
    return [{"kind": s.kind.value, "start": s.start, "end": s.end, "frames": len(s.timestamps),
             "width": s.width, "height": s.height, "tokens": s.tokens} for s in plan.segments]


def extractive_highlights(chapters: list[dict], moments: list[float],
                          cfg: SummaryConfig) -> list[dict]:
    """Highlights without a model: the cfg.highlights longest chapters (the earlier first among
    equals), each's highlight the cfg.highlight_s seconds around moments[c] (the time of the
    frame most like chapter c as a whole, its thumbnail), kept inside the chapter; in time
    order, titled as the chapter."""
    order = sorted(range(len(chapters)),
                   key=lambda c: (-(chapters[c]["end"] - chapters[c]["start"]), c))
    highlights = []
    for c in sorted(order[:cfg.highlights]):
        lo, hi = chapters[c]["start"], chapters[c]["end"]
        start = min(max(moments[c] - cfg.highlight_s / 2, lo), max(lo, hi - cfg.highlight_s))
        end = min(hi, start + cfg.highlight_s)
        highlights.append({
            "start": round(start, 3), "end": round(end, 3), "title": chapters[c]["title"]
            or f"Chapter {c + 1}",
            "why": f"extractive: the {end - start:.0f} s around the frame most like chapter "
                   f"{c + 1} as a whole, one of the {min(cfg.highlights, len(chapters))} "
                   "longest chapters"})
    return highlights


def caption_rows(captions_dir: str | Path, video: str) -> list[tuple[float, float, str]]:
    """The clip captions a caption run committed for `video` (a resolved path) under its OUT
    folder, (start, end, caption) in time order; [] when it has none."""
    import json

    import pyarrow.parquet as pq

    from vidsift.core.media import resolve_path, video_key

    root = Path(captions_dir).expanduser()
    key = video_key(video)
    if not (root / "done" / f"{key}.json").is_file():
        # the run may have named the file by another path to it (a link, a relative path)
        key = next((marker.stem for marker in sorted((root / "done").glob("*.json"))
                    if str(resolve_path(json.loads(marker.read_text())["video"])) == video), None)
        if key is None:
            return []
    table = pq.read_table(root / "captions" / f"{key}.parquet",
                          columns=["start", "end", "caption"]).to_pylist()
    return sorted((float(r["start"]), float(r["end"]), str(r["caption"])) for r in table)


def _captions_covering(chapters: list[dict], cfg: SummaryConfig,
                       video: str) -> list[tuple[tuple[float, float, str], ...]]:
    """Per chapter the captions that stand in for its frames: those overlapping it, when
    together they cover at least cfg.caption_coverage of its length; () otherwise."""
    rows = caption_rows(cfg.captions_dir, video) if cfg.captions_dir else []
    covering = []
    for chapter in chapters:
        lo, hi = chapter["start"], chapter["end"]
        inside = [row for row in rows if row[0] < hi and row[1] > lo]
        covered, reach = 0.0, lo
        for start, end, _ in inside:  # the union of their spans inside the chapter
            start, end = max(start, reach), min(end, hi)
            if end > start:
                covered, reach = covered + end - start, end
        enough = inside and covered >= cfg.caption_coverage * (hi - lo)
        covering.append(tuple(inside) if enough else ())
    return covering


def chapters_of(memory, cfg: Config, speech=None) -> list[dict]:
    """The chapter dicts of a memory (core.types.VideoMemory) under cfg.summary, without their
    thumbnails: {start, end, title, summary: None, thumbnail: frame index (replaced by a path
    when written), evidence}. speech: its plan.chapters.SpeechLines, or None."""
    from vidsift.pipeline.plan.chapters import (chapter_titles, plan_chapters,
                                                representative_frame)
    from vidsift.pipeline.plan.clips import frames_in_clips, speech_in_clips

    info, frames = memory.info, memory.frames
    times, embeddings = frames.times, frames.embeddings
    start = min(info.start_time, float(times[0]))
    end = max(info.end_time, float(times[-1]) + 1e-3)
    spans = plan_chapters(
        times, embeddings.visual, embeddings.text, start, end, cfg.summary.min_chapter_s,
        cfg.summary.max_chapter_s, cfg.summary.count, speech=speech,
        keyframe_times=info.keyframe_times, cut_threshold=cfg.index.cut_threshold,
    )
    members = frames_in_clips(times, spans)
    said = (speech_in_clips(spans, memory.transcript.segments)
            if speech is not None else [""] * len(spans))
    titles = chapter_titles(embeddings.descriptions, members, said)
    chapters = []
    for (lo, hi), idx, title, words in zip(spans, members, titles, said):
        evidence = {"source": title.source, "text": list(title.text),
                    "keywords": list(title.keywords), "labels": list(title.labels),
                    "frames": len(idx)}
        if speech is not None:
            evidence["speech"] = words
        chapters.append({"start": round(float(lo), 3), "end": round(float(hi), 3),
                         "title": title.title, "summary": None,
                         "thumbnail": representative_frame(embeddings.visual, idx),
                         "evidence": evidence})
    return chapters


def _write_thumbnails(chapters: list[dict], memory, folder: Path, named_by_frame: bool) -> None:
    """Each chapter's thumbnail frame (an index) -> the stored JPEG written into folder, its
    path in the chapter. Named by the memory key and frame when the folder is the shared one
    (the same frame of the same memory is the same file), else by chapter number."""
    from vidsift.core.files import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    for number, chapter in enumerate(chapters):
        frame = int(chapter["thumbnail"])
        path = folder / (f"{memory.key}-{frame:06d}.jpg" if named_by_frame else f"{number:02d}.jpg")
        if not (named_by_frame and path.is_file()):
            write_atomic(path, bytes(memory.frames.thumbnails[frame]))
        chapter["thumbnail"] = str(path)


def summarize(cfg: Config, video: str, **options) -> SummaryResult:
    """One summary from the command line: start the pools, summarize, release them."""
    summarizer = Summarizer(cfg)
    try:
        return summarizer.summarize(video, **options)
    finally:
        summarizer.close()


def summarize_videos(cfg: Config, videos: list[str],
                     **options) -> list[tuple[str, SummaryResult | VidsiftError]]:
    """Several summaries from the command line, one pool for all (Summarizer.summarize_many):
    a video that cannot be summarized is its error in the list, the others go on."""
    summarizer = Summarizer(cfg)
    try:
        return list(summarizer.summarize_many(videos, **options))
    finally:
        summarizer.close()
