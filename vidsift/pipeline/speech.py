"""A video's transcript for any job: read from the index dir's transcript store when this content
was transcribed with these speech settings before, else made (workers.speech.transcribe) and
stored, so index, ask and `vidsift transcribe` recognise a video's audio at most once."""

from __future__ import annotations

from vidsift.core.config import Config
from vidsift.core.media import content_hash
from vidsift.core.transcript import Transcript


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
    try:
        store.put(digest, key, transcript, cfg.speech.model_dump())
    except OSError as exc:
        transcript.warnings.append(f"transcript not stored under {cfg.index.dir} ({exc})")
    return transcript
