"""Structured answers on the tiny random Qwen2.5-VL: constrained decoding (xgrammar as a logits
processor) gives JSON that validates against each schema, sampled answer after sampled answer,
where the same model unconstrained writes none; the schema checks name what is wrong."""

from __future__ import annotations

import json

import pytest

from vidsift.core.config import VLMConfig
from vidsift.core.schema import (
    AnswerSchemaError, SchemaError, bounded_schema, check_schema, load_schema, parse_answer,
)
from vidsift.core.types import VLMRequest
from vidsift.core.vision import QWEN3_VL
from vidsift.workers.vlm import get_vlm
from vidsift.workers.vlm.base import Sampling
from vidsift.workers.vlm.structured import check_compiles

from tests.tiny_vlm import random_token_set

# The three acceptance schemas (bench/structured.py measures 100 answers of each).
OBJECT = {"type": "object", "properties": {
    "answer": {"type": "string"}, "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    "seen": {"type": "boolean"}}, "required": ["answer", "confidence", "seen"]}
ARRAY = {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
    "kind": {"enum": ["person", "animal", "vehicle"]}, "count": {"type": "integer", "minimum": 0},
    "start": {"type": "number"}}, "required": ["kind", "count", "start"]}}
NESTED = {"type": "object", "properties": {
    "title": {"type": "string"},
    "chapters": {"type": "array", "items": {"type": "object", "properties": {
        "span": {"type": "object", "properties": {"start": {"type": "number"},
                                                  "end": {"type": "number"}},
                 "required": ["start", "end"]},
        "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["span", "tags"]}}},
    "required": ["title", "chapters"]}
SCHEMAS = {"object": OBJECT, "array": ARRAY, "nested": NESTED}
# Small bounds so a random model's longest JSON fits the cap (the grammar forces closure).
BOUNDS = {"json_max_string": 8, "json_max_items": 2}
CAP = 512


@pytest.fixture(scope="module")
def vlm(tiny_qwen_dir):
    return get_vlm(VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32",
                             max_new_tokens=CAP, **BOUNDS))


def sampled(vlm, grammar, seeds) -> list[str]:
    prompt = vlm.build_inputs(VLMRequest(random_token_set(0), "Describe it as JSON."))
    texts = []
    for seed in seeds:
        tokens = vlm.generate_prompts([prompt], [None], sampling=Sampling(1.0, 1.0, seed),
                                      grammars=[grammar])[0][0]
        texts.append(vlm.tokenizer.decode(tokens, skip_special_tokens=True).strip())
    return texts


def valid(text: str, schema: dict) -> bool:
    try:
        parse_answer(text, schema)
    except AnswerSchemaError:
        return False
    return True


@pytest.mark.parametrize("name", SCHEMAS)
def test_constrained_answers_all_validate_unconstrained_ones_do_not(vlm, name):
    schema = SCHEMAS[name]
    constrained = sampled(vlm, vlm.grammars.compile(schema), range(10))
    assert all(valid(text, schema) for text in constrained), constrained
    assert len(set(constrained)) > 1  # sampled: different answers, each valid
    free = sampled(vlm, None, range(3))
    assert not any(valid(text, schema) for text in free)


def test_generate_returns_answer_json_and_leaves_free_rows_alone(vlm):
    free = VLMRequest(random_token_set(1), "q", max_new_tokens=8)
    alone = vlm.generate([free])[0]
    results = vlm.generate([VLMRequest(random_token_set(1), "q", schema=OBJECT), free])
    assert set(results[0].answer_json) == {"answer", "confidence", "seen"}
    assert json.loads(results[0].text) == results[0].answer_json
    assert results[1].text == alone.text and results[1].answer_json is None


def test_qwen3_vl_decodes_constrained_too(tiny_qwen3_dir):
    qwen3 = get_vlm(VLMConfig(backend="qwen3_vl", model=str(tiny_qwen3_dir), device="cpu",
                              dtype="float32", max_new_tokens=CAP, **BOUNDS))
    (result,) = qwen3.generate([VLMRequest(random_token_set(0, spec=QWEN3_VL), "q",
                                           schema=ARRAY)])
    assert result.answer_json == json.loads(result.text) and result.answer_json


def test_json_cut_short_by_the_cap_is_an_error_with_the_raw_text(vlm):
    with pytest.raises(AnswerSchemaError, match="raw answer: '{") as caught:
        vlm.generate([VLMRequest(random_token_set(1), "q", max_new_tokens=5, schema=OBJECT)])
    assert caught.value.text.startswith("{")


def test_bounded_schema_only_adds_bounds():
    bounded = bounded_schema(NESTED, 8, 2)
    chapter = bounded["properties"]["chapters"]
    assert bounded["properties"]["title"]["maxLength"] == 8 and chapter["maxItems"] == 2
    assert chapter["items"]["properties"]["tags"]["items"]["maxLength"] == 8
    span = chapter["items"]["properties"]["span"]["properties"]["start"]
    assert span["minimum"] < -1e14 and span["maximum"] > 1e14
    assert "maxLength" not in NESTED["properties"]["title"]  # the user's schema is untouched
    assert bounded_schema({"type": "string", "minLength": 20}, 8, 2)["maxLength"] == 20


def test_bad_schemas_name_the_file_and_the_problem(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "object",')
    with pytest.raises(SchemaError, match=r"broken.json: not valid JSON \(.* line 1"):
        load_schema(broken)
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"type": "strin"}')
    with pytest.raises(SchemaError, match="wrong.json: not a valid JSON Schema"):
        load_schema(wrong)
    with pytest.raises(SchemaError, match="cannot read"):
        load_schema(tmp_path / "absent.json")
    with pytest.raises(SchemaError, match="must be an object"):
        check_schema([1])
    with pytest.raises(SchemaError, match=r"grammar library cannot compile it \(.*nope"):
        check_compiles({"$ref": "#/$defs/nope"})
    with pytest.raises(SchemaError, match="^schema: minLength 1000000000 is more than any"):
        check_compiles({"type": "string", "minLength": 10**9})
