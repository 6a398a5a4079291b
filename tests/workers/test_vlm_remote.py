"""The openai backend over real HTTP on 127.0.0.1: end to end against vidsift's own
OpenAI-compatible endpoint serving the tiny random Qwen2.5-VL (the images go over the wire and the
server's prompt-token count is checked against the plan), and against a scripted failing server
(429 then success, 500, timeouts, 401)."""

import dataclasses
import logging
import threading
import time

import numpy as np
import pytest

from vidsift.core.config import VLMConfig, load_config
from vidsift.core.errors import ConfigError, RequestFailedError, TokenCountError
from vidsift.core.types import TokenSet, VLMRequest
from vidsift.core.vision import QWEN2_5_VL, tokens_for
from vidsift.pipeline.service.openai_server import create_app, decode_content
from vidsift.workers.vlm import get_vlm
from vidsift.workers.vlm.remote import OpenAIBackend, chat_url, message_content, retry_after_s

from tests.http_servers import serve
from tests.tiny_vlm import random_token_set

IMAGES_SPEC = dataclasses.replace(QWEN2_5_VL, temporal_patch_size=1)  # clips as runs of images
MODEL = "tiny-qwen"
KEY = "sk-test-0123456789abcdef"


def images_token_set(seed: int = 0) -> TokenSet:
    """random_token_set planned for a server shown clips as images: its 3-frame clip costs
    3 x 4 tokens, not 8; 6 + 12 + 6 = 24 visual tokens."""
    token_set = random_token_set(seed)
    token_set.segments = [
        dataclasses.replace(s, tokens=tokens_for(len(s.frames), s.height, s.width, IMAGES_SPEC))
        for s in token_set.segments
    ]
    return token_set


@pytest.fixture(scope="module")
def tiny_backend(tiny_qwen_dir):
    return get_vlm(VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32",
                             max_new_tokens=6))


@pytest.fixture(scope="module")
def tiny_server(tiny_backend):
    with serve(create_app(tiny_backend, MODEL, api_key=KEY)) as url:
        yield url


def remote(url: str, tiny_qwen_dir=None, **fields) -> OpenAIBackend:
    cfg = VLMConfig(backend="openai", base_url=url, model=MODEL, max_new_tokens=6,
                    tokenizer=str(tiny_qwen_dir) if tiny_qwen_dir else None, **fields)
    return get_vlm(cfg)


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("VIDSIFT_TEST_KEY", KEY)
    return "VIDSIFT_TEST_KEY"


@pytest.mark.parametrize("image_format", ["png", "jpeg"])
def test_end_to_end_prompt_tokens_equal_the_plan(tiny_server, tiny_qwen_dir, api_key,
                                                 image_format):
    backend = remote(tiny_server, tiny_qwen_dir, api_key_env=api_key, image_format=image_format)
    try:
        token_set = images_token_set()
        results = backend.generate([VLMRequest(token_set, "What moves?", request_id="a"),
                                    VLMRequest(images_token_set(3), "And then?", request_id="b")])
    finally:
        backend.shutdown()
    assert [r.request_id for r in results] == ["a", "b"]
    usage = results[0].usage
    assert results[0].visual_tokens == usage["planned_visual_tokens"] == 24
    # The server counted exactly the plan's visual tokens plus the prompt's text tokens.
    assert usage["prompt_tokens"] == usage["expected_prompt_tokens"]
    assert usage["prompt_tokens_diff"] == 0
    assert usage["attempts"] == 1 and usage["request_bytes"] > 0 and usage["round_trip_s"] > 0
    assert 0 <= usage["completion_tokens"] <= 6
    assert results[0].model == MODEL and isinstance(results[0].text, str)


def test_the_wire_changes_nothing(tiny_server, tiny_backend, api_key):
    """What the server answers over HTTP equals what its endpoint answers for the same body
    in-process, and PNG frames arrive bit-identical (JPEG close)."""
    from vidsift.pipeline.service.openai_server import ChatEndpoint

    token_set = images_token_set()
    cfg = VLMConfig(backend="openai", base_url=tiny_server, model=MODEL, image_format="png")
    content = message_content(VLMRequest(token_set, "Why?"), cfg)
    parts, visuals = decode_content(content)
    sent = [f.image for s in token_set.segments for f in s.frames]
    assert [kind for kind, _ in visuals] == ["image"] * 5
    assert all(np.array_equal(frames[0], image) for (_, frames), image in zip(visuals, sent))
    jpeg = decode_content(message_content(VLMRequest(token_set, "Why?"),
                                          cfg.model_copy(update={"image_format": "jpeg"})))[1]
    assert all(frames[0].shape == image.shape for (_, frames), image in zip(jpeg, sent))
    # Labels and instruction as text parts, each before its segment's frames.
    texts = [p["text"] for p in content if p["type"] == "text"]
    assert texts[:3] == ["[1] <t=1.0s>", "\n[2] <t=2.0s-3.0s>", "\n[3] <t=7.5s>"]
    assert [p["type"] for p in content[:6]] == ["text", "image_url", "text", "image_url",
                                                "image_url", "image_url"]

    backend = remote(tiny_server, api_key_env=api_key, image_format="png")
    try:
        over_http = backend.generate([VLMRequest(token_set, "Why?")])[0]
    finally:
        backend.shutdown()
    local = ChatEndpoint(tiny_backend, MODEL).complete(
        {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 6,
         "temperature": 0})
    assert over_http.text == local["choices"][0]["message"]["content"]
    assert over_http.usage["prompt_tokens"] == local["usage"]["prompt_tokens"]
    assert "expected_prompt_tokens" not in over_http.usage  # no tokenizer: the server's count only


def test_clips_as_video_parts_merge_in_time_as_planned(tiny_server, tiny_qwen_dir, api_key):
    """vlm.clips=video: the 3-frame clip is one data:video/jpeg part, merged two by two in
    time by the server, so the standard plan (8 tokens for the clip) is exact once the server's
    video min_pixels admits the planned 56x56 (its default, 128*28*28, would upscale it: the
    difference is reported)."""
    request = VLMRequest(random_token_set(), "What moves?")
    usages = []
    for extra in ({"mm_processor_kwargs": {"min_pixels": 3136}}, {}):
        backend = remote(tiny_server, tiny_qwen_dir, api_key_env=api_key, clips="video",
                         extra_body=extra)
        kinds = [p["type"] for p in message_content(request, backend.cfg)]
        assert kinds.count("video_url") == 1 and kinds.count("image_url") == 2
        try:
            usages.append(backend.generate([request])[0].usage)
        finally:
            backend.shutdown()
    assert usages[0]["planned_visual_tokens"] == 20 and usages[0]["prompt_tokens_diff"] == 0
    upscaled = 2 * (336 // 28) ** 2 - 8  # 56x56 -> 336x336 at 2 temporal patches, not 8 tokens
    assert usages[1]["prompt_tokens_diff"] == upscaled


def test_a_plan_the_server_would_count_differently_is_reported(tiny_server, tiny_qwen_dir,
                                                               api_key):
    """The standard plan (clip = 8 tokens) sent as images (clip = 12): the difference shows."""
    backend = remote(tiny_server, tiny_qwen_dir, api_key_env=api_key)
    try:
        usage = backend.generate([VLMRequest(random_token_set(), "Why?")])[0].usage
    finally:
        backend.shutdown()
    assert usage["prompt_tokens_diff"] == 4


def test_frames_not_at_the_planned_size_are_refused_before_sending(api_key):
    token_set = images_token_set()
    wrong = dataclasses.replace(token_set.segments[0], height=84)
    backend = remote("http://127.0.0.1:9", api_key_env=api_key)
    try:
        with pytest.raises(TokenCountError, match="segment 1 .* a frame is 56x84 but the plan "
                                                  "counted 84x84"):
            backend.generate([VLMRequest(TokenSet("v.mp4", [wrong]), "Why?")])
    finally:
        backend.shutdown()


def test_server_refuses_what_it_cannot_serve(tiny_server):
    import httpx

    headers = {"Authorization": f"Bearer {KEY}"}
    url = chat_url(tiny_server)
    fetch = {"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://169.254.169.254/x.png"}}]}]}
    answer = httpx.post(url, json=fetch, headers=headers)
    assert answer.status_code == 400 and "only base64 data: URLs" in answer.json()["error"]["message"]
    other = httpx.post(url, json={**fetch, "model": "gpt-4o"}, headers=headers)
    assert other.status_code == 404 and "'gpt-4o' is not served here" in other.text
    assert httpx.post(url, json=fetch).status_code == 401


def test_an_image_too_elongated_for_the_processor_is_answered_letterboxed(tiny_server,
                                                                          tiny_backend):
    """A 16 x 16000 image (aspect 1000: Qwen2-VL's processor refuses over 200) is shown padded to
    80 x 16000, at the processor's size for that, 56 x 14140 (1010 tokens): the prompt counts
    exactly what the same image sent already letterboxed counts."""
    import base64
    import httpx

    from vidsift.pipeline.service.openai_server import ChatEndpoint
    from vidsift.workers.vlm.remote import encode_frame

    wide = np.random.default_rng(4).integers(0, 256, (16, 16000, 3), dtype=np.uint8)
    pixels = ChatEndpoint(tiny_backend, MODEL).pixels("image", [wide], 2.0, {})
    assert pixels.grid_thw == (1, 4, 1010) and pixels.tokens == 1010 == tokens_for(1, 56, 14140)
    letterboxed = np.pad(wide, ((32, 32), (0, 0), (0, 0)))

    def prompt_tokens(image):
        url = "data:image/png;base64," + base64.b64encode(encode_frame(image, "png")).decode()
        body = {"model": MODEL, "max_tokens": 1, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "What?"}]}]}
        answer = httpx.post(chat_url(tiny_server), json=body, timeout=120,
                            headers={"Authorization": f"Bearer {KEY}"})
        assert answer.status_code == 200, answer.text
        return answer.json()["usage"]["prompt_tokens"]

    assert prompt_tokens(wide) == prompt_tokens(letterboxed)


def test_a_streamed_answer_arrives_in_pieces_that_join_to_the_whole(tiny_server, tiny_qwen_dir,
                                                                     api_key):
    """stream() against serve-vlm: the text comes token by token, joins to what generate()
    answers, and the server's usage still checks against the plan."""
    backend = remote(tiny_server, tiny_qwen_dir, api_key_env=api_key)
    pieces: list[str] = []
    try:
        request = VLMRequest(images_token_set(), "What moves?")
        streamed = backend.stream(request, pieces.append)
        whole = backend.generate([request])[0]
    finally:
        backend.shutdown()
    assert len(pieces) >= 3 and "".join(pieces).strip() == streamed.text == whole.text
    assert streamed.usage["prompt_tokens_diff"] == 0
    assert streamed.usage["completion_tokens"] == whole.usage["completion_tokens"] == 6


# ---- failures, on a scripted server -------------------------------------------------------------


class Stream:
    """A chat endpoint answering as server-sent events: the scripted pieces of text (or whole
    events, as dicts), each after its gate (a threading.Event, waited on up to 30 s; None: at
    once), then the usage and [DONE]; with break_after, the connection drops after that many
    pieces instead."""

    def __init__(self, *steps, break_after: int | None = None) -> None:
        self.steps = list(steps)  # (gate, text)
        self.break_after = break_after
        self.seen: list[dict] = []
        self.gates_open: list[bool] = []  # per gate: was it open before its piece was sent

    def app(self):
        import asyncio
        import json

        from fastapi import FastAPI, Request
        from fastapi.responses import StreamingResponse

        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            self.seen.append(await request.json())

            async def events():
                for number, (gate, text) in enumerate(self.steps):
                    if number == self.break_after:
                        raise RuntimeError("the connection drops")
                    if gate is not None:
                        self.gates_open.append(await asyncio.to_thread(gate.wait, 30))
                    chunk = text if isinstance(text, dict) else {
                        "model": MODEL, "choices": [{"index": 0, "delta": {"content": text}}]}
                    yield f"data: {json.dumps(chunk)}\n\n"
                usage = {"prompt_tokens": 100, "completion_tokens": len(self.steps)}
                yield f"data: {json.dumps({'model': MODEL, 'choices': [], 'usage': usage})}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        return app


def test_each_piece_is_handed_on_before_the_rest_arrives(api_key):
    """The first piece reaches on_text while the server still holds back the second."""
    first_shown = threading.Event()
    script = Stream((None, "It waves"), (first_shown, " [2]."))
    pieces: list[str] = []

    def on_text(piece: str) -> None:
        pieces.append(piece)
        first_shown.set()

    with serve(script.app()) as url:
        backend = remote(url, api_key_env=api_key)
        try:
            result = backend.stream(VLMRequest(images_token_set(), "Why?"), on_text)
        finally:
            backend.shutdown()
    assert script.gates_open == [True]
    assert pieces == ["It waves", " [2]."] and result.text == "It waves [2]."
    assert result.usage["prompt_tokens"] == 100 and result.usage["completion_tokens"] == 2
    body = script.seen[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0


def test_a_stream_that_breaks_after_a_piece_fails_at_once(api_key):
    """What was shown cannot be taken back: no retry once a piece has arrived."""
    script = Stream((None, "It wa"), (None, "ves"), break_after=1)
    pieces: list[str] = []
    with serve(script.app()) as url:
        backend = remote(url, api_key_env=api_key, retries=2, backoff_s=0)
        try:
            with pytest.raises(RequestFailedError, match=r"q1: the answer from .* broke off "
                                                         r"after 5 characters \(Remote"):
                backend.stream(VLMRequest(images_token_set(), "Why?", request_id="q1"),
                               pieces.append)
        finally:
            backend.shutdown()
    assert pieces == ["It wa"] and len(script.seen) == 1


def test_an_error_event_in_the_stream_fails_naming_it(api_key):
    script = Stream((None, "It"), (None, {"error": {"message": "the GPU fell over"}}))
    with serve(script.app()) as url:
        backend = remote(url, api_key_env=api_key)
        try:
            with pytest.raises(RequestFailedError, match=r"failed while answering \(the GPU fell "
                                                         r"over\)"):
                backend.stream(VLMRequest(images_token_set(), "Why?"), lambda piece: None)
        finally:
            backend.shutdown()


def test_a_server_that_does_not_stream_hands_on_its_whole_answer(api_key):
    script = Script()
    pieces: list[str] = []
    with serve(script.app()) as url:
        backend = remote(url, api_key_env=api_key)
        try:
            result = backend.stream(VLMRequest(images_token_set(), "Why?"), pieces.append)
        finally:
            backend.shutdown()
    assert pieces == ["It waves [2]."] and result.text == "It waves [2]."
    assert script.seen[0]["body"]["stream"] is True


class Script:
    """A fake-failure chat endpoint: answers the scripted (status, body, headers, delay_s) in
    turn, then 200s; records each request's headers."""

    def __init__(self, *steps) -> None:
        self.steps = list(steps)
        self.seen: list[dict] = []

    def app(self):
        import asyncio

        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse

        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            self.seen.append({"headers": dict(request.headers), "at": time.monotonic(),
                              "body": await request.json()})
            status, body, headers, delay = (self.steps.pop(0) if self.steps
                                            else (200, None, {}, 0))
            await asyncio.sleep(delay)
            if body is None:
                body = {"model": MODEL, "choices": [{"message": {"content": "It waves [2]."}}],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 4}}
            return JSONResponse(body, status_code=status, headers=headers)

        return app


def _ask(backend):
    return backend.generate([VLMRequest(images_token_set(), "Why?", request_id="q1")])[0]


def test_429_waits_as_told_then_succeeds(api_key):
    script = Script((429, {"error": {"message": "slow down"}}, {"Retry-After": "0.4"}, 0))
    with serve(script.app()) as url:
        backend = remote(url, api_key_env=api_key, retries=2, backoff_s=0.01)
        try:
            result = _ask(backend)
        finally:
            backend.shutdown()
    assert result.text == "It waves [2]." and result.usage["attempts"] == 2
    assert script.seen[1]["at"] - script.seen[0]["at"] >= 0.4  # Retry-After, not the 0.01 s backoff
    assert all(s["headers"]["authorization"] == f"Bearer {KEY}" for s in script.seen)
    body = script.seen[0]["body"]
    assert body["model"] == MODEL and body["max_tokens"] == 6 and body["temperature"] == 0
    # The server reported prompt tokens but no tokenizer is configured: reported, not compared.
    assert result.usage["prompt_tokens"] == 100 and "prompt_tokens_diff" not in result.usage


def test_500_is_retried_with_backoff_then_fails_naming_the_cause(api_key):
    failure = (500, {"error": {"message": "CUDA out of memory"}}, {}, 0)
    script = Script(*[failure] * 3)
    with serve(script.app()) as url:
        backend = remote(url, api_key_env=api_key, retries=2, backoff_s=0.1)
        try:
            with pytest.raises(RequestFailedError, match=r"q1: .* failed on 3 attempt\(s\) \(HTTP "
                                                         r"500 Internal Server Error: CUDA out of memory"):
                _ask(backend)
        finally:
            backend.shutdown()
    gaps = [b["at"] - a["at"] for a, b in zip(script.seen, script.seen[1:])]
    assert len(script.seen) == 3 and gaps[0] >= 0.1 and gaps[1] >= 0.2  # 0.1 s, then doubled


def test_timeouts_are_retried_then_fail(api_key):
    script = Script((200, None, {}, 2.0), (200, None, {}, 2.0))
    with serve(script.app()) as url:
        backend = remote(url, api_key_env=api_key, timeout_s=0.3, retries=1, backoff_s=0)
        started = time.monotonic()
        try:
            with pytest.raises(RequestFailedError, match=r"failed on 2 attempt\(s\) \(timed out "
                                                         r"after 0.3 s; timed out after 0.3 s\)"):
                _ask(backend)
        finally:
            backend.shutdown()
    assert time.monotonic() - started < 3.0


def test_401_fails_at_once_and_the_key_is_never_shown(api_key, caplog):
    echo = {"error": {"message": f"invalid key Bearer {KEY}"}}
    script = Script((401, echo, {}, 0))
    caplog.set_level(logging.DEBUG)
    with serve(script.app()) as url:
        backend = remote(url, api_key_env=api_key, retries=3)
        try:
            with pytest.raises(RequestFailedError) as failure:
                _ask(backend)
        finally:
            backend.shutdown()
    message = str(failure.value)
    assert "refused the request (HTTP 401 Unauthorized: invalid key Bearer [redacted])" in message
    assert len(script.seen) == 1  # a 4xx is not retried
    assert KEY not in message and KEY not in repr(backend) and KEY not in caplog.text


def test_configuration_errors_name_the_setting(monkeypatch):
    monkeypatch.delenv("VIDSIFT_ABSENT_KEY", raising=False)
    with pytest.raises(ConfigError, match="vlm.base_url is not set"):
        get_vlm(VLMConfig(backend="openai", model=MODEL))
    with pytest.raises(ConfigError, match="names VIDSIFT_ABSENT_KEY, which is not set"):
        get_vlm(VLMConfig(backend="openai", model=MODEL, base_url="http://x",
                          api_key_env="VIDSIFT_ABSENT_KEY"))


def test_urls_retry_after_and_the_planning_spec():
    assert chat_url("http://h:8000") == chat_url("http://h:8000/v1/") == \
        "http://h:8000/v1/chat/completions"
    assert retry_after_s("2") == 2.0 and retry_after_s(None) is None
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0 and retry_after_s("soon") is None
    # Clips shown as images plan each frame at a full image's cost; as video parts they merge.
    images = load_config(None, ["vlm.backend=openai"]).vision_spec()
    assert images.temporal_patch_size == 1 and tokens_for(3, 56, 56, images) == 12
    video = load_config(None, ["vlm.backend=openai", "vlm.clips=video"]).vision_spec()
    assert video == load_config(None).vision_spec() == QWEN2_5_VL


@pytest.mark.parametrize("rate", [0.0, 0.5, 0.75, 0.9])
def test_plan_for_a_server_pruning_videos_with_evs_predicts_vllms_count(rate):
    """vlm.server_pruning_rate: a clip sent as a video part keeps vLLM's EVS count
    max(H * W, int(T * H * W * (1 - q))) (vllm/multimodal/evs.py); images keep all."""
    from vidsift.core.types import SegmentKind
    from vidsift.workers.vlm.remote import server_visual_tokens

    from tests.tiny_vlm import random_segment

    f = QWEN2_5_VL.factor
    token_set = TokenSet("v.mp4", [
        random_segment(SegmentKind.IMAGE, [0.0], 2 * f, 3 * f, 0),  # 6 tokens
        random_segment(SegmentKind.CLIP, [1.0 + i / 2 for i in range(8)], 4 * f, 5 * f, 1),  # 4 x 20
        random_segment(SegmentKind.CLIP, [9.0, 9.5, 10.0], 2 * f, 2 * f, 2),  # 2 x 4 (padded)
    ], budget=200)
    assert [s.tokens for s in token_set.segments] == [6, 80, 8]
    vllm = 6 + max(20, int(20 * 4 * (1 - rate))) + max(4, int(4 * 2 * (1 - rate)))
    as_video = VLMConfig(backend="openai", model="m", clips="video", server_pruning_rate=rate)
    assert server_visual_tokens(token_set, as_video) == vllm
    as_images = VLMConfig(backend="openai", model="m", server_pruning_rate=rate)
    assert server_visual_tokens(token_set, as_images) == 94  # images are not pruned by EVS
