"""The JSON Schemas of ``schemas/`` at run time, and their errors turned into ur-engine errors with a path."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Hashable, Iterable, Iterator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import jsonschema_rs

from ur_engine import resources
from ur_engine.errors import did_you_mean

if TYPE_CHECKING:
    # Imported where an error is explained: valid records and a cached library never need it, and it is a
    # quarter of the engine's import time.
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

SCHEMAS = ("admission", "ruleset", "facts", "valueset", "decision")
# A JSON Schema document: JSON objects all the way down, as jsonschema itself types them.
Schema = dict[str, Any]
# Where an error is, as a tuple of keys and indexes; its message; a did-you-mean; whether it points at a key.
Explained = tuple[tuple[Hashable, ...], str, str | None, bool]


@lru_cache(maxsize=None)
def schema(name: str) -> Schema:
    """The published schema ``schemas/<name>.schema.json``."""
    doc = json.loads(resources.read_text("schemas", f"{name}.schema.json"))
    if not isinstance(doc, dict):
        raise TypeError(f"schemas/{name}.schema.json is not a JSON object")
    return doc


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    doc = schema(name)
    if name == "ruleset":
        doc = _ruleset_structure_only(doc)
    return Draft202012Validator(doc)


@lru_cache(maxsize=None)
def fast_validator(name: str) -> jsonschema_rs.Validator:
    """The same schema compiled by jsonschema-rs: ~10 µs a record, so valid records pay little.

    It only answers valid or not; ``iter_explained`` explains a failure with paths and suggestions.
    """
    return jsonschema_rs.validator_for(schema(name))


def _ruleset_structure_only(doc: Schema) -> Schema:
    # Conditions are checked by the rule loader, which knows the facts and gives sharper messages
    # (did-you-mean on fact names and operators); the published schema stays strict for editors.
    doc = copy.deepcopy(doc)
    crit = doc["$defs"]["criterion"]
    crit.pop("oneOf")
    crit["additionalProperties"] = True
    for key in ("any", "all", "not", "fact", "lt", "lte", "gt", "gte", "eq", "ne", "in", "is"):
        crit["properties"].pop(key)
    return doc


def json_path(parts: Iterable[Hashable]) -> str:
    """``("observations", 2, "unit")`` → ``$.observations[2].unit``."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def explain(error: ValidationError) -> Explained:
    """(path, message, suggestion, points_at_key) for one schema error, descending into oneOf/anyOf."""
    from jsonschema.exceptions import best_match, relevance

    while error.context:
        error = best_match(error.context, key=relevance)
    path: tuple[Hashable, ...] = tuple(error.absolute_path)
    v, inst = error.validator, error.instance
    sch = error.schema if isinstance(error.schema, Mapping) else {}  # a boolean schema says no more
    if v == "additionalProperties" and isinstance(inst, dict):
        allowed = list(sch.get("properties", {}))
        extra = sorted(k for k in inst if k not in allowed and not _pattern_ok(sch, k))
        if extra:
            key = extra[0]
            hint = did_you_mean(str(key), allowed + _pattern_words(sch))
            return path + (key,), f"unknown field '{key}'", hint, True
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return path + (missing,), f"'{missing}' is required", None, False
    if v == "enum":
        hint = did_you_mean(str(inst), [str(x) for x in sch["enum"]]) if isinstance(inst, str) else None
        return path, f"{json.dumps(inst)} is not one of: {', '.join(str(x) for x in sch['enum'])}", hint, False
    if v == "pattern":
        return path, f"{json.dumps(inst)} does not have the expected form ({sch.get('description') or sch['pattern']})", None, False
    if v == "type":
        return path, f"expected {_types(sch['type'])}, got {json.dumps(inst)[:60]}", None, False
    return path, error.message, None, False


def _each_key(error: ValidationError) -> list[Explained]:
    """``explain``, with an error of unknown keys made one error per key."""
    first = explain(error)
    inst, sch = error.instance, error.schema
    if not (first[1].startswith("unknown field") and error.validator == "additionalProperties"
            and isinstance(inst, dict) and isinstance(sch, Mapping)):
        return [first]
    allowed = list(sch.get("properties", {}))
    path: tuple[Hashable, ...] = tuple(error.absolute_path)
    return [(path + (key,), f"unknown field '{key}'", did_you_mean(str(key), allowed + _pattern_words(sch)), True)
            for key in sorted(k for k in inst if k not in allowed and not _pattern_ok(sch, k))]


def _types(t: str | list[str]) -> str:
    return " or ".join(t) if isinstance(t, list) else t


def _pattern_ok(sch: Mapping[str, Any], key: object) -> bool:
    return any(re.search(p, str(key)) for p in sch.get("patternProperties", {}))


def _pattern_words(sch: Mapping[str, Any]) -> list[str]:
    words: list[str] = []
    for p in sch.get("patternProperties", {}):
        inner = p.strip("^$").strip("()")
        words.extend(w for w in inner.split("|") if w.isidentifier())
    return words


def iter_explained(name: str, instance: object, every_key: bool = False) -> Iterator[Explained]:
    """Every schema error of ``instance`` as (path, message, suggestion, points_at_key), in document order.

    ``every_key``: one error for each unknown key of a mapping, not for its first only (a rule file's author
    fixes them all in one go).
    """
    errors = sorted(validator(name).iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    explained = [e for err in errors for e in (_each_key(err) if every_key else [explain(err)])]
    # A misspelt key shows as an unknown field *and* a missing one: keep the unknown field, which suggests it.
    suggested = {path[:-1] + (hint,) for path, _, hint, at_key in explained if at_key and hint}
    yield from (e for e in explained if not (e[1].endswith("is required") and e[0] in suggested))
