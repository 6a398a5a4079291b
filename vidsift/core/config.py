"""Typed configuration: pydantic models, loaded from a YAML preset or file, every field
overridable from the CLI as `--set section.field=value` (the value is parsed as YAML).

Presets live in configs/ (default, gpu, cluster). Unknown keys are errors, so a typo in a YAML
file or an override fails loudly instead of being ignored.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vidsift.core.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DecodeConfig(_Section):
    backend: Literal["pyav", "decord", "ffmpeg"] = "pyav"
    coarse_max_side: int = Field(448, ge=16, le=4096)  # longest side of coarse-pass frames
    # decoder threads per call; 0 lets the backend choose. 1: decode actors hold a fraction of a
    # core each, and frame threads only added memory there (~80 MB an actor), no speed
    threads: int = Field(1, ge=0)
    timeout_s: float = Field(120.0, gt=0)  # per fine-decode or probe call, enforced by the pool
    max_pixels: int = Field(8192 * 8192, gt=0)  # larger videos are rejected as absurd
    # Videos behind URLs (core.sources) are read in place by byte ranges of this size, the last
    # source_cache_blocks of them kept in each process: what a decoder holds between seeks
    source_block_kib: int = Field(1024, ge=4)
    source_cache_blocks: int = Field(16, ge=1)


class EmbedConfig(_Section):
    backend: Literal["offline", "siglip", "clip"] = "offline"
    model: str | None = None  # local path or hub id for siglip/clip
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = Field(32, ge=1)
    ocr: bool = True  # offline bridge: read on-screen text with rapidocr
    top_labels: int = Field(5, ge=1, le=50)  # offline bridge: ImageNet labels per frame
    image_size: int = Field(224, ge=32, le=1024)  # offline: EfficientNet input side, pixels
    # offline: where EfficientNet runs; auto = ONNX Runtime on CPU (about 2x torch), torch on GPU
    offline_runtime: Literal["auto", "torch", "onnxruntime"] = "auto"
    # offline, onnxruntime: where each node keeps its ONNX export of the packaged models (made
    # once per package version, in a subprocess, so the embedding processes never load torch)
    onnx_cache_dir: str = "~/.cache/vidsift/onnx"
    # offline: frames whose text-likelihood (dense high-contrast strokes in a row band, 0..1) is
    # below this skip OCR; 0 runs OCR on every frame. 0.2 keeps 0.986 of the text that OCR reads
    # on every frame, OCRing 11% of film frames (bench/ocr_gate.py)
    ocr_gate: float = Field(0.2, ge=0, le=1)
    ocr_det_side: int = Field(320, ge=32, le=2048)  # offline: OCR detection input, shorter side
    # offline: a frame whose text strokes overlap the last OCR'd frame's (same rows) by this
    # intersection-over-union reuses its text
    ocr_reuse_iou: float = Field(0.8, gt=0, le=1)
    # siglip/clip weights; auto: float16 on GPU, float32 on CPU
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"

    @property
    def space_id(self) -> str:
        """Names the vector spaces this embedder writes: vectors of another are not comparable."""
        return self.backend + (f":{self.model}" if self.model else "")

    def output_key(self) -> dict:
        """The settings that change what this embedder outputs (not where or how fast it runs)."""
        return self.model_dump(exclude={"device", "batch_size", "offline_runtime", "onnx_cache_dir"})


class IngestConfig(_Section):
    """The ingest pool (workers/ingest.py): decode actors cut a video's time shards into
    pieces, decode them coarsely and stream them to embed actors; the decode actors also serve
    probes and fine decodes, the embed actors query embeddings."""

    shard_minutes: float = Field(5.0, gt=0)  # shard length; cut at the next keyframe
    num_actors: int = Field(2, ge=1)  # decode actors: light (a decoder and one piece of frames)
    num_cpus_per_actor: float = Field(0.5, gt=0)  # fractional: Ray on small machines
    embed_actors: int = Field(1, ge=1)  # each holds the embedder's models: one per GPU or node
    embed_cpus_per_actor: float = Field(0.5, gt=0)
    # pieces each embed actor encodes at once, in threads over the same models (ONNX Runtime
    # and torch run sessions concurrently, no second copy of the weights). One thread a piece:
    # two intra-op threads on one piece spent twice the CPU for the same frames here.
    embed_concurrency: int = Field(2, ge=1)
    embed_gpus_per_actor: float = Field(0.0, ge=0)  # siglip/clip on GPUs
    shard_timeout_s: float = Field(600.0, gt=0)  # per shard; the actor is replaced past it
    max_retries: int = Field(2, ge=0)  # a shard whose actor died or timed out is run again


class SelectionConfig(_Section):
    selector: Literal["uniform", "query", "keyclips", "coverage", "balanced",
                      "uniform_video"] = "balanced"
    coarse_fps: float = Field(1.0, gt=0)  # coarse pass: the rate that fills keyframe gaps
    max_coarse_gap_s: float = Field(2.0, gt=0)  # add fps samples where keyframes are sparser
    weighting: Literal["quota", "softmax"] = "quota"
    temperature: float = Field(0.05, gt=0)  # softmax weighting temperature
    clip_seconds: float = Field(4.0, gt=0)  # length of a key clip around an anchor
    clip_fps: float = Field(2.0, gt=0)  # frames per second decoded inside a key clip
    max_anchors: int = Field(8, ge=1)
    min_anchor_gap_s: float = Field(6.0, ge=0)  # peak suppression radius in time
    coverage_share: float = Field(0.3, ge=0, le=1)  # share of the budget for coverage picks
    merge_threshold: float = Field(0.95, gt=0, le=1)  # cosine above which neighbours merge
    # several moments (plan.selection.find_peaks): the stretches whose relevance rises within
    # peak_ratio of the best one's height above the lower quartile, min_anchor_gap_s apart,
    # each get an anchor before any gets a second; up to max_peaks of them, counting_peaks for
    # a counting or ordering question ("how many times", "first", "before", ...); both 0:
    # anchors by relevance alone, as before
    max_peaks: int = Field(4, ge=0)
    counting_peaks: int = Field(16, ge=0)
    peak_ratio: float = Field(0.6, gt=0, le=1)
    # score the question against each frame's on-screen text and each clip's texts on their
    # own (sentence against sentence) as well as the fused vector, keeping the better match;
    # False: the fused vectors only
    sentence_match: bool = True
    # with a VLM configured (vlm.model: in-process, or an OpenAI-compatible server), ask it once
    # per question for the literal words likely on screen or said, and score those too (the
    # phrasings cached under index.dir/rewrites); off by default: on CPU a model call per new
    # question costs more than the plan
    rewrite: bool = False


class BudgetConfig(_Section):
    model: Literal["qwen2_5_vl", "qwen3_vl"] = "qwen2_5_vl"  # whose token arithmetic (core.vision)
    tokens: int = Field(4096, ge=1)  # total visual tokens for one question
    min_pixels: int = Field(128 * 28 * 28, ge=28 * 28)  # per frame floor
    max_pixels: int = Field(768 * 28 * 28, ge=28 * 28)  # per frame cap
    # the selector plans one segment per this many tokens (fewer, larger frames when raised)
    tokens_per_slot: int = Field(256, ge=1)
    # text tokens a follow-up question may spend on the conversation's earlier turns (oldest
    # dropped first); counted by the VLM's tokenizer, or estimated without one. Visual tokens
    # are budgeted by `tokens` alone.
    history_tokens: int = Field(1024, ge=0)
    # text tokens the transcript lines said during the chosen evidence may spend (with
    # speech.mode set), counted like history_tokens; the lines furthest from the question go
    # first
    speech_tokens: int = Field(512, ge=0)
    # how the tokens are spent (plan.budget.BUDGET_POLICIES): quota (weights, F2C clips),
    # slow_fast (each clip: slow_steps steps at high resolution, the rest at a quarter of the
    # cost), adaptive (quota over fewer segments when the relevance is peaked)
    policy: Literal["quota", "slow_fast", "adaptive"] = "quota"
    slow_steps: int = Field(1, ge=1)  # slow_fast: high-resolution temporal steps per clip


class VLMConfig(_Section):
    # qwen2_5_vl, qwen3_vl: in-process (transformers) on the VLM pool's actors; openai: a remote
    # OpenAI-compatible server (vLLM, SGLang) called from the asking process, no pool
    backend: Literal["qwen2_5_vl", "qwen3_vl", "openai"] = "qwen2_5_vl"
    # local path or hub id (openai: the served model's name); None or "none" = evidence-only mode
    model: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    attn_implementation: str | None = None  # e.g. "sdpa", "flash_attention_2"
    max_new_tokens: int = Field(256, ge=1, le=8192)  # hard cap; requests cannot exceed it
    # Structured answers (a request's JSON Schema, core.schema.bounded_schema): the most
    # characters of a string and items of an array (or extra properties of an object) the schema
    # leaves unbounded, so constrained decoding always closes its JSON within max_new_tokens
    json_max_string: int = Field(512, ge=1)
    json_max_items: int = Field(64, ge=1)

    @property
    def enabled(self) -> bool:
        """False in evidence-only mode: no model configured, or the model is the word "none"."""
        return bool(self.model) and self.model.strip().lower() != "none"

    pruner: Literal["none", "divprune", "kcenter", "coverage", "temporal", "evs",
                    "vidcom2", "hiprune", "fastervlm"] = "none"
    prune_ratio: float = Field(0.5, gt=0, le=1)  # share of visual tokens kept when pruning
    # token merging instead of pruning (workers.vlm.pruning.MERGERS): tome (ToMe with sizes),
    # temporal (HoliTom-style into the first occurrence); keeps prune_ratio of the tokens
    merger: Literal["none", "tome", "temporal"] = "none"

    # ---- openai (remote server) ----
    base_url: str | None = None  # e.g. http://gpu-node:8000 (requests go to {base_url}/v1/...)
    api_key_env: str | None = None  # NAME of the environment variable holding the API key
    concurrency: int = Field(4, ge=1)  # requests in flight to the server at once
    timeout_s: float = Field(120.0, gt=0)  # per HTTP attempt
    retries: int = Field(3, ge=0)  # more attempts after a 429, 5xx, timeout or dropped connection
    backoff_s: float = Field(1.0, ge=0)  # first retry's wait, doubling (a Retry-After overrides)
    image_format: Literal["jpeg", "png"] = "jpeg"  # frames' encoding; png is lossless, larger
    jpeg_quality: int = Field(90, ge=1, le=100)
    # a clip as a run of image parts (each frame costs a full image, and the budget plans so),
    # or as one video part of JPEG frames (vLLM's data:video/jpeg; the temporal merge applies)
    clips: Literal["images", "video"] = "images"
    # the served model's tokenizer (dir or hub id): lets the server's usage.prompt_tokens be
    # checked exactly against the plan; None reports the server's count beside the plan's
    tokenizer: str | None = None
    extra_body: dict[str, Any] = Field(default_factory=dict)  # merged into every request body
    # the --video-pruning-rate the vLLM server was started with (0: none): video parts are
    # then expected to keep vLLM's retained count (remote.server_visual_tokens)
    server_pruning_rate: float = Field(0.0, ge=0, lt=1)
    # that server's --video-pruning-method (vLLM's default evs, or vidcom2): which count applies
    server_pruning_method: Literal["evs", "vidcom2"] = "evs"

    @property
    def remote(self) -> bool:
        """Served over HTTP: called in-process with a thread pool, no VLM actor pool."""
        return self.backend == "openai"

    @property
    def clips_as_images(self) -> bool:
        """A clip reaches the model as separate still images (no temporal merging)."""
        return self.remote and self.clips == "images"


class PoolConfig(_Section):
    num_actors: int = Field(1, ge=1)
    num_gpus_per_actor: float = Field(0.0, ge=0)
    num_cpus_per_actor: float = Field(0.5, gt=0)
    max_batch_size: int = Field(4, ge=1)
    batch_wait_ms: float = Field(20.0, ge=0)
    max_restarts: int = Field(3, ge=0)
    request_timeout_s: float = Field(600.0, gt=0)


class IndexConfig(_Section):
    dir: str = "~/.vidsift/index"
    min_clip_s: float = Field(2.0, gt=0)
    max_clip_s: float = Field(30.0, gt=0)
    flat_max_vectors: int = Field(50_000, ge=1)  # exact search up to this many vectors
    visual_weight: float = Field(0.5, ge=0, le=1)  # fusion of visual and text scores
    gpu: Literal["auto", "never"] = "auto"
    memory_mb: int = Field(4096, ge=1)  # RAM for the vector codes of both spaces together
    target_recall: float = Field(0.95, gt=0, le=1)  # recall@10 an approximate index is tuned to
    cut_threshold: float = Field(0.2, gt=0, le=2)  # cosine distance between coarse frames = cut


class CaptionConfig(_Section):
    prompt: str = "Describe what happens in this clip in one or two sentences."
    max_new_tokens: int = Field(96, ge=1)
    tokens_per_clip: int = Field(1024, ge=1)
    frames_per_clip: int = Field(4, ge=1, le=64)  # frames decoded and shown per clip
    clips: Literal["scenes", "fixed"] = "scenes"  # scene cuts on the coarse pass, or fixed length
    clip_s: float = Field(8.0, gt=0)  # clip length when clips == fixed
    # with speech.mode set, up to this many characters of what is said in a clip go into its
    # caption request after the prompt (0: captions ignore speech)
    speech_chars: int = Field(600, ge=0)


class SummaryConfig(_Section):
    """Chapters of `vidsift summarize` (pipeline.plan.chapters): cut where what is seen, read or
    said changes, within these lengths."""

    min_chapter_s: float = Field(20.0, gt=0)  # shortest chapter, seconds
    max_chapter_s: float = Field(600.0, gt=0)  # longest chapter, seconds
    # how many chapters; auto: as many as the changes in the video bear out
    chapters: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"
    # the map step (flows.summarize): each chapter's own token set, planned by this selector
    # (coverage: the chapter's most varied frames; there is no question to score) within
    # chapter_tokens visual tokens, with what is said in it within speech_tokens text tokens;
    # the VLM writes its title and summary in at most map_tokens new tokens
    chapter_tokens: int = Field(1024, ge=1)
    chapter_selector: Literal["uniform", "coverage", "balanced"] = "coverage"
    speech_tokens: int = Field(512, ge=0)
    map_tokens: int = Field(160, ge=1)
    # the reduce step: the video's summary and up to `highlights` highlights from the chapter
    # summaries, in at most reduce_tokens new tokens; a highlight lasts at most max_highlight_s
    reduce_tokens: int = Field(512, ge=1)
    highlights: int = Field(3, ge=0)
    max_highlight_s: float = Field(60.0, gt=0)
    # without a VLM (or when the model names none that fits), highlights are picked from the
    # memory: highlight_s seconds around the frame most like each of the longest chapters
    highlight_s: float = Field(8.0, gt=0)
    # the map and reduce replies are JSON constrained to schemas whose strings are bounded so
    # the JSON closes within the request's token cap when a character costs at most this many
    # tokens (1: whole-word tokenizers on most text; a byte-level one needs up to 6, escapes
    # included); a reply the cap still cuts is asked again as free text
    json_tokens_per_char: float = Field(1.0, ge=0.1)
    # a caption run's OUT folder (vidsift caption --out): a chapter whose clip captions cover
    # at least caption_coverage of its length is summarized from them (text, no frame decoded)
    captions_dir: str | None = None
    caption_coverage: float = Field(0.8, gt=0, le=1)

    @model_validator(mode="after")
    def _lengths_fit(self) -> SummaryConfig:
        if self.max_chapter_s < 2 * self.min_chapter_s:
            raise ValueError(f"max_chapter_s={self.max_chapter_s} must be at least twice "
                             f"min_chapter_s={self.min_chapter_s}, or some videos cannot be cut")
        return self

    @property
    def count(self) -> int | None:
        """The chapter count asked for; None for auto."""
        return None if self.chapters == "auto" else int(self.chapters)


class ExportConfig(_Section):
    """Clips written by `vidsift export` and GET /v1/clip (pipeline.flows.export)."""

    max_s: float = Field(600.0, gt=0)  # longest clip, seconds: a longer span is refused
    crf: int = Field(18, ge=0, le=51)  # x264 quality of re-encoded clips (lower: better, bigger)
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                    "slower", "veryslow"] = "veryfast"  # x264 speed against size


SpeechMode = Literal["none", "subtitles", "asr", "auto"]
SPEECH_MODES: tuple[str, ...] = SpeechMode.__args__


class SpeechConfig(_Section):
    """Where a video's transcript comes from (workers/speech): its subtitle tracks and sidecar
    files (exact and cheap), speech recognition on its audio track, or both in turn."""

    # none: no transcript; subtitles: embedded tracks, else sidecar files (free and exact: the
    # default; recognition stays opt-in on one CPU machine, the gpu and cluster presets use
    # auto); asr: recognise the audio; auto: subtitles when the video has any, else asr
    mode: SpeechMode = "subtitles"
    # moonshine: offline (its model ships in its wheel), WER 0.12 against pocketsphinx's 0.83
    # (bench/speech.py); pocketsphinx: offline, also where moonshine-cpp has no wheel (not Linux x86-64)
    asr_backend: Literal["moonshine", "pocketsphinx", "whisper"] = "moonshine"
    whisper_model: str | None = None  # whisper: local path or hub id, e.g. openai/whisper-small
    language: str | None = None  # e.g. "en": subtitle track/sidecar preferred, whisper's language
    sidecars: bool = True  # read movie.srt / movie.en.vtt / movie.ass next to the video
    window_s: float = Field(30.0, gt=0, le=30.0)  # audio decoded and recognised per window
    batch_size: int = Field(4, ge=1)  # whisper: windows per generate call
    device: str = "auto"  # whisper: auto | cpu | cuda | cuda:N
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # whisper weights
    # which ingest actors recognise speech, a shard each: decode (many, on CPU: moonshine, pocketsphinx),
    # embed (the model actors, on the GPU where there is one: whisper), or auto (embed for
    # whisper when the embed actors have GPUs, else decode)
    asr_actor: Literal["auto", "decode", "embed"] = "auto"

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    def key(self) -> str:
        """Names one transcript of a video: the settings that change its text or times."""
        import hashlib
        import json

        fields = self.model_dump(exclude={"batch_size", "device", "asr_actor"})
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


class ServeConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    data_dir: str = "~/.vidsift/service"
    media_roots: list[str] = Field(default_factory=list)  # empty: the current directory only
    api_key: str | None = None  # required whenever host is not loopback
    max_question_chars: int = Field(2000, ge=1)
    max_upload_mb: int = Field(4096, ge=1)  # POST /v1/files: larger bodies are refused (413)
    # Threads that run jobs. 0: jobs are accepted and kept queued, none runs (until a service
    # with workers starts on this data_dir), e.g. to check the API without Ray.
    workers: int = Field(2, ge=0)
    # Live streams a client may ask the service to watch (POST /v1/streams): URL prefixes
    # (udp://127.0.0.1:, https://cams.example/live/). Empty: none. Only network schemes count;
    # the stream is opened with that scheme's protocols alone, never a file.
    stream_urls: list[str] = Field(default_factory=list)


class RayConfig(_Section):
    address: str | None = None  # None: RAY_ADDRESS if set, else a local cluster
    num_cpus: int | None = None
    temp_dir: str | None = None
    namespace: str = "vidsift"


class WatchConfig(_Section):
    """Live streams (flows/watch.py): shards cut at the first keyframe past shard_s."""

    shard_s: float = Field(10.0, gt=0)
    retention_h: float = Field(24.0, gt=0)  # memory and segments older than this are dropped
    read_timeout_s: float = Field(10.0, gt=0)  # a stream silent this long is reopened
    coarse_fps: float = Field(1.0, gt=0)  # coarse frames per second of stream
    # falling behind (plan/stream_rate.py): while a shard's lag (its newest packet read this
    # many seconds after its wall-clock time, less the least lag seen) exceeds lag_thin_s and
    # grows, the next shards' coarse rate halves, down to min_coarse_fps; under lag_restore_s
    # it doubles back up to coarse_fps
    lag_thin_s: float = Field(15.0, gt=0)
    lag_restore_s: float = Field(3.0, ge=0)
    min_coarse_fps: float = Field(0.125, gt=0)


class AlertConfig(_Section):
    threshold: float = Field(0.25, ge=-1, le=1)  # cosine of a frame to an alert text
    # cosine of a frame's visual vector to an alert photo's (offline embedder: frames of other
    # scenes and other photos 0.15-0.18; the photo over a third of the frame's width ~0.6)
    photo_threshold: float = Field(0.5, ge=-1, le=1)
    cooldown_s: float = Field(60.0, ge=0)  # one event per alert per cooldown
    webhook_url: str | None = None  # each event POSTed here as JSON
    # signs the body: header X-Vidsift-Signature: sha256=<hex HMAC-SHA256 of the body>
    webhook_secret: str | None = None
    webhook_retries: int = Field(3, ge=0)  # after a failure or a non-2xx reply, backing off
    # a frame also fires when its score is a peak over the alert's running level (plan.alerts.
    # running_peaks): score > mean + peak_sigma * max(std, peak_min_std) of an EWMA over about
    # peak_span frames, once peak_warmup frames were seen; 0 or None: the threshold alone
    peak_sigma: float | None = Field(None, ge=0)
    peak_warmup: int = Field(60, ge=1)  # frames before a peak can fire
    peak_span: int = Field(120, ge=1)  # frames the running level averages over
    peak_min_std: float = Field(0.02, ge=0)  # cosine; the deviation's floor (a still scene)
    # with a VLM configured (vlm.enabled): each event is first asked about (a yes/no question on
    # its best verify_frames frames); an answer but yes drops it. No VLM: events stay unverified
    verify: bool = True
    verify_frames: int = Field(3, ge=1)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    decode: DecodeConfig = Field(default_factory=DecodeConfig)
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    vlm: VLMConfig = Field(default_factory=VLMConfig)
    pool: PoolConfig = Field(default_factory=PoolConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    caption: CaptionConfig = Field(default_factory=CaptionConfig)
    speech: SpeechConfig = Field(default_factory=SpeechConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    summary: SummaryConfig = Field(default_factory=SummaryConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    watch: WatchConfig = Field(default_factory=WatchConfig)
    alert: AlertConfig = Field(default_factory=AlertConfig)


    @model_validator(mode="after")
    def _budget_counts_for_the_vlm(self) -> Config:
        """An in-process VLM receives frames sized by the budget's arithmetic: it must be its own
        (a Qwen2.5-VL plan, multiples of 28 pixels, cannot be encoded by Qwen3-VL's 32)."""
        from vidsift.core.vision import VISION_SPECS

        if self.vlm.backend in VISION_SPECS and self.vlm.backend != self.budget.model:
            raise ValueError(
                f"budget.model={self.budget.model} plans visual tokens for another model than "
                f"vlm.backend={self.vlm.backend}: set budget.model={self.vlm.backend}"
            )
        return self

    def vision_spec(self):
        """The token arithmetic plans are made with (a core.vision.VisionSpec): budget.model's
        family, without temporal merging when the VLM is shown a clip's frames as separate
        images (vlm.clips_as_images), so a remote server counts exactly the planned tokens."""
        import dataclasses

        from vidsift.core.vision import VISION_SPECS

        spec = VISION_SPECS[self.budget.model]
        return dataclasses.replace(spec, temporal_patch_size=1) if self.vlm.clips_as_images else spec

    def with_speech_mode(self, mode: str) -> Config:
        """This config with speech.mode set (a job's --speech / "speech" field); an unknown mode
        is a ConfigError naming the choices."""
        if mode not in SPEECH_MODES:
            raise ConfigError(f"speech mode {mode!r}: choose one of {' | '.join(SPEECH_MODES)}")
        return self.model_copy(update={"speech": self.speech.model_copy(update={"mode": mode})})

    def coarse_settings(self) -> dict:
        """What decides a video's coarse frames: the same settings give the same frames."""
        return {"backend": self.decode.backend, "max_side": self.decode.coarse_max_side,
                "max_gap_s": self.selection.max_coarse_gap_s, "fill_fps": self.selection.coarse_fps}

    def memory_key(self) -> str:
        """Names one ingest result of a video: a changed coarse or embedder setting is another
        key, so a stored memory is never served for settings it was not made with."""
        import hashlib
        import json

        payload = json.dumps({"coarse": self.coarse_settings(), "embed": self.embed.output_key()},
                             sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


PRESETS = ("default", "gpu", "cluster")


def presets_dir() -> Path:
    """The presets: vidsift/configs, a link to the repository's configs/ in a checkout and a copy
    of it inside an installed wheel."""
    directory = Path(__file__).resolve().parents[1] / "configs"
    if not directory.is_dir():
        raise ConfigError(f"{directory}: presets directory missing from the installation")
    return directory


def _read_yaml(source: str | Path) -> dict[str, Any]:
    path = Path(source)
    if not path.suffix and str(source) in PRESETS:
        path = presets_dir() / f"{source}.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (presets: {', '.join(PRESETS)})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """'section.field=value' -> (['section', 'field'], value parsed as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected section.field=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from exc
    return [part for part in key.strip().split(".")], value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {key!r} is not a section")
            node = child
        node[keys[-1]] = value
    return data


def _literal_values(annotation: Any) -> tuple[str, ...]:
    if typing.get_origin(annotation) is Literal:
        return tuple(str(value) for value in typing.get_args(annotation))
    return tuple(value for member in typing.get_args(annotation) for value in _literal_values(member))


def field_choices(dotted: str) -> tuple[str, ...]:
    """The values a config field allows when its type is a Literal ("speech.mode" -> ("none",
    "subtitles", "asr", "auto")), in the order the model declares them; () for any other field."""
    section, _, name = dotted.partition(".")
    model = Config.model_fields[section].annotation
    return _literal_values(model.model_fields[name].annotation)


def _problem(error: dict) -> str:
    """One pydantic error as `section.field=value: what is wrong` (what is allowed where the
    config knows it)."""
    loc = [str(part) for part in error["loc"]]
    message = error["msg"].removeprefix("Input ").removeprefix("Value error, ")
    if not loc:  # a rule across fields (a model validator): its message names them
        return message
    where = ".".join(loc[:2])
    section = Config.model_fields.get(loc[0])
    if error["type"] == "extra_forbidden" and len(loc) == 1:
        return f"{where}: unknown section (sections: {', '.join(Config.model_fields)})"
    if error["type"] == "extra_forbidden" and section is not None:
        return (f"{where}: unknown field ({loc[0]}: "
                f"{', '.join(section.annotation.model_fields)})")
    value = error.get("input")
    if len(loc) == 1 and section is not None:
        return f"{where}={value}: a section, not a value (set {where}.FIELD=VALUE)"
    if error["type"] == "literal_error" and len(loc) >= 2:
        return f"{where}={value}: choose one of {' | '.join(field_choices(where))}"
    return f"{where}={value}: {message}" if len(loc) >= 2 else f"{where}: {message}"


def load_config(source: str | Path | None = "default", overrides: list[str] | None = None) -> Config:
    """Load a preset name or YAML path (None: built-in defaults), then apply overrides. A bad
    value or name is one ConfigError line: where the config came from, then each problem as
    `section.field=value: what is wrong` (pydantic's own text runs over lines, with links)."""
    data = _read_yaml(source) if source is not None else {}
    data = apply_overrides(data, list(overrides or []))
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        where = source if source is not None else "defaults"
        problems = "; ".join(_problem(error) for error in exc.errors())
        raise ConfigError(f"{where}: {problems}") from None
