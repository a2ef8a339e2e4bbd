"""Rule set → evaluation plan → durable-rules ruleset definitions (pure data; no engine calls here).

A plan has three stages, each a list of named boolean nodes over the previous stage's results:
criteria over facts, groups over criteria (any criterion met), levels and gates over groups. Staging keeps
every durable-rules condition small: durable-rules rewrites ``$or`` inside ``$and`` into all combinations, so a
level written directly over criteria would multiply out.

Each node compiles to two rules: ``m<i>`` fires when the node is met, ``n<i>`` when it is definitely not met;
neither firing means unknown. A comparison on an absent field is false in durable-rules, which is exactly
what three-valued logic needs: ``not (hr > 140)`` compiles to ``hr <= 140``, false when ``hr`` is unknown.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from . import conditions as c
from .library import MAX_ALTERNATIVES, RuleSet


@dataclass(frozen=True)
class Stage:
    name: str  # criteria | groups | levels
    nodes: tuple[tuple[str, c.Expr], ...]  # (node name, condition over input names)
    inputs: tuple[str, ...]  # input names the conditions use


@dataclass(frozen=True)
class Plan:
    ruleset: str
    stages: tuple[Stage, Stage, Stage]


def plan(rs: RuleSet) -> Plan:
    """The three stages of one rule set."""
    criteria = Stage("criteria", tuple((cr.id, cr.condition) for cr in rs.criteria), rs.facts)
    groups = Stage("groups", tuple((g, c.Any(tuple(c.Leaf(i, "is", True) for i in ids)))
                                   for g, ids in rs.groups.items()), tuple(cr.id for cr in rs.criteria))
    tops = tuple((f"level:{t}", e) for t, e in rs.levels.items()) + \
        tuple((f"requires:{t}", e) for t, e in rs.requires.items())
    return Plan(rs.key, (criteria, groups, Stage("levels", tops, tuple(rs.groups))))


@dataclass(frozen=True)
class DurableStage:
    """A stage ready for durable-rules: its ruleset JSON, input → field key, and the guard markers."""

    stage: Stage
    definition: str
    keys: dict  # input name -> short field key
    markers: str  # '"_g0":1,"_g1":1' — every rule is guarded by one of these


def to_durable(stage: Stage) -> DurableStage:
    keys = {name: f"k{i}" for i, name in enumerate(stage.inputs)}
    rules: dict[str, dict] = {}
    chunk, load = 0, 0
    for i, (_, expr) in enumerate(stage.nodes):
        weight = max(c.alternatives(expr), c.alternatives(expr, negated=True))
        if load and load + weight > MAX_ALTERNATIVES:
            chunk, load = chunk + 1, 0
        load += weight
        guard = {"$ex": {f"_g{chunk}": 1}}
        # The guard also keeps durable-rules' own state fact from matching a rule.
        rules[f"m{i}"] = {"all": [{"m": {"$and": [guard, _cond(expr, keys, False)]}}]}
        rules[f"n{i}"] = {"all": [{"m": {"$and": [guard, _cond(expr, keys, True)]}}]}
    markers = ",".join(f'"_g{k}":1' for k in range(chunk + 1))
    return DurableStage(stage, dumps(rules), keys, markers)


def _cond(expr: c.Expr, keys: dict, negated: bool) -> dict:
    if isinstance(expr, c.Leaf):
        return _leaf(expr, keys[expr.fact], negated)
    if isinstance(expr, c.Not):
        return _cond(expr.item, keys, not negated)
    parts = [_cond(item, keys, negated) for item in expr.items]
    if len(parts) == 1:
        return parts[0]
    disjunction = isinstance(expr, c.Any) != negated
    return {"$or" if disjunction else "$and": parts}


def _leaf(leaf: c.Leaf, key: str, negated: bool) -> dict:
    op, value = leaf.op, leaf.value
    if op == "is":
        value = 1 if value else 0
        op = "eq"
    if op == "in":
        if negated:
            parts = [{"$neq": {key: v}} for v in value]
            return parts[0] if len(parts) == 1 else {"$and": parts}
        parts = [{key: v} for v in value]
        return parts[0] if len(parts) == 1 else {"$or": parts}
    if negated:
        op = c.NEGATION[op]
    if op == "eq":
        return {key: value}
    return {{"lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte", "ne": "$neq"}[op]: {key: value}}


def number(x) -> str:
    """A number as durable-rules' JSON parser reads it: never in exponent form, never NaN or infinite."""
    if isinstance(x, bool):
        return "1" if x else "0"
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        raise ValueError(f"{x} cannot be evaluated")
    text = repr(x)
    if "e" in text or "E" in text:
        text = format(x, ".20f").rstrip("0").rstrip(".") or "0"
    return text


def dumps(obj) -> str:
    """JSON for durable-rules: ASCII strings and safe numbers, the same way for rules and facts."""
    if isinstance(obj, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in obj) + "]"
    if isinstance(obj, str):
        return json.dumps(obj)
    if isinstance(obj, (int, float)):
        return number(obj)
    raise TypeError(f"cannot send {type(obj).__name__} to durable-rules")


def encode_fact(ds: DurableStage, fact_id: int, values: dict) -> str:
    """The fact for one evaluation: id, session, guard markers and the inputs this stage uses."""
    parts = [f'"id":"{fact_id}","sid":"0",{ds.markers}']
    for name, key in ds.keys.items():
        v = values.get(name)
        if v is None:
            continue  # absent = unknown; null would count as present in durable-rules
        if isinstance(v, str):
            parts.append(f'"{key}":{json.dumps(v)}')
        else:
            parts.append(f'"{key}":{number(v)}')
    return "{" + ",".join(parts) + "}"
