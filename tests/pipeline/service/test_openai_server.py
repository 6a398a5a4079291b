"""`vidsift serve-vlm` as the official openai SDK uses it, on a real socket (127.0.0.1) serving
the tiny random Qwen2.5-VL: streamed answers (server-sent events) equal whole ones, a system
message and earlier turns go through the chat template, seeded sampling repeats, stop strings
end the answer, and every field the server does not honour is a 400 naming it, in OpenAI's error
shape. Also what serve-vlm refuses before loading any model."""

import base64

import httpx
import numpy as np
import openai
import pytest
from typer.testing import CliRunner

from vidsift.core.config import VLMConfig
from vidsift.pipeline.cli import app
from vidsift.pipeline.service.openai_server import create_app
from vidsift.workers.vlm import get_vlm
from vidsift.workers.vlm.remote import encode_frame

from tests.http_servers import serve

MODEL = "tiny-qwen"
DEFAULT_SYSTEM = "You are a helpful assistant."  # the tiny template's, as Qwen2.5-VL's


@pytest.fixture(scope="module")
def served(tiny_qwen_dir):
    backend = get_vlm(VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32",
                                max_new_tokens=24))
    with serve(create_app(backend, MODEL)) as url:
        yield url, backend


@pytest.fixture(scope="module")
def client(served):
    return openai.OpenAI(base_url=f"{served[0]}/v1", api_key="unused", max_retries=0)


def image_part(seed: int = 0, height: int = 56, width: int = 84) -> dict:
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    url = "data:image/png;base64," + base64.b64encode(encode_frame(image, "png")).decode()
    return {"type": "image_url", "image_url": {"url": url}}


def asking(question: str = "What is shown?", **extra) -> dict:
    """SDK create() arguments: one user turn holding an image and the question."""
    return {"model": MODEL, "messages": [{"role": "user", "content": [
        image_part(), {"type": "text", "text": question}]}], **extra}


def streamed(client, **arguments) -> tuple[dict[int, list[str]], list]:
    """create(stream=True) -> (per choice index its content deltas in order, every chunk)."""
    chunks = list(client.chat.completions.create(stream=True, **arguments))
    deltas: dict[int, list[str]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            if choice.delta.content:
                deltas.setdefault(choice.index, []).append(choice.delta.content)
    return deltas, chunks


def test_a_streamed_answer_is_the_whole_answer_token_by_token(client):
    """Before: stream=True answered HTTP 200 JSON, from which the SDK yielded no chunk."""
    arguments = asking(temperature=0, max_tokens=20)
    whole = client.chat.completions.create(**arguments)
    deltas, chunks = streamed(client, stream_options={"include_usage": True}, **arguments)
    text = whole.choices[0].message.content
    assert text and "".join(deltas[0]) == text
    assert len(deltas[0]) >= 5  # sent as the tokens were generated, not as one piece
    assert chunks[0].choices[0].delta.role == "assistant"
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == [whole.choices[0].finish_reason]
    # include_usage: one last chunk without choices carries the usage; the others carry none
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert whole.usage.completion_tokens == 20 and whole.choices[0].finish_reason == "length"


def test_the_stream_ends_with_done_and_without_usage_unless_asked(served):
    body = {**asking(temperature=0, max_tokens=4), "stream": True}
    with httpx.stream("POST", f"{served[0]}/v1/chat/completions", json=body, timeout=60) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = [line for line in answer.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in events)
    assert all('"usage"' not in line for line in events)


def test_a_system_message_and_earlier_turns_go_through_the_chat_template(client, served,
                                                                         tiny_qwen_dir):
    """Before: 400 "messages must be exactly one user message". The prompt the server counts is
    the checkpoint's own chat template over all turns: the tiny tokenizer's one token per byte
    makes a system message's length show in usage.prompt_tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen_dir)
    system = "Answer in one word."
    conversation = [
        {"role": "system", "content": system},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": [{"type": "text", "text": "And another?"}]},
    ]

    def prompt_tokens(messages) -> int:
        answer = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=1)
        return answer.usage.prompt_tokens

    flat = [{**m, "content": m["content"] if isinstance(m["content"], str)
             else m["content"][0]["text"]} for m in conversation]
    assert prompt_tokens(conversation) == len(tokenizer.apply_chat_template(
        flat, tokenize=True, add_generation_prompt=True)["input_ids"])
    # The system message replaces the template's default one, byte for byte.
    assert prompt_tokens(conversation) - prompt_tokens(conversation[1:]) \
        == len(system) - len(DEFAULT_SYSTEM)
    # developer is OpenAI's newer name for system
    as_developer = [{"role": "developer", "content": system}, *conversation[1:]]
    assert prompt_tokens(as_developer) == prompt_tokens(conversation)
    # An image in an earlier user turn is seen: <|vision_start|>, its 6 visual tokens (56 x 84),
    # <|vision_end|>.
    with_image = [conversation[0], {"role": "user", "content": [image_part(), {
        "type": "text", "text": "Name a colour."}]}, *conversation[2:]]
    assert prompt_tokens(with_image) == prompt_tokens(conversation) + 8


def test_seeded_sampling_repeats_and_temperature_zero_is_greedy(client):
    """Before: temperature, top_p and seed were silently ignored (always greedy)."""
    def texts(**extra) -> list[str]:
        answer = client.chat.completions.create(**asking(max_tokens=12, **extra))
        return [choice.message.content for choice in answer.choices]

    seeded = texts(temperature=1.0, seed=11)
    assert texts(temperature=1.0, seed=11) == seeded
    assert texts(temperature=1.0, top_p=0.9, seed=11) == texts(temperature=1.0, top_p=0.9, seed=11)
    others = [texts(temperature=1.0, seed=seed)[0] for seed in (12, 13, 14)]
    assert any(other != seeded[0] for other in others)  # the seed, not greed, chose the tokens
    greedy = texts(temperature=0)
    assert greedy[0] not in others
    assert texts(temperature=0, seed=12) == texts(temperature=0, seed=99) == greedy
    # n choices: choice k draws with seed + k, streamed or not; greedy choices are all alike
    three = texts(temperature=1.0, seed=11, n=3)
    assert three[0] == seeded[0] and three[1:] == [others[0], others[1]]
    deltas, _ = streamed(client, **asking(max_tokens=12, temperature=1.0, seed=11, n=3))
    assert ["".join(deltas[k]) for k in range(3)] == three
    assert texts(temperature=0, n=2) == greedy * 2


def test_stop_ends_the_answer_before_the_first_stop_string(client):
    """Before: stop was silently ignored."""
    whole = client.chat.completions.create(**asking(temperature=0, max_tokens=20))
    text = whole.choices[0].message.content
    at = next(i for i in range(1, len(text) - 1)
              if "\ufffd" not in text[i:i + 2] and text[i:i + 2].strip())
    stop = text[at:at + 2]
    expected = text[:text.find(stop)].strip()
    for stops in (stop, [stop, "never in it \u2603"]):
        cut = client.chat.completions.create(**asking(temperature=0, max_tokens=20, stop=stops))
        assert cut.choices[0].message.content == expected
        assert cut.choices[0].finish_reason == "stop"
        assert cut.usage.completion_tokens < 20
        deltas, chunks = streamed(client, **asking(temperature=0, max_tokens=20, stop=stops))
        assert "".join(deltas.get(0, [])) == expected
        assert chunks[-1].choices[0].finish_reason == "stop"


def test_generation_stops_at_the_next_token_once_the_client_is_gone(served):
    """A stream's generation holds the model: when the client goes (the stream's cancelled flag),
    it ends at the next token rather than at max_tokens."""
    from vidsift.pipeline.service.openai_server import ChatEndpoint

    endpoint = ChatEndpoint(served[1], MODEL)
    chat = endpoint.prepare(asking(temperature=0, max_tokens=24, stream=True))
    pieces = []
    endpoint.run(chat, pieces.append, cancelled=lambda: bool(pieces))
    assert pieces[-1].finish_reason is not None and pieces[-1].tokens < 6
    assert not endpoint.lock.locked()


UNSUPPORTED = {
    "tools": [{"type": "function", "function": {"name": "look", "parameters": {}}}],
    "tool_choice": "auto",
    "logprobs": True,
    "top_logprobs": 2,
    "frequency_penalty": 0.5,
    "presence_penalty": 1.0,
    "logit_bias": {"65": 5},
    "user": "someone",
    "metadata": {"k": "v"},
    "modalities": ["text", "audio"],
    "reasoning_effort": "low",
    "service_tier": "flex",
    "parallel_tool_calls": True,
    "prediction": {"type": "content", "content": "x"},
    "guided_json": {"type": "object"},  # vLLM's own extension, not this server's
}


@pytest.mark.parametrize("field", sorted(UNSUPPORTED))
def test_each_unsupported_field_is_a_400_naming_it(client, field):
    """Before: n, stop, tools, logprobs, ... were silently dropped."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(**asking(max_tokens=2), extra_body={
            field: UNSUPPORTED[field]})
    error = refused.value
    assert error.status_code == 400 and error.param == field
    assert error.code == "unsupported_parameter" and error.type == "invalid_request_error"
    assert error.body["message"].startswith(f"{field} is not supported by this server")


def test_the_values_that_ask_for_nothing_are_accepted(client):
    """Null, and OpenAI's defaults of what this server does not do, change nothing."""
    answer = client.chat.completions.create(**asking(
        max_tokens=2, temperature=0, frequency_penalty=0, presence_penalty=0, logprobs=False,
        response_format={"type": "text"}), extra_body={"tools": None, "tool_choice": "none"})
    assert answer.choices[0].finish_reason in ("stop", "length")


@pytest.mark.parametrize("messages, param, message", [
    ([{"role": "tool", "content": "42", "tool_call_id": "a"}], "messages[0].role",
     "messages[0].role 'tool' is not supported"),
    ([{"role": "user", "content": "hi", "name": "ann"}], "messages[0].name",
     "messages[0].name is not supported by this server"),
    ([{"role": "system", "content": [image_part()]}, {"role": "user", "content": "hi"}],
     "messages[0].content[0]", "only a user message may hold images and videos"),
    ([{"role": "user", "content": [{**image_part(), "image_url": {
        "url": image_part()["image_url"]["url"], "detail": "low"}}]}],
     "messages[0].content[0].image_url.detail", "detail 'low' is not supported"),
    ([{"role": "assistant", "content": None}], "messages[0].content",
     "messages[0].content is missing"),
])
def test_a_message_the_server_cannot_take_is_a_400_naming_its_part(client, messages, param,
                                                                     message):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=messages, max_tokens=2)
    assert refused.value.param == param and message in refused.value.body["message"]


@pytest.mark.parametrize("body, status, param, message", [
    ({"max_tokens": "abc"}, 400, "max_tokens", 'max_tokens must be an integer (got "abc")'),
    ({"max_tokens": 0}, 400, "max_tokens", "max_tokens must be from 1 to"),
    ({"max_completion_tokens": 2.5}, 400, "max_completion_tokens", "must be an integer"),
    ({"temperature": "hot"}, 400, "temperature", 'temperature must be a number (got "hot")'),
    ({"temperature": 2.5}, 400, "temperature", "temperature must be from 0 to 2 (got 2.5)"),
    ({"top_p": 0}, 400, "top_p", "top_p must be above 0 and at most 1 (got 0)"),
    ({"seed": True}, 400, "seed", "seed must be an integer (got true)"),
    ({"n": 0}, 400, "n", "n must be from 1 to 16 (got 0)"),
    ({"stop": 5}, 400, "stop", "stop must be a string or a list of strings"),
    ({"stop": ["a", "b", "c", "d", "e"]}, 400, "stop", "stop takes 1 to 4 non-empty strings"),
    ({"stream": "yes"}, 400, "stream", "stream must be true or false"),
    ({"stream_options": {"include_usage": True}}, 400, "stream_options",
     "stream_options is only allowed when stream is true"),
    ({"stream": True, "stream_options": {"include_usage": 1}}, 400,
     "stream_options.include_usage", "must be true or false"),
    ({"messages": "hi"}, 400, "messages", "messages must be a non-empty list of messages"),
    ({"messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content",
     "messages[0].content must be a string or a list of parts"),
    ({"model": 7}, 400, "model", "model must be a string"),
    ({"model": "gpt-4o"}, 404, "model", "model 'gpt-4o' is not served here"),
])
def test_a_wrong_value_is_4xx_json_in_openai_error_shape(served, body, status, param, message):
    """Before: "max_tokens": "abc" was a 500 with a plain-text body."""
    request = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **body}
    answer = httpx.post(f"{served[0]}/v1/chat/completions", json=request, timeout=60)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and message in error["message"]
    assert error["type"] == "invalid_request_error"


def test_every_other_error_is_json_in_openai_error_shape(served):
    url = served[0]
    answers = {
        "not JSON": httpx.post(f"{url}/v1/chat/completions", content=b"{oops",
                               headers={"content-type": "application/json"}),
        "a list": httpx.post(f"{url}/v1/chat/completions", json=[1]),
        "no route": httpx.get(f"{url}/v1/completions"),
        "wrong method": httpx.get(f"{url}/v1/chat/completions"),
    }
    assert {name: a.status_code for name, a in answers.items()} == {
        "not JSON": 400, "a list": 400, "no route": 404, "wrong method": 405}
    for answer in answers.values():
        assert set(answer.json()["error"]) == {"message", "type", "param", "code"}


def test_a_model_is_described_by_its_id(client):
    """Before: GET /v1/models/{id} was a 404 with no message."""
    model = client.models.retrieve(MODEL)
    assert (model.id, model.object, model.owned_by) == (MODEL, "model", "vidsift")
    assert [m.id for m in client.models.list()] == [MODEL]
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-4o")
    assert missing.value.code == "model_not_found" and "'gpt-4o' does not exist" in str(
        missing.value)


def test_a_model_named_like_a_path_is_described_too(tiny_qwen_dir):
    """serve-vlm names the model by --model unless --served-name: often a path or hub id."""
    backend = get_vlm(VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32"))
    with serve(create_app(backend, "org/tiny-qwen")) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        assert client.models.retrieve("org/tiny-qwen").id == "org/tiny-qwen"


def test_serve_vlm_needs_a_key_off_loopback_and_a_local_backend(monkeypatch):
    monkeypatch.delenv("VIDSIFT_ABSENT_KEY", raising=False)
    cases = [
        (["--host", "0.0.0.0"], "serving on 0.0.0.0 needs an API key: pass --api-key-env NAME"),
        (["--api-key-env", "VIDSIFT_ABSENT_KEY"], "names VIDSIFT_ABSENT_KEY, which is not set"),
        (["--set", "vlm.backend=openai"], "serve-vlm serves an in-process model"),
    ]
    for extra, message in cases:
        outcome = CliRunner().invoke(app, ["serve-vlm", "--model", "/models/qwen", *extra])
        assert outcome.exit_code == 1, outcome.output
        assert message in " ".join(outcome.output.split())
