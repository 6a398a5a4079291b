"""The Ray Data stages of a caption run: ClipPlan rows -> decoded clip frames (CPU actor pool) ->
captions (the VLM's actor pool). caption_rows() builds the dataset and streams its output rows.

Every output row is one clip (video, clip, n_clips, start, end, tokens, speech, caption, model,
error)
or, for a video that cannot be read, a failure row (error set); no error stops the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np

from vidsift.core.config import Config
from vidsift.core.errors import VidsiftError


class ClipFrames:
    """flat_map stage: one ClipPlan row -> one row per clip with its frames, decoded at the
    planned times and size; a decode error ends the video with one failure row. A generator,
    so an actor holds one clip's frames at a time, however long the video."""

    def __init__(self, cfg_json: str) -> None:
        from vidsift.workers.decode import get_decoder

        decode = Config.model_validate_json(cfg_json).decode
        self.decoder = get_decoder(decode.backend, decode.threads, decode.max_pixels)

    def __call__(self, plan: dict) -> Iterator[dict]:
        video = plan["video"]
        spans, times = json.loads(plan["spans"]), json.loads(plan["times"])
        speech = json.loads(plan.get("speech") or "[]") or [""] * len(spans)
        size = (int(plan["height"]), int(plan["width"]))
        for number, ((start, end), clip_times) in enumerate(zip(spans, times)):
            try:
                frames = self.decoder.frames_at(video, clip_times, size=size)
            except (VidsiftError, OSError, ValueError) as exc:
                yield {
                    "video": video, "clip": -1, "n_clips": 0, "start": 0.0, "end": 0.0,
                    "pts": "[]", "frames": b"", "shape": "[]", "tokens": 0, "speech": "",
                    "error": f"{type(exc).__name__}: {exc}",
                }
                return
            stack = np.stack([f.image for f in frames])
            yield {
                "video": video, "clip": number, "n_clips": len(spans),
                "start": float(start), "end": float(end),
                "pts": json.dumps([f.pts for f in frames]),
                "frames": stack.tobytes(), "shape": json.dumps(stack.shape),
                "tokens": int(plan["tokens"]), "speech": speech[number], "error": "",
            }


class CaptionActor:
    """map_batches stage on an actor pool: hosts one VLM backend and captions batches of clips."""

    def __init__(self, cfg_json: str) -> None:
        from vidsift.workers.vlm import get_vlm

        self.cfg = Config.model_validate_json(cfg_json)
        self.vlm = get_vlm(self.cfg.vlm)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from vidsift.core.types import (
            Frame, PlannedSegment, SegmentKind, TokenSet, VLMRequest,
        )

        cap = self.cfg.caption
        size = len(batch["video"])
        captions = [""] * size
        models = [""] * size
        requests, where = [], []
        for i in range(size):
            if batch["error"][i]:
                continue
            shape = tuple(json.loads(batch["shape"][i]))
            stack = np.frombuffer(batch["frames"][i], dtype=np.uint8).reshape(shape)
            pts = json.loads(batch["pts"][i])
            frames = tuple(Frame(image=stack[k], pts=pts[k], index=k) for k in range(len(pts)))
            kind = SegmentKind.IMAGE if len(frames) == 1 else SegmentKind.CLIP
            segment = PlannedSegment(
                kind=kind, start=float(batch["start"][i]), end=float(batch["end"][i]),
                timestamps=tuple(pts), height=shape[1], width=shape[2],
                tokens=int(batch["tokens"][i]), frames=frames,
            )
            token_set = TokenSet(video=str(batch["video"][i]), segments=[segment],
                                 budget=cap.tokens_per_clip)
            question = caption_question(cap.prompt, str(batch["speech"][i]), cap.speech_chars)
            requests.append(VLMRequest(token_set=token_set, question=question,
                                       max_new_tokens=cap.max_new_tokens,
                                       request_id=f"{batch['video'][i]}#{batch['clip'][i]}"))
            where.append(i)
        errors = list(batch["error"])
        for i, outcome in zip(where, self._generate(requests)):
            if isinstance(outcome, Exception):
                errors[i] = f"{batch['video'][i]}: clip {batch['clip'][i]}: {outcome}"
            else:
                captions[i] = outcome.text.strip()
                models[i] = outcome.model
        return {
            "video": batch["video"], "clip": batch["clip"], "n_clips": batch["n_clips"],
            "start": batch["start"], "end": batch["end"], "tokens": batch["tokens"],
            "speech": batch["speech"], "error": np.array(errors, dtype=object),
            "caption": np.array(captions, dtype=object), "model": np.array(models, dtype=object),
        }

    def _generate(self, requests: list) -> list:
        """One batched call; if it fails, each request alone, so one bad clip fails only its
        own video. Returns a VLMResult or the exception, per request."""
        if not requests:
            return []
        try:
            return self.vlm.generate(requests)
        except (VidsiftError, RuntimeError, ValueError):
            outcomes = []
            for request in requests:
                try:
                    outcomes.append(self.vlm.generate([request])[0])
                except (VidsiftError, RuntimeError, ValueError) as exc:
                    outcomes.append(exc)
            return outcomes


def caption_question(prompt: str, speech: str, max_chars: int) -> str:
    """The caption request's text: the prompt, then what is said during the clip (at most
    max_chars characters, cut at a word with an ellipsis), quoted, so the caption can use it."""
    speech = " ".join(speech.split())
    if not speech or max_chars <= 0:
        return prompt
    if len(speech) > max_chars:
        speech = speech[:max_chars].rsplit(" ", 1)[0].rstrip() + " …"
    return f'{prompt}\nWhat is said during this clip: "{speech}"'


def caption_rows(plans: list[dict], cfg: Config) -> Iterator[dict]:
    """Run the two stages over ClipPlan rows (one Ray block per video) and stream the output
    rows as they finish, in no particular order."""
    from vidsift.workers.ray_runtime import ensure_ray, ray_console_warnings_only

    ray = ensure_ray(cfg.ray)
    import ray.data

    cfg_json = cfg.model_dump_json()
    pool = cfg.pool
    ray.data.DataContext.get_current().enable_progress_bars = False
    ray_console_warnings_only("ray.data")
    # Ray Data restarts a dead actor and retries its batch itself (its defaults: restart and
    # retry without limit), which is what makes a killed caption actor lose nothing.
    dataset = (
        ray.data.from_items(plans, override_num_blocks=len(plans))
        .flat_map(
            ClipFrames,
            fn_constructor_args=(cfg_json,),
            compute=ray.data.ActorPoolStrategy(size=cfg.ingest.num_actors),
            num_cpus=cfg.ingest.num_cpus_per_actor,
        )
        .map_batches(
            CaptionActor,
            fn_constructor_args=(cfg_json,),
            batch_size=pool.max_batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=pool.num_actors),
            num_cpus=pool.num_cpus_per_actor,
            # a remote VLM (vlm.backend=openai) runs on its server: its callers hold no GPU
            num_gpus=0 if cfg.vlm.remote else pool.num_gpus_per_actor,
        )
    )
    return dataset.iter_rows()
