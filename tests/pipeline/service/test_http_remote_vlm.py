"""The HTTP service answering through vlm.backend=openai: a job's result carries the answer, its
citations (the key is always there) and the remote server's token accounting, exact against the
plan. Both servers are real, on 127.0.0.1: vidsift's service and an OpenAI-compatible endpoint
serving the tiny random Qwen2.5-VL."""

from vidsift.core.config import VLMConfig
from vidsift.pipeline.service.jobs import SUCCEEDED
from vidsift.pipeline.service.openai_server import create_app
from vidsift.workers.vlm import get_vlm

from tests.http_servers import serve
from tests.pipeline.service.test_http import _config, _wait_all, media_root, running  # noqa: F401


def test_ask_jobs_answer_through_a_remote_vlm(ray_cluster, media_root, tiny_qwen_dir,  # noqa: F811
                                              tmp_path):
    served = get_vlm(VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32",
                               max_new_tokens=6))
    with serve(create_app(served, "tiny-qwen")) as vlm_url:
        cfg = _config(media_root, tmp_path / "svc", "vlm.backend=openai",
                      f"vlm.base_url={vlm_url}", "vlm.model=tiny-qwen",
                      f"vlm.tokenizer={tiny_qwen_dir}", "vlm.max_new_tokens=6")
        body = {"video": str(media_root / "short.mp4"), "question": "what is shown?"}
        with running(cfg) as client:
            ids = [client.post("/v1/jobs", json=body).json()["id"] for _ in range(3)]
            jobs = _wait_all(client, ids)
    assert {j["status"] for j in jobs.values()} == {SUCCEEDED}, [j["error"] for j in jobs.values()]
    for job in jobs.values():
        result = job["result"]
        assert isinstance(result["answer"], str) and result["model"] == "tiny-qwen"
        assert isinstance(result["citations"], list)
        numbered = {n: (s["start"], s["end"]) for n, s in enumerate(result["segments"], start=1)}
        assert all(numbered[c["segment"]] == (c["start"], c["end"]) for c in result["citations"])
        usage = result["vlm"]["usage"]
        assert usage["planned_visual_tokens"] == result["tokens"] <= 256
        assert usage["prompt_tokens_diff"] == 0
