"""Property-based tests of the HTTP API against its own OpenAPI schema (schemathesis): every
route, with generated valid and invalid requests, answers no 5xx, only the statuses and media
types it declares, and bodies that match its declared schemas. A few hand-made cases reach what
generated data cannot (a real video, whole and in ranges; a job that exists).

The service runs evidence-only with no job workers (serve.workers=0): the jobs it accepts stay
queued, so no Ray pool starts; the media root holds one tiny generated video."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.pipeline.service.test_http import _config, running
from tests.videos import make_coded_video
from vidsift.core.config import load_config
from vidsift.pipeline.service.http import create_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES_PER_ROUTE = 25  # 16 routes in about 20 s on 2 cores; derandomized: the same every run

# The schema the app publishes at /openapi.json (it does not depend on the app's directories;
# test_the_served_schema_is_the_one_checked holds it to that).
APP_SCHEMA = create_app(load_config("default", ["vlm.model=none"])).openapi()
schema = schemathesis.openapi.from_dict(APP_SCHEMA)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """An httpx client of the app on a real socket, its media root holding tiny.mp4."""
    root = tmp_path_factory.mktemp("fuzz_media")
    make_coded_video(root / "tiny.mp4", n_frames=10, fps=10, size=(64, 48), gop=10)
    data_dir = tmp_path_factory.mktemp("fuzz_service")
    with running(_config(root, data_dir, "serve.workers=0")) as client:
        yield client


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_ROUTE, derandomize=True, database=None, deadline=None)
def test_every_route_keeps_its_contract(case, service):
    case.validate_response(case.call(base_url=str(service.base_url)), checks=CHECKS)


def _checked(service, method: str, path: str, **data):
    """A hand-made case sent and checked like the generated ones; returns the response."""
    case = schema[path][method].Case(**data)
    response = case.call(base_url=str(service.base_url))
    case.validate_response(response, checks=CHECKS)
    return response


def test_a_real_video_whole_and_in_ranges_and_a_real_job_keep_the_contract(service):
    size = len(_checked(service, "GET", "/v1/media", query={"path": "tiny.mp4"}).content)
    part = _checked(service, "GET", "/v1/media", query={"path": "tiny.mp4"},
                    headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and len(part.content) == 10
    past = _checked(service, "GET", "/v1/media", query={"path": "tiny.mp4"},
                    headers={"Range": f"bytes={size}-"})
    assert past.status_code == 416 and past.json() == {
        "error": f"Range 'bytes={size}-': it starts past the end of the file"}
    malformed = _checked(service, "GET", "/v1/media", query={"path": "tiny.mp4"},
                         headers={"Range": "pages=1-2"})
    assert malformed.status_code == 400 and malformed.json() == {
        "error": "Range 'pages=1-2': Only support bytes range"}
    created = _checked(service, "POST", "/v1/jobs",
                       body={"video": "tiny.mp4", "question": "what is shown?"})
    job_id = created.json()["id"]
    assert _checked(service, "GET", "/v1/jobs/{job_id}",
                    path_parameters={"job_id": job_id}).json()["status"] == "queued"
    cancelled = _checked(service, "DELETE", "/v1/jobs/{job_id}",
                         path_parameters={"job_id": job_id})
    assert cancelled.json()["status"] == "cancelled"


def test_the_served_schema_is_the_one_checked(service):
    assert service.get("/openapi.json").json() == APP_SCHEMA


def test_the_schema_declares_errors_bodies_and_media_types():
    paths = APP_SCHEMA["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"401", "422"} <= set(responses), (method, path)
            for status, response in responses.items():
                if status.startswith("4"):
                    body = response["content"]["application/json"]["schema"]["$ref"]
                    model = "ValidationErrorBody" if status == "422" else "ErrorBody"
                    assert body == f"#/components/schemas/{model}", (method, path, status)
    photo = paths["/v1/search"]["post"]["requestBody"]
    assert photo["required"] and photo["content"]["image/jpeg"] == {
        "schema": {"type": "string", "format": "binary"}}
    for thumbnails in ("/v1/index/thumbs/{folder}/{name}",
                       "/v1/jobs/{job_id}/thumbnails/{number}.jpg"):
        assert paths[thumbnails]["get"]["responses"]["200"]["content"] == {"image/jpeg": {}}
        assert paths[thumbnails]["get"]["responses"]["206"]["content"] == {
            "image/jpeg": {}, "multipart/byteranges": {}}
    subtitles = paths["/v1/jobs/{job_id}/subtitles/{name}"]["get"]["responses"]["200"]
    assert subtitles["content"] == {"application/x-subrip": {}, "text/vtt": {}}
    videos = paths["/v1/media"]["get"]["responses"]["200"]["content"]
    assert "video/mp2t" in videos and all(kind.startswith("video/") for kind in videos)
    for files in ("/v1/media", "/v1/index/thumbs/{folder}/{name}"):
        assert {"200", "206", "400", "416"} <= set(paths[files]["get"]["responses"])
        assert paths[files]["get"]["parameters"][-1]["name"] == "Range"
