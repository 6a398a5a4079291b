"""Structured answers: JSON that follows a JSON Schema, every time.

In-process backends decode constrained by xgrammar (why xgrammar: pyproject.toml and README
"Structured answers"): the schema, bounded first (core.schema.bounded_schema, so the grammar's
longest output is finite), is compiled once per tokenizer into a grammar; SchemaLogits, a
transformers logits processor, masks every token the grammar does not allow at each step, so
the model can only write JSON the schema admits, and once the JSON is complete only an end
token is allowed. Rows of a batch without a schema pass through untouched.

The openai backend sends the schema as response_format (json_schema, strict) and checks the
reply the same way: every backend ends in answer_json(), which parses and validates the text
against the user's schema (core.schema.parse_answer) and raises AnswerSchemaError with the raw
text otherwise (a constrained answer cut by max_new_tokens before its JSON closed, a server
that ignored response_format).

Other flows ask for JSON by setting VLMRequest.schema (e.g. summarize's map and reduce steps
for their fixed schemas) and read VLMResult.answer_json.
"""

from __future__ import annotations

import json
import re
import threading
import torch

from vidsift.core.schema import SchemaError, bounded_schema, check_schema, parse_answer
from vidsift.core.types import VLMRequest, VLMResult

# xgrammar's compile errors start with a timestamp and its C++ source position.
_NATIVE_PREFIX = re.compile(r"^\s*\[[\d:]+\]\s*\S+\.(?:cc|h):\d+:\s*")
# The layout a constrained answer is written in: one line, ", " and ": " between items, as
# json.dumps writes it (any_whitespace would let a model pad with spaces without end).
SEPARATORS = (", ", ": ")
# xgrammar 0.2.9 writes a string with a length bound as [^"\\\r\n]{m,n}: control characters
# (raw \x13, a tab) that JSON forbids inside a string, which a random model picks. Its
# unbounded strings exclude them; _json_grammar gives the bounded ones the same class.
_COUNTED_CHARACTER = '[^\\"\\\\\\r\\n]'
_JSON_CHARACTER = '[^\\0-\\x1f\\"\\\\]'


def answer_json(request: VLMRequest, result: VLMResult) -> VLMResult:
    """result with answer_json set: its text parsed and valid against request.schema (nothing to
    do without a schema), else AnswerSchemaError carrying the raw text."""
    if request.schema is not None:
        result.answer_json = parse_answer(result.text, request.schema)
    return result


class GrammarCompiler:
    """JSON Schemas -> xgrammar grammars for one tokenizer. vocab_size: the model's logits
    width (can be above the tokenizer's own size: padding rows). stop_token_ids: the tokens
    that may end a complete answer (the model's EOS ids). max_string / max_items: the bounds
    bounded_schema puts on what the schema leaves unbounded."""

    def __init__(self, tokenizer, vocab_size: int, stop_token_ids: list[int], max_string: int,
                 max_items: int) -> None:
        import xgrammar

        self.info = xgrammar.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=sorted(stop_token_ids))
        self.compiler = xgrammar.GrammarCompiler(self.info)
        self.max_string, self.max_items = max_string, max_items
        self.lock = threading.Lock()

    def compile(self, schema: dict, where: str = "schema"):
        """The schema's compiled grammar (xgrammar.CompiledGrammar), or SchemaError naming
        `where` and the problem (json_grammar)."""
        grammar = json_grammar(schema, where, self.max_string, self.max_items)
        with self.lock:
            return self.compiler.compile_grammar(grammar)


def json_grammar(schema: dict, where: str, max_string: int, max_items: int):
    """The xgrammar Grammar of bounded_schema(schema): one line, SEPARATORS, no property or
    item the schema does not name (strict mode), JSON's string characters only. SchemaError
    naming `where` when the schema is no valid JSON Schema, asks for more than an answer can
    hold, or xgrammar cannot turn it into a grammar."""
    import xgrammar

    check_schema(schema, where)
    try:
        text = json.dumps(bounded_schema(schema, max_string, max_items))
        grammar = xgrammar.Grammar.from_json_schema(
            text, any_whitespace=False, separators=SEPARATORS, strict_mode=True)
    except SchemaError as exc:
        raise SchemaError(f"{where}: {exc}") from None
    except (RuntimeError, ValueError) as exc:
        reason = _NATIVE_PREFIX.sub("", str(exc)).strip().splitlines()[0]
        raise SchemaError(f"{where}: the grammar library cannot compile it ({reason})") from None
    return xgrammar.Grammar.from_ebnf(str(grammar).replace(_COUNTED_CHARACTER, _JSON_CHARACTER))


def check_compiles(schema: dict, where: str = "schema") -> dict:
    """The schema if it can be decoded to (json_grammar), else SchemaError: what the CLI and a
    service check before any model or job starts, without the model's tokenizer."""
    json_grammar(schema, where, 1, 1)
    return schema


class SchemaLogits:
    """A transformers logits processor for a batch in which row i follows grammars[i] (None: a
    free row). At each step it advances each row's matcher by the token just chosen and masks
    the scores of every token that row's grammar forbids (-inf). Fresh per generate call: the
    matchers hold each row's place in its grammar."""

    def __init__(self, grammars: list) -> None:
        import xgrammar

        self.xgrammar = xgrammar
        self.rows = [i for i, g in enumerate(grammars) if g is not None]
        self.matchers = {i: xgrammar.GrammarMatcher(grammars[i]) for i in self.rows}
        vocab = grammars[self.rows[0]].tokenizer_info.vocab_size
        self.bitmask = xgrammar.allocate_token_bitmask(len(self.rows), vocab)
        self.started = False

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        for k, row in enumerate(self.rows):
            matcher = self.matchers[row]
            if self.started and not matcher.is_terminated():
                # a row already terminated is padding now; every other token was allowed
                matcher.accept_token(int(input_ids[row, -1]))
            if matcher.is_terminated():
                self.bitmask[k].fill_(-1)  # all allowed: generate pads the finished row
            else:
                matcher.fill_next_token_bitmask(self.bitmask, k)
        self.started = True
        rows = torch.tensor(self.rows)
        masked = scores[rows].to("cpu", torch.float32)
        width = masked.shape[1]
        self.xgrammar.apply_token_bitmask_inplace(masked, self.bitmask, vocab_size=width)
        scores = scores.clone()
        scores[rows] = masked.to(scores.device, scores.dtype)
        return scores


def grammars_for(compiler: GrammarCompiler, requests: list[VLMRequest]) -> list:
    """Per request its compiled grammar (None for a free one)."""
    return [None if r.schema is None else compiler.compile(r.schema, r.request_id or "schema")
            for r in requests]


def json_schema_format(schema: dict, name: str = "answer") -> dict:
    """The OpenAI response_format asking for JSON that follows `schema` (what vLLM and SGLang
    honour with their own constrained decoding)."""
    return {"type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True}}

