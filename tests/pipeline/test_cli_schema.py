"""`vidsift ask --schema`, the installed console script run as a user runs it: the answer follows
the schema file (through vlm.backend=openai against serve-vlm serving the tiny random Qwen2.5-VL,
which decodes constrained to it), and a schema that cannot be used is one line naming the file
and the problem, before Ray or any model starts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vidsift.core.config import VLMConfig
from vidsift.core.schema import parse_answer
from vidsift.pipeline.service.openai_server import create_app
from vidsift.workers.vlm import get_vlm

from tests.http_servers import serve

VIDSIFT = Path(sys.executable).parent / "vidsift"  # the venv's console script
SCHEMA = {"type": "object", "properties": {
    "colour": {"enum": ["red", "green", "blue"]}, "bars": {"type": "integer", "minimum": 0},
    "where": {"type": "string"}}, "required": ["colour", "bars", "where"]}


@pytest.mark.parametrize("text, problem", [
    ('{"type": "object",', "not valid JSON (Expecting property name enclosed in double quotes "
                           "at line 1 column 19)"),
    ('{"type": "strin"}', "not a valid JSON Schema ("),
    ('{"$ref": "#/$defs/absent"}', "the grammar library cannot compile it ("),
])
def test_a_bad_schema_file_is_one_line_naming_it(coded_video, tmp_path, text, problem):
    schema = tmp_path / "answer.schema.json"
    schema.write_text(text)
    started = time.monotonic()
    ask = subprocess.run([str(VIDSIFT), "ask", str(coded_video), "where are the bars?",
                          "--schema", str(schema), "--model", "tiny"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)})
    lines = ask.stderr.strip().splitlines()
    assert ask.returncode == 1 and len(lines) == 1, ask.stderr
    assert lines[0].startswith(f"error: {schema}: {problem}")
    assert time.monotonic() - started < 15  # refused before any pool starts


def test_ask_with_a_schema_answers_json_that_follows_it(ray_cluster, coded_video, tmp_path,
                                                        tiny_qwen_dir):
    schema = tmp_path / "bars.json"
    schema.write_text(json.dumps(SCHEMA))
    backend = get_vlm(VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32",
                                max_new_tokens=128, json_max_string=12, json_max_items=2))
    address = ray_cluster.get_runtime_context().gcs_address
    with serve(create_app(backend, "tiny-qwen")) as url:
        ask = subprocess.run(
            [str(VIDSIFT), "ask", str(coded_video), "where are the bars?", "--schema",
             str(schema), "--json",
             "--set", "vlm.backend=openai", "--set", f"vlm.base_url={url}",
             "--set", "vlm.model=tiny-qwen", "--set", "embed.ocr=false",
             "--set", "budget.tokens=256", "--set", f"index.dir={tmp_path / 'index'}",
             "--set", f"ray.address={address}"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert ask.returncode == 0, ask.stderr
    result = json.loads(ask.stdout)
    assert result["answer_json"] == parse_answer(result["answer"], SCHEMA)
    assert result["answer_json"]["colour"] in ("red", "green", "blue")
