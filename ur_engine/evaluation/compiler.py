"""Rule set → evaluation plan → durable-rules ruleset definitions (pure data; no engine calls here).

A plan has three stages, each a list of named boolean nodes over the previous stage's results:
criteria over facts, groups over criteria (any criterion met), levels and gates over groups. The criteria go to
durable-rules; the later stages, booleans over booleans, are judged from their results (``evaluator._Upper``).

Each criterion compiles to two rules: ``m<i>`` fires when the node is met, ``n<i>`` when it is definitely not met;
neither firing means unknown. A comparison on an absent field is false in durable-rules, which is exactly
what three-valued logic needs: ``not (hr > 140)`` compiles to ``hr <= 140``, false when ``hr`` is unknown.

A node that is one comparison, or ``any`` of comparisons, gets only ``m<i>``: when every input it compares is
given, each comparison is true or false, so ``m<i>`` not firing means not met; when one is absent, no
comparison being true leaves it unknown. Most criteria are such nodes, and most are not met, so this spares
durable-rules most of its activations.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ur_engine import conditions as c
from ur_engine.rules.library import MAX_ALTERNATIVES, RuleSet


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


MAX_INPUTS = 200  # durable-rules refuses facts of more than ~252 properties (error 302); markers need room too

Node = tuple[str, str]  # (rule set key, criterion id)
Json = dict[str, object]  # a durable-rules condition, as ``dumps`` writes it


@dataclass(frozen=True)
class DurableStage:
    """The criteria of a bundle of rule sets, ready for durable-rules.

    Rules are named ``m<i>``/``n<i>`` after ``nodes[i]``, a (rule set key, node name) pair. Every rule is
    guarded by a marker of its rule set (``_g<r>_<chunk>``), so a record only meets the rules of the rule
    sets that apply to it; the guard also keeps durable-rules' own state fact from matching any rule.
    """

    definition: str
    keys: dict[str, str]  # fact name -> short field key
    nodes: tuple[Node, ...]  # rule i is nodes[i]
    markers: dict[str, str]  # rule set key -> '"_g0_0":1,"_g0_1":1'
    inputs: dict[str, tuple[str, ...]]  # rule set key -> the facts its rules read
    two_valued: dict[int, tuple[str, ...]]  # rule index -> the facts of a node without an n<i> rule (module doc)

    def prefixes(self, rulesets: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        """(input name, ',"k3":') pairs for the inputs of ``rulesets``: a record pays only for what applies."""
        names = dict.fromkeys(n for k in rulesets for n in self.inputs[k])
        return tuple((n, f',"{self.keys[n]}":') for n in names)

    def head(self, rulesets: Iterable[str]) -> str:
        """The markers of ``rulesets``, each after a comma: the part of a fact fixed by its rule sets."""
        return "".join("," + self.markers[k] for k in rulesets)


def bundles(plans: list[Plan]) -> list[list[Plan]]:
    """Group plans so that the criteria of a bundle read no more than MAX_INPUTS facts."""
    out: list[list[Plan]] = []
    sizes: list[set[str]] = []
    for p in plans:
        need = set(p.stages[0].inputs)
        for bundle, size in zip(out, sizes):
            if len(size | need) <= MAX_INPUTS:
                bundle.append(p)
                size |= need
                break
        else:
            out.append([p])
            sizes.append(need)
    return out


def to_durable(members: list[Plan]) -> DurableStage:
    """The criteria of every plan in a bundle, as one durable-rules ruleset; facts are shared by name."""
    keys: dict[str, str] = {}
    rules: dict[str, Json] = {}
    nodes: list[Node] = []
    markers: dict[str, str] = {}
    inputs: dict[str, tuple[str, ...]] = {}
    two_valued: dict[int, tuple[str, ...]] = {}
    for r, p in enumerate(members):
        stage = p.stages[0]
        local = {}
        for name in stage.inputs:
            local[name] = keys.setdefault(name, f"k{len(keys)}")
        inputs[p.ruleset] = stage.inputs
        chunk, load = 0, 0
        for name, expr in stage.nodes:
            weight = max(c.alternatives(expr), c.alternatives(expr, negated=True))
            if load and load + weight > MAX_ALTERNATIVES:
                chunk, load = chunk + 1, 0
            load += weight
            guard = {"$ex": {f"_g{r}_{chunk}": 1}}
            i = len(nodes)
            nodes.append((p.ruleset, name))
            rules[f"m{i}"] = {"all": [{"m": {"$and": [guard, _cond(expr, local, False)]}}]}
            parts = (expr,) if isinstance(expr, c.Leaf) else expr.items if isinstance(expr, c.Any) else ()
            leaves = [x for x in parts if isinstance(x, c.Leaf)]
            if parts and len(leaves) == len(parts):
                two_valued[i] = tuple(dict.fromkeys(leaf.fact for leaf in leaves))
            else:
                rules[f"n{i}"] = {"all": [{"m": {"$and": [guard, _cond(expr, local, True)]}}]}
        markers[p.ruleset] = ",".join(f'"_g{r}_{k}":1' for k in range(chunk + 1))
    return DurableStage(dumps(rules), keys, tuple(nodes), markers, inputs, two_valued)


def _cond(expr: c.Expr, keys: Mapping[str, str], negated: bool) -> Json:
    if isinstance(expr, c.Leaf):
        return _leaf(expr, keys[expr.fact], negated)
    if isinstance(expr, c.ScoreLeaf):
        return _score_leaf(expr, keys[f"{expr.fact}.lo"], keys[f"{expr.fact}.hi"], negated)
    if isinstance(expr, c.Not):
        return _cond(expr.item, keys, not negated)
    parts = [_cond(item, keys, negated) for item in expr.items]
    if len(parts) == 1:
        return parts[0]
    disjunction = isinstance(expr, c.Any) != negated
    return {"$or" if disjunction else "$and": parts}


def _leaf(leaf: c.Leaf, key: str, negated: bool) -> Json:
    op, value = leaf.op, leaf.value
    if op == "is":
        value = 1 if value else 0
        op = "eq"
    if op == "in":
        values = value if isinstance(value, tuple) else (value,)
        parts: list[Json]
        if negated:
            parts = [{"$neq": {key: v}} for v in values]
            return parts[0] if len(parts) == 1 else {"$and": parts}
        parts = [{key: v} for v in values]
        return parts[0] if len(parts) == 1 else {"$or": parts}
    if negated:
        op = c.NEGATION[op]
    if op == "eq":
        return {key: value}
    return {{"lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte", "ne": "$neq"}[op]: {key: value}}


def _score_leaf(leaf: c.ScoreLeaf, lo: str, hi: str, negated: bool) -> Json:
    """See conditions.score_test: monotone tests hold at both ends; eq needs lo == hi == t."""
    op, t = leaf.op, leaf.value
    if op in ("eq", "ne"):
        exact: Json = {"$and": [{lo: t}, {hi: t}]}
        outside: Json = {"$or": [{"$gt": {lo: t}}, {"$lt": {hi: t}}]}
        return (outside if (op == "eq") == negated else exact)
    test = c.NEGATION[op] if negated else op
    sym = {"lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}[test]
    return {"$and": [{sym: {lo: t}}, {sym: {hi: t}}]}


def number(x: float) -> str:
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


def dumps(obj: object) -> str:
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


def encode_fact(fact_id: int, head: str, prefixes: tuple[tuple[str, str], ...], values: Mapping[str, c.Scalar]) -> str:
    """The fact for one evaluation: id, session, markers (``head``) and the inputs present in ``values``."""
    parts = ['{"id":"%d","sid":"0"' % fact_id, head]
    add = parts.append
    get = values.get
    for name, prefix in prefixes:
        v = get(name)
        if v is None:
            continue  # absent = unknown; null would count as present in durable-rules
        t = type(v)
        if t is bool:
            add(prefix + ("1" if v else "0"))
        elif t is float:
            text = repr(v)
            # repr is what durable-rules reads unless it has an exponent ('e') or is inf/nan ('n')
            add(prefix + (number(float(v)) if "e" in text or "n" in text else text))
        elif t is int:
            add(prefix + str(v))
        elif t is str:
            add(prefix + _string(v))
        else:  # a subclass (an enum's member, a numpy number): what it is decides
            add(prefix + dumps(v))
    add("}")
    return "".join(parts)


_STRINGS: dict[c.Scalar, str] = {}


def _string(text: c.Scalar) -> str:
    """JSON of a string fact; the few values a record can give (sex, admit source…) are encoded once."""
    found = _STRINGS.get(text)
    if found is None:
        found = json.dumps(text)
        if len(_STRINGS) < 4096:
            _STRINGS[text] = found
    return found
