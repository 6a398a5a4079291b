import subprocess
import sys

import pytest

from vidsift.core.config import Config, field_choices, load_config
from vidsift.core.errors import ConfigError


@pytest.mark.parametrize("preset", ["default", "gpu", "cluster"])
def test_every_preset_loads(preset):
    assert isinstance(load_config(preset), Config)


def test_default_preset_matches_builtin_defaults():
    # default.yaml documents the defaults; it must not drift from the models.
    assert load_config("default") == load_config(None)


@pytest.mark.parametrize(("preset", "mode"), [("default", "subtitles"), ("gpu", "auto"),
                                             ("cluster", "auto")])
def test_speech_uses_subtitles_by_default_and_recognition_where_there_is_a_gpu(preset, mode):
    """A video's own subtitles are free and exact: read by default (speech recognition stays
    opt-in on one CPU machine); the GPU presets fall back to recognition. Was none everywhere."""
    assert load_config(preset).speech.mode == mode


def test_overrides_are_typed_and_nested():
    cfg = load_config("default", ["budget.tokens=2048", "serve.media_roots=[/a, /b]", "vlm.model=none"])
    assert cfg.budget.tokens == 2048
    assert cfg.serve.media_roots == ["/a", "/b"]
    assert cfg.vlm.model == "none"


@pytest.mark.parametrize(
    "override",
    ["budget.tokenz=1", "budget.tokens=-5", "decode.backend=vlc", "budget", "=3"],
)
def test_bad_overrides_fail_with_config_error(override):
    with pytest.raises(ConfigError):
        load_config("default", [override])


@pytest.mark.parametrize(("overrides", "message"), [
    (["selection.selector=fast"],
     "selection.selector=fast: choose one of uniform | query | keyclips | coverage | balanced"
     " | uniform_video"),
    (["vlm.pruner=x", "speech.mode=loud"],
     "vlm.pruner=x: choose one of none | divprune | kcenter | coverage | temporal | evs | "
     "vidcom2 | hiprune | fastervlm; "
     "speech.mode=loud: choose one of none | subtitles | asr | auto"),
    (["budget.tokens=-5"], "budget.tokens=-5: should be greater than or equal to 1"),
    (["embed.ocr=maybe"], "embed.ocr=maybe: should be a valid boolean, unable to interpret input"),
    (["budget.tokenz=1"], "budget.tokenz: unknown field (budget: model, tokens, min_pixels, "
                          "max_pixels, tokens_per_slot, history_tokens, speech_tokens, policy, "
                          "slow_steps)"),
    (["budget=3"], "budget=3: a section, not a value (set budget.FIELD=VALUE)"),
])
def test_a_bad_override_is_one_line_naming_field_value_and_what_is_allowed(overrides, message):
    """Pydantic's own text ran over several lines with a link to its docs per error."""
    with pytest.raises(ConfigError) as caught:
        load_config("default", overrides)
    assert str(caught.value) == f"default: {message}"


def test_field_choices_are_the_configs_own():
    assert field_choices("decode.backend") == ("pyav", "decord", "ffmpeg")
    assert field_choices("speech.mode") == ("none", "subtitles", "asr", "auto")
    assert field_choices("budget.tokens") == ()


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_yaml_file_with_unknown_section_fails(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("decoder:\n  backend: pyav\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: decoder: unknown section (sections: decode, ")


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys; from vidsift.pipeline import cli; "
        "heavy = [m for m in ('torch', 'transformers', 'ray', 'faiss', 'av', 'decord') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_config_command_prints_overridden_value():
    out = subprocess.run(
        [sys.executable, "-m", "vidsift.pipeline.cli", "config", "--set", "budget.tokens=1234"],
        capture_output=True, text=True, check=True,
    )
    assert "tokens: 1234" in out.stdout


def test_qwen3_vl_needs_its_own_token_arithmetic():
    """An in-process VLM encodes the frames the budget sized: a Qwen2.5-VL plan (multiples of
    28 pixels) under the qwen3_vl backend (patch 16 x merge 2 = 32) is refused, naming the fix."""
    with pytest.raises(ConfigError, match=r"budget.model=qwen2_5_vl plans visual tokens for "
                       r"another model than vlm.backend=qwen3_vl: set budget.model=qwen3_vl"):
        load_config("default", ["vlm.backend=qwen3_vl", "vlm.model=Qwen/Qwen3-VL-8B-Instruct"])
    cfg = load_config("default", ["budget.model=qwen3_vl", "vlm.backend=qwen3_vl",
                                  "vlm.model=Qwen/Qwen3-VL-8B-Instruct"])
    assert cfg.vision_spec().factor == 32
    # A remote server may run any model: the budget names which one it plans for.
    remote = load_config("default", ["budget.model=qwen3_vl", "vlm.backend=openai"])
    assert remote.vision_spec().factor == 32
