"""The HTTP ask job's `schema`: the result's answer_json follows it (vlm.backend=openai against
serve-vlm serving the tiny random Qwen2.5-VL, constrained there), and a schema that cannot be
used is a 422 naming the problem, before any job is queued."""

import pytest

from vidsift.core.config import VLMConfig
from vidsift.core.schema import parse_answer
from vidsift.pipeline.service.jobs import SUCCEEDED
from vidsift.pipeline.service.openai_server import create_app
from vidsift.workers.vlm import get_vlm

from tests.http_servers import serve
from tests.pipeline.service.test_http import _config, _wait_all, media_root, running  # noqa: F401

SCHEMA = {"type": "object", "properties": {
    "shown": {"type": "array", "items": {"enum": ["bars", "text", "noise"]}, "minItems": 1},
    "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
    "required": ["shown", "confidence"]}


@pytest.mark.parametrize("schema, message", [
    ({"type": "strin"}, "schema: not a valid JSON Schema ("),
    ({"$ref": "#/$defs/absent"}, "schema: the grammar library cannot compile it ("),
    ("an object", "schema: Input should be a valid dictionary"),
])
def test_a_bad_schema_is_a_422_naming_the_problem(media_root, tmp_path, schema,  # noqa: F811
                                                  message):
    with running(_config(media_root, tmp_path / "svc")) as client:
        refused = client.post("/v1/jobs", json={"video": "short.mp4", "question": "what?",
                                                "schema": schema})
        assert refused.status_code == 422, refused.text
        assert refused.json()["details"][0].startswith(message)
        assert client.get("/v1/jobs").json()["total"] == 0


def test_an_ask_job_with_a_schema_answers_json_that_follows_it(ray_cluster, media_root,  # noqa: F811
                                                               tiny_qwen_dir, tmp_path):
    served = get_vlm(VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32",
                               max_new_tokens=96, json_max_items=3))
    with serve(create_app(served, "tiny-qwen")) as vlm_url:
        cfg = _config(media_root, tmp_path / "svc", "vlm.backend=openai",
                      f"vlm.base_url={vlm_url}", "vlm.model=tiny-qwen", "vlm.max_new_tokens=96")
        body = {"video": str(media_root / "short.mp4"), "question": "what is shown?",
                "schema": SCHEMA}
        with running(cfg) as client:
            job = _wait_all(client, [client.post("/v1/jobs", json=body).json()["id"]])
    (job,) = job.values()
    assert job["status"] == SUCCEEDED, job["error"]
    result = job["result"]
    assert result["answer_json"] == parse_answer(result["answer"], SCHEMA)
