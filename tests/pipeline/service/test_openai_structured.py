"""Structured answers over the wire, on a real socket (127.0.0.1) serving the tiny random
Qwen2.5-VL: serve-vlm honours response_format (json_schema, json_object) with constrained
decoding, whole and streamed, as the official openai SDK asks; vidsift's openai backend sends
a request's schema as response_format and validates the reply; a bad schema is a 422 naming the
problem."""

import json

import openai
import pytest

from vidsift.core.config import VLMConfig
from vidsift.core.schema import AnswerSchemaError, parse_answer
from vidsift.core.types import VLMRequest
from vidsift.pipeline.service.openai_server import create_app
from vidsift.workers.vlm import get_vlm
from vidsift.workers.vlm.remote import OpenAIBackend

from tests.http_servers import serve
from tests.tiny_vlm import random_token_set

MODEL = "tiny-qwen"
SCHEMA = {"type": "object", "properties": {
    "label": {"enum": ["cat", "dog"]}, "count": {"type": "integer", "minimum": 0},
    "notes": {"type": "array", "items": {"type": "string"}}},
    "required": ["label", "count", "notes"]}


@pytest.fixture(scope="module")
def served(tiny_qwen_dir):
    backend = get_vlm(VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32",
                                max_new_tokens=256, json_max_string=6, json_max_items=2))
    with serve(create_app(backend, MODEL)) as url:
        yield url


@pytest.fixture(scope="module")
def client(served):
    return openai.OpenAI(base_url=f"{served}/v1", api_key="unused", max_retries=0)


def asking(**extra) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "Count the animals."}],
            **extra}


def json_schema(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "count", "schema": schema,
                                                   "strict": True}}


def test_response_format_json_schema_answers_validate_whole_and_streamed(client):
    for seed in range(4):
        answer = client.chat.completions.create(**asking(
            response_format=json_schema(SCHEMA), temperature=1, seed=seed))
        parse_answer(answer.choices[0].message.content, SCHEMA)
        assert answer.choices[0].finish_reason == "stop"
    free = client.chat.completions.create(**asking(temperature=1, seed=0, max_tokens=40))
    with pytest.raises(AnswerSchemaError):
        parse_answer(free.choices[0].message.content, SCHEMA)
    arguments = asking(response_format=json_schema(SCHEMA), temperature=0)
    whole = client.chat.completions.create(**arguments).choices[0].message.content
    pieces = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        stream=True, **arguments) if c.choices]
    assert "".join(pieces) == whole and len(pieces) > 3


def test_response_format_json_object_answers_an_object(client):
    answer = client.chat.completions.create(**asking(
        response_format={"type": "json_object"}, temperature=1, seed=3))
    assert isinstance(json.loads(answer.choices[0].message.content), dict)


@pytest.mark.parametrize("schema, reason", [
    ({"type": "strin"}, "not a valid JSON Schema"),
    ({"$ref": "#/$defs/absent"}, "the grammar library cannot compile it"),
    ([1, 2], "a JSON Schema must be an object"),
])
def test_a_bad_schema_is_a_422_naming_the_problem(client, schema, reason):
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        client.chat.completions.create(**asking(response_format=json_schema(schema)))
    assert refused.value.status_code == 422 and reason in refused.value.body["message"]
    assert refused.value.param == "response_format.json_schema.schema"


def test_a_bad_response_format_is_a_400_naming_it(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(**asking(response_format={"type": "grammar"}))
    assert refused.value.param == "response_format.type"


def test_the_openai_backend_sends_the_schema_and_validates_the_reply(served):
    backend = OpenAIBackend(VLMConfig(backend="openai", model=MODEL, base_url=served,
                                      max_new_tokens=256, retries=0))
    try:
        schema_result, free_result = backend.generate([
            VLMRequest(random_token_set(0), "How many?", schema=SCHEMA),
            VLMRequest(random_token_set(0), "How many?", max_new_tokens=30)])
        assert schema_result.answer_json == json.loads(schema_result.text)
        assert schema_result.answer_json["label"] in ("cat", "dog")
        assert free_result.answer_json is None
        # a reply the schema does not admit (the server's cap cuts the JSON) is an error
        # carrying the raw text
        with pytest.raises(AnswerSchemaError, match="raw answer"):
            backend.generate([VLMRequest(random_token_set(0), "How many?", max_new_tokens=4,
                                         schema=SCHEMA)])
    finally:
        backend.shutdown()
