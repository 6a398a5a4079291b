"""ClipIndex: clips of many videos in two FAISS vector spaces (visual, text) plus SQLite metadata,
in one directory, committed atomically.

Directory layout:
    manifest.json            the commit point: generation G and, per space, its FAISS file,
                             factory choice and search parameters. Written last, atomically.
    visual.G.faiss, text.G.faiss
    meta.sqlite              videos and clips (with their vectors), rows tagged by generation
    thumbs/<hash>/G-NNNNN.jpg  thumbnails of the clips added in generation G (written by the
                             index flow; the generation keeps a re-done video's new thumbnails
                             apart from the old ones its commit, or a crash's recovery, deletes)
    .lock                    held by the one process allowed to write

A commit writes the SQLite rows (tagged G+1) as changes are made, then the FAISS files of G+1
(temp file, fsync, rename), then the manifest naming G+1. A crash at any point before the
manifest rename leaves generation G: its FAISS files are untouched and its rows are what readers
at G see; the next writer to open the directory drops the half-written G+1 rows and files.
replace_video() removes a video's clips and adds its new ones within one generation, so a crash
leaves the old clips, never none.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidsift.index import factory as fx
from vidsift.index.gpu import search_copy
from vidsift.index.store import NO_SPEECH, MetadataStore, NewClip
from vidsift.core.config import IndexConfig
from vidsift.core.errors import ClipIndexError
from vidsift.core.files import write_atomic

log = logging.getLogger(__name__)

SPACES = ("visual", "text")
MANIFEST = "manifest.json"
FORMAT = 1


@dataclass(slots=True)
class VideoClips:
    """One video's clips, ready to index: times in seconds, vectors unit float32.

    visual: (C, Dv) mean visual vector per clip; text: (C, Dt) per clip, in the space text
    queries are embedded in. thumbnails are paths relative to the index dir. speech: the speech
    settings (SpeechConfig.key()) the clips' text was made with, NO_SPEECH when none.
    """

    path: str
    content_hash: str
    duration: float
    clips: list[NewClip]
    visual: np.ndarray
    text: np.ndarray
    speech: str = NO_SPEECH


@dataclass(frozen=True, slots=True)
class ClipHit:
    clip_id: int
    video: str  # path of the video when it was indexed
    content_hash: str
    start: float  # seconds
    end: float
    score: float  # fused: visual_weight * visual_score + (1 - visual_weight) * text_score
    visual_score: float  # cosine of the clip's visual vector with the visual query (0 if none)
    text_score: float  # cosine of the clip's text vector with the text query (0 if none)
    thumbnail: str  # absolute path of the JPEG
    text: str

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in self.__slots__}


@dataclass(slots=True)
class _Space:
    dim: int
    index: object  # a CPU faiss.Index with int64 ids = clip ids
    choice: fx.IndexChoice
    params: dict[str, int] = field(default_factory=dict)
    search_index: object | None = None  # GPU copy or the CPU index; None after a change


def _unit(vector, dim: int, what: str) -> np.ndarray:
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    if q.shape[0] != dim:
        raise ClipIndexError(f"{what} query has dimension {q.shape[0]}, the index holds {dim}")
    return q / max(float(np.linalg.norm(q)), 1e-12)


class ClipIndex:
    """Open (or create) the clip index in dir.

    Writers (readonly=False) take an exclusive lock, undo any half-done commit, and must call
    commit() (or leave a `with` block without error) to make changes durable. Readers see the
    last committed generation. embedder names the model the vectors come from; vectors of another
    embedder are refused rather than mixed.
    """

    def __init__(
        self,
        dir: str | Path,
        cfg: IndexConfig | None = None,
        *,
        readonly: bool = False,
        embedder: str = "",
    ) -> None:
        self.dir = Path(dir).expanduser()
        self.cfg = cfg or IndexConfig()
        self.readonly = readonly
        self._lock_fd: int | None = None
        if readonly and not (self.dir / MANIFEST).is_file():
            raise ClipIndexError(f"{self.dir}: no clip index here (run `vidsift index` first)")
        self.dir.mkdir(parents=True, exist_ok=True)
        if not readonly:
            self._lock()
        manifest = self._read_manifest()
        self.generation: int = manifest["generation"]
        self.embedder: str = manifest.get("embedder", "")
        if embedder and self.embedder and embedder != self.embedder:
            self.close()
            raise ClipIndexError(
                f"{self.dir}: indexed with embedder {self.embedder!r}, not {embedder!r}; "
                "use another --index-dir"
            )
        self.embedder = self.embedder or embedder
        self.store = MetadataStore(self.dir / "meta.sqlite", readonly=readonly)
        if not readonly:
            dropped, thumbs = self.store.recover(self.generation)
            if dropped:
                log.warning("%s: dropped %d rows of an unfinished commit", self.dir, dropped)
            for thumb in thumbs:
                (self.dir / thumb).unlink(missing_ok=True)
            self._remove_stray_files(manifest)
        self._spaces: dict[str, _Space] = {
            name: self._load_space(name, info) for name, info in manifest.get("spaces", {}).items()
        }
        self._dirty = False

    # --- lifecycle ---------------------------------------------------------------------------
    def _lock(self) -> None:
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ClipIndexError(f"{self.dir}: another process is writing this index") from None
        self._lock_fd = fd

    def close(self) -> None:
        """Release the index without committing (uncommitted changes are dropped on next open)."""
        if getattr(self, "store", None) is not None:
            self.store.close()
            self.store = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> ClipIndex:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and not self.readonly:
                self.commit()
        finally:
            self.close()

    @property
    def _view(self) -> int:
        """Generation whose rows this process sees: its own pending changes for a writer."""
        return self.generation if self.readonly else self.generation + 1

    # --- manifest and files ------------------------------------------------------------------
    def _read_manifest(self) -> dict:
        path = self.dir / MANIFEST
        if not path.is_file():
            return {"format": FORMAT, "generation": 0, "spaces": {}}
        try:
            manifest = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ClipIndexError(f"{path}: unreadable manifest ({exc})") from exc
        if manifest.get("format") != FORMAT:
            raise ClipIndexError(f"{path}: unknown index format {manifest.get('format')!r}")
        return manifest

    def _write_manifest(self, manifest: dict) -> None:
        write_atomic(self.dir / MANIFEST, json.dumps(manifest, indent=1))

    def _write_faiss(self, name: str, space: _Space, generation: int) -> str:
        import faiss

        filename = f"{name}.{generation}.faiss"
        write_atomic(self.dir / filename, lambda tmp: faiss.write_index(space.index, str(tmp)))
        return filename

    def _remove_stray_files(self, manifest: dict) -> None:
        """Delete FAISS files and temp files no manifest names (left by a crash or a commit)."""
        keep = {info["file"] for info in manifest.get("spaces", {}).values()}
        for path in self.dir.iterdir():
            stray_faiss = path.suffix == ".faiss" and path.name not in keep
            if stray_faiss or ".tmp" in path.name:
                path.unlink(missing_ok=True)

    def _load_space(self, name: str, info: dict) -> _Space:
        import faiss

        choice = fx.IndexChoice(**info["choice"])
        params = {k: int(v) for k, v in info.get("params", {}).items()}
        path = self.dir / info["file"]
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:  # missing or damaged file: rebuild from the SQLite vectors
            log.warning("%s: %s; rebuilding the %s index from the metadata store", path, exc, name)
            space = _Space(int(info["dim"]), None, choice)
            self._rebuild(name, space, self.generation)
            return space
        fx.set_search_params(index, params)
        return _Space(int(info["dim"]), index, choice, params)

    # --- writes --------------------------------------------------------------------------------
    def _require_writer(self) -> None:
        if self.readonly or self.store is None:
            raise ClipIndexError(f"{self.dir}: index opened read-only or closed")

    def has_video(self, content_hash: str) -> bool:
        return bool(self.store.find_video(self._view, content_hash=content_hash))

    def indexed_speech(self, content_hash: str) -> str | None:
        """The speech key (SpeechConfig.key(), or NO_SPEECH) this content's clips were indexed
        with; None when it is not indexed."""
        found = self.store.find_video(self._view, content_hash=content_hash)
        return found[0].speech if found else None

    def add_video(self, record: VideoClips) -> bool:
        """Add one video's clips without rebuilding: the vectors are appended to both indexes.
        Returns False (and changes nothing) when this content hash is already indexed."""
        self._require_writer()
        if self.has_video(record.content_hash):
            return False
        self._check_record(record)
        ids = self.store.add_video(
            record.path, record.content_hash, record.duration, record.clips,
            np.asarray(record.visual, np.float32), np.asarray(record.text, np.float32), self._view,
            speech=record.speech,
        )
        id_array = np.asarray(ids, dtype=np.int64)
        for name, v in (("visual", record.visual), ("text", record.text)):
            v = np.ascontiguousarray(v, dtype=np.float32)
            space = self._spaces.get(name) or self._new_space(v.shape[1])
            self._spaces[name] = space
            space.index.add_with_ids(v, id_array)
            space.search_index = None
        self._dirty = True
        return True

    def replace_video(self, record: VideoClips) -> int:
        """Re-do one video: the clips indexed for its content hash (if any) are removed and the
        record's added, in the same uncommitted generation, so readers and a crash before the
        next commit see the old clips. A record that cannot be added changes nothing. Returns
        the number of clips removed."""
        self._require_writer()
        self._check_record(record)
        removed = self.remove_video(record.content_hash)
        self.add_video(record)
        return removed

    def _check_record(self, record: VideoClips) -> None:
        """Refuse a record with no clips, or vectors not one per clip of the index's dimensions."""
        if not record.clips:
            raise ClipIndexError(f"{record.path}: no clips to index")
        for name, v in (("visual", record.visual), ("text", record.text)):
            v = np.asarray(v)
            if v.ndim != 2 or len(v) != len(record.clips):
                raise ClipIndexError(f"{record.path}: {name} vectors {v.shape} for {len(record.clips)} clips")
            if name in self._spaces and v.shape[1] != self._spaces[name].dim:
                raise ClipIndexError(
                    f"{record.path}: {name} vectors have dimension {v.shape[1]}, the index holds "
                    f"{self._spaces[name].dim} (another embedder?)"
                )

    def _new_space(self, dim: int) -> _Space:
        choice = fx.choose_index(0, dim, self.cfg.flat_max_vectors, self._memory_per_space())
        index, params = fx.build_index(choice, np.zeros((0, dim), np.float32), np.zeros(0, np.int64))
        return _Space(dim, index, choice, params)

    def _memory_per_space(self) -> int:
        return self.cfg.memory_mb * 1024 * 1024 // len(SPACES)

    def remove_video(self, video: str) -> int:
        """Remove a video (by path or content hash): its vectors from both indexes and its rows.
        Returns the number of clips removed (0 when no such video is indexed)."""
        self._require_writer()
        removed = 0
        for record in self._find_videos(video):
            ids = np.asarray(self.store.mark_removed(record.id, self._view), dtype=np.int64)
            for space in self._spaces.values():
                space.index.remove_ids(ids)
                space.search_index = None
            removed += len(ids)
            self._dirty = True
        return removed

    def commit(self) -> None:
        """Make every change since the last commit durable, as generation G+1 (see module doc).
        Re-chooses an index's factory first when it has grown past what it was chosen for."""
        self._require_writer()
        if not self._dirty:
            return
        new_gen = self.generation + 1
        for name, space in self._spaces.items():
            if fx.needs_rechoice(space.choice, space.index.ntotal):
                self._rebuild(name, space, new_gen)
        spaces = {}
        for name, space in self._spaces.items():
            spaces[name] = {
                "file": self._write_faiss(name, space, new_gen),
                "dim": space.dim,
                "choice": {f: getattr(space.choice, f) for f in fx.IndexChoice.__slots__},
                "params": space.params,
                "ntotal": int(space.index.ntotal),
            }
        manifest = {"format": FORMAT, "generation": new_gen, "embedder": self.embedder, "spaces": spaces}
        self._write_manifest(manifest)
        self.generation = new_gen
        self._dirty = False
        self._remove_stray_files(manifest)
        for thumb in self.store.purge(new_gen):
            (self.dir / thumb).unlink(missing_ok=True)

    def _rebuild(self, name: str, space: _Space, generation: int) -> None:
        """Re-choose and rebuild one space's index from the vectors in the metadata store."""
        batches = list(self.store.iter_vectors(generation, name))
        ids = np.concatenate([b[0] for b in batches]) if batches else np.zeros(0, np.int64)
        vectors = np.concatenate([b[1] for b in batches]) if batches else np.zeros((0, space.dim), np.float32)
        space.choice = fx.choose_index(len(ids), space.dim, self.cfg.flat_max_vectors, self._memory_per_space())
        space.index, space.params = fx.build_index(space.choice, vectors, ids, self.cfg.target_recall)
        space.search_index = None
        log.info("%s: %s index rebuilt as %s for %d vectors", self.dir, name, space.choice.factory, len(ids))

    # --- reads ---------------------------------------------------------------------------------
    def search(
        self,
        *,
        text: np.ndarray | None = None,
        visual: np.ndarray | None = None,
        k: int = 10,
        videos: Sequence[str] | None = None,
    ) -> list[ClipHit]:
        """The k clips scoring highest for a text-space query vector, a visual-space query vector,
        or both (fused: visual_weight * visual + (1 - visual_weight) * text cosine).

        Each queried space proposes candidates through FAISS; every candidate is then scored
        exactly in both spaces from its stored vectors, so a clip strong in one space and fair in
        the other is ranked by its true fused score. videos (paths or content hashes) restricts
        the search to those videos' clips, scored exactly. Ties go to the lower clip id.
        """
        if text is None and visual is None:
            raise ClipIndexError("search needs a text or a visual query vector")
        if k < 1 or not self._spaces:
            return []
        queries = {}
        for name, vector in (("visual", visual), ("text", text)):
            if vector is not None:
                queries[name] = _unit(vector, self._spaces[name].dim, name)
        if len(queries) == 2:
            weights = {"visual": self.cfg.visual_weight, "text": 1.0 - self.cfg.visual_weight}
        else:
            weights = {name: 1.0 for name in queries}

        if videos is not None:
            video_ids = {r.id for v in videos for r in self._find_videos(v)}
            candidates = self.store.clip_ids(self._view, sorted(video_ids)) if video_ids else []
        else:
            pool = max(4 * k, 64)
            found: dict[int, None] = {}
            for name, q in queries.items():
                if weights[name] == 0:
                    continue
                _, ids = self._search_index(name).search(q[None, :], pool)
                found.update((int(i), None) for i in ids[0] if i >= 0)
            candidates = list(found)
        if not candidates:
            return []
        records, visual_vecs, text_vecs = self.store.clips(self._view, candidates)
        if not records:
            return []
        vis = visual_vecs @ queries["visual"] if "visual" in queries else np.zeros(len(records), np.float32)
        txt = text_vecs @ queries["text"] if "text" in queries else np.zeros(len(records), np.float32)
        fused = weights.get("visual", 0.0) * vis + weights.get("text", 0.0) * txt
        order = sorted(range(len(records)), key=lambda i: (-float(fused[i]), records[i].id))[:k]
        return [
            ClipHit(
                clip_id=records[i].id, video=records[i].video_path, content_hash=records[i].content_hash,
                start=records[i].start, end=records[i].end, score=float(fused[i]),
                visual_score=float(vis[i]), text_score=float(txt[i]),
                thumbnail=str(self.dir / records[i].thumbnail), text=records[i].text,
            )
            for i in order
        ]

    def _find_videos(self, video: str):
        """Visible videos matching a content hash, a path as stored, or that path resolved."""
        return self.store.find_video(self._view, content_hash=video) or self.store.find_video(
            self._view, path=video
        ) or self.store.find_video(self._view, path=str(Path(video).expanduser().resolve()))

    def _search_index(self, name: str):
        space = self._spaces[name]
        if space.search_index is None:
            space.search_index = search_copy(space.index, self.cfg.gpu, space.params)
        return space.search_index

    def videos(self):
        """Indexed videos (VideoRecord: path, content hash, duration, added, clip count, speech
        key)."""
        return self.store.videos(self._view)

    def stats(self) -> dict:
        return {
            "dir": str(self.dir),
            "generation": self.generation,
            "embedder": self.embedder,
            "videos": len(self.store.videos(self._view)),
            "clips": self.store.clip_count(self._view),
            "spaces": {
                name: {
                    "dim": s.dim,
                    "factory": s.choice.factory,
                    "vectors": int(s.index.ntotal),
                    "params": dict(s.params),
                    "on_gpu": s.search_index is not None and s.search_index is not s.index,
                }
                for name, s in self._spaces.items()
            },
        }

    def thumbnail_path(self, content_hash: str, clip_number: int) -> tuple[Path, str]:
        """Where a clip added now puts its thumbnail: (absolute path, path relative to the index
        dir), named by the generation being written (see module doc)."""
        relative = f"thumbs/{thumbs_folder(content_hash)}/{self._view}-{clip_number:05d}.jpg"
        return self.dir / relative, relative


def thumbs_folder(content_hash: str) -> str:
    """The folder under thumbs/ that holds a video's clip thumbnails."""
    return content_hash[:16]
