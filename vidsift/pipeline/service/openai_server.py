"""An OpenAI-compatible chat-completions endpoint over vidsift's in-process Qwen-VL backends:
`vidsift serve-vlm --model CHECKPOINT` on a machine with the model; the official openai SDK, and
vlm.backend=openai elsewhere, point at it as they would at vLLM.

POST /v1/chat/completions takes a conversation: system (or developer), user and assistant
messages, laid out by the checkpoint's chat template. A user message's content is text parts,
image_url parts (base64 data URLs: JPEG, PNG, ...) and video_url parts of JPEG frames
(data:video/jpeg;base64,f1,f2,...), in any turn. Each image is sized as Qwen2-VL's processor
sizes it (smart_resize within its image or video min_pixels..max_pixels, or the request's
mm_processor_kwargs min_pixels / max_pixels as vLLM takes them; vidsift's planned sizes inside
those limits stay as sent; an image more elongated than the processor takes, which it would
refuse, is letterboxed first: core.vision.padded_size); a video part's frames merge two by two
in time at the request's mm_processor_kwargs.fps (default 2). usage.prompt_tokens counts the
prompt as the model reads it, one token per visual token.

Decoding takes OpenAI's parameters: temperature (default 1, as OpenAI's; 0 is greedy), top_p,
seed (the same seed draws the same answer again; choice k of n draws with seed + k), stop (up to
4 strings: the answer ends before the first), n, max_completion_tokens or max_tokens (never
above vlm.max_new_tokens). stream=True answers as server-sent events: chat.completion.chunk
deltas as the tokens are generated, then `data: [DONE]`; stream_options.include_usage adds a last
chunk with the usage. A field this server does not support is refused by name (400) unless it
holds the value that asks for nothing (null, frequency_penalty 0, ...). response_format
{"type": "json_schema", "json_schema": {"name", "schema", "strict"}} decodes constrained to the
schema (workers.vlm.structured: xgrammar, the same as vidsift ask --schema), so the content is
JSON that validates against it; {"type": "json_object"} constrains to a JSON object (values
strings, numbers, booleans, null, or arrays and objects of those); a schema that is no valid
JSON Schema or that the grammar library cannot compile is a 422 naming it and the reason (as
vidsift serve's ask job answers it). Every error is OpenAI's JSON {"error":
{"message", "type", "param", "code"}}. Remote URLs are refused (the server fetches nothing).
GET /v1/models lists the one model, GET /v1/models/{id} describes it.
"""

import base64
import binascii
import dataclasses
import io
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidsift.core.vision import (
    IMAGE_MAX_PIXELS, IMAGE_MIN_PIXELS, VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS, padded_size,
    smart_resize,
)
from vidsift.workers.vlm.base import Sampling

log = logging.getLogger(__name__)

DEFAULT_VIDEO_FPS = 2.0
MAX_CHOICES = 16
MAX_STOPS = 4  # as OpenAI
INT64 = 2**63
# A message's role -> the chat template's (developer is OpenAI's newer name for system).
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
# The request fields parse_request reads.
READ_FIELDS = ("model", "messages", "max_tokens", "max_completion_tokens", "temperature",
               "top_p", "seed", "stop", "n", "stream", "stream_options", "mm_processor_kwargs",
               "response_format")
# Fields that ask for something this server does not do, accepted only with the value that asks
# for nothing (OpenAI's default); any field not here nor read by parse_request is refused.
NEUTRAL_FIELDS = {
    "frequency_penalty": 0, "presence_penalty": 0, "logprobs": False, "tools": [],
    "tool_choice": "none",
}
WHY_UNSUPPORTED = {
    "tools": "this server calls no tools", "tool_choice": "this server calls no tools",
    "functions": "this server calls no tools", "function_call": "this server calls no tools",
    "logprobs": "this server returns no log probabilities",
    "top_logprobs": "this server returns no log probabilities",
}


class BadRequest(ValueError):
    """A request the endpoint cannot serve: HTTP 400 (or `status`) with OpenAI's error body.
    param: the offending field's path (messages[1].content), code: OpenAI's kind of problem."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value",
                 status: int = 400) -> None:
        super().__init__(message)
        self.param, self.code, self.status = param, code, status


def _decode_image(data: bytes, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as picture:
            return np.asarray(picture.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise BadRequest(f"{where}: not a readable image ({exc})", where) from None


def _data_url(url: Any, where: str) -> tuple[str, str]:
    """data:MIME;base64,PAYLOAD -> (MIME, PAYLOAD); anything else is refused."""
    if not isinstance(url, str) or not url.startswith("data:"):
        raise BadRequest(f"{where}: only base64 data: URLs are accepted (this server fetches "
                         "nothing)", where)
    header, sep, payload = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise BadRequest(f"{where}: expected data:<mime>;base64,<data>", where)
    return header[: -len(";base64")], payload


def _b64decode(payload: str, where: str) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where}: invalid base64", where) from None


def _only_fields(value: dict, allowed: tuple[str, ...], where: str) -> None:
    """Refuse, by name, any non-null key of `value` outside `allowed`."""
    for key, item in value.items():
        if key not in allowed and item is not None:
            raise BadRequest(f"{where}.{key} is not supported by this server", f"{where}.{key}",
                             "unsupported_parameter")


def _media_url(part: dict, kind: str, where: str) -> Any:
    """The url of an image_url / video_url part (a {"url": ...} object, or the URL string as
    some clients send it); image_url.detail other than auto is refused (sizes are Qwen's)."""
    media = part.get(kind)
    if isinstance(media, str):
        return media
    if not isinstance(media, dict):
        raise BadRequest(f"{where}.{kind} must be an object with a url", f"{where}.{kind}",
                         "invalid_type")
    _only_fields(media, ("url", "detail"), f"{where}.{kind}")
    if media.get("detail") not in (None, "auto"):
        raise BadRequest(f"{where}.{kind}.detail {media['detail']!r} is not supported: images "
                         "are sized as the model's processor sizes them (detail auto)",
                         f"{where}.{kind}.detail", "unsupported_value")
    return media.get("url")


def decode_content(content: Any, where: str = "messages[0].content", visuals_allowed: bool = True,
                   ) -> tuple[list[dict], list[tuple[str, list[np.ndarray]]]]:
    """A message's content -> (chat parts for QwenVLBackend.encode_messages, visuals in order:
    ("image", [frame]) or ("video", frames), RGB uint8 arrays). where: the content's path in the
    request, for errors; visuals_allowed False (system and assistant turns): text parts only."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}], []
    if not isinstance(content, list):
        raise BadRequest(f"{where} must be a string or a list of parts", where, "invalid_type")
    parts: list[dict] = []
    visuals: list[tuple[str, list[np.ndarray]]] = []
    for number, part in enumerate(content):
        here = f"{where}[{number}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("image_url", "video_url") and not visuals_allowed:
            raise BadRequest(f"{here}: only a user message may hold images and videos", here)
        if kind == "text":
            _only_fields(part, ("type", "text"), here)
            if not isinstance(part.get("text"), str):
                raise BadRequest(f"{here}.text must be a string", f"{here}.text", "invalid_type")
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            _only_fields(part, ("type", "image_url"), here)
            mime, payload = _data_url(_media_url(part, "image_url", here), here)
            if not mime.startswith("image/"):
                raise BadRequest(f"{here}: {mime} is not an image type", here)
            visuals.append(("image", [_decode_image(_b64decode(payload, here), here)]))
            parts.append({"type": "image"})
        elif kind == "video_url":
            _only_fields(part, ("type", "video_url"), here)
            mime, payload = _data_url(_media_url(part, "video_url", here), here)
            if mime != "video/jpeg":
                raise BadRequest(f"{here}: videos are accepted as data:video/jpeg;base64,"
                                 "<frame>,<frame>,... only", here)
            frames = [_decode_image(_b64decode(p, here), here) for p in payload.split(",")]
            visuals.append(("video", frames))
            parts.append({"type": "video"})
        else:
            allowed = "text, image_url, video_url" if visuals_allowed else "text"
            raise BadRequest(f"{here}: unsupported part type {kind!r} ({allowed})", here)
    return parts, visuals


def decode_messages(messages: Any) -> tuple[list[dict], list[tuple[str, list[np.ndarray]]], str]:
    """The request's messages -> (messages for encode_messages, their visuals in order, the last
    user text: what the pruners score visual tokens against). A developer message is a system
    one (OpenAI's newer name); system and assistant content is text."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list of messages", "messages",
                         "invalid_type")
    turns: list[dict] = []
    visuals: list[tuple[str, list[np.ndarray]]] = []
    query = ""
    for number, message in enumerate(messages):
        where = f"messages[{number}]"
        if not isinstance(message, dict):
            raise BadRequest(f"{where} must be an object with a role and content", where,
                             "invalid_type")
        role = message.get("role")
        if role not in ROLES:
            raise BadRequest(f"{where}.role {role!r} is not supported (system, developer, user, "
                             "assistant: this server calls no tools)", f"{where}.role")
        _only_fields(message, ("role", "content"), where)
        if message.get("content") is None:
            raise BadRequest(f"{where}.content is missing", f"{where}.content", "missing")
        user = ROLES[role] == "user"
        parts, seen = decode_content(message["content"], f"{where}.content", visuals_allowed=user)
        visuals += seen
        texts = [p["text"] for p in parts if p["type"] == "text"]
        if user:
            query = texts[-1] if texts else query
            turns.append({"role": "user", "content": parts})
        else:  # text alone: every Qwen template renders a string turn
            turns.append({"role": ROLES[role], "content": "".join(texts)})
    return turns, visuals, query


def _integer(body: dict, name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name} must be an integer (got {json.dumps(value)})", name,
                         "invalid_type")
    if not low <= value <= high:
        raise BadRequest(f"{name} must be from {low} to {high} (got {value})", name)
    return value


def _number(body: dict, name: str, low: float, high: float, default: float,
            above_low: bool = False) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{name} must be a number (got {json.dumps(value)})", name,
                         "invalid_type")
    if not (low < value if above_low else low <= value) or value > high:
        raise BadRequest(f"{name} must be {'above' if above_low else 'from'} {low:g} "
                         f"{'and at most' if above_low else 'to'} {high:g} (got {value:g})", name)
    return float(value)


def _stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise BadRequest("stop must be a string or a list of strings", "stop", "invalid_type")
    if len(stops) > MAX_STOPS or not all(stops):
        raise BadRequest(f"stop takes 1 to {MAX_STOPS} non-empty strings", "stop")
    return tuple(stops)


def _processor_kwargs(value: Any) -> tuple[float, dict]:
    """mm_processor_kwargs (vLLM's) -> (a video part's fps, pixel limits)."""
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise BadRequest("mm_processor_kwargs must be an object", "mm_processor_kwargs",
                         "invalid_type")
    _only_fields(value, ("fps", "min_pixels", "max_pixels"), "mm_processor_kwargs")
    try:
        fps = float(value.get("fps") or DEFAULT_VIDEO_FPS)
        limits = {k: int(value[k]) for k in ("min_pixels", "max_pixels") if k in value}
    except (TypeError, ValueError):
        raise BadRequest("mm_processor_kwargs: fps, min_pixels, max_pixels must be numbers",
                         "mm_processor_kwargs", "invalid_type") from None
    if fps <= 0 or any(v <= 0 for v in limits.values()):
        raise BadRequest("mm_processor_kwargs: fps, min_pixels, max_pixels must be positive",
                         "mm_processor_kwargs")
    return fps, limits


_SCALAR = {"type": ["string", "number", "boolean", "null"]}
# response_format json_object: an object, nested two levels (what is bounded can close).
JSON_OBJECT = {"type": "object", "additionalProperties": {"anyOf": [
    _SCALAR, {"type": "array", "items": _SCALAR},
    {"type": "object", "additionalProperties": _SCALAR}]}}


def _response_format(value: Any) -> dict | None:
    """response_format -> the JSON Schema the answer must follow (None: text), or BadRequest
    naming the field at fault."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise BadRequest("response_format must be an object with a type", "response_format",
                         "invalid_type")
    kind = value["type"]
    if kind == "text":
        _only_fields(value, ("type",), "response_format")
        return None
    if kind == "json_object":
        _only_fields(value, ("type",), "response_format")
        return JSON_OBJECT
    if kind != "json_schema":
        raise BadRequest(f"response_format.type {kind!r} is not supported (text, json_object, "
                         "json_schema)", "response_format.type")
    _only_fields(value, ("type", "json_schema"), "response_format")
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        raise BadRequest("response_format.json_schema must be an object with a schema",
                         "response_format.json_schema", "invalid_type")
    _only_fields(spec, ("name", "schema", "strict", "description"), "response_format.json_schema")
    if spec.get("schema") is None:
        raise BadRequest("response_format.json_schema.schema is missing",
                         "response_format.json_schema.schema", "missing")
    from vidsift.core.schema import SchemaError, check_schema

    try:
        return check_schema(spec["schema"], "response_format.json_schema.schema")
    except SchemaError as exc:
        raise BadRequest(str(exc), "response_format.json_schema.schema", "invalid_schema",
                         422) from None


@dataclass(slots=True)
class ChatRequest:
    """A request body, checked: the conversation decoded and the decoding parameters."""

    messages: list[dict]
    visuals: list[tuple[str, list[np.ndarray]]]
    query: str
    max_tokens: int | None
    sampling: Sampling
    stops: tuple[str, ...]
    choices: int
    stream: bool
    include_usage: bool
    fps: float
    pixel_limits: dict
    schema: dict | None = None  # response_format's: the answer follows it (None: text)


def parse_request(body: dict) -> ChatRequest:
    """An OpenAI request body -> ChatRequest, or BadRequest naming the field at fault (any field
    this server does not honour included: none is silently dropped)."""
    for name, value in body.items():
        if name in READ_FIELDS or value is None or NEUTRAL_FIELDS.get(name, ...) == value:
            continue
        why = WHY_UNSUPPORTED.get(name, "this server does not support it")
        raise BadRequest(f"{name} is not supported by this server ({why})", name,
                         "unsupported_parameter")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise BadRequest("stream must be true or false", "stream", "invalid_type")
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise BadRequest("stream_options is only allowed when stream is true",
                             "stream_options")
        if not isinstance(options, dict):
            raise BadRequest("stream_options must be an object", "stream_options", "invalid_type")
        _only_fields(options, ("include_usage",), "stream_options")
        if not isinstance(options.get("include_usage", False), bool):
            raise BadRequest("stream_options.include_usage must be true or false",
                             "stream_options.include_usage", "invalid_type")
    wanted = _integer(body, "max_completion_tokens", 1, INT64 - 1)
    if wanted is None:
        wanted = _integer(body, "max_tokens", 1, INT64 - 1)
    sampling = Sampling(temperature=_number(body, "temperature", 0, 2, 1.0),
                        top_p=_number(body, "top_p", 0, 1, 1.0, above_low=True),
                        seed=_integer(body, "seed", -INT64, INT64 - 1))
    stops = _stops(body.get("stop"))
    choices = _integer(body, "n", 1, MAX_CHOICES) or 1
    fps, limits = _processor_kwargs(body.get("mm_processor_kwargs"))
    messages, visuals, query = decode_messages(body.get("messages"))
    schema = _response_format(body.get("response_format"))
    return ChatRequest(messages, visuals, query, wanted, sampling, stops, choices, bool(stream),
                       bool((options or {}).get("include_usage")), fps, limits, schema)


class AnswerText:
    """One answer's text as its tokens arrive. The text is decode(tokens) cut before the first
    stop string and stripped; update() releases the part of it no later token can change: not an
    incomplete UTF-8 character (U+FFFD at the end), not trailing whitespace, not what may be the
    start of a stop string. So the pieces join to exactly the whole answer's text."""

    _UNSETTLED_END = re.compile(r"[\s\ufffd]+$")

    def __init__(self, decode: Callable[[list[int]], str], stops: tuple[str, ...]) -> None:
        self.decode, self.stops = decode, stops
        self.text = ""  # released so far
        self.stopped = False  # a stop string was reached

    def update(self, tokens: list[int], final: bool = False) -> str:
        """The newly settled piece ("" for none) of the answer `tokens` so far; final: the
        answer ends here."""
        text = self.decode(tokens)
        cuts = [at for at in (text.find(stop) for stop in self.stops) if at >= 0]
        if cuts:
            text, self.stopped, final = text[:min(cuts)], True, True
        text = text.strip() if final else self._UNSETTLED_END.sub("", text.lstrip())
        if not final:
            held = max((k for stop in self.stops for k in range(1, len(stop))
                        if text.endswith(stop[:k])), default=0)
            text = text[:len(text) - held]
        piece = text[len(self.text):] if text.startswith(self.text) else ""
        self.text += piece
        return piece


@dataclass(slots=True)
class Piece:
    """What a choice's generation emits: a piece of its text, or (finish_reason set) its end
    with its completion token count."""

    choice: int
    text: str = ""
    finish_reason: str | None = None
    tokens: int = 0


@dataclass(slots=True)
class PreparedChat:
    """A request ready to generate: its encoded prompt and parameters."""

    request: ChatRequest
    prompt: Any  # workers.vlm.qwen2_5_vl.PromptInputs
    id: str
    created: int
    grammar: Any = None  # the schema's compiled grammar (xgrammar), None for text


class ChatEndpoint:
    """The model behind the endpoint: one QwenVLBackend, one generate at a time."""

    def __init__(self, backend, model_name: str) -> None:
        self.backend = backend
        self.model_name = model_name
        self.lock = threading.Lock()

    def pixels(self, kind: str, frames: list[np.ndarray], fps: float, limits: dict):
        """Frames -> SegmentPixels as Qwen2-VL's processor sizes them (its image or video pixel
        limits, unless the request's mm_processor_kwargs set min_pixels / max_pixels); a
        video's frames are `fps` apart."""
        from vidsift.core.types import Frame, PlannedSegment, SegmentKind
        from vidsift.core.vision import tokens_for
        from vidsift.workers.vlm.preprocess import prepare_segment

        spec = self.backend.vision_spec
        low, high = ((IMAGE_MIN_PIXELS, IMAGE_MAX_PIXELS) if kind == "image"
                     else (VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS))
        low, high = int(limits.get("min_pixels") or low), int(limits.get("max_pixels") or high)
        # a frame too elongated for the processor is letterboxed (prepare_segment pads it)
        height, width = smart_resize(*padded_size(*frames[0].shape[:2]), spec.factor, low, high)
        times = tuple(k / fps for k in range(len(frames)))
        segment = PlannedSegment(
            SegmentKind.IMAGE if kind == "image" else SegmentKind.CLIP, times[0], times[-1],
            times, height, width, tokens_for(len(frames), height, width, spec),
            frames=tuple(Frame(image, t, k) for k, (image, t) in enumerate(zip(frames, times))),
        )
        return prepare_segment(segment, spec)

    def prepare(self, body: dict) -> PreparedChat:
        """Check and decode a request body and encode its prompt (BadRequest when it cannot be
        served): everything that can fail on the request happens here, before any answer."""
        from vidsift.core.schema import SchemaError

        request = parse_request(body)
        with self.lock:  # the tokenizer is not to be shared between threads
            pixels = [self.pixels(kind, frames, request.fps, request.pixel_limits)
                      for kind, frames in request.visuals]
            prompt = self.backend.encode_messages(request.messages, pixels, request.query)
            try:
                grammar = (None if request.schema is None else self.backend.grammars.compile(
                    request.schema, "response_format.json_schema.schema"))
            except SchemaError as exc:
                raise BadRequest(str(exc), "response_format.json_schema.schema",
                                 "invalid_schema", 422) from None
        return PreparedChat(request, prompt, f"chatcmpl-{uuid.uuid4().hex}", int(time.time()),
                            grammar)

    def run(self, chat: PreparedChat, emit: Callable[[Piece], None],
            cancelled: Callable[[], bool] = lambda: False) -> None:
        """Generate every choice of `chat` in turn, emitting its pieces as they settle (token by
        token), then its end. Greedy choices are all alike: the first is generated once and
        repeated. cancelled() True stops at the next token (the client went away)."""
        with self.lock:
            repeated: list[Piece] = []
            for choice in range(chat.request.choices):
                if repeated:
                    for piece in repeated:
                        emit(dataclasses.replace(piece, choice=choice))
                    continue
                emitted = self._choice(chat, choice, emit, cancelled)
                if cancelled():
                    return
                if chat.request.sampling.greedy:
                    repeated = emitted

    def _choice(self, chat: PreparedChat, choice: int, emit: Callable[[Piece], None],
                cancelled: Callable[[], bool]) -> list[Piece]:
        """Generate choice number `choice` (a seed moves on by the choice's number), emitting
        its pieces as they settle, then its end; returns what it emitted."""
        request = chat.request
        seed = request.sampling.seed
        sampling = dataclasses.replace(request.sampling,
                                       seed=None if seed is None else seed + choice)
        text = AnswerText(self._decode, request.stops)
        emitted: list[Piece] = []

        def send(piece: Piece) -> None:
            emitted.append(piece)
            emit(piece)

        def follow(tokens: list[int]) -> bool:
            if piece := text.update(tokens):
                send(Piece(choice, piece))
            return text.stopped or cancelled()

        tokens = self.backend.generate_prompts([chat.prompt], [request.max_tokens],
                                               sampling=sampling, on_tokens=follow,
                                               grammars=[chat.grammar])[0][0]
        if not text.stopped and (piece := text.update(tokens, final=True)):
            send(Piece(choice, piece))
        ended = text.stopped or len(tokens) < self.backend.token_cap(request.max_tokens)
        send(Piece(choice, finish_reason="stop" if ended else "length", tokens=len(tokens)))
        return emitted

    def _decode(self, tokens: list[int]) -> str:
        return self.backend.tokenizer.decode(tokens, skip_special_tokens=True)

    def _usage(self, chat: PreparedChat, completion_tokens: int) -> dict:
        prompt_tokens = int(chat.prompt.input_ids.shape[0])
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens}

    def answer(self, chat: PreparedChat) -> dict:
        """The whole chat.completion of a prepared request."""
        pieces: list[Piece] = []
        self.run(chat, pieces.append)
        choices = []
        for index in range(chat.request.choices):
            mine = [p for p in pieces if p.choice == index]
            choices.append({
                "index": index, "finish_reason": mine[-1].finish_reason, "logprobs": None,
                "message": {"role": "assistant", "content": "".join(p.text for p in mine)},
            })
        return {"id": chat.id, "object": "chat.completion", "created": chat.created,
                "model": self.model_name, "choices": choices,
                "usage": self._usage(chat, sum(p.tokens for p in pieces))}

    def complete(self, body: dict) -> dict:
        """One chat.completion answer for an OpenAI request body (stream ignored)."""
        return self.answer(self.prepare(body))

    async def events(self, chat: PreparedChat) -> AsyncIterator[str]:
        """The server-sent events of a prepared streaming request: per choice a role chunk, then
        content chunks as the tokens settle, a finish chunk; the usage chunk when asked; [DONE].
        Generation runs in a thread of its own and stops when the client goes away."""
        import asyncio

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        gone = threading.Event()
        done = object()

        def generate() -> None:
            def put(item) -> None:
                loop.call_soon_threadsafe(queue.put_nowait, item)

            try:
                self.run(chat, put, gone.is_set)
                put(done)
            except Exception as exc:  # after the 200, an error can only be an event
                log.exception("serve-vlm: generation failed")
                put(exc)

        with_usage = chat.request.include_usage

        def chunk(choices: list[dict], **extra) -> str:
            body = {"id": chat.id, "object": "chat.completion.chunk", "created": chat.created,
                    "model": self.model_name, "choices": choices,
                    **({"usage": None} if with_usage else {}), **extra}
            return f"data: {json.dumps(body)}\n\n"

        threading.Thread(target=generate, name="serve-vlm-generate", daemon=True).start()
        try:
            for index in range(chat.request.choices):
                yield chunk([{"index": index, "delta": {"role": "assistant", "content": ""},
                              "logprobs": None, "finish_reason": None}])
            completion_tokens = 0
            while (item := await queue.get()) is not done:
                if isinstance(item, Exception):
                    error = _error_body("generation failed on the server", "server_error")
                    yield f"data: {json.dumps(error)}\n\n"
                    return
                completion_tokens += item.tokens
                delta = {"content": item.text} if item.text else {}
                yield chunk([{"index": item.choice, "delta": delta, "logprobs": None,
                              "finish_reason": item.finish_reason}])
            if with_usage:
                yield chunk([], usage=self._usage(chat, completion_tokens))
            yield "data: [DONE]\n\n"
        finally:
            gone.set()


def _error_body(message: str, kind: str, param: str | None = None,
                code: str | None = None) -> dict:
    """OpenAI's error body."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _error(status: int, message: str, kind: str = "invalid_request_error",
           param: str | None = None, code: str | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse(_error_body(message, kind, param, code), status_code=status)


def create_app(backend, model_name: str, api_key: str | None = None):
    """The FastAPI app serving `backend` (a loaded QwenVLBackend) as `model_name`; with api_key,
    requests must carry "Authorization: Bearer <api_key>"."""
    from fastapi import FastAPI, Request
    from fastapi.responses import StreamingResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    endpoint = ChatEndpoint(backend, model_name)
    started = int(time.time())
    app = FastAPI(title="vidsift VLM (OpenAI-compatible)")

    def refused():
        return _error(401, "invalid or missing API key", "authentication_error",
                      code="invalid_api_key")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        # Starlette's own 404 / 405 answers, in OpenAI's shape like every other error
        return _error(exc.status_code, str(exc.detail), code="not_found"
                      if exc.status_code == 404 else None)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        return _error(500, "internal error", "server_error")

    def authorized(request: Request) -> bool:
        if api_key is None:
            return True
        given = request.headers.get("authorization", "")
        return secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode())

    def described() -> dict:
        return {"id": model_name, "object": "model", "created": started, "owned_by": "vidsift"}

    @app.get("/v1/models")
    def models(request: Request):
        if not authorized(request):
            return refused()
        return {"object": "list", "data": [described()]}

    @app.get("/v1/models/{model_id:path}")
    def model(model_id: str, request: Request):
        if not authorized(request):
            return refused()
        if model_id != model_name:
            return _error(404, f"the model {model_id!r} does not exist here (this server serves "
                          f"{model_name!r})", param="model", code="model_not_found")
        return described()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        if not authorized(request):
            return refused()
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body is not JSON", code="invalid_json")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object", code="invalid_type")
        if not isinstance(body.get("model"), (str, type(None))):
            return _error(400, "model must be a string", param="model", code="invalid_type")
        if body.get("model") not in (None, model_name):
            return _error(404, f"model {body.get('model')!r} is not served here (this server "
                          f"serves {model_name!r})", param="model", code="model_not_found")
        try:
            prepared = await run_in_threadpool(endpoint.prepare, body)
        except BadRequest as exc:
            return _error(exc.status, str(exc), param=exc.param, code=exc.code)
        if prepared.request.stream:
            return StreamingResponse(endpoint.events(prepared), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        return await run_in_threadpool(endpoint.answer, prepared)

    return app


def serve_vlm(cfg, host: str, port: int, api_key_env: str | None = None,
              served_name: str | None = None) -> None:
    """Load cfg.vlm's in-process backend and serve it until interrupted. A non-loopback host
    needs an API key (the environment variable api_key_env names)."""
    import ipaddress
    import os

    import uvicorn

    from vidsift.core.errors import ConfigError
    from vidsift.workers.vlm import get_vlm

    if cfg.vlm.remote:
        raise ConfigError("serve-vlm serves an in-process model: set vlm.backend to a local one "
                          f"(not {cfg.vlm.backend})")
    api_key = os.environ.get(api_key_env) if api_key_env else None
    if api_key_env and not api_key:
        raise ConfigError(f"--api-key-env names {api_key_env}, which is not set in the environment")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and api_key is None:
        raise ConfigError(f"serving on {host} needs an API key: pass --api-key-env NAME")
    backend = get_vlm(cfg.vlm)
    uvicorn.run(create_app(backend, served_name or str(cfg.vlm.model), api_key), host=host,
                port=port, log_level="info")
