"""Which grammar library constrains vidsift's JSON answers: xgrammar, outlines (outlines-core,
the engine outlines 1.x runs) and lm-format-enforcer, on one schema and one tokenizer, in one
run: setup + compile time, and the time to compute and apply one step's token mask, per token of
a valid answer replayed (median of 5 runs). The tokenizer is a byte-level BPE trained here on
transformers' model sources to a 32k target (no real checkpoint's tokenizer is on this machine;
Qwen's has 151k tokens, where per-token costs that scale with the vocabulary grow further).

Only xgrammar is a vidsift dependency; run this in a scratch venv that has the other two:

    python -m venv /tmp/grammars && echo "$PWD/.venv/lib/python3.11/site-packages" \\
        > /tmp/grammars/lib/python3.11/site-packages/main.pth
    /tmp/grammars/bin/pip install --no-deps outlines outlines-core lm-format-enforcer \\
        interegular genson diskcache
    /tmp/grammars/bin/python bench/grammar_libraries.py

lm-format-enforcer 0.11's transformers integration imports transformers.tokenization_utils,
which transformers 5 no longer has: the bench aliases it to tokenization_utils_base to measure
the library at all. Writes bench/results/grammar_libraries.json.
"""

from __future__ import annotations

import glob
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = {"type": "object", "properties": {
    "title": {"type": "string", "maxLength": 80},
    "items": {"type": "array", "maxItems": 8, "items": {"type": "object", "properties": {
        "kind": {"enum": ["a", "b", "c"]}, "score": {"type": "number"}},
        "required": ["kind", "score"]}}},
    "required": ["title", "items"]}
ANSWER = {"title": "A rabbit wakes up in the forest", "items": [
    {"kind": "a", "score": 0.5}, {"kind": "c", "score": 12}]}
RUNS = 5


def trained_tokenizer():
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    sources = sorted(glob.glob(str(Path(transformers.__file__).parent
                                   / "models" / "*" / "modeling_*.py")))[:300]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train(sources, trainers.BpeTrainer(
        vocab_size=32000, special_tokens=["<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>")


def xgrammar_run(tokenizer, ids):
    import torch
    import xgrammar

    started = time.perf_counter()
    info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer),
                                                   stop_token_ids=[tokenizer.eos_token_id])
    compiled = xgrammar.GrammarCompiler(info, cache_enabled=False).compile_json_schema(
        SCHEMA, any_whitespace=False, separators=(", ", ": "))
    setup = time.perf_counter() - started
    matcher = xgrammar.GrammarMatcher(compiled)
    bitmask = xgrammar.allocate_token_bitmask(1, len(tokenizer))
    logits = torch.zeros(1, len(tokenizer))
    started = time.perf_counter()
    for token in ids:
        matcher.fill_next_token_bitmask(bitmask)
        xgrammar.apply_token_bitmask_inplace(logits, bitmask)
        assert matcher.accept_token(token)
    return setup, (time.perf_counter() - started) / len(ids)


def outlines_run(tokenizer, ids):
    import torch
    from outlines_core import Index, Vocabulary
    from outlines_core.json_schema import build_regex_from_schema

    started = time.perf_counter()
    regex = build_regex_from_schema(json.dumps(SCHEMA), whitespace_pattern=r"[ ]?")
    vocabulary: dict[str, list[int]] = {}
    for token, number in tokenizer.get_vocab().items():
        if number != tokenizer.eos_token_id:
            vocabulary.setdefault(tokenizer.convert_tokens_to_string([token]), []).append(number)
    index = Index(regex, Vocabulary(tokenizer.eos_token_id, vocabulary))
    setup = time.perf_counter() - started
    state = index.get_initial_state()
    logits = torch.zeros(len(tokenizer))
    started = time.perf_counter()
    for token in ids:
        mask = torch.full((len(tokenizer),), float("-inf"))
        mask[torch.tensor(index.get_allowed_tokens(state))] = 0
        logits = logits + mask
        if token != tokenizer.eos_token_id:
            state = index.get_next_state(state, token)
    return setup, (time.perf_counter() - started) / len(ids)


def lm_format_enforcer_run(tokenizer, ids):
    import torch
    import transformers.tokenization_utils_base as base

    sys.modules.setdefault("transformers.tokenization_utils", base)
    from lmformatenforcer import JsonSchemaParser, TokenEnforcer
    from lmformatenforcer.integrations.transformers import build_token_enforcer_tokenizer_data

    started = time.perf_counter()
    enforcer = TokenEnforcer(build_token_enforcer_tokenizer_data(tokenizer),
                             JsonSchemaParser(SCHEMA))
    setup = time.perf_counter() - started
    logits = torch.zeros(len(tokenizer))
    started = time.perf_counter()
    for at in range(len(ids)):
        allowed = enforcer.get_allowed_tokens(ids[:at])
        allowed = getattr(allowed, "allowed_tokens", allowed)
        mask = torch.full((len(tokenizer),), float("-inf"))
        mask[torch.tensor(allowed)] = 0
        logits = logits + mask
    return setup, (time.perf_counter() - started) / len(ids)


def main() -> None:
    tokenizer = trained_tokenizer()
    answer = json.dumps(ANSWER)
    ids = tokenizer(answer)["input_ids"] + [tokenizer.eos_token_id]
    results = {}
    for name, run in (("xgrammar", xgrammar_run), ("outlines-core", outlines_run),
                      ("lm-format-enforcer", lm_format_enforcer_run)):
        try:
            runs = [run(tokenizer, ids) for _ in range(RUNS)]
        except ImportError as exc:
            print(f"{name}: not installed ({exc})")
            continue
        results[name] = {"setup_ms": round(statistics.median(r[0] for r in runs) * 1000, 1),
                         "mask_ms_per_token": round(statistics.median(r[1] for r in runs) * 1000,
                                                    4)}
    base = results.get("xgrammar", {}).get("mask_ms_per_token")
    for name, row in results.items():
        if base:
            row["mask_time_vs_xgrammar"] = round(row["mask_ms_per_token"] / base, 2)
        print(f"{name:20s} setup+compile {row['setup_ms']:8.1f} ms   mask "
              f"{row['mask_ms_per_token']:.4f} ms/token   "
              f"{row.get('mask_time_vs_xgrammar', '')}x xgrammar")
    out = ROOT / "bench" / "results" / "grammar_libraries.json"
    out.write_text(json.dumps({"vocab_size": len(tokenizer), "answer_tokens": len(ids),
                               "runs": RUNS, "schema": SCHEMA, "results": results},
                              indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
