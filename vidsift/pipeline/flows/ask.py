"""The ask flow: the video's memory (the shared ingest chain: stored once per content, else
sharded coarse decode + embed on the ingest pool) -> [clip index retrieval] -> plan_evidence
(select + budget) -> fine decode at the planned sizes -> VLM pool -> answer.

A second question about a video reads its memory: nothing is decoded but the planned frames.
Without a video the question goes across the clip index (Goldfish): its best clips, grouped by
video, each video's memory, one token set over those videos (evidence.plan_across_videos), each
segment decoded from its own video; with speech.mode set, the transcripts of those videos (only)
raise their spoken moments, their best lines join the clips' weights, and the lines said during
every video's segments go to the prompt, each naming its video. A video that cannot be read
(at ingest or at the fine decode) or that the budget holds no image of is left out of such an
answer and named in AskResult.notes; only when none is left does the question fail. A follow-up
in a conversation (pipeline.flows.conversation) carries the earlier turns as text within
budget.history_tokens.

With vlm.model None or "none" it stops before the VLM (evidence-only mode): the result is the
evidence the VLM would be shown (segments with start/end seconds, token counts, thumbnails).
An Asker keeps its pools alive, so the HTTP service pays the model loads once.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidsift.core.config import Config
from vidsift.core.errors import PathNotAllowedError, VideoError, VidsiftError
from vidsift.core.timeline import hms
from vidsift.core.types import HistoryTurn, VideoMemory

if TYPE_CHECKING:
    from vidsift.core.types import Transcript
    from vidsift.pipeline.plan.evidence import SpeechEvidence, TextEvidence

# Videos whose on-screen texts' vectors an Asker keeps (_on_screen_texts): a service asked
# about a few videos in turn embeds each one's texts once.
TEXT_CACHE_VIDEOS = 32

log = logging.getLogger(__name__)


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
    videos: list[str] = field(default_factory=list)  # the segments' videos, in segment order
    # the conversation's earlier turns the prompt holds: {turns, dropped, tokens, allowance,
    # counted_by: "tokenizer" | "approximate"}; {} for a question without history
    history: dict = field(default_factory=dict)
    conversation: dict | None = None  # {name, turn} when asked in a conversation
    # with speech.mode set: what is said during the chosen evidence, as the prompt holds it
    # ({start, end, text}, seconds, in time order; asked across the index, {video, start, end,
    # text} video by video as the segments are), and its accounting: {lines, dropped, tokens,
    # allowance, counted_by, sources, warnings}; [] and {} with speech off
    speech: list[dict] = field(default_factory=list)
    speech_info: dict = field(default_factory=dict)
    # asked across the index: each video the answer leaves out, named, and why (it could not
    # be read, or the budget holds no image of it beside the better matches); [] otherwise
    notes: list[str] = field(default_factory=list)
    # what the plan found: {peaks: [{start, end, time, score, covered[, video]}]}, the moments
    # the question's relevance peaks at (seconds, in time order) and whether the evidence
    # covers each (plan.selection.find_peaks); with selection.rewrite, rewrite: {phrases, cached},
    # the literal words the model gave for the question, scored beside it (flows.rewrite)
    plan: dict = field(default_factory=dict)
    # asked with a JSON Schema: the answer parsed, valid against it (None otherwise)
    answer_json: Any = None

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

    def conversation_line(self) -> str:
        """"talk turn 3; 2 earlier turns in the prompt (412 of 1024 text tokens, tokenizer;
        1 oldest dropped)"; "" outside a conversation."""
        if not self.conversation:
            return ""
        line = f"{self.conversation['name']} turn {self.conversation['turn']}"
        if self.history:
            history = self.history
            line += (f"; {history['turns']} earlier turns in the prompt ({history['tokens']} of "
                     f"{history['allowance']} text tokens, {history['counted_by']}"
                     + (f"; {history['dropped']} oldest dropped" if history["dropped"] else "")
                     + ")")
        return line

    def evidence_lines(self) -> list[str]:
        """One line per segment shown (time span, kind, frames, size, tokens, thumbnail), then
        the token total and the timings: what the CLI and the demo print."""
        lines = []
        several = len(self.videos) > 1
        for number, seg in enumerate(self.segments, start=1):
            span = hms(seg["start"]) if seg["kind"] == "image" else (
                f"{hms(seg['start'])}-{hms(seg['end'])}")
            if several:
                span = f"{Path(seg['video']).name} {span}"
            lines.append(f"[{number}] {span}  {seg['kind']:5s} {len(seg['timestamps'])} frame(s) "
                         f"{seg['width']}x{seg['height']}  {seg['tokens']} tokens  "
                         f"{seg.get('thumbnail', '')}".rstrip())
        for line in self.speech:
            span = f"{hms(line['start'])}-{hms(line['end'])}"
            if several and "video" in line:
                span = f"{Path(line['video']).name} {span}"
            lines.append(f"said {span}: {line['text']}")
        if self.speech_info:
            info = self.speech_info
            lines.append(f"{info['lines']} transcript lines, {info['tokens']} of "
                         f"{info['allowance']} text tokens ({info['counted_by']}"
                         + (f"; {info['dropped']} least relevant dropped" if info["dropped"]
                            else "") + ")"
                         + "".join(f"; {note}" for note in info["warnings"]))
        peaks = self.plan.get("peaks", [])
        if peaks:
            lines.append(f"{sum(p['covered'] for p in peaks)} of {len(peaks)} relevance peaks "
                         "covered: " + ", ".join(
                             (f"{Path(p['video']).name} " if several and "video" in p else "")
                             + (hms(p["start"]) if p["start"] == p["end"]
                                else f"{hms(p['start'])}-{hms(p['end'])}")
                             + ("" if p["covered"] else " (not covered)") for p in peaks))
        lines.extend(f"note: {note}" for note in self.notes)
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
            "reused_memory": self.reused, "citations": self.citations, "videos": self.videos,
            "history": self.history, "conversation": self.conversation,
            "speech": self.speech, "speech_info": self.speech_info, "notes": self.notes,
            "plan": self.plan, "answer_json": self.answer_json,
        }


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.plan: dict = {}  # what the planning stages add to AskResult.plan (the rewrite)

    @contextmanager
    def stage(self, name: str):
        """Time a stage; one entered again (speech, once per video asked across) adds up."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0)
                                       + time.perf_counter() - started, 4)


class Asker:
    """The ingest pool (decode + embed actors, on Ray), the memory store and, unless
    evidence-only, the VLM pool; reused across asks. The pools start on first use, so a
    question about a file that is no video fails in milliseconds, before Ray starts."""

    def __init__(self, cfg: Config, pool=None, vlm=None) -> None:
        from vidsift.index.memory import MemoryStore

        self.cfg = cfg
        self._owns_pool = pool is None
        self._pool = pool
        self.memory = MemoryStore(cfg.index.dir)
        self._owns_vlm = vlm is None  # a lent VLM (open_vlm's) is the lender's to shut down
        self._vlm = vlm
        self._text_counter = None
        self._texts: dict[tuple[str, str], TextEvidence | None] = {}  # see _on_screen_texts
        # The service's job workers and stream watchers reach for the pools from their own
        # threads: each pool is started once, by the first of them.
        self._start_lock = threading.Lock()

    @property
    def pool(self):
        """The ingest pool: the one lent, else one started on first use."""
        with self._start_lock:
            if self._pool is None:
                from vidsift.pipeline.flows.index import start_pool

                self._pool = start_pool(self.cfg)
            return self._pool

    @property
    def vlm(self):
        """The VLM pool's actors, or a remote backend called in-process (its own thread pool)."""
        with self._start_lock:
            if self._vlm is None:
                from vidsift.workers.vlm import open_vlm

                self._vlm = open_vlm(self.cfg.vlm, self.cfg.pool)
            return self._vlm

    def close(self) -> None:
        """Release the actors (the ingest pool and the VLM, each unless it was lent)."""
        if self._owns_vlm and self._vlm is not None:
            self._vlm.shutdown()
            self._vlm = None
        if self._owns_pool and self._pool is not None:
            self._pool.close()
            self._pool = None

    @property
    def text_counter(self):
        """(count, how) for the conversation's history text (conversation.text_token_counter)."""
        if self._text_counter is None:
            from vidsift.pipeline.flows.conversation import text_token_counter

            self._text_counter = text_token_counter(self.cfg.vlm)
        return self._text_counter

    def _retrieve(self, video: str, query_vector: np.ndarray, k: int) -> list[dict]:
        """Clips of this video from the clip index that match the question (Goldfish-style), or []
        when there is no index or the video is not in it."""
        from vidsift.index.clip_index import MANIFEST, ClipIndex

        index_dir = Path(self.cfg.index.dir).expanduser()
        if not (index_dir / MANIFEST).is_file():
            return []
        from vidsift.pipeline.flows.index import match_clips

        with ClipIndex(index_dir, self.cfg.index, readonly=True,
                       embedder=self.cfg.embed.space_id) as index:
            hits = match_clips(index, self.cfg, k, text=query_vector, videos=[video],
                               embed_text=self.pool.embed_text)
        return [{"start": h.start, "end": h.end, "score": h.score, "text": h.text} for h in hits]

    def _retrieve_across(self, query_vector: np.ndarray, allow_video=None) -> list:
        """The clip index's best clips for the question over every indexed video (only those
        allow_video(path) accepts, when given): ClipHits, best first. Raises when there is no
        index, or no clip to search."""
        from vidsift.core.errors import ClipIndexError
        from vidsift.index.clip_index import ClipIndex
        from vidsift.pipeline.flows.index import match_clips

        index_dir = Path(self.cfg.index.dir).expanduser()
        with ClipIndex(index_dir, self.cfg.index, readonly=True,
                       embedder=self.cfg.embed.space_id) as index:
            videos = None  # every indexed video: FAISS proposes the candidates
            if allow_video is not None:
                indexed = index.videos()
                allowed = [v.content_hash for v in indexed if allow_video(v.path)]
                if len(allowed) < len(indexed):  # some may not be read: search only the others
                    videos = allowed
            hits = match_clips(index, self.cfg, self.cfg.selection.max_anchors,
                               text=query_vector, videos=videos,
                               embed_text=self.pool.embed_text) if videos != [] else []
        if not hits:
            raise ClipIndexError(
                f"{index_dir}: the clip index holds no clips"
                + (" of videos this service may read" if allow_video is not None else "")
                + " (run `vidsift index VIDEOS` first)"
            )
        return hits

    def _plan_across_index(self, cfg: Config, question: str, query_vector, budget_cfg,
                           timer: _Timer, track, allow_video=None):
        """Retrieve across the index, read each hit video's memory (ingesting one that has none)
        and plan one token set over them, each video weighted by its clips' summed scores. With
        speech.mode set, each retrieved video's transcript scores its frames (_speech), and the
        best lines of those transcripts join the clips in the weights: a video the index found
        only weakly but whose speech answers gets its share. Only retrieved videos' transcripts
        are read. A video that cannot be ingested, or that the budget holds no image of, is
        left out with a note. -> (token_set, retrieved hits as dicts, {video: _Spoken}, in plan
        order, notes)."""
        from vidsift.pipeline.plan.evidence import VideoEvidence, plan_across_videos
        from vidsift.pipeline.flows.ingest import ingest_videos

        query_vector = self._rewritten(cfg, question, query_vector, timer)
        with timer.stage("retrieve"):
            hits = self._retrieve_across(query_vector, allow_video)
        by_video: dict[str, list] = {}
        for hit in hits:
            by_video.setdefault(hit.video, []).append(hit)
        sources, errors, memories, spoken, notes = [], [], {}, {}, []
        with timer.stage("ingest"):
            for path, outcome in ingest_videos(list(by_video), cfg, self.pool, self.memory,
                                               track):
                if isinstance(outcome, Exception):
                    notes.append(_left_out(path, outcome))
                    errors.append(outcome)
                    continue
                # The clips chose the video and its share; its moments are chosen from all its
                # coarse frames: a clip's mean vector dilutes a few seconds inside it
                # (bench/ask_many.py: recall 9/10 this way, 8/10 inside the retrieved clips).
                frames, info = outcome.frames, outcome.info
                memories[path] = outcome
                sources.append(VideoEvidence(
                    video=path, times=frames.times, visual=frames.embeddings.visual,
                    text_vectors=frames.embeddings.text, start=info.start_time,
                    end=info.end_time, frame_size=(info.height, info.width),
                    weight=sum(max(h.score, 0.0) for h in by_video[path]),
                    texts=self._on_screen_texts(cfg, outcome),
                ))
        if not sources:
            raise errors[0]
        for source in sources:  # outside the ingest stage: speech is timed on its own
            said = self._speech(cfg, source.video, memories[source.video], query_vector, timer)
            if said is not None:
                spoken[source.video], source.speech = said, said.evidence
        if spoken:
            # the transcripts retrieve too, as in one video: their best lines (over all the
            # retrieved videos, cosines in the clips' text space) join the clips' weights
            lines = [(float(score), video) for video, said in spoken.items()
                     for score in said.similarity]
            source_of = {source.video: source for source in sources}
            for score, video in heapq.nlargest(cfg.selection.max_anchors, lines):
                source_of[video].weight += max(score, 0.0)
        sources.sort(key=lambda source: list(by_video).index(source.video))  # best hit first
        with timer.stage("plan"):
            token_set = plan_across_videos(sources, query_vector, cfg.selection,
                                           budget_cfg, spec=cfg.vision_spec(),
                                           question=question)
        retrieved = [{"video": h.video, "start": h.start, "end": h.end, "score": h.score,
                      "text": h.text} for h in hits if h.video in {s.video for s in sources}]
        planned = dict.fromkeys(segment.video for segment in token_set.segments)
        notes += [_left_out(source.video, f"a budget of {budget_cfg.tokens} visual tokens holds "
                                          "no image of it beside the videos that match better")
                  for source in sources if source.video not in planned]
        return token_set, retrieved, {video: spoken[video] for video in planned
                                      if video in spoken}, notes

    def ask(
        self,
        video: str | None,
        question: str,
        budget: int | None = None,
        max_new_tokens: int | None = None,
        thumbnails_dir: str | Path | None = None,
        use_index: bool = True,
        progress=None,
        history: Sequence[HistoryTurn] = (),
        allow_video=None,
        speech: str | None = None,
        on_text: Callable[[str], None] | None = None,
        schema: dict | None = None,
        query: str | None = None,
    ) -> AskResult:
        """video None: across every video of the clip index. allow_video(path), when given,
        says which videos may be read (the service's media roots). progress: called with each
        pipeline.flows.ingest.IngestProgress while a video is ingested (shards done / total).
        history: the conversation's earlier turns, oldest first; the newest that fit
        budget.history_tokens go into the prompt. speech: this question's speech.mode (none |
        subtitles | asr | auto); None: the config's. on_text: handed the answer's text as it is
        generated, piece by piece where the VLM streams (vlm.backend=openai), else whole. schema: a
        JSON Schema (checked: core.schema.check_schema) the answer follows; AskResult.answer_json
        holds it parsed (core.schema.AnswerSchemaError, with the raw text, if it does not). query: the
        text the frames are scored against and the plan reads for several moments, when it is not
        the question itself (a benchmark's question and options, without its answer-format
        instructions); the VLM is asked `question`. A video that is no readable file (missing,
        empty, a directory, a symlink loop, not a media container) fails first, by name
        (core.probe.check_video), before any pool starts."""
        if video is not None:
            video = _checked_video(video, allow_video)
        from vidsift.core.types import VLMRequest
        from vidsift.workers.vlm.prompt import fit_history, parse_citations

        cfg = self.cfg if speech is None else self.cfg.with_speech_mode(speech)
        budget_cfg = cfg.budget.model_copy(update={"tokens": budget}) if budget else cfg.budget
        timer = _Timer()
        started = time.perf_counter()
        reused = []

        def track(event) -> None:
            reused.append(event.reused)
            if progress is not None:
                progress(event)

        if video is None:
            with timer.stage("embed_query"):
                query_vector = self.pool.embed_text([query or question])[0]
            token_set, retrieved, spoken, notes = self._plan_across_index(
                cfg, query or question, query_vector, budget_cfg, timer, track, allow_video)
        else:
            token_set, retrieved, one = self._plan_one_video(cfg, video, query or question,
                                                             budget_cfg, timer, track, use_index)
            spoken, notes = ({video: one} if one is not None else {}), []

        def decode(segment):
            try:
                return self.pool.frames_at(segment.video or token_set.video, segment.timestamps,
                                           size=(segment.height, segment.width))
            except VideoError as exc:
                if video is not None:  # the one video asked about: its error is the answer
                    raise
                return exc

        with timer.stage("fine"), ThreadPoolExecutor(self.pool.size) as threads:
            # One call per segment, spread over the pool's actors; each from its own video.
            decoded = list(threads.map(decode, token_set.segments))
        # Across the index, a video whose frames no longer decode is left out, the rest answer.
        unreadable = {s.video: f for s, f in zip(token_set.segments, decoded)
                      if isinstance(f, VideoError)}
        if unreadable and unreadable.keys() >= {s.video for s in token_set.segments}:
            raise next(iter(unreadable.values()))
        notes += [_left_out(path, error) for path, error in unreadable.items()]
        spoken = {path: said for path, said in spoken.items() if path not in unreadable}
        token_set.segments = [dataclasses.replace(s, frames=tuple(f))
                              for s, f in zip(token_set.segments, decoded)
                              if s.video not in unreadable]
        segments = [_segment_dict(s, video) for s in token_set.segments]
        if thumbnails_dir is not None:
            from vidsift.core.files import save_thumbnail

            with timer.stage("thumbnails"):
                for number, (seg, planned) in enumerate(zip(segments, token_set.segments)):
                    if planned.frames:
                        path = Path(thumbnails_dir) / f"{number}.jpg"
                        save_thumbnail(planned.frames[len(planned.frames) // 2].image, path)
                        seg["thumbnail"] = str(path)
        history_info, kept = {}, ()
        if history:
            count, counted_by = self.text_counter
            kept, history_tokens = fit_history(history, budget_cfg.history_tokens, count)
            history_info = {"turns": len(kept), "dropped": len(history) - len(kept),
                            "tokens": history_tokens, "allowance": budget_cfg.history_tokens,
                            "counted_by": counted_by}
        said, speech_lines, speech_info = (), [], {}
        if spoken:
            said, speech_lines, speech_info = self._fit_speech(spoken, token_set, budget_cfg,
                                                               name_videos=video is None)
        answer, model, vlm_info, citations, answer_json = None, "none", {}, [], None
        if cfg.vlm.enabled:
            with timer.stage("vlm"):
                request = VLMRequest(token_set, question, max_new_tokens, history=kept,
                                     transcript=said, schema=schema)
                if on_text is not None and cfg.vlm.remote:
                    result = self.vlm.stream(request, on_text)
                else:
                    result = self.vlm.generate([request])[0]
                    if on_text is not None and result.text.strip():
                        on_text(result.text.strip())
            answer, model = result.text.strip(), result.model or str(cfg.vlm.model)
            answer_json = result.answer_json
            citations = parse_citations(answer, token_set)
            vlm_info = {
                "visual_tokens": result.visual_tokens,
                "visual_tokens_kept": result.visual_tokens_kept,
                "prefill_s": round(result.prefill_s, 4), "decode_s": round(result.decode_s, 4),
                **({"usage": result.usage} if result.usage else {}),
            }
        timer.timings["total"] = round(time.perf_counter() - started, 4)
        return AskResult(
            video=video or "", question=question, answer=answer, model=model, segments=segments,
            tokens=token_set.total_tokens, budget=budget_cfg.tokens, timings=timer.timings,
            retrieved=retrieved, vlm=vlm_info, reused=all(reused), citations=citations,
            videos=list(dict.fromkeys(seg["video"] for seg in segments)), history=history_info,
            speech=speech_lines, speech_info=speech_info, notes=notes,
            plan={"peaks": [peak.to_dict() for peak in token_set.peaks], **timer.plan},
            answer_json=answer_json,
        )

    def _fit_speech(self, spoken: dict[str, _Spoken], token_set, budget_cfg,
                    name_videos: bool) -> tuple[tuple, list[dict], dict]:
        """The transcript lines said during each video's planned segments, fitted together to
        budget.speech_tokens (fit_transcript: the least similar to the question dropped first),
        video by video in the order of `spoken`, in time order within a video. When the segments
        come from several videos, each prompt line starts with its video's file name, as the
        segment labels do. name_videos: AskResult.speech dicts carry their "video" (asked
        across the index) -> (lines as the prompt holds them, AskResult.speech,
        AskResult.speech_info)."""
        from vidsift.pipeline.plan.evidence import lines_near_segments
        from vidsift.workers.vlm.prompt import fit_transcript, segment_videos

        planned = segment_videos(token_set)
        several = len(set(planned)) > 1
        lines, scores, said_in, near_count = [], [], {}, 0
        for video, heard in spoken.items():
            segments = heard.transcript.segments
            own = [seg for seg, source in zip(token_set.segments, planned) if source == video]
            near = lines_near_segments(heard.evidence.spans, own,
                                       heard.evidence.reach_s) if segments else []
            near_count += len(near)
            for i in near:
                line = segments[i]
                shown = (dataclasses.replace(line, text=f"{Path(video).name}: {line.text}")
                         if several else line)
                said_in[id(shown)] = (video, line)
                lines.append(shown)
                scores.append(float(heard.similarity[i]))
        count, counted_by = self.text_counter
        said, tokens = fit_transcript(lines, scores, budget_cfg.speech_tokens, count)
        entries = []
        for shown in said:
            video, line = said_in[id(shown)]
            entries.append({**({"video": video} if name_videos else {}), "start": line.start,
                            "end": line.end, "text": line.text})
        return said, entries, {
            "lines": len(said), "dropped": near_count - len(said), "tokens": tokens,
            "allowance": budget_cfg.speech_tokens, "counted_by": counted_by,
            "sources": list(dict.fromkeys(source for heard in spoken.values()
                                          for source in heard.transcript.sources)),
            "warnings": [note for heard in spoken.values()  # each names its file
                         for note in heard.transcript.warnings]}

    def _plan_one_video(self, cfg: Config, video: str, question: str, budget_cfg,
                        timer: _Timer, track, use_index: bool):
        """The video's memory (ingested when it has none), its clips retrieved from the index
        when indexed, with speech.mode set its transcript (stored, embedded once per embedder
        space), and the plan -> (token_set, retrieved clips as dicts, _Spoken or None)."""
        from vidsift.pipeline.plan.evidence import plan_evidence
        from vidsift.pipeline.plan.selection import several_moments
        from vidsift.pipeline.flows.ingest import ingest_one

        with timer.stage("ingest"):
            memory = ingest_one(video, cfg, self.pool, self.memory, track)
        info, frames = memory.info, memory.frames
        with timer.stage("embed_query"):
            query_vector = self.pool.embed_text([question])[0]
        query_vector = self._rewritten(cfg, question, query_vector, timer)
        retrieved: list[dict] = []
        keep = np.ones(len(frames), dtype=bool)
        if use_index:
            with timer.stage("retrieve"):
                # as many clips as the plan may anchor moments: a counting question's more
                retrieved = self._retrieve(video, query_vector, k=max(
                    cfg.selection.max_anchors, cfg.selection.counting_peaks
                    if several_moments(question) else cfg.selection.max_peaks))
            keep = _inside_clips(frames.times, [(h["start"], h["end"]) for h in retrieved])
        spoken = self._speech(cfg, video, memory, query_vector, timer)
        if spoken is not None and not keep.all():
            # the transcript retrieves too: its best lines' moments join the retrieved clips
            best = np.argsort(-spoken.similarity, kind="stable")[:cfg.selection.max_anchors]
            reach = spoken.evidence.reach_s
            for start, end in spoken.evidence.spans[best]:
                keep |= (frames.times >= start - reach) & (frames.times <= end + reach)
        if not keep.any():
            raise VidsiftError(f"{video}: the coarse pass decoded no frames")
        # The whole memory is passed as is, not copied: its vectors are memory-mapped, and a
        # plan reads only some rows of them.
        rows = slice(None) if keep.all() else keep
        with timer.stage("embed_query"):  # the question's and, once, the on-screen texts
            texts = self._on_screen_texts(cfg, memory)
        if texts is not None:
            texts = dataclasses.replace(texts, frame_text=texts.frame_text[rows],
                                        frame_read=texts.frame_read[rows])
        with timer.stage("plan"):
            token_set = plan_evidence(
                frames.times[rows], frames.embeddings.visual[rows], frames.embeddings.text[rows],
                query_vector, info.start_time, info.end_time, cfg.selection, budget_cfg,
                (info.height, info.width), video=video, spec=cfg.vision_spec(),
                speech=spoken.evidence if spoken is not None else None, texts=texts,
                question=question,
            )
        return token_set, retrieved, spoken

    def _rewritten(self, cfg: Config, question: str, query_vector: np.ndarray,
                   timer: _Timer) -> np.ndarray:
        """With selection.rewrite and a VLM configured: (1 + P, Dt) the question's vector and
        its P phrases' (flows.rewrite.rewritten_query: the literal words likely on screen or
        said, cached per question), each clip retrieved, frame, text and line then scoring its
        best match among them; the phrases go into AskResult.plan. Else (or when the model
        gives none) query_vector."""
        if not (cfg.selection.rewrite and cfg.vlm.enabled):
            return query_vector
        from vidsift.pipeline.flows.rewrite import rewritten_query

        with timer.stage("rewrite"):
            rows, timer.plan["rewrite"] = rewritten_query(
                cfg, question, query_vector, self.pool.embed_text, lambda: self.vlm)
        return rows

    def _on_screen_texts(self, cfg: Config, memory: VideoMemory) -> TextEvidence | None:
        """The memory's on-screen texts (the "text: ..." of its frames' descriptions), each
        distinct text embedded on its own by the pool's text embedder (respaced, and as OCR
        read it: plan.evidence.on_screen_texts), for the plan to score sentence against
        sentence and each picture apart from its text; None with selection.sentence_match off
        or no text shown.
        Embedded at question time, once per (content, embedder space): kept in this Asker and
        stored beside the memory (MemoryStore.put_text_vectors), so a later process, a CLI ask
        among them, embeds none of them again (bbb.mp4's credits: ~10 s on 2 cores)."""
        if not cfg.selection.sentence_match:
            return None
        from vidsift.pipeline.plan.evidence import on_screen_texts

        key = (memory.content_hash, cfg.embed.space_id)
        if key not in self._texts:
            self._texts[key] = on_screen_texts(
                memory.frames.embeddings.descriptions,
                _stored_embed_text(self.memory, *key, self.pool.embed_text))
            while len(self._texts) > TEXT_CACHE_VIDEOS:
                del self._texts[next(iter(self._texts))]
        return self._texts[key]

    def _speech(self, cfg: Config, video: str, memory: VideoMemory, query_vector: np.ndarray,
                timer: _Timer):
        """The video's transcript (ingest attached it to the memory) for scoring, or None
        with speech.mode none. Its segments are embedded by the pool's text embedder once per
        (content, speech settings, embedder space): the vectors are stored beside the
        transcript (pipeline.flows.speech)."""
        from vidsift.pipeline.plan.evidence import SpeechEvidence, frame_relevance
        from vidsift.pipeline.flows.speech import transcript_vectors

        transcript = memory.transcript
        if transcript is None:
            return None
        with timer.stage("speech"):
            vectors = transcript_vectors(transcript, memory.content_hash, cfg, self.pool.embed_text)
        for note in transcript.warnings:
            log.warning("%s: %s", video, note)
        spans = np.array([(s.start, s.end) for s in transcript.segments],
                         dtype=np.float64).reshape(-1, 2)
        similarity = (frame_relevance(vectors, query_vector) if len(spans)
                      else np.zeros(0))
        # a coarse frame stands for the moment around it up to half the widest coarse gap
        evidence = SpeechEvidence(spans, vectors, reach_s=cfg.selection.max_coarse_gap_s / 2)
        return _Spoken(transcript, evidence, similarity)


def _stored_embed_text(store, content_hash: str, space: str, embed_text):
    """embed_text (list[str] -> (n, D) unit rows) through the vectors `store` (a
    MemoryStore) keeps for this content in embedder space `space`: only the texts it lacks are
    embedded, then stored with the rest. A store that cannot be written is logged; the
    vectors are still returned."""
    known = store.get_text_vectors(content_hash, space)

    def embed(texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            known.update(zip(missing, np.asarray(embed_text(missing), dtype=np.float32)))
            try:
                store.put_text_vectors(content_hash, space, known)
            except OSError as exc:
                log.warning("on-screen text vectors not stored under %s (%s)", store.root, exc)
        return np.stack([known[t] for t in texts])
    return embed


@dataclass(slots=True)
class _Spoken:
    """A video's transcript as one ask uses it: the Transcript, its SpeechEvidence for the plan
    and each segment's (K,) cosine similarity to the question."""

    transcript: Transcript
    evidence: SpeechEvidence
    similarity: np.ndarray


def _checked_video(video: str, allow_video=None) -> str:
    """The video's resolved path, once allow_video(path) (when given) accepts it (else
    PathNotAllowedError) and the file passes core.probe.check_video (else its VideoError,
    naming the path as given)."""
    from vidsift.core.media import resolve_path
    from vidsift.core.probe import check_video

    resolved = str(resolve_path(video))
    if allow_video is not None and not allow_video(resolved):
        raise PathNotAllowedError(resolved)
    check_video(video)
    return resolved


def _left_out(path: str, why) -> str:
    """The note for a video the answer leaves out: its path, then why (an error's text, which
    names the file first when it is a VideoError), logged as a warning too."""
    reason = str(why).removeprefix(f"{path}: ")
    log.warning("%s: left out of the answer: %s", path, reason)
    return f"{path}: left out of the answer: {reason}"


def _inside_clips(times: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    """(N,) bool: the coarse frames at `times` (seconds) inside any retrieved clip span; all
    True when there are no spans or no frame falls inside one (the whole video is then read)."""
    inside = np.zeros(len(times), dtype=bool)
    for start, end in spans:
        inside |= (times >= start) & (times <= end)
    return inside if inside.any() else np.ones(len(times), dtype=bool)


def _segment_dict(segment, video: str | None) -> dict:
    return {
        "video": segment.video or video, "kind": segment.kind.value,
        "start": segment.start, "end": segment.end,
        "start_hms": hms(segment.start), "end_hms": hms(segment.end),
        "timestamps": list(segment.timestamps), "height": segment.height,
        "width": segment.width, "tokens": segment.tokens, "score": segment.score,
        "source": segment.source,
    }


def ask(cfg: Config, video: str | None, question: str, conversation: str | None = None,
        **options) -> AskResult:
    """One question from the command line: build the pools, ask, release them. video None:
    across the clip index. conversation: ask as its next turn, kept under serve.data_dir
    (shared with the HTTP service)."""
    asker = Asker(cfg)
    try:
        if conversation is None:
            return asker.ask(video, question, **options)
        from vidsift.pipeline.flows.conversation import ConversationStore, ask_in_conversation

        return ask_in_conversation(asker, ConversationStore(cfg.serve.data_dir), conversation,
                                   video, question, **options)
    finally:
        asker.close()
