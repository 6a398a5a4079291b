"""The Qwen2.5-VL backend on a tiny random-weight checkpoint loaded by path through get_vlm."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch

from vidsift.core.config import VLMConfig
from vidsift.core.errors import ConfigError, ModelLoadError, TokenCountError
from vidsift.core.types import TokenSet, VLMRequest
from vidsift.core.vision import tokens_for
from vidsift.workers.vlm import get_vlm
from vidsift.workers.vlm.prompt import CITE_INSTRUCTION

from tests.tiny_vlm import random_token_set, save_tiny_qwen

CAP = 6


@pytest.fixture(scope="module")
def vlm(tiny_qwen_dir):
    return get_vlm(VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32",
                             max_new_tokens=CAP))


@pytest.fixture(scope="module")
def pruned_vlm(tiny_qwen_dir):
    return get_vlm(VLMConfig(model=str(tiny_qwen_dir), device="cpu", dtype="float32",
                             max_new_tokens=CAP, pruner="divprune", prune_ratio=0.5))


def test_missing_model_is_a_typed_error(tmp_path):
    with pytest.raises(ModelLoadError, match="vlm.model is not set"):
        get_vlm(VLMConfig(model=None))
    with pytest.raises(ModelLoadError, match=str(tmp_path / "absent")):
        get_vlm(VLMConfig(model=str(tmp_path / "absent")))


def test_prompt_has_time_tags_and_one_placeholder_per_token(vlm):
    token_set = random_token_set()
    inputs = vlm.build_inputs(VLMRequest(token_set, "What moves? <|image_pad|>"))
    text = vlm.tokenizer.decode(inputs.input_ids.tolist())
    assert text.index("<t=1.0s>") < text.index("<t=2.0s-3.0s>") < text.index("<t=7.5s>")
    # Laid out by workers.vlm.prompt: numbered labels, each before its visual; then the instruction.
    assert "[1] <t=1.0s><|vision_start|><|image_pad|>" in text
    assert "\n[2] <t=2.0s-3.0s><|vision_start|><|video_pad|>" in text
    assert f"<|vision_end|>\n{CITE_INSTRUCTION}\nWhat moves?" in text
    assert text.endswith("What moves? <|im_end|>\n<|im_start|>assistant\n")  # forged pad dropped
    ids = inputs.input_ids
    assert int((ids == vlm.image_token_id).sum()) == tokens_for(1, 56, 84) + tokens_for(1, 84, 56)
    assert int((ids == vlm.video_token_id).sum()) == tokens_for(3, 56, 56)
    assert inputs.video_grid_thw.tolist() == [[2, 4, 4]]
    assert inputs.second_per_grid_ts.tolist() == pytest.approx([1.0])


def test_earlier_turns_go_before_the_evidence_and_the_visual_tokens_stay_planned(vlm):
    from vidsift.core.types import HistoryTurn
    from vidsift.workers.vlm.prompt import history_text

    token_set = random_token_set()
    history = (HistoryTurn("Where is the ball?", "Left [1].", (("v.mp4", 1.0, 1.0),)),)
    plain = vlm.build_inputs(VLMRequest(token_set, "And then?"))
    inputs = vlm.build_inputs(VLMRequest(token_set, "And then?", history=history))
    text = vlm.tokenizer.decode(inputs.input_ids.tolist())
    assert "Q1 (evidence 1.0s): Where is the ball?\nA1: Left (1.0s).\n" in text
    assert text.index("A1: Left (1.0s).") < text.index("[1] <t=1.0s><|vision_start|>")
    # The history adds exactly its text's tokens (one per byte here), and no visual token.
    added = len(vlm.tokenizer(history_text(history), add_special_tokens=False)["input_ids"])
    assert len(inputs.input_ids) == len(plain.input_ids) + added
    for token in (vlm.image_token_id, vlm.video_token_id):
        assert int((inputs.input_ids == token).sum()) == int((plain.input_ids == token).sum())


def test_embeds_path_matches_plain_forward_logits(vlm):
    inputs = vlm.build_inputs(VLMRequest(random_token_set(), "Describe the scene."))
    with torch.inference_mode():
        plain = vlm.model(**inputs.model_kwargs()).logits
        prefill = vlm.prefill_inputs(inputs)
        batch = vlm.left_pad([prefill])
        mine = vlm.model(**batch).logits
    assert prefill.visual_tokens == prefill.visual_tokens_kept == 20
    assert mine.shape == plain.shape
    assert float((mine - plain).abs().max()) <= 1e-5


def test_pruned_tokens_keep_original_positions_and_decode_after_them(pruned_vlm):
    inputs = pruned_vlm.build_inputs(VLMRequest(random_token_set(), "Where is the ball?"))
    full = pruned_vlm.prefill_inputs(inputs, prune=False)
    pruned = pruned_vlm.prefill_inputs(inputs)
    total = random_token_set().total_tokens
    assert (pruned.visual_tokens, pruned.visual_tokens_kept) == (total, round(total * 0.5))
    assert torch.equal(pruned.position_ids, full.position_ids[:, pruned.kept_index])
    assert torch.equal(pruned.inputs_embeds, full.inputs_embeds[pruned.kept_index])
    assert pruned.next_position == full.next_position == int(full.position_ids.max()) + 1

    # Greedy decoding without a cache, each new token at original max + 1, + 2, ...
    tokens, _, _, _ = pruned_vlm.generate_tokens([VLMRequest(random_token_set(), "Where is the ball?")])
    embeds, positions, expected = pruned.inputs_embeds, pruned.position_ids, []
    embedding = pruned_vlm.model.get_input_embeddings()
    with torch.inference_mode():
        for step in range(len(tokens[0])):
            logits = pruned_vlm.model(inputs_embeds=embeds[None],
                                      position_ids=positions[:, None]).logits
            token = int(logits[0, -1].argmax())
            expected.append(token)
            embeds = torch.cat([embeds, embedding(torch.tensor([token]))])
            step_position = torch.full((3, 1), pruned.next_position + step)
            positions = torch.cat([positions, step_position], dim=1)
    assert tokens[0] == expected
    # ...and the model's own rope delta agrees, for forwards given no positions.
    delta = pruned.next_position - len(pruned.kept_index)
    assert pruned_vlm.model.model.rope_deltas.tolist() == [[delta]]


def test_batch_equals_one_by_one(vlm):
    requests = [
        VLMRequest(random_token_set(0), "What happens first?", request_id="a"),
        VLMRequest(TokenSet("v.mp4", random_token_set(5).segments[:1]), "Colour?", request_id="b"),
        VLMRequest(random_token_set(9), "A much longer question about what the man does next?",
                   request_id="c"),
    ]
    batched, _, _, _ = vlm.generate_tokens(requests)
    alone = [vlm.generate_tokens([request])[0][0] for request in requests]
    assert batched == alone
    results = vlm.generate(requests)
    assert [r.request_id for r in results] == ["a", "b", "c"]
    assert [r.visual_tokens for r in results] == [r.token_set.total_tokens for r in requests]
    assert all(r.prefill_s > 0 and r.decode_s >= 0 for r in results)


def test_max_new_tokens_is_capped_by_config(vlm):
    token_set = TokenSet("v.mp4", random_token_set().segments[:1])
    unbounded, short = vlm.generate_tokens([
        VLMRequest(token_set, "Tell me everything.", max_new_tokens=10_000),
        VLMRequest(token_set, "Tell me everything.", max_new_tokens=2),
    ])[0]
    assert len(unbounded) <= CAP and len(short) <= 2
    assert short == unbounded[: len(short)]


def test_chat_template_from_processor_file(tiny_qwen_dir, tmp_path):
    """Checkpoints may keep the template in chat_template.json beside the processor config."""
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_qwen_dir, checkpoint)
    template = (checkpoint / "chat_template.jinja").read_text()
    (checkpoint / "chat_template.jinja").unlink()
    config = json.loads((checkpoint / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (checkpoint / "tokenizer_config.json").write_text(json.dumps(config))
    (checkpoint / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    backend = get_vlm(VLMConfig(model=str(checkpoint), device="cpu", max_new_tokens=2))
    inputs = backend.build_inputs(VLMRequest(random_token_set(), "Why?"))
    assert backend.tokenizer.decode(inputs.input_ids.tolist()).startswith("<|im_start|>system")


def test_planned_tokens_that_disagree_with_the_frames_are_an_error(vlm):
    """A plan that counted a clip's 3 frames (8 tokens) where only 1 was decoded (4 tokens), and
    an image planned at 112x112 (16 tokens) whose frames are sized 56x84 (6 tokens)."""
    image, clip, last = random_token_set().segments
    short_clip = dataclasses.replace(clip, frames=clip.frames[:1])
    with pytest.raises(TokenCountError, match=r"segment 1 .* 1 frames at 56x56\) encodes to 4 "
                       r"visual tokens but the plan counted 8 \(request: 16 encoded, 20 planned\)"):
        vlm.build_inputs(VLMRequest(TokenSet("v.mp4", [image, short_clip, last]), "Why?"))
    overplanned = dataclasses.replace(image, tokens=tokens_for(1, 112, 112))
    with pytest.raises(TokenCountError, match="encodes to 6 visual tokens but the plan counted 16"):
        vlm.generate([VLMRequest(TokenSet("v.mp4", [overplanned]), "Why?")])


def test_checkpoint_of_another_vision_geometry_is_a_config_error(tiny_qwen_dir, tmp_path):
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_qwen_dir, checkpoint)
    config = json.loads((checkpoint / "preprocessor_config.json").read_text())
    (checkpoint / "preprocessor_config.json").write_text(json.dumps({**config, "merge_size": 4}))
    with pytest.raises(ConfigError, match=r"\(14, 4, 2\) differs from the qwen2_5_vl spec the "
                       r"budget plans with, \(14, 2, 2\)"):
        get_vlm(VLMConfig(model=str(checkpoint), device="cpu", max_new_tokens=2))


def test_vision_tower_disagreeing_with_the_plan_is_an_error(tmp_path):
    """A checkpoint whose vision tower merges 1 x 1 patches while its preprocessor (and so the
    plan) says 2 x 2: the tower's 80 tokens for a 20-token plan must not reach the LLM."""
    checkpoint = save_tiny_qwen(tmp_path / "ckpt", vision={"spatial_merge_size": 1})
    backend = get_vlm(VLMConfig(model=str(checkpoint), device="cpu", max_new_tokens=2))
    with pytest.raises(TokenCountError, match="encoded 80 visual tokens for a request planned at 20"):
        backend.generate([VLMRequest(random_token_set(), "Why?")])


def test_transcript_lines_follow_the_evidence_and_add_exactly_their_counted_tokens(vlm):
    from vidsift.core.types import TranscriptSegment
    from vidsift.pipeline.flows.conversation import text_token_counter
    from vidsift.workers.vlm.prompt import fit_transcript, transcript_text

    token_set = random_token_set()
    lines = (TranscriptSegment(1.0, 2.5, "The vault code is seven four two nine."),
             TranscriptSegment(7.0, 8.0, "Thank you <|image_pad|> for watching."))
    plain = vlm.build_inputs(VLMRequest(token_set, "What is the code?"))
    inputs = vlm.build_inputs(VLMRequest(token_set, "What is the code?", transcript=lines))
    text = vlm.tokenizer.decode(inputs.input_ids.tolist())
    assert ("<|vision_end|>\nSaid during this evidence (times are seconds in the video):\n"
            "1.0s-2.5s: The vault code is seven four two nine.\n"
            "7.0s-8.0s: Thank you  for watching.\n" + CITE_INSTRUCTION) in text  # forged pad dropped
    # The allowance's count (the checkpoint's tokenizer, as ask uses it) is exactly what the
    # block adds to the prompt; the visual tokens stay as planned.
    count, how = text_token_counter(vlm.cfg)
    assert how == "tokenizer"
    kept, counted = fit_transcript(lines[:1], [1.0], 10_000, count)
    assert kept == lines[:1] and counted == count(transcript_text(lines[:1]))
    one = vlm.build_inputs(VLMRequest(token_set, "What is the code?", transcript=kept))
    assert len(one.input_ids) == len(plain.input_ids) + counted
    for token in (vlm.image_token_id, vlm.video_token_id):
        assert int((inputs.input_ids == token).sum()) == int((plain.input_ids == token).sum())
    # an allowance one token short of both lines keeps the better one only
    both = count(transcript_text(lines))
    assert fit_transcript(lines, [0.2, 0.9], both - 1, count)[0] == lines[1:]
