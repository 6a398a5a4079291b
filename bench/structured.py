"""Structured answers on the tiny random-weight Qwen2.5-VL (tests/tiny_vlm.py), on CPU: of 100
sampled answers (temperature 1, seeds 0..99) to each of three schemas (an object with required
fields; an array of objects with enum, integer and number fields; nested objects and arrays),
how many parse and validate with constrained decoding (xgrammar through SchemaLogits) and,
in the same run as the baseline, without it. Also what the logits processor costs per token:
measured alone (each constrained answer's tokens replayed through a fresh SchemaLogits on the
model's logits width) and as the decode time per token with and without it.

A random model is the hard case for termination: left free it never writes a closing quote on
purpose, so the grammar (bounded by vlm.json_max_string / json_max_items) has to close every
answer within max_new_tokens.

    .venv/bin/python bench/structured.py [--answers 100]

Writes bench/results/structured.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.tiny_vlm import random_token_set, save_tiny_qwen  # noqa: E402
from tests.workers.test_vlm_structured import BOUNDS, CAP, SCHEMAS  # noqa: E402
from vidsift.core.config import VLMConfig  # noqa: E402
from vidsift.core.schema import AnswerSchemaError, parse_answer  # noqa: E402
from vidsift.core.types import VLMRequest  # noqa: E402
from vidsift.workers.vlm import get_vlm  # noqa: E402
from vidsift.workers.vlm.base import Sampling  # noqa: E402
from vidsift.workers.vlm.structured import SchemaLogits  # noqa: E402

FREE_TOKENS = 128  # enough for any of the three schemas' answers, were the model to write one


def valid(text: str, schema: dict) -> bool:
    try:
        parse_answer(text, schema)
    except AnswerSchemaError:
        return False
    return True


def processor_ms_per_token(grammar, answers: list[list[int]], width: int) -> float:
    """Median over answers of SchemaLogits' own time per token, replaying each answer."""
    import torch

    scores = torch.zeros(1, width)
    per_token = []
    for tokens in answers:
        processor = SchemaLogits([grammar])
        ids = torch.zeros(1, 0, dtype=torch.long)
        started = time.perf_counter()
        for token in tokens:
            processor(ids, scores)
            ids = torch.tensor([[token]])
        processor(ids, scores)  # the step that allows only the end token
        per_token.append((time.perf_counter() - started) * 1000 / (len(tokens) + 1))
    return statistics.median(per_token)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = save_tiny_qwen(Path(scratch) / "tiny-qwen")
        vlm = get_vlm(VLMConfig(model=str(checkpoint), device="cpu", dtype="float32",
                                max_new_tokens=CAP, **BOUNDS))
        width = int(vlm.model.get_output_embeddings().weight.shape[0])
        prompt = vlm.build_inputs(VLMRequest(random_token_set(0), "Describe it as JSON."))
        results = {}
        for name, schema in SCHEMAS.items():
            started = time.perf_counter()
            grammar = vlm.grammars.compile(schema)
            compile_s = time.perf_counter() - started
            rows = {"constrained": [], "free": []}
            for seed in range(args.answers):
                for kind in rows:
                    tokens, _, _, decode_s = vlm.generate_prompts(
                        [prompt], [None if kind == "constrained" else FREE_TOKENS],
                        sampling=Sampling(1.0, 1.0, seed),
                        grammars=[grammar if kind == "constrained" else None])
                    tokens = tokens[0]
                    text = vlm.tokenizer.decode(tokens, skip_special_tokens=True).strip()
                    rows[kind].append({"tokens": tokens, "valid": valid(text, schema),
                                       "ms_per_token": decode_s * 1000 / max(1, len(tokens))})
            constrained, free = rows["constrained"], rows["free"]
            decode_ms = statistics.median(r["ms_per_token"] for r in constrained)
            free_ms = statistics.median(r["ms_per_token"] for r in free)
            results[name] = {
                "answers": args.answers,
                "valid_constrained": sum(r["valid"] for r in constrained),
                "valid_unconstrained": sum(r["valid"] for r in free),
                "distinct_constrained": len({tuple(r["tokens"]) for r in constrained}),
                "tokens_median": statistics.median(len(r["tokens"]) for r in constrained),
                "tokens_max": max(len(r["tokens"]) for r in constrained),
                "compile_ms": round(compile_s * 1000, 2),
                "processor_ms_per_token": round(processor_ms_per_token(
                    grammar, [r["tokens"] for r in constrained], width), 4),
                "decode_ms_per_token_constrained": round(decode_ms, 3),
                "decode_ms_per_token_unconstrained": round(free_ms, 3),
                "decode_time_ratio": round(decode_ms / free_ms, 3),
            }
            row = results[name]
            print(f"{name:8s} valid {row['valid_constrained']}/{args.answers} constrained, "
                  f"{row['valid_unconstrained']}/{args.answers} unconstrained; "
                  f"{row['distinct_constrained']} distinct; tokens median {row['tokens_median']} "
                  f"max {row['tokens_max']} (cap {CAP}); processor "
                  f"{row['processor_ms_per_token']:.3f} ms/token; decode {decode_ms:.2f} vs "
                  f"{free_ms:.2f} ms/token ({row['decode_time_ratio']:.2f}x)", flush=True)
    out = ROOT / "bench" / "results" / "structured.json"
    out.write_text(json.dumps({
        "model": "tiny random Qwen2.5-VL (tests/tiny_vlm.py, byte-level vocabulary, 270 tokens)",
        "sampling": "temperature 1, top_p 1, seeds 0..answers-1", "max_new_tokens": CAP,
        "unconstrained_max_new_tokens": FREE_TOKENS, "bounds": BOUNDS, "schemas": SCHEMAS,
        "results": results,
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
