"""An OpenAI-compatible chat-completions endpoint over vidsift's in-process Qwen2.5-VL backend:
`vidsift serve-vlm --model CHECKPOINT` on a machine with the model, and vlm.backend=openai
elsewhere points at it (as it would at vLLM).

POST /v1/chat/completions takes one user message whose content is text parts, image_url parts
(base64 data URLs: JPEG, PNG, ...) and video_url parts of JPEG frames (data:video/jpeg;base64,
f1,f2,...), decodes them, and answers greedily. Each image is sized as Qwen2-VL's processor sizes
it (smart_resize within its image or video min_pixels..max_pixels, or the request's
mm_processor_kwargs min_pixels / max_pixels as vLLM takes them; vidsift's planned sizes inside
those limits stay as sent; an image more elongated than the processor takes, which it would
refuse, is letterboxed first: core.vision.padded_size); a video part's frames merge two by two
in time at the request's mm_processor_kwargs.fps (default 2).
usage.prompt_tokens counts the prompt as the model reads it, one token per visual token.
Remote URLs are refused (the server fetches nothing). GET /v1/models lists the one model.
"""

import base64
import binascii
import io
import secrets
import threading
import time
import uuid
from typing import Any

import numpy as np

from vidsift.core.vision import (
    IMAGE_MAX_PIXELS, IMAGE_MIN_PIXELS, VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS, padded_size,
    smart_resize,
)

DEFAULT_VIDEO_FPS = 2.0


class BadRequest(ValueError):
    """A request the endpoint cannot serve; its text is returned to the client (HTTP 400)."""


def _decode_image(data: bytes, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as picture:
            return np.asarray(picture.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise BadRequest(f"{where}: not a readable image ({exc})") from None


def _data_url(url: str, where: str) -> tuple[str, str]:
    """data:MIME;base64,PAYLOAD -> (MIME, PAYLOAD); anything else is refused."""
    if not isinstance(url, str) or not url.startswith("data:"):
        raise BadRequest(f"{where}: only base64 data: URLs are accepted (this server fetches "
                         "nothing)")
    header, sep, payload = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise BadRequest(f"{where}: expected data:<mime>;base64,<data>")
    return header[: -len(";base64")], payload


def _b64decode(payload: str, where: str) -> bytes:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where}: invalid base64") from None


def decode_content(content: Any) -> tuple[list[dict], list[tuple[str, list[np.ndarray]]]]:
    """A user message's content -> (chat parts for QwenVLBackend.encode_chat, visuals in order:
    ("image", [frame]) or ("video", frames), RGB uint8 arrays)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}], []
    if not isinstance(content, list):
        raise BadRequest("messages[0].content must be a string or a list of parts")
    parts: list[dict] = []
    visuals: list[tuple[str, list[np.ndarray]]] = []
    for number, part in enumerate(content):
        where = f"content[{number}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            mime, payload = _data_url((part.get("image_url") or {}).get("url"), where)
            if not mime.startswith("image/"):
                raise BadRequest(f"{where}: {mime} is not an image type")
            visuals.append(("image", [_decode_image(_b64decode(payload, where), where)]))
            parts.append({"type": "image"})
        elif kind == "video_url":
            mime, payload = _data_url((part.get("video_url") or {}).get("url"), where)
            if mime != "video/jpeg":
                raise BadRequest(f"{where}: videos are accepted as data:video/jpeg;base64,"
                                 "<frame>,<frame>,... only")
            frames = [_decode_image(_b64decode(p, where), where) for p in payload.split(",")]
            visuals.append(("video", frames))
            parts.append({"type": "video"})
        else:
            raise BadRequest(f"{where}: unsupported part type {kind!r} (text, image_url, "
                             "video_url)")
    return parts, visuals


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

    def complete(self, body: dict) -> dict:
        """One chat.completion answer for an OpenAI request body."""
        messages = body.get("messages")
        if not isinstance(messages, list) or len(messages) != 1 or not isinstance(messages[0], dict) \
                or messages[0].get("role") != "user":
            raise BadRequest("messages must be exactly one user message")
        parts, visuals = decode_content(messages[0].get("content"))
        processor = body.get("mm_processor_kwargs") or {}
        try:
            fps = float(processor.get("fps") or DEFAULT_VIDEO_FPS)
            limits = {k: int(processor[k]) for k in ("min_pixels", "max_pixels") if k in processor}
        except (TypeError, ValueError, AttributeError):
            raise BadRequest("mm_processor_kwargs: fps, min_pixels, max_pixels must be numbers") \
                from None
        if fps <= 0 or any(v <= 0 for v in limits.values()):
            raise BadRequest("mm_processor_kwargs: fps, min_pixels, max_pixels must be positive")
        wanted = body.get("max_completion_tokens") or body.get("max_tokens")
        query = next((p["text"] for p in reversed(parts) if p["type"] == "text"), "")
        with self.lock:
            pixels = [self.pixels(kind, frames, fps, limits) for kind, frames in visuals]
            prompt = self.backend.encode_chat(parts, pixels, query)
            tokens, prefills, _, _ = self.backend.generate_prompts([prompt], [wanted])
        cap = self.backend.token_cap(wanted)
        text = self.backend.tokenizer.decode(tokens[0], skip_special_tokens=True).strip()
        prompt_tokens = int(prompt.input_ids.shape[0])
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "length" if len(tokens[0]) >= cap else "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(tokens[0]),
                      "total_tokens": prompt_tokens + len(tokens[0])},
        }


def _error(status: int, message: str, kind: str):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "code": status}},
                        status_code=status)


def create_app(backend, model_name: str, api_key: str | None = None):
    """The FastAPI app serving `backend` (a loaded QwenVLBackend) as `model_name`; with api_key,
    requests must carry "Authorization: Bearer <api_key>"."""
    from fastapi import FastAPI, Request

    endpoint = ChatEndpoint(backend, model_name)
    app = FastAPI(title="vidsift VLM (OpenAI-compatible)")

    def authorized(request: Request) -> bool:
        if api_key is None:
            return True
        given = request.headers.get("authorization", "")
        return secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode())

    @app.get("/v1/models")
    def models(request: Request):
        if not authorized(request):
            return _error(401, "invalid or missing API key", "authentication_error")
        return {"object": "list", "data": [{"id": model_name, "object": "model",
                                            "owned_by": "vidsift"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        if not authorized(request):
            return _error(401, "invalid or missing API key", "authentication_error")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body is not JSON", "invalid_request_error")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object", "invalid_request_error")
        if body.get("model") not in (None, model_name):
            return _error(404, f"model {body.get('model')!r} is not served here "
                          f"(this server serves {model_name!r})", "not_found_error")
        from starlette.concurrency import run_in_threadpool

        try:
            return await run_in_threadpool(endpoint.complete, body)
        except BadRequest as exc:
            return _error(400, str(exc), "invalid_request_error")

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
