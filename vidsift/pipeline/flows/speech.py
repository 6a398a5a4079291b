"""A video's transcript for any job: read from the index dir's transcript store when this content
was transcribed with these speech settings before, else made (workers.speech.transcribe) and
stored, so index, ask and `vidsift transcribe` recognise a video's audio at most once."""

from __future__ import annotations

from vidsift.core.config import Config
from vidsift.core.media import content_hash
from vidsift.core.types import Transcript


def video_transcript(path: str, cfg: Config, progress=None, asr=None, digest: str | None = None) -> Transcript:
    """The transcript of `path` under cfg.speech (an empty one when speech.mode is none).
    progress(seconds done, seconds in all) while audio is recognised; digest: the file's
    content hash when the caller has it. A store that cannot be written adds a warning."""
    from vidsift.index.transcripts import TranscriptStore
    from vidsift.workers.speech import transcribe

    if not cfg.speech.enabled:
        return Transcript()
    digest = digest or content_hash(path)
    store, key = TranscriptStore(cfg.index.dir), cfg.speech.key()
    found = store.get(digest, key)
    if found is not None:
        return found
    transcript = transcribe(str(path), cfg.speech, progress, asr)
    store_transcript(transcript, digest, cfg, store)
    return transcript


def store_transcript(transcript: Transcript, digest: str, cfg: Config, store=None) -> None:
    """Keep a new transcript for later jobs in the index dir's transcript store (`store`, else
    opened here); a store that cannot be written is a note in the transcript."""
    from vidsift.index.transcripts import TranscriptStore

    store = store or TranscriptStore(cfg.index.dir)
    try:
        store.put(digest, cfg.speech.key(), transcript, cfg.speech.model_dump())
    except OSError as exc:
        transcript.warnings.append(f"transcript not stored under {cfg.index.dir} ({exc})")


def transcript_vectors(transcript: Transcript, digest: str, cfg: Config, embed_text):
    """(K, D) float32 unit vectors of the transcript's K segment texts in the embedder's text
    space (cfg.embed.space_id), read from the transcript store when this transcript was embedded
    in that space before, else embed_text(texts) (list[str] -> (K, D), called once) and stored.
    A store that cannot be written is logged; the vectors are still returned."""
    import logging

    import numpy as np

    from vidsift.index.transcripts import TranscriptStore

    rows = len(transcript.segments)
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    store, key, space = TranscriptStore(cfg.index.dir), cfg.speech.key(), cfg.embed.space_id
    found = store.get_vectors(digest, key, space, rows)
    if found is not None:
        return found
    vectors = np.asarray(embed_text([s.text for s in transcript.segments]), dtype=np.float32)
    try:
        store.put_vectors(digest, key, space, vectors)
    except OSError as exc:
        logging.getLogger(__name__).warning("transcript vectors not stored under %s (%s)",
                                            cfg.index.dir, exc)
    return vectors


def clips_with_speech(clips, segments, embed_text):
    """A pipeline.flows.ingest.Clips with each clip's overlapping transcript lines in its text and its
    text vector (clips.fuse_text). embed_text: list[str] -> (n, D) unit rows in the clip index's
    text space (the ingest pool's or an embedder's embed_text); called once, on the clips that
    have speech."""
    import dataclasses

    import numpy as np

    from vidsift.pipeline.plan.clips import fuse_text, speech_in_clips

    speech = speech_in_clips(clips.spans, segments)
    spoken = [i for i, s in enumerate(speech) if s]
    if not spoken:
        return clips
    speech_vectors = np.zeros_like(clips.text)
    speech_vectors[spoken] = embed_text([speech[i] for i in spoken])
    texts, text = fuse_text(clips.texts, clips.text, speech, speech_vectors)
    return dataclasses.replace(clips, texts=texts, text=text)
