"""JSON Schemas for structured answers: reading and checking a user's schema, checking an
answer against it, and the bounded copy constrained decoding compiles.

Checking uses the `jsonschema` library (its check_schema for the schema itself, its validator
for the answer). Constrained decoding (workers.vlm.structured) compiles bounded_schema(schema):
the same schema with a cap on every unbounded string, array, number and free-form object, so
that the grammar's longest output is finite and a model that keeps choosing the same token (a
random one loops in a string forever) is forced to close its JSON. Everything the bounded copy
admits validates against the user's schema (it only adds bounds), so the answer is checked
against the user's schema as given.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from vidsift.core.errors import VidsiftError

# Magnitude given to a number or integer the schema leaves unbounded: 15 digits, what a float64
# holds exactly, so a model cannot write digits forever.
NUMBER_BOUND = 10**15
# The most characters or items a schema may require of one string or array: no answer is longer
# than vlm.max_new_tokens allows (at most 8192 tokens), and a grammar for a billion characters
# would take seconds and memory to build.
MAX_REQUIRED = 8192


class SchemaError(VidsiftError, ValueError):
    """A schema that cannot be used: not JSON, not a valid JSON Schema, or one the grammar
    library cannot compile. The message names where it came from and the problem."""


class AnswerSchemaError(VidsiftError):
    """A model's reply that is not JSON or does not validate against the asked schema.
    `text` is the raw reply; `problem` says what is wrong with it."""

    def __init__(self, problem: str, text: str) -> None:
        self.problem, self.text = problem, text
        super().__init__(f"the answer does not follow the schema ({problem}); raw answer: "
                         f"{text[:2000]!r}")

    def __reduce__(self):  # keep the fields when Ray pickles the error across processes
        return (type(self), (self.problem, self.text))


def check_schema(schema: Any, where: str = "schema") -> dict:
    """`schema` as a JSON Schema object (jsonschema's check_schema, by the draft its $schema
    names, else 2020-12), or SchemaError naming `where` and the problem."""
    import jsonschema

    if not isinstance(schema, dict):
        raise SchemaError(f"{where}: a JSON Schema must be an object (got {type(schema).__name__})")
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = "/".join(str(p) for p in exc.absolute_path)
        raise SchemaError(f"{where}: not a valid JSON Schema ({exc.message}"
                          + (f" at {at}" if at else "") + ")") from None
    return schema


def load_schema(path: str | Path) -> dict:
    """A JSON Schema file -> the checked schema, or SchemaError naming the file and the problem
    (missing, not JSON with the line and column, not a valid schema)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot read the schema ({exc.strerror or exc})") from None
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column "
                          f"{exc.colno})") from None
    return check_schema(schema, str(path))


def parse_answer(text: str, schema: dict) -> Any:
    """A reply asked to follow `schema` -> the parsed JSON value, or AnswerSchemaError carrying
    the raw text (not JSON; does not validate, with the first error's path)."""
    import jsonschema

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnswerSchemaError(f"not JSON: {exc.msg} at character {exc.pos}", text) from None
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    error = jsonschema.exceptions.best_match(validator(schema).iter_errors(value))
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path)
        raise AnswerSchemaError(error.message + (f" at {at}" if at else ""), text)
    return value


def bounded_schema(schema: dict, max_string: int, max_items: int) -> dict:
    """A copy of `schema` whose every string has maxLength (at most max_string characters where
    it had none), every array maxItems (max_items), every object open to more properties
    maxProperties (its required count + max_items) and names of at most max_string characters, every number and integer a minimum and
    maximum (+-NUMBER_BOUND) where it had none. Subschemas under properties, items, prefixItems,
    additionalProperties, propertyNames, anyOf/oneOf/allOf and $defs/definitions are bounded
    alike. (`true` where a schema is expected, any JSON at all, stays unbounded.) SchemaError
    when the schema requires more than MAX_REQUIRED characters, items or properties."""
    bounded = copy.deepcopy(schema)
    _bound(bounded, max_string, max_items)
    return bounded


def _bound(node: Any, max_string: int, max_items: int) -> None:
    if isinstance(node, list):
        for item in node:
            _bound(item, max_string, max_items)
        return
    if not isinstance(node, dict):
        return
    kinds = node.get("type")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    fixed = "enum" in node or "const" in node
    for key in ("minLength", "minItems", "minProperties"):
        if int(node.get(key, 0)) > MAX_REQUIRED:
            raise SchemaError(f"{key} {node[key]} is more than any answer can hold "
                              f"(at most {MAX_REQUIRED})")
    if "string" in kinds and not fixed and "pattern" not in node and "format" not in node:
        cap = max(max_string, int(node.get("minLength", 0)))
        node["maxLength"] = min(int(node.get("maxLength", cap)), cap)
    if "array" in kinds:
        cap = max(max_items, int(node.get("minItems", 0)))
        node["maxItems"] = min(int(node.get("maxItems", cap)), cap)
    if "object" in kinds and node.get("additionalProperties") not in (None, False):
        floor = max(len(node.get("required", ())), int(node.get("minProperties", 0)))
        node["maxProperties"] = min(int(node.get("maxProperties", floor + max_items)),
                                    floor + max_items)
        node.setdefault("propertyNames", {"type": "string"})
    if kinds & {"number", "integer"} and not fixed:
        if "minimum" not in node and "exclusiveMinimum" not in node:
            node["minimum"] = -NUMBER_BOUND
        if "maximum" not in node and "exclusiveMaximum" not in node:
            node["maximum"] = NUMBER_BOUND
    for key in ("properties", "$defs", "definitions", "patternProperties"):
        if isinstance(node.get(key), dict):
            for sub in node[key].values():
                _bound(sub, max_string, max_items)
    for key in ("items", "prefixItems", "additionalProperties", "propertyNames", "anyOf", "oneOf",
                "not", "contains", "if", "then", "else"):
        if key in node:
            _bound(node[key], max_string, max_items)
