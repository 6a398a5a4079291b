"""The index flow: video files (folders, manifests) -> the shared ingest chain (memory reused,
else sharded decode + embed on the ingest pool) -> clips -> ClipIndex; and search_clips(), a text
query, a query image or both against that index.

Videos already in the index (by content hash) with the same speech settings are skipped; one
indexed with other speech settings (speech newly on, changed, or off) is re-done from its stored
memory, its old clips replaced by the new ones within one commit. The rest stream through the ingest
pool, every actor busy with shards of whichever videos are in flight, and the one writer (this
process) adds each video as its last shard lands, committing at least every COMMIT_EVERY_S
seconds and at the end: an interrupted run loses at most that much work, and its memories are
kept, so the re-run decodes nothing it already did. A video that fails (unreadable, corrupt, no
frames) is reported and skipped; the run goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vidsift.core.config import Config
from vidsift.core.media import find_videos

log = logging.getLogger(__name__)

COMMIT_EVERY_S = 30.0


@dataclass(frozen=True, slots=True)
class IndexEvent:
    """One step of an index run, for progress display.

    kind: "indexed", "skipped" (already indexed) or "failed".
    done: videos finished so far (indexed + skipped + failed), of total.
    reindexed: an "indexed" video whose clips made with other speech settings it replaced.
    """

    kind: str
    path: str
    done: int
    total: int
    clips: int = 0  # clips this video added
    frames: int = 0  # coarse frames this video decoded and embedded
    error: str = ""
    reindexed: bool = False


@dataclass(slots=True)
class IndexSummary:
    index_dir: str
    indexed: list[str] = field(default_factory=list)
    reindexed: list[str] = field(default_factory=list)  # of indexed: clips of other speech settings replaced
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, error)
    notes: list[str] = field(default_factory=list)  # what could not be read but did not fail a video
    clips: int = 0
    frames: int = 0
    video_seconds: float = 0.0  # duration of the videos indexed in this run
    wall_s: float = 0.0

    @property
    def every_video_failed(self) -> bool:
        """None indexed or found indexed, and at least one failed: the run failed (the CLI exits
        1, an HTTP index job is failed)."""
        return bool(self.failed) and not self.indexed and not self.skipped

    def to_dict(self) -> dict:
        return {
            "index_dir": self.index_dir, "indexed": list(self.indexed),
            "reindexed": list(self.reindexed), "skipped": list(self.skipped),
            "failed": [{"path": p, "error": e} for p, e in self.failed], "notes": list(self.notes),
            "clips": self.clips,
            "frames": self.frames, "video_seconds": round(self.video_seconds, 3),
            "wall_s": round(self.wall_s, 3),
        }


def clips_record(path: str, memory, cfg: Config, index, embed_text=None, notes: list[str] | None = None):
    """A video's memory -> VideoClips for index.add_video, thumbnails written from the memory's
    coarse-frame JPEGs (nothing is decoded). With the memory's transcript (ingest attaches it
    when speech.mode is set) and embed_text (the pool's), each clip's text and text vector
    include what is said in it (pipeline.flows.speech); the transcript's notes (no audio, ...) are
    appended to `notes`."""
    from vidsift.index.clip_index import VideoClips
    from vidsift.index.store import NewClip
    from vidsift.pipeline.flows.ingest import cut_clips

    clips = cut_clips(memory, cfg)
    transcript = memory.transcript
    if transcript is not None and embed_text is not None:
        from vidsift.pipeline.flows.speech import clips_with_speech

        clips = clips_with_speech(clips, transcript.segments, embed_text)
        if notes is not None:
            notes.extend(transcript.warnings)
    new_clips = []
    for number, (span, middle) in enumerate(zip(clips.spans, clips.middles)):
        absolute, relative = index.thumbnail_path(memory.content_hash, number)
        absolute.parent.mkdir(parents=True, exist_ok=True)
        absolute.write_bytes(memory.frames.thumbnails[middle])
        new_clips.append(NewClip(span[0], span[1], relative, clips.texts[number]))
    return VideoClips(
        path=path, content_hash=memory.content_hash, duration=memory.info.duration,
        clips=new_clips, visual=clips.visual, text=clips.text,
    )


def index_videos(
    paths: Sequence[str | os.PathLike],
    cfg: Config,
    progress: Callable[[IndexEvent], None] | None = None,
    pool=None,
    check: Callable[[str], object] | None = None,
) -> IndexSummary:
    """Index every video under paths (folders, manifests, files) into the clip index at
    cfg.index.dir (see module doc). Every video is checked first (core.probe.check_video: a
    missing or empty file, a symlink loop, a directory, a file that is no media container fails
    by name); the pool starts only when one passes. pool: an IngestPool to use, or a function
    giving one (a service's shared pool, started on first use: called only once a video has
    passed), else one is started and closed.
    check(video), when given, raises for a video this run may not read (the HTTP service's
    media roots: a folder's symlink or a manifest's entry can lead out of them); that video is
    failed before it is opened."""
    from vidsift.core.probe import check_video
    from vidsift.index.clip_index import ClipIndex
    from vidsift.index.memory import MemoryStore
    from vidsift.index.store import NO_SPEECH
    from vidsift.pipeline.flows.ingest import ingest_videos, known_digest

    started = time.perf_counter()
    videos = find_videos(paths)
    summary = IndexSummary(index_dir=str(Path(cfg.index.dir).expanduser()))
    notify = progress or (lambda event: None)
    total = len(videos)
    speech = cfg.speech.key() if cfg.speech.enabled else NO_SPEECH  # what clips_record makes
    with ClipIndex(cfg.index.dir, cfg.index, embedder=cfg.embed.space_id) as index:
        todo = []
        memories = MemoryStore(cfg.index.dir)
        for path in videos:
            try:
                if check is not None:
                    check(path)
                check_video(path)  # a file that is no video fails here, before the pool starts
                digest = known_digest(path, memories)  # None: a first ingest hashes it
                made_with = index.indexed_speech(digest) if digest else None
            except Exception as exc:  # noqa: BLE001 - reported below like any failed video
                summary.failed.append((path, str(exc)))
                notify(IndexEvent("failed", path, _done(summary), total, error=str(exc)))
                continue
            if made_with == speech:
                summary.skipped.append(path)
                notify(IndexEvent("skipped", path, _done(summary), total))
            else:
                todo.append(path)
        if todo:
            owned = pool is None
            if owned:
                pool = start_pool(cfg)
            elif callable(pool):
                pool = pool()
            try:
                last_commit = time.monotonic()
                for path, outcome in ingest_videos(todo, cfg, pool, MemoryStore(cfg.index.dir)):
                    try:
                        if isinstance(outcome, Exception):
                            raise outcome
                        record = clips_record(path, outcome, cfg, index, pool.embed_text, summary.notes)
                        record.speech = speech
                        # Checked now, not when listed: another path of the same content may
                        # have just been indexed with these settings.
                        replaces = index.indexed_speech(record.content_hash) not in (None, speech)
                        if replaces:  # old clips out, new in, before the next commit
                            index.replace_video(record)
                        else:
                            index.add_video(record)
                    except Exception as exc:  # noqa: BLE001 - one bad file must not stop an archive
                        error = str(exc) if str(path) in str(exc) else f"{path}: {type(exc).__name__}: {exc}"
                        log.info("failed: %s", error)  # the summary and the progress events report it
                        summary.failed.append((path, error))
                        notify(IndexEvent("failed", path, _done(summary), total, error=error))
                        continue
                    n_frames = len(outcome.frames)
                    summary.indexed.append(path)
                    if replaces:
                        summary.reindexed.append(path)
                    summary.clips += len(record.clips)
                    summary.frames += n_frames
                    summary.video_seconds += record.duration
                    notify(IndexEvent("indexed", path, _done(summary), total, len(record.clips), n_frames,
                                      reindexed=replaces))
                    if time.monotonic() - last_commit > COMMIT_EVERY_S:
                        index.commit()
                        last_commit = time.monotonic()
            finally:
                if owned:
                    pool.close()
        _record_failures(index.dir, summary)
    summary.wall_s = time.perf_counter() - started
    return summary


FAILURES = "failures.jsonl"


def _record_failures(index_dir: Path, summary: IndexSummary) -> None:
    """index_dir/failures.jsonl: one line per video whose last index run failed, with the
    error; a video indexed (or found indexed) later leaves it, so the file lists what is left."""
    import json

    from vidsift.core.files import write_atomic

    path = Path(index_dir) / FAILURES
    failures = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                failures[record["video"]] = record["error"]
    for video in summary.indexed + summary.skipped:
        failures.pop(video, None)
    failures.update(summary.failed)
    if failures or path.exists():
        write_atomic(path, "".join(json.dumps({"video": v, "error": e}) + "\n"
                                   for v, e in failures.items()))


def _done(summary: IndexSummary) -> int:
    return len(summary.indexed) + len(summary.skipped) + len(summary.failed)


def start_pool(cfg: Config):
    """Connect to Ray (cfg.ray) and start the ingest pool cfg.ingest describes."""
    from vidsift.workers.ingest import IngestPool
    from vidsift.workers.ray_runtime import ensure_ray

    ensure_ray(cfg.ray)
    return IngestPool(cfg)


_EMBEDDERS: dict[str, object] = {}


def shared_embedder(cfg: Config):
    """One embedder per embed config in this process, for embedding search queries: loading the
    models costs seconds, and a service answers many searches."""
    key = cfg.embed.model_dump_json()
    if key not in _EMBEDDERS:
        from vidsift.workers.embed import get_embedder

        _EMBEDDERS[key] = get_embedder(cfg.embed)
    return _EMBEDDERS[key]


# Texts whose vectors this process keeps for matching clips sentence against sentence
# (match_clips), per embedder space; past this many the oldest half is dropped.
SENTENCE_CACHE_TEXTS = 50_000
_SENTENCE_VECTORS: dict[str, dict[str, object]] = {}  # space -> text -> (D,) float32


def clip_sentences(text: str) -> list[str]:
    """A clip's own texts, from its stored text (plan.clips.clip_texts, fuse_text): each
    frame's on-screen text ("... | text: X; labels: ...") and what is said in it ("| speech:
    ..."), distinct, in order, on-screen words spaced as OCR did not (plan.words.readable_text);
    the ImageNet labels are left out (they are not sentences)."""
    from vidsift.pipeline.plan.words import readable_text

    found: dict[str, None] = {}
    for part in text.split(" | "):
        key, sep, value = part.partition(": ")
        if sep and key in ("text", "speech"):
            value = " ".join(value.split("; labels: ")[0].split())
            if key == "text":
                value = readable_text(value)
            if value:
                found.setdefault(value, None)
    return list(found)


def _sentence_vectors(texts: list[str], space: str, embed_text):
    """(len(texts), D) float32 unit vectors, embedding only the texts this process has not
    yet."""
    import numpy as np

    known = _SENTENCE_VECTORS.setdefault(space, {})
    new = [t for t in dict.fromkeys(texts) if t not in known]
    if new:
        if len(known) + len(new) > SENTENCE_CACHE_TEXTS:
            for old in list(known)[: len(known) // 2]:
                del known[old]
        known.update(zip(new, np.asarray(embed_text(new), dtype=np.float32)))
    return np.stack([known[t] for t in texts])


def _search_rows(index, rows, visual, k: int, videos):
    """index.search for each row of a (M, Dt) text query (a question and its rewrite's
    phrases: plan.rewrite), each clip keeping its best row's hit; ClipHits best first, k of
    them. One row is index.search as it is."""
    if rows is None or len(rows) == 1:
        return index.search(text=None if rows is None else rows[0], visual=visual, k=k,
                            videos=videos)
    best: dict[int, object] = {}
    for row in rows:
        for hit in index.search(text=row, visual=visual, k=k, videos=videos):
            if hit.clip_id not in best or hit.score > best[hit.clip_id].score:
                best[hit.clip_id] = hit
    return sorted(best.values(), key=lambda h: (-h.score, h.clip_id))[:k]


def match_clips(index, cfg: Config, k: int, text=None, visual=None, videos=None,
                embed_text=None):
    """The k clips of an open ClipIndex best matching a text-space query, a visual one, or
    both; ClipHits best first. text: (Dt,) the question's vector, or (M, Dt) rows (the question
    and its rewrite's phrases, flows.rewrite.rewritten_query): a clip scores its best row. With
    selection.sentence_match and embed_text (list[str] -> (n, D) unit rows, the embedder's), a
    clip's text score is the better of its fused text vector's and its best own text's
    (clip_sentences: a frame's on-screen text, its speech; a text with parts,
    plan.matching.text_parts, its best part's or its own) cosine to the query, that one put on
    the fused scores' scale (plan.matching.matched over the clips with texts: a text far above
    the other clips' counts as far above): every clip of the videos searched (default all) is
    scored so, since a question in other words can miss in the fused vectors, and the scores
    are fused as index.search fuses them (visual_weight). Else index.search alone. The texts'
    vectors are embedded once per process (SENTENCE_CACHE_TEXTS)."""
    import numpy as np

    rows = None
    if text is not None:
        rows = np.atleast_2d(np.asarray(text, dtype=np.float32))
        # new arrays: text may be read-only (Ray's object store)
        rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    if rows is None or embed_text is None or not cfg.selection.sentence_match:
        return _search_rows(index, rows, visual, k, videos)
    indexed = index.videos()
    if videos is None:
        videos = [v.content_hash for v in indexed]
    if not videos:
        return []
    hits = _search_rows(index, rows, visual, max(k, sum(v.clips for v in indexed)), videos)
    from vidsift.pipeline.plan.matching import matched, text_parts

    # each text, and each of its parts (a sign's name and value apart: plan.matching.text_parts)
    sentences = [[part for sentence in clip_sentences(hit.text)
                  for part in (sentence, *text_parts(sentence))] for hit in hits]
    flat = [s for group in sentences for s in group]
    if not flat:
        return hits[:k]
    similarity = iter((_sentence_vectors(flat, cfg.embed.space_id, embed_text) @ rows.T)
                      .max(axis=1))
    best = np.array([max((float(next(similarity)) for _ in group), default=-np.inf)
                     for group in sentences])
    own = np.isfinite(best)
    # each clip's best own text on the fused text scores' scale (plan.matching), over the clips
    # that have texts of their own: a clip whose text stands out counts as standing out
    best[own] = matched(best[own], np.array([hit.text_score for hit in hits]))
    text_weight = 1.0 - cfg.index.visual_weight if visual is not None else 1.0
    scored = []
    for hit, sentence_score in zip(hits, best):
        score = max(hit.text_score, float(sentence_score))
        scored.append(dataclasses.replace(
            hit, text_score=score, score=hit.score + text_weight * (score - hit.text_score)))
    return sorted(scored, key=lambda h: (-h.score, h.clip_id))[:k]


def search_clips(
    query: str | None,
    cfg: Config,
    k: int = 10,
    videos: Sequence[str] | None = None,
    embedder=None,
    image=None,
    vlm=None,
):
    """The k clips of the index at cfg.index.dir best matching a text query, a query image
    ((H, W, 3) uint8 RGB, searched in the index's visual space), or both (fused by
    index.visual_weight); ClipHit list, best first, a text query matched as match_clips does
    (the clips' own texts too). With selection.rewrite and a VLM configured, the query's
    literal words (flows.rewrite.rewritten_query, cached per query as ask caches them) score
    beside it. vlm: a zero-argument callable giving the VLM to ask on a cache miss (a
    service's); by default one is opened then and shut down after. videos: restrict to these
    video paths or content hashes."""
    from vidsift.core.errors import ClipIndexError
    from vidsift.index.clip_index import ClipIndex

    if not query and image is None:
        raise ClipIndexError("search needs a text query, an image, or both")
    with ClipIndex(cfg.index.dir, cfg.index, readonly=True, embedder=cfg.embed.space_id) as index:
        embedder = embedder or shared_embedder(cfg)
        text_vector = embedder.embed_text([query])[0] if query else None
        if text_vector is not None:
            text_vector = _rewritten_query(cfg, query, text_vector, embedder.embed_text, vlm)
        visual_vector = embedder.embed_images([image])[0] if image is not None else None
        resolved = [str(Path(v).expanduser().resolve()) if Path(v).expanduser().exists() else v
                    for v in videos] if videos else None
        return match_clips(index, cfg, k, text=text_vector, visual=visual_vector,
                           videos=resolved, embed_text=embedder.embed_text)


def _rewritten_query(cfg: Config, query: str, text_vector, embed_text, vlm):
    """rewritten_query's rows for a search, the VLM lent (vlm) or opened on a cache miss only
    and shut down after."""
    if not (cfg.selection.rewrite and cfg.vlm.enabled):
        return text_vector
    from vidsift.pipeline.flows.rewrite import rewritten_query

    opened = []

    def model():
        if vlm is not None:
            return vlm()
        from vidsift.workers.vlm import open_vlm

        opened.append(open_vlm(cfg.vlm, cfg.pool))
        return opened[-1]

    try:
        rows, said = rewritten_query(cfg, query, text_vector, embed_text, model)
    finally:
        for backend in opened:
            backend.shutdown()
    log.info("search %r: rewritten as %s%s", query, said["phrases"],
             " (cached)" if said["cached"] else "")
    return rows
