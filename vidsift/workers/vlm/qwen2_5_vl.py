"""Qwen2.5-VL through transformers: token sets in, answers out, with post-encoder token pruning.
QwenVLBackend is also the base of the Qwen3-VL backend (workers.vlm.qwen3_vl), which overrides
only what differs: its model classes, how a clip's placeholder expands, and the DeepStack features.

One request becomes one chat turn laid out by workers.vlm.prompt (numbered segments, each a time
tag "[2] <t=12.5s-16.5s>" then its visual placeholder, the instruction to cite evidence by number,
then the question).
Clips carry second_per_grid_ts (temporal patch / their fps) so M-RoPE spaces their temporal
positions in real seconds.

Generation always goes through inputs_embeds: the vision tower and merger run once, the visual
embeddings are scattered into the text embeddings, and (optionally) a pruner keeps a subset of the
visual tokens. 3D M-RoPE positions are computed by the model's own get_rope_index on the FULL
sequence before pruning, and the kept tokens keep their original (t, h, w) positions; decoding
continues from the original maximum position + 1 (the rope delta of the unpruned prompt), so text
after the pruned visuals sits where it would have been. With no pruning this path produces the
same logits as model(input_ids, pixel_values, ...) (tested).
A merger (vlm.merger, workers.vlm.pruning.MERGERS) instead groups the visual tokens: each group
becomes one token, the mean of its members (sizes: how many), at its first member's place in the
sequence and its first member's (t, h, w) position; DeepStack rows are merged by the same groups.

Batching: requests are left-padded into one generate call; greedy decoding, so each request's
text equals what it gets alone.

Token counts are the plan's: loading checks that the checkpoint's vision spec counts tokens as
the budget's (core.vision.VISION_SPECS, else ConfigError), and every request checks that each
segment encodes to the tokens its plan counted (else TokenCountError), before any model work.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from vidsift.core.config import VLMConfig
from vidsift.core.errors import ConfigError, ModelLoadError, TokenCountError
from vidsift.core.types import VLMRequest, VLMResult
from vidsift.core.vision import VISION_SPECS, VisionSpec, check_checkpoint_spec
from vidsift.workers.vlm.base import Sampling, token_cap
from vidsift.workers.vlm.preprocess import SegmentPixels, check_planned_tokens, prepare_segment
from vidsift.workers.vlm.prompt import Visual, evidence_parts
from vidsift.workers.vlm.vision_attention import recorded_attention

TEXT, IMAGE, VIDEO = 0, 1, 2  # mm_token_type_ids values, as the model's get_rope_index reads them
GREEDY = Sampling()


@dataclass(slots=True, eq=False)
class PromptInputs:
    """The plain (processor-style) inputs of one request, on the model's device.

    input_ids / mm_token_type_ids: (L,) with one placeholder token per visual token.
    pixel_values / pixel_values_videos: patches of all images / all clips (None when absent),
    with image_grid_thw / video_grid_thw (n, 3) and second_per_grid_ts (n_clips,).
    segment_pixels: per segment, in prompt order.
    question_ids: (M,) token ids of the question alone (the pruners' text query).
    """

    input_ids: torch.Tensor
    mm_token_type_ids: torch.Tensor
    pixel_values: torch.Tensor | None
    image_grid_thw: torch.Tensor | None
    pixel_values_videos: torch.Tensor | None
    video_grid_thw: torch.Tensor | None
    second_per_grid_ts: torch.Tensor | None
    segment_pixels: list[SegmentPixels]
    question_ids: torch.Tensor

    def model_kwargs(self) -> dict:
        """Batch-of-one kwargs for the model's own forward (the plain path)."""
        kwargs = {"input_ids": self.input_ids[None], "mm_token_type_ids": self.mm_token_type_ids[None]}
        for name in ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw",
                     "second_per_grid_ts"):
            if (value := getattr(self, name)) is not None:
                kwargs[name] = value
        return kwargs


@dataclass(slots=True, eq=False)
class PrefillInputs:
    """One request's sequence after the vision tower and pruning.

    inputs_embeds: (L', D). position_ids: (3, L') M-RoPE (t, h, w) positions, each kept token's
    original one. next_position: the position decoding starts at (original max + 1).
    kept_index: (L',) indices of the kept tokens in the unpruned sequence.
    visual_mask: (L',) bool, which kept tokens are visual.
    deepstack: per DeepStack level (Qwen3-VL; None for a model without), the vision tower's
    (kept visual tokens, D) features for the LLM's early layers, rows in visual_mask's order.
    """

    inputs_embeds: torch.Tensor
    position_ids: torch.Tensor
    next_position: int
    kept_index: torch.Tensor
    visual_tokens: int
    visual_tokens_kept: int
    visual_mask: torch.Tensor
    deepstack: list[torch.Tensor] | None = None
    # with a merger (vlm.merger): per kept visual token, how many original tokens it stands for
    # (they sum to visual_tokens); None when tokens are only kept or dropped
    visual_sizes: torch.Tensor | None = None


def merge_rows(rows: torch.Tensor, group: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """rows (N, D), group (N,) long ids 0..G-1 numbered by first occurrence -> (rows with each
    group's first member replaced by the group's mean (accumulated in float32), (N,) bool mask of
    the first members, (G,) float sizes). The mean of original tokens is their size-weighted mean
    at any stage of merging."""
    count = int(group.max()) + 1
    sizes = torch.zeros(count, device=rows.device).index_add_(
        0, group, torch.ones(len(group), device=rows.device))
    means = torch.zeros(count, rows.shape[1], device=rows.device).index_add_(0, group, rows.float())
    first = torch.full((count,), len(group), dtype=torch.long, device=rows.device).scatter_reduce_(
        0, group, torch.arange(len(group), device=rows.device), reduce="amin")
    out = rows.clone()
    out[first] = (means / sizes[:, None]).to(rows.dtype)
    leader = torch.zeros(len(group), dtype=torch.bool, device=rows.device)
    leader[first] = True
    return out, leader, sizes


class _FirstStepClock:
    """A stopping criterion that never stops; it notes when the first token exists (end of
    prefill), so prefill and decode times are measured inside one generate call."""

    def __init__(self) -> None:
        self.first_token_at: float | None = None

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


class _EachStep:
    """A stopping criterion handing the one sequence's new token ids to `follow` after every
    step; generation stops when it returns True."""

    def __init__(self, follow: Callable[[list[int]], bool]) -> None:
        self.follow = follow

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        stop = bool(self.follow(input_ids[0].tolist()))
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


def _decoding(sampling: Sampling) -> dict:
    """generate()'s token choice for `sampling`. Sampling sets every filter: only temperature and
    top_p shape the draw, whatever the checkpoint's generation_config says (Qwen's sets top_k)."""
    if sampling.greedy:
        return {"do_sample": False}
    return {"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p,
            "top_k": 0, "min_p": None, "typical_p": 1.0}


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        # bf16 halves memory and is native on GPUs; CPUs are exact and fastest in float32.
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def _processor_chat_template(model_id: str) -> str:
    """The chat template a checkpoint keeps beside its processor (chat_template.json or .jinja)
    when its tokenizer config has none."""
    import json

    from transformers.utils import cached_file

    for name in ("chat_template.jinja", "chat_template.json"):
        path = cached_file(model_id, name, _raise_exceptions_for_missing_entries=False)
        if path:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            return json.loads(text)["chat_template"] if name.endswith(".json") else text
    raise ModelLoadError(f"{model_id}: no chat template (tokenizer config or chat_template.*)")


class QwenVLBackend:
    """Qwen2.5-VL loaded by local path or hub id (see module docstring)."""

    name = "qwen2_5_vl"  # registry name, and the core.vision.VISION_SPECS family
    family = "Qwen2.5-VL"
    # config.json model_type -> the transformers class that loads it
    model_classes = {"qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration"}
    # Qwen2.5-VL spaces a clip's temporal M-RoPE positions by its seconds (second_per_grid_ts);
    # Qwen3-VL writes the times into the prompt as text instead.
    seconds_in_positions = True

    def __init__(self, cfg: VLMConfig) -> None:
        import transformers
        from transformers import AutoConfig, AutoTokenizer

        self.cfg = cfg
        self.device = _resolve_device(cfg.device)
        self.dtype = _resolve_dtype(cfg.dtype, self.device)
        model_id = str(cfg.model)
        try:
            # Checked before the weights load, so a checkpoint of another geometry fails fast.
            self.vision_spec = VisionSpec.from_pretrained(model_id, VISION_SPECS[self.name])
            check_checkpoint_spec(self.name, self.vision_spec, model_id)
            model_type = AutoConfig.from_pretrained(model_id).model_type
            if model_type not in self.model_classes:
                raise ModelLoadError(
                    f"{model_id}: a {model_type} checkpoint; the {self.name} backend loads "
                    f"{', '.join(self.model_classes)} checkpoints"
                )
            self.tokenizer = AutoTokenizer.from_pretrained(model_id)
            kwargs = {"dtype": self.dtype}
            if cfg.attn_implementation:
                kwargs["attn_implementation"] = cfg.attn_implementation
            model_class = getattr(transformers, self.model_classes[model_type])
            self.model = model_class.from_pretrained(model_id, **kwargs)
        except ConfigError:
            raise  # a ValueError too, but the checkpoint was readable: its spec is what is wrong
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"{model_id}: cannot load {self.family} ({exc})") from exc
        if not self.tokenizer.chat_template:
            self.tokenizer.chat_template = _processor_chat_template(model_id)
        self.model.to(self.device).eval()
        config = self.model.config
        self.image_token_id = int(config.image_token_id)
        self.video_token_id = int(config.video_token_id)
        eos = self.model.generation_config.eos_token_id
        self.eos_token_ids = set(eos if isinstance(eos, list) else [eos or self.tokenizer.eos_token_id])
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = int(pad if pad is not None else next(iter(self.eos_token_ids)))
        self.pruner = self.merger = None
        if cfg.pruner != "none" and cfg.merger != "none":
            raise ConfigError(f"vlm.pruner={cfg.pruner} and vlm.merger={cfg.merger}: choose one "
                              "(both would reduce the same tokens)")
        if cfg.pruner != "none":
            from vidsift.workers.vlm.pruning import get_pruner

            self.pruner = get_pruner(cfg.pruner)
        if cfg.merger != "none":
            from vidsift.workers.vlm.pruning import get_merger

            self.merger = get_merger(cfg.merger)
        self.model_name = model_id
        self._grammars = None  # workers.vlm.structured.GrammarCompiler, on the first schema

    # ---- prompt and pixels ------------------------------------------------------------------

    def _clean(self, text: str) -> str:
        """Drop special-token strings from text the user controls (the question, file names in
        labels) so it cannot forge placeholders."""
        for token in self.tokenizer.get_added_vocab():
            text = text.replace(token, "")
        return text

    def build_inputs(self, request: VLMRequest) -> PromptInputs:
        """The request as the model's plain inputs: chat prompt with expanded placeholders,
        patches, grids, and second_per_grid_ts."""
        segments = request.token_set.segments
        pixels = [prepare_segment(segment, self.vision_spec) for segment in segments]
        check_planned_tokens(segments, pixels)
        content = [
            {"type": "video" if pixels[part.segment].is_video else "image"}
            if isinstance(part, Visual) else {"type": "text", "text": part}
            for part in evidence_parts(request.token_set, request.question,
                                       history=request.history, transcript=request.transcript)
        ]
        return self.encode_chat(content, pixels, request.question)

    def encode_chat(self, content: list[dict], pixels: list[SegmentPixels], query: str) -> PromptInputs:
        """One user turn as the model's plain inputs. content: chat parts in order, {"type":
        "text", "text": ...} or {"type": "image" | "video"}, one visual part per `pixels` entry
        (in the same order). query: the text the pruners score visual tokens against. Text is
        cleaned of special-token strings first."""
        return self.encode_messages([{"role": "user", "content": content}], pixels, query)

    def encode_messages(self, messages: list[dict], pixels: list[SegmentPixels],
                        query: str) -> PromptInputs:
        """A conversation as the model's plain inputs, laid out by the checkpoint's chat template
        (its default system turn when the first message is none). messages: {"role": "system" |
        "user" | "assistant", "content": a string or chat parts as encode_chat takes}, the
        visual parts of every message together one per `pixels` entry, in order."""
        def cleaned(content):
            if isinstance(content, str):
                return self._clean(content)
            return [{**part, "text": self._clean(part["text"])} if part["type"] == "text"
                    else part for part in content]

        question = self._clean(query)
        prompt = self.tokenizer.apply_chat_template(
            [{**message, "content": cleaned(message["content"])} for message in messages],
            tokenize=False, add_generation_prompt=True,
        )
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        expanded: list[int] = []
        types: list[int] = []
        placeholders = iter(pixels)
        for token in ids:
            if token in (self.image_token_id, self.video_token_id):
                placeholder_ids, placeholder_types = self.expand_placeholder(token, next(placeholders))
                expanded.extend(placeholder_ids)
                types.extend(placeholder_types)
            else:
                expanded.append(token)
                types.append(TEXT)
        if next(placeholders, None) is not None:
            raise ValueError("the chat template dropped visual placeholders")

        def stack(rows: list[SegmentPixels]):
            if not rows:
                return None, None
            values = torch.from_numpy(np.concatenate([r.patches for r in rows]))
            grids = torch.tensor([r.grid_thw for r in rows], dtype=torch.long)
            return values.to(self.device, self.dtype), grids.to(self.device)

        images = [p for p in pixels if not p.is_video]
        videos = [p for p in pixels if p.is_video]
        pixel_values, image_grid_thw = stack(images)
        pixel_values_videos, video_grid_thw = stack(videos)
        second_per_grid_ts = (
            torch.tensor([v.second_per_grid for v in videos], device=self.device)
            if videos and self.seconds_in_positions else None
        )
        question_ids = self.tokenizer(question, add_special_tokens=False)["input_ids"]
        return PromptInputs(
            input_ids=torch.tensor(expanded, dtype=torch.long, device=self.device),
            mm_token_type_ids=torch.tensor(types, dtype=torch.int32, device=self.device),
            pixel_values=pixel_values,
            image_grid_thw=image_grid_thw,
            pixel_values_videos=pixel_values_videos,
            video_grid_thw=video_grid_thw,
            second_per_grid_ts=second_per_grid_ts,
            segment_pixels=pixels,
            question_ids=torch.tensor(question_ids, dtype=torch.long, device=self.device),
        )

    def expand_placeholder(self, token: int, pixels: SegmentPixels) -> tuple[list[int], list[int]]:
        """The ids (and mm_token_type_ids) a visual's one placeholder token becomes in the
        prompt: one placeholder per visual token."""
        return [token] * pixels.tokens, [VIDEO if pixels.is_video else IMAGE] * pixels.tokens

    # ---- vision tower, positions, pruning ---------------------------------------------------

    @torch.inference_mode()
    def prefill_inputs(self, inputs: PromptInputs, prune: bool = True) -> PrefillInputs:
        """Encode the visuals, place them in the text embeddings, compute original M-RoPE
        positions on the full sequence, then drop pruned visual tokens (when a pruner is set)."""
        core = self.model.model
        input_ids = inputs.input_ids
        embeds = self.model.get_input_embeddings()(input_ids)
        tower, attention = {}, {}
        # An attention-guided pruner (workers.vlm.vision_attention) reads the encoder's attention
        # of its layers, computed explicitly by hooks while the tower runs as configured.
        layers = getattr(self.pruner, "attention_layers", None) if prune else None
        layers = tuple(sorted(set(layers(len(core.visual.blocks))))) if layers else ()
        for kind, pixel_values, grid_thw, encode in (
            (IMAGE, inputs.pixel_values, inputs.image_grid_thw, core.get_image_features),
            (VIDEO, inputs.pixel_values_videos, inputs.video_grid_thw, core.get_video_features),
        ):
            if pixel_values is None:
                continue
            with recorded_attention(core.visual, layers) as recorded:
                tower[kind] = encode(pixel_values, grid_thw, return_dict=True)
            if layers:
                lengths = [len(rows) for rows in tower[kind].pooler_output]
                attention[kind] = {layer: torch.cat(recorded[layer]).split(lengths)
                                   for layer in layers}
        kinds = [VIDEO if p.is_video else IMAGE for p in inputs.segment_pixels]

        def in_prompt_order(per_kind: dict[int, list[torch.Tensor]]) -> list[torch.Tensor]:
            """Per-segment rows of each modality -> per segment in prompt order (images and
            clips interleave as the segments do)."""
            pools = {kind: iter(rows) for kind, rows in per_kind.items()}
            return [next(pools[kind]) for kind in kinds]

        visual_rows = in_prompt_order({kind: out.pooler_output for kind, out in tower.items()})
        # DeepStack (Qwen3-VL): per level, the same tokens' features from an earlier tower block.
        levels = min((len(out.deepstack_features) for out in tower.values()
                      if getattr(out, "deepstack_features", None)), default=0)
        deepstack = [
            torch.cat(in_prompt_order({kind: out.deepstack_features[level]
                                       for kind, out in tower.items()})).to(embeds.dtype)
            for level in range(levels)
        ] or None
        visual_mask = inputs.mm_token_type_ids > 0
        visual_tokens = int(visual_mask.sum())
        encoded = sum(int(rows.shape[0]) for rows in visual_rows)
        if encoded != visual_tokens:
            # masked_scatter would silently drop surplus features: the tower must agree with the plan.
            raise TokenCountError(
                f"the vision tower encoded {encoded} visual tokens for a request planned at "
                f"{visual_tokens} (the checkpoint's vision config disagrees with its preprocessor)"
            )
        if visual_rows:
            visual = torch.cat(visual_rows).to(embeds.dtype)
            embeds = embeds.masked_scatter(visual_mask[:, None], visual)
        position_ids, _ = core.get_rope_index(
            input_ids[None],
            mm_token_type_ids=inputs.mm_token_type_ids[None],
            image_grid_thw=inputs.image_grid_thw,
            video_grid_thw=inputs.video_grid_thw,
            second_per_grid_ts=inputs.second_per_grid_ts,
        )
        position_ids = position_ids[:, 0]  # (3, L)
        next_position = int(position_ids.max()) + 1
        keep_mask = torch.ones_like(visual_mask)
        visual_keep = torch.ones(visual_tokens, dtype=torch.bool, device=embeds.device)
        if prune and self.pruner is not None and visual_tokens > 0:
            keep = max(1, round(visual_tokens * self.cfg.prune_ratio))
            token_thw, segment_ids = self._visual_token_grid(inputs)
            text_features = self.model.get_input_embeddings()(inputs.question_ids)
            extra = {"attention": {
                layer: torch.cat(in_prompt_order({kind: scores[layer] for kind, scores in attention.items()}))
                for layer in layers}} if layers else {}
            kept = self.pruner(
                embeds[visual_mask].float(), keep, token_thw=token_thw, segment_ids=segment_ids,
                text_features=text_features.float() if len(inputs.question_ids) else None, **extra,
            )
            visual_keep = torch.zeros(visual_tokens, dtype=torch.bool, device=embeds.device)
            visual_keep[kept.to(embeds.device)] = True
            keep_mask[visual_mask] = visual_keep
        sizes = None
        if prune and self.merger is not None and visual_tokens > 0:
            token_thw, segment_ids = self._visual_token_grid(inputs)
            group = self.merger(embeds[visual_mask].float(), self.cfg.prune_ratio,
                                token_thw=token_thw, segment_ids=segment_ids).to(embeds.device)
            embeds = embeds.clone()
            embeds[visual_mask], visual_keep, sizes = merge_rows(embeds[visual_mask], group)
            if deepstack is not None:
                deepstack = [merge_rows(level, group)[0] for level in deepstack]
            keep_mask[visual_mask] = visual_keep
        kept_index = torch.nonzero(keep_mask).flatten()
        return PrefillInputs(
            inputs_embeds=embeds[kept_index],
            position_ids=position_ids[:, kept_index],
            next_position=next_position,
            kept_index=kept_index,
            visual_tokens=visual_tokens,
            visual_tokens_kept=int(visual_keep.sum()),
            visual_mask=visual_mask[kept_index],
            # The pruner's kept indices (or the merged groups' first members), every level alike.
            deepstack=None if deepstack is None else [level[visual_keep] for level in deepstack],
            visual_sizes=sizes,
        )

    def _visual_token_grid(self, inputs: PromptInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Per visual token, in prompt order: (t, h, w) in its segment's merged token grid, and
        the index of its segment. Shapes (N, 3) and (N,), long."""
        merge = self.vision_spec.merge_size
        grids, segment_ids = [], []
        for index, p in enumerate(inputs.segment_pixels):
            t, h, w = p.grid_thw[0], p.grid_thw[1] // merge, p.grid_thw[2] // merge
            grid = torch.stack(torch.meshgrid(
                torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij"), dim=-1)
            grids.append(grid.reshape(-1, 3))
            segment_ids.append(torch.full((t * h * w,), index, dtype=torch.long))
        return torch.cat(grids), torch.cat(segment_ids)

    # ---- generation ---------------------------------------------------------------------------

    def token_cap(self, wanted: int | None) -> int:
        return token_cap(wanted, self.cfg.max_new_tokens)

    @property
    def grammars(self):
        """The JSON Schema compiler for this model's tokenizer (workers.vlm.structured), made
        on first use: a backend never asked for JSON never imports xgrammar."""
        if self._grammars is None:
            from vidsift.workers.vlm.structured import GrammarCompiler

            self._grammars = GrammarCompiler(
                self.tokenizer, int(self.model.get_output_embeddings().weight.shape[0]),
                sorted(self.eos_token_ids), self.cfg.json_max_string, self.cfg.json_max_items)
        return self._grammars

    @staticmethod
    def left_pad(prefills: list[PrefillInputs]) -> dict[str, torch.Tensor]:
        """Left-pad requests into one batch: inputs_embeds (B, L, D), attention_mask (B, L), and
        position_ids (4, B, L): row 0 the text positions generate uses for the mask, rows 1-3
        M-RoPE (t, h, w). Padding sits at position 0 and is masked out."""
        length = max(p.inputs_embeds.shape[0] for p in prefills)
        first = prefills[0].inputs_embeds
        batch = len(prefills)
        embeds = first.new_zeros(batch, length, first.shape[-1])
        mask = torch.zeros(batch, length, dtype=torch.long, device=first.device)
        positions = torch.zeros(4, batch, length, dtype=torch.long, device=first.device)
        for row, p in enumerate(prefills):
            n = p.inputs_embeds.shape[0]
            embeds[row, length - n:] = p.inputs_embeds
            mask[row, length - n:] = 1
            positions[0, row, length - n:] = torch.arange(n, device=first.device)
            positions[1:, row, length - n:] = p.position_ids
        return {"inputs_embeds": embeds, "attention_mask": mask, "position_ids": positions}

    def prefill_features(
        self, prefills: list[PrefillInputs], batch: dict[str, torch.Tensor]
    ) -> contextlib.AbstractContextManager:
        """A context in which the model's forward on `batch` (left_pad of `prefills`) also gets
        what the prefills carry beyond inputs_embeds. Qwen2.5-VL needs nothing more."""
        return contextlib.nullcontext()

    def _set_rope_deltas(self, prefills: list[PrefillInputs]) -> None:
        """Where the model puts decoded text when not given positions: (real tokens so far) +
        delta, as in its get_rope_index. After pruning the delta is original max + 1 - kept
        length, larger than the unpruned prompt's."""
        deltas = [p.next_position - p.inputs_embeds.shape[0] for p in prefills]
        self.model.model.rope_deltas = torch.tensor(deltas, device=self.device).unsqueeze(1)

    def generate_tokens(self, requests: list[VLMRequest]) -> tuple[list[list[int]], list[PrefillInputs], float, float]:
        """One batched greedy generate call -> (new token ids per request, cut at its cap and
        before EOS; the prefill inputs; prefill seconds (pixels, vision tower, pruning, LLM
        prefill up to the first token); decode seconds)."""
        from vidsift.workers.vlm.structured import grammars_for

        started = time.perf_counter()
        grammars = grammars_for(self.grammars, requests) if any(
            r.schema is not None for r in requests) else None
        prompts = [self.build_inputs(request) for request in requests]
        return self.generate_prompts(prompts, [request.max_new_tokens for request in requests],
                                     started, grammars=grammars)

    @torch.inference_mode()
    def generate_prompts(
        self, prompts: list[PromptInputs], max_new_tokens: list[int | None],
        started: float | None = None, sampling: Sampling = GREEDY,
        on_tokens: Callable[[list[int]], bool] | None = None, grammars: list | None = None,
    ) -> tuple[list[list[int]], list[PrefillInputs], float, float]:
        """generate_tokens over prompts already encoded (build_inputs, encode_chat), each with
        its wanted max_new_tokens (None: the config's cap). started: when the prefill clock
        started (default now). sampling: how tokens are chosen (greedy by default); with a seed
        the whole call draws the same tokens again. on_tokens, for one prompt: called after
        every decoding step with the new token ids so far (cut as the result is), and returning
        True ends generation there (a stop string reached, a client gone). grammars: per prompt
        a compiled JSON grammar its tokens must follow (self.grammars.compile; None: free), or
        None for all free."""
        if on_tokens is not None and len(prompts) != 1:
            raise ValueError("on_tokens follows the tokens of one prompt")
        started = time.perf_counter() if started is None else started
        caps = [self.token_cap(wanted) for wanted in max_new_tokens]
        clock = _FirstStepClock()
        criteria = [clock]
        processors = []
        if grammars is not None and any(g is not None for g in grammars):
            from vidsift.workers.vlm.structured import SchemaLogits

            processors.append(SchemaLogits(grammars))
        if on_tokens is not None:
            criteria.append(_EachStep(lambda ids: on_tokens(self.answer_tokens(ids, caps[0]))))
        with self._random_state(sampling.seed):
            prefills = [self.prefill_inputs(prompt) for prompt in prompts]
            batch = self.left_pad(prefills)
            self._set_rope_deltas(prefills)
            with self.prefill_features(prefills, batch):
                output = self.model.generate(
                    **batch,
                    max_new_tokens=max(caps),
                    **_decoding(sampling),
                    num_beams=1,
                    eos_token_id=sorted(self.eos_token_ids),
                    pad_token_id=self.pad_token_id,
                    stopping_criteria=criteria,
                    logits_processor=processors,
                )
        finished = time.perf_counter()
        first = clock.first_token_at or finished
        # Given inputs_embeds only, generate returns just the new tokens.
        token_lists = [self.answer_tokens(tokens, cap) for cap, tokens in zip(caps, output.tolist())]
        return token_lists, prefills, first - started, finished - first

    def answer_tokens(self, tokens: list[int], cap: int) -> list[int]:
        """Generated ids -> the answer's: at most `cap`, cut before the first EOS."""
        tokens = tokens[:cap]
        for index, token in enumerate(tokens):
            if token in self.eos_token_ids:
                return tokens[:index]
        return tokens

    def _random_state(self, seed: int | None) -> contextlib.AbstractContextManager:
        """A context seeded with `seed` (any int64) on the model's device, the process's random
        state restored after it; none for seed None."""
        if seed is None:
            return contextlib.nullcontext()

        @contextlib.contextmanager
        def seeded():
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(seed % 2**64)
                yield

        return seeded()

    def generate(self, requests: list[VLMRequest]) -> list[VLMResult]:
        """Requests with a schema decode constrained to it; their results carry answer_json
        (or AnswerSchemaError, with the raw text, when max_new_tokens cut the JSON short)."""
        from vidsift.workers.vlm.structured import answer_json

        if not requests:
            return []
        token_lists, prefills, prefill_s, decode_s = self.generate_tokens(requests)
        return [
            answer_json(request, VLMResult(
                text=self.tokenizer.decode(tokens, skip_special_tokens=True).strip(),
                visual_tokens=prefill.visual_tokens,
                visual_tokens_kept=prefill.visual_tokens_kept,
                prefill_s=prefill_s,
                decode_s=decode_s,
                request_id=request.request_id,
                model=self.model_name,
            ))
            for request, prefill, tokens in zip(requests, prefills, token_lists)
        ]
