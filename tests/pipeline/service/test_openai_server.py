"""`vidsift serve-vlm` refuses what would be unsafe or impossible before loading any model."""

from typer.testing import CliRunner

from vidsift.pipeline.cli import app


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
