"""The `openai` backend: token sets sent to a remote OpenAI-compatible server (vLLM, SGLang, ...)
at POST {base_url}/v1/chat/completions.

One request is one user message laid out by workers.vlm.prompt: the numbered time tags as text
parts, each segment's frames as image parts (base64 JPEG or PNG data URLs at exactly the planned
height x width, which Qwen-VL processors keep as they are when their min_pixels/max_pixels
admit them), then the citation instruction and the question. A clip is a run of image parts
(vlm.clips = images: every frame costs a full image's tokens, and Config.vision_spec() plans it
so) or one video part of JPEG frames (vlm.clips = video: vLLM's data:video/jpeg;base64,f1,f2,...
form; the server's temporal merge applies, as in the plan).

The server's usage.prompt_tokens is checked against the plan: with vlm.tokenizer (the served
model's tokenizer) the expected count is the chat template's text tokens plus the planned visual
tokens, exactly; the difference is reported in VLMResult.usage, never hidden. A server started
with vLLM's --video-pruning-rate (vlm.server_pruning_rate; --video-pruning-method evs or vidcom2:
vlm.server_pruning_method) keeps fewer video tokens, by a rule of the plan's grids alone
(server_visual_tokens): that count is the one expected.

stream() asks for the answer as server-sent events (stream=True, with the usage in the last
chunk) and hands each piece of its text to a callback as it arrives: the CLI prints a long answer
as it is generated. generate() takes whole answers (the HTTP service keeps them whole).

A request with a schema (VLMRequest.schema) sends it as response_format {"type": "json_schema",
"json_schema": {"name", "schema", "strict": true}}, which vLLM, SGLang and serve-vlm decode
constrained to; the reply is parsed and validated here all the same (answer_json, or
AnswerSchemaError with the raw text: a server that ignored the format).

Requests of one generate() call go out concurrently (at most vlm.concurrency in flight, a thread
pool over one httpx client). 429 and 5xx answers, timeouts and dropped connections are retried
vlm.retries times with exponential backoff (a Retry-After header sets the wait); any other 4xx
fails at once with its status and the server's message; a stream is retried only until a piece
of its text has arrived. The API key (read from the environment variable vlm.api_key_env names)
is sent only in the Authorization header: never logged, never in an error or a repr.
"""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime

import numpy as np

from vidsift.core.config import VLMConfig
from vidsift.core.errors import ConfigError, RequestFailedError, TokenCountError
from vidsift.core.types import PlannedSegment, VLMRequest, VLMResult
from vidsift.workers.vlm.base import token_cap
from vidsift.workers.vlm.prompt import Visual, evidence_parts

RETRY_STATUSES = frozenset({408, 409, 425, 429}) | frozenset(range(500, 600))
MAX_RETRY_AFTER_S = 300.0  # a server asking for longer waits is treated as down
_MIME = {"jpeg": "image/jpeg", "png": "image/png"}


def encode_frame(image: np.ndarray, image_format: str = "jpeg", quality: int = 90) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG or PNG bytes, same size (4:4:4 JPEG: no chroma halving)."""
    from PIL import Image

    buffer = io.BytesIO()
    picture = Image.fromarray(np.ascontiguousarray(image))
    if image_format == "jpeg":
        picture.save(buffer, format="JPEG", quality=quality, subsampling=0)
    else:
        picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _check_frames(index: int, segment: PlannedSegment) -> None:
    """The server counts what it is sent: every frame must be decoded at the planned size."""
    if not segment.frames:
        raise ValueError(
            f"segment {index + 1} ({segment.start:.3f}-{segment.end:.3f} s) has no decoded frames "
            "(run the fine decode pass before the VLM)"
        )
    for frame in segment.frames:
        if (frame.height, frame.width) != (segment.height, segment.width):
            raise TokenCountError(
                f"segment {index + 1} ({segment.start:.3f}-{segment.end:.3f} s): a frame is "
                f"{frame.height}x{frame.width} but the plan counted {segment.height}x"
                f"{segment.width}; the server would count other tokens than planned"
            )


def message_content(request: VLMRequest, cfg: VLMConfig) -> list[dict]:
    """The OpenAI content parts of one request (see the module docstring), in prompt order."""
    segments = request.token_set.segments
    content: list[dict] = []
    for part in evidence_parts(request.token_set, request.question, history=request.history,
                               transcript=request.transcript):
        if not isinstance(part, Visual):
            content.append({"type": "text", "text": part})
            continue
        segment = segments[part.segment]
        _check_frames(part.segment, segment)
        if cfg.clips == "video" and len(segment.frames) >= 2:
            frames = ",".join(_b64(encode_frame(f.image, "jpeg", cfg.jpeg_quality))
                              for f in segment.frames)
            content.append({"type": "video_url",
                            "video_url": {"url": f"data:video/jpeg;base64,{frames}"}})
            continue
        for frame in segment.frames:
            data = encode_frame(frame.image, cfg.image_format, cfg.jpeg_quality)
            url = f"data:{_MIME[cfg.image_format]};base64,{_b64(data)}"
            content.append({"type": "image_url", "image_url": {"url": url}})
    return content


def server_visual_tokens(token_set, cfg: VLMConfig, temporal_patch: int = 2) -> int:
    """The visual tokens a server started with vLLM's `--video-pruning-rate q`
    (vlm.server_pruning_rate) and `--video-pruning-method` (vlm.server_pruning_method) keeps of
    `token_set`, from the plan alone: each clip sent as a video part (vlm.clips = video, two or
    more frames) of T = ceil(frames / temporal_patch) steps of tokens / T merged tokens keeps
    evs_retained_count(T, 1, tokens / T, q) (evs: workers.vlm.pruning_evs, vLLM's
    vllm/multimodal/evs.py) or vllm_vidcom2_retained_count(T, 1, tokens / T, q) (vidcom2:
    workers.vlm.pruning_vidcom2, vLLM's vllm/multimodal/video_prune/vidcom2.py); both rules read
    the product rows * cols only. Images and clips sent as images keep all. q = 0: the plan's
    total."""
    rate = cfg.server_pruning_rate
    if rate == 0.0 or cfg.clips != "video":
        return token_set.total_tokens
    if cfg.server_pruning_method == "vidcom2":
        from vidsift.workers.vlm.pruning_vidcom2 import vllm_vidcom2_retained_count as retained
    else:
        from vidsift.workers.vlm.pruning_evs import evs_retained_count as retained

    total = 0
    for segment in token_set.segments:
        frames = len(segment.frames) or len(segment.timestamps)
        if frames < 2:
            total += segment.tokens
            continue
        steps = -(-frames // temporal_patch)
        total += retained(steps, 1, segment.tokens // steps, rate)
    return total


def chat_url(base_url: str) -> str:
    """{base_url}/v1/chat/completions, whether or not base_url already ends in /v1."""
    base = base_url.rstrip("/")
    return f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"


def retry_after_s(value: str | None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) -> seconds to wait, or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def sse_data(lines: Iterable[str]) -> Iterator[str]:
    """Server-sent event lines -> each event's data (its data: lines joined by newlines)."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
            data = []
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
    if data:
        yield "\n".join(data)


def _server_message(response) -> str:
    """The server's error text: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or the
    body's start."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        for key in ("message", "detail", "error"):
            if body.get(key):
                return str(body[key])[:300]
    return json.dumps(body)[:300]


class OpenAIBackend:
    """A remote OpenAI-compatible chat-completions server as a VLMBackend (module docstring)."""

    name = "openai"

    def __init__(self, cfg: VLMConfig) -> None:
        import httpx

        if not cfg.base_url:
            raise ConfigError("vlm.base_url is not set: the openai backend needs the server's URL "
                              "(e.g. http://gpu-node:8000)")
        self.cfg = cfg
        self.url = chat_url(cfg.base_url)
        self.model_name = str(cfg.model)
        self.__api_key: str | None = None
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise ConfigError(f"vlm.api_key_env names {cfg.api_key_env}, which is not set "
                                  "in the environment")
            self.__api_key = key
        self.client = httpx.Client(
            timeout=cfg.timeout_s,
            limits=httpx.Limits(max_connections=cfg.concurrency,
                                max_keepalive_connections=cfg.concurrency),
        )
        self.threads = ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="vidsift-openai")
        self._tokenizer = None
        self._tokenizer_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIBackend(url={self.url!r}, model={self.model_name!r})"

    def shutdown(self) -> None:
        """Close the connections and the thread pool."""
        self.threads.shutdown(wait=True)
        self.client.close()

    # ---- the plan's prompt tokens -------------------------------------------------------------

    @property
    def tokenizer(self):
        with self._tokenizer_lock:
            if self._tokenizer is None and self.cfg.tokenizer:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(self.cfg.tokenizer)
            return self._tokenizer

    def expected_prompt_tokens(self, content: list[dict], visual_tokens: int) -> int | None:
        """Prompt tokens the server should count: the chat template's tokens with one
        placeholder per image/video part, each placeholder replaced by its planned visual
        tokens (visual_tokens in all). None without vlm.tokenizer."""
        tokenizer = self.tokenizer
        if tokenizer is None:
            return None
        kinds = {"image_url": "image", "video_url": "video"}
        parts = [{"type": kinds[p["type"]]} if p["type"] in kinds else p for p in content]
        text = tokenizer.apply_chat_template([{"role": "user", "content": parts}], tokenize=False,
                                             add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        pads = {tokenizer.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>")}
        placeholders = sum(1 for token in ids if token in pads)
        return len(ids) - placeholders + visual_tokens

    # ---- HTTP ---------------------------------------------------------------------------------

    def _post(self, body: bytes, name: str,
              on_text: Callable[[str], None] | None = None) -> tuple[dict, int]:
        """POST one body, retrying what may pass on a later try -> (JSON answer, attempts).
        on_text: the body asks for a stream; a streamed answer's text goes to on_text piece by
        piece as it arrives (_read_events), and once a piece has, nothing is retried."""
        import httpx

        headers = {"Content-Type": "application/json"}
        if self.__api_key:
            headers["Authorization"] = f"Bearer {self.__api_key}"
        attempts = self.cfg.retries + 1
        causes: list[str] = []
        for attempt in range(attempts):
            wait = self.cfg.backoff_s * 2**attempt
            try:
                response = self.client.send(
                    self.client.build_request("POST", self.url, content=body, headers=headers),
                    stream=True)
                try:
                    if response.status_code < 300:
                        return self._read_answer(response, name, on_text), attempt + 1
                    response.read()
                finally:
                    response.close()
            except httpx.TimeoutException:
                causes.append(f"timed out after {self.cfg.timeout_s:g} s")
            except httpx.TransportError as exc:
                causes.append(f"{type(exc).__name__}: {exc}")
            else:
                message = self._redact(_server_message(response))
                cause = f"HTTP {response.status_code} {response.reason_phrase}: {message}"
                if response.status_code not in RETRY_STATUSES:
                    raise RequestFailedError(f"{name}: {self.url} refused the request ({cause})")
                causes.append(cause)
                asked = retry_after_s(response.headers.get("Retry-After"))
                if asked is not None:
                    wait = asked
            if attempt + 1 < attempts:
                if wait > MAX_RETRY_AFTER_S:
                    causes.append(f"server asked to wait {wait:g} s")
                    break
                time.sleep(wait)
        raise RequestFailedError(f"{name}: {self.url} failed on {len(causes)} attempt(s) "
                                 f"({'; '.join(self._redact(c) for c in causes)})")

    def _read_answer(self, response, name: str, on_text: Callable[[str], None] | None) -> dict:
        """A 2xx response's answer: its JSON, or a stream's events (text/event-stream) read as
        they come, assembled into the same shape."""
        if on_text is not None and response.headers.get("content-type", "").startswith(
                "text/event-stream"):
            return self._read_events(response, name, on_text)
        response.read()
        try:
            return response.json()
        except ValueError:
            raise RequestFailedError(f"{name}: {self.url} answered HTTP {response.status_code} "
                                     "with a body that is not JSON") from None

    def _read_events(self, response, name: str, on_text: Callable[[str], None]) -> dict:
        """A streamed answer: chat.completion.chunk events up to [DONE], choice 0's content
        deltas handed to on_text as they arrive -> {"model", "usage", "choices": [{"message":
        {"content": the whole text}}]}, as a whole answer reads. A stream that breaks after a
        piece arrived fails at once (what was shown cannot be taken back by a retry)."""
        import httpx

        pieces: list[str] = []
        model = usage = None
        try:
            for data in sse_data(response.iter_lines()):
                if data == "[DONE]":
                    break
                try:
                    event = json.loads(data)
                except ValueError:
                    raise RequestFailedError(f"{name}: {self.url} streamed an event that is not "
                                             f"JSON ({data[:100]!r})") from None
                if not isinstance(event, dict):
                    continue
                if event.get("error"):
                    error = event["error"]
                    message = error.get("message") if isinstance(error, dict) else error
                    raise RequestFailedError(f"{name}: {self.url} failed while answering "
                                             f"({self._redact(str(message))[:300]})")
                model = event.get("model") or model
                usage = event.get("usage") or usage
                for choice in event.get("choices") or ():
                    piece = (choice.get("delta") or {}).get("content")
                    if choice.get("index", 0) == 0 and piece:
                        pieces.append(piece)
                        on_text(piece)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            if not pieces:
                raise  # nothing shown yet: a failed attempt like any other
            raise RequestFailedError(f"{name}: the answer from {self.url} broke off after "
                                     f"{len(''.join(pieces))} characters "
                                     f"({type(exc).__name__}: {exc})") from None
        return {"model": model, "usage": usage,
                "choices": [{"message": {"content": "".join(pieces)}}]}

    def _redact(self, text: str) -> str:
        """A server may echo what it was sent: never let the key into an error."""
        return text.replace(self.__api_key, "[redacted]") if self.__api_key else text

    def _one(self, request: VLMRequest,
             on_text: Callable[[str], None] | None = None) -> VLMResult:
        started = time.perf_counter()
        content = message_content(request, self.cfg)
        payload = {
            **self.cfg.extra_body,
            "model": self.model_name,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": token_cap(request.max_new_tokens, self.cfg.max_new_tokens),
            "temperature": 0.0,  # greedy, as the in-process backends decode
        }
        if request.schema is not None:
            from vidsift.workers.vlm.structured import json_schema_format

            payload["response_format"] = json_schema_format(request.schema)
        if on_text is not None:
            payload.update(stream=True, stream_options={"include_usage": True})
        body = json.dumps(payload).encode()
        sent = time.perf_counter()
        shown: list[str] = []

        def show(piece: str) -> None:
            shown.append(piece)
            on_text(piece)

        answer, attempts = self._post(body, request.request_id or "request",
                                      None if on_text is None else show)
        round_trip = time.perf_counter() - sent
        try:
            message = answer["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise RequestFailedError(f"{request.request_id or 'request'}: {self.url} answered "
                                     "without choices[0].message") from None
        text = message.get("content") or ""
        if isinstance(text, list):  # content parts
            text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
        if on_text is not None and not shown and text:
            on_text(text)  # a server that does not stream answered whole
        planned = request.token_set.total_tokens
        kept = server_visual_tokens(request.token_set, self.cfg)  # after the server's EVS
        usage = {"request_bytes": len(body), "round_trip_s": round(round_trip, 4),
                 "attempts": attempts, "planned_visual_tokens": planned}
        if kept != planned:
            usage["planned_visual_tokens_kept"] = kept
        reported = (answer.get("usage") or {}) if isinstance(answer, dict) else {}
        if reported.get("prompt_tokens") is not None:
            usage["prompt_tokens"] = int(reported["prompt_tokens"])
            usage["completion_tokens"] = int(reported.get("completion_tokens") or 0)
            expected = self.expected_prompt_tokens(content, kept)
            if expected is not None:
                usage["expected_prompt_tokens"] = expected
                usage["prompt_tokens_diff"] = usage["prompt_tokens"] - expected
        from vidsift.workers.vlm.structured import answer_json

        return answer_json(request, VLMResult(
            text=text.strip(),
            visual_tokens=planned,
            visual_tokens_kept=kept,  # what the server's pruning keeps, by its rule
            prefill_s=time.perf_counter() - started,  # the whole round trip: not split remotely
            decode_s=0.0,
            request_id=request.request_id,
            model=str(answer.get("model") or self.model_name),
            usage=usage,
        ))

    def generate(self, requests: list[VLMRequest]) -> list[VLMResult]:
        """The requests concurrently (vlm.concurrency at once); results in request order. The
        first failure raises once every request has finished."""
        return list(self.threads.map(self._one, requests))

    def stream(self, request: VLMRequest, on_text: Callable[[str], None]) -> VLMResult:
        """One request with its answer streamed: on_text(piece) as each piece of the text
        arrives (pieces join to the server's text, before the result's strip); the result as
        generate gives it. A server that does not stream hands on_text its whole answer."""
        return self._one(request, on_text)
