"""The condition AST shared by the durable-rules compiler and the reference evaluator.

Logic is three-valued (Kleene): a comparison on a fact the record does not give is *unknown* (None),
``all`` is false as soon as one part is false, ``any`` is true as soon as one part is true.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

OPERATORS = ("lt", "lte", "gt", "gte", "eq", "ne", "in", "is")
NUMERIC_OPERATORS = ("lt", "lte", "gt", "gte")
NEGATION = {"lt": "gte", "lte": "gt", "gt": "lte", "gte": "lt", "eq": "ne", "ne": "eq"}

# What a fact's value is (bool and int count as numbers), and what a test compares it with: one value, or for
# ``in`` a tuple of them. The loader matches each threshold's type to its fact's type.
Scalar = bool | float | str
Value = Scalar | tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Leaf:
    """``{fact: heart_rate.max, gt: 140}``"""

    fact: str
    op: str
    value: Value

    def facts(self) -> tuple[str, ...]:
        return (self.fact,)


@dataclass(frozen=True, slots=True)
class ScoreLeaf:
    """A test on a score, judged on its bounds: with ``lo``/``hi`` the points it surely has / could have.

    ``score >= 3`` is met once 3 points are known, and not met once 3 are out of reach, whatever else is unknown.
    """

    fact: str
    op: str
    value: float  # scores are numbers, compared with lt, lte, gt, gte, eq or ne

    def facts(self) -> tuple[str, ...]:
        return (f"{self.fact}.lo", f"{self.fact}.hi")


@dataclass(frozen=True, slots=True)
class All:
    items: tuple[Expr, ...]

    def facts(self) -> tuple[str, ...]:
        return _union(self.items)


@dataclass(frozen=True, slots=True)
class Any:
    items: tuple[Expr, ...]

    def facts(self) -> tuple[str, ...]:
        return _union(self.items)


@dataclass(frozen=True, slots=True)
class Not:
    item: Expr

    def facts(self) -> tuple[str, ...]:
        return self.item.facts()


Expr = Leaf | ScoreLeaf | All | Any | Not


def _union(items: Iterable[Expr]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        for f in item.facts():
            seen[f] = None
    return tuple(seen)


def _within(left: Scalar, right: Value) -> bool:
    return isinstance(right, tuple) and left in right


# Python's own comparisons: a threshold of another type than its fact's cannot get past the loader.
_COMPARE: dict[str, Callable[[Scalar, Value], bool]] = {
    "lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge,
    "eq": operator.eq, "is": operator.eq, "ne": operator.ne, "in": _within,
}


def compare(op: str, left: Scalar, right: Value) -> bool:
    test = _COMPARE.get(op)
    if test is None:
        raise ValueError(op)
    return test(left, right)


def evaluate(expr: Expr, facts: Mapping[str, Scalar]) -> bool | None:
    """Three-valued value of ``expr`` over ``facts`` (a missing key is unknown).

    >>> evaluate(Any((Leaf("hr", "gt", 140), Leaf("sbp", "lt", 90))), {"sbp": 80})
    True
    """
    if isinstance(expr, Leaf):
        value = facts.get(expr.fact)
        return None if value is None else compare(expr.op, value, expr.value)
    if isinstance(expr, ScoreLeaf):
        lo, hi = facts.get(f"{expr.fact}.lo"), facts.get(f"{expr.fact}.hi")
        if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
            return score_test(expr.op, lo, hi, expr.value)
        return None  # bounds are numbers, absent when unknown
    if isinstance(expr, Not):
        inner = evaluate(expr.item, facts)
        return None if inner is None else not inner
    unknown = False
    if isinstance(expr, All):
        for item in expr.items:
            v = evaluate(item, facts)
            if v is False:
                return False
            unknown = unknown or v is None
        return None if unknown else True
    for item in expr.items:
        v = evaluate(item, facts)
        if v is True:
            return True
        unknown = unknown or v is None
    return None if unknown else False


def score_test(op: str, lo: float, hi: float, t: float) -> bool | None:
    """Three-valued ``score op t`` for a score known to lie in [lo, hi]."""
    if op in ("eq", "ne"):
        exact = lo == hi == t
        outside = t < lo or t > hi
        met, not_met = (exact, outside) if op == "eq" else (outside, exact)
    else:  # monotone tests: the two ends decide
        at_lo, at_hi = compare(op, lo, t), compare(op, hi, t)
        met, not_met = at_lo and at_hi, not at_lo and not at_hi
    return True if met else False if not_met else None


def alternatives(expr: Expr, negated: bool = False) -> int:
    """How many conjunctions durable-rules expands ``expr`` into (it rewrites ``$or`` inside ``$and`` to DNF)."""
    if isinstance(expr, Leaf):
        if expr.op == "in" and not negated and isinstance(expr.value, tuple):
            return len(expr.value)
        return 1
    if isinstance(expr, ScoreLeaf):
        return 2 if expr.op in ("eq", "ne") and (expr.op == "eq") == negated else 1
    if isinstance(expr, Not):
        return alternatives(expr.item, not negated)
    parts = [alternatives(i, negated) for i in expr.items]
    disjunction = isinstance(expr, Any) != negated
    if disjunction:
        return sum(parts)
    total = 1
    for p in parts:
        total *= p
    return total


def leaves(expr: Expr) -> Iterator[Leaf | ScoreLeaf]:
    """Every fact test in ``expr``, depth first."""
    if isinstance(expr, (Leaf, ScoreLeaf)):
        yield expr
    elif isinstance(expr, Not):
        yield from leaves(expr.item)
    else:
        for item in expr.items:
            yield from leaves(item)
