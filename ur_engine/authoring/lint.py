"""Lint a loaded rule library: findings that load-time checks cannot see, each with a code and a level.

| code | level   | finding                                                                            |
|------|---------|------------------------------------------------------------------------------------|
| L001 | error   | a criterion (or an ``all`` inside it) can never be met: contradictory tests        |
| L002 | warning | a criterion is shadowed: another of its group is met whenever it is                |
| L003 | warning | overlapping numeric ranges: a redundant bound in one any/all, or overlapping bands |
| L004 | info    | gapped numeric ranges: consecutive bands on one fact leave values uncovered        |
| L005 | warning | a fact defined in facts.yaml that no criterion uses                                |
| L006 | warning | a valueset that no fact and no rule set refers to                                  |
| L007 | warning | a level or gate that can never hold, or a gate on a level no rule set supports     |
| L008 | warning | a source naming no section, number or year (no digit)                              |
| L009 | warning | a rule file without tests                                                          |

``lint(library, levels)`` returns every ``Finding`` sorted by file and line; ``levels`` maps a code to
``error``, ``warning``, ``info`` or ``off`` (drops it). Facts are taken as real numbers and independent, so
what L001-L004 report is certain, but a clash that needs integers (a count above 2 and below 3) is missed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import combinations

from ur_engine import conditions as c
from ur_engine.errors import LintConfigError, did_you_mean
from ur_engine.facts import OBSERVATION_STATS
from ur_engine.rules.library import Criterion, RuleSet

LEVELS = ("error", "warning", "info", "off")
CODES: dict[str, tuple[str, str]] = {
    "L001": ("error", "a criterion can never be met: contradictory tests on one fact"),
    "L002": ("warning", "a criterion is shadowed by another of its group that is met whenever it is"),
    "L003": ("warning", "overlapping numeric ranges: a redundant bound or overlapping bands"),
    "L004": ("info", "gapped numeric ranges: consecutive bands leave values uncovered"),
    "L005": ("warning", "a fact defined in facts.yaml that no criterion uses"),
    "L006": ("warning", "a valueset that no fact and no rule set refers to"),
    "L007": ("warning", "a level or gate that can never hold, or a gate on a level nobody supports"),
    "L008": ("warning", "a source naming no section, number or year"),
    "L009": ("warning", "a rule file without tests"),
}
LOWER, UPPER = ("gt", "gte"), ("lt", "lte")
# Facts of facts.yaml other than observations: section -> prefix of the fact name rules use.
FACT_PREFIX = {"treatments": "treatment.", "diagnoses": "dx.", "procedures": "procedure.", "fields": "",
               "intervals": "", "findings": "finding."}


@dataclass(frozen=True)
class Finding:
    code: str
    level: str
    message: str
    file: str | None
    line: int | None
    rule_id: str | None = None

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line) if p is not None)
        text = f"{self.code} {self.level}: {self.message}"
        return f"{where} {text}" if where else text


def _finding(code, message, file=None, line=None, rule_id=None) -> Finding:
    return Finding(code, CODES[code][0], message, file, line, rule_id)


def _at(code, message, cr, leaf=None) -> Finding:  # a finding on a criterion, at one of its tests if given
    line = cr.line if leaf is None else cr.line_of(leaf.fact, leaf.op, leaf.value)
    return _finding(code, message, cr.file, line, cr.id)


# --- values a conjunction of tests allows, per fact ------------------------------------------------------

@dataclass(frozen=True)
class _Range:
    """The values of one fact that a conjunction of tests allows: bounds, allowed and excluded values."""

    lo: float = -math.inf
    lo_strict: bool = False
    hi: float = math.inf
    hi_strict: bool = False
    only: frozenset[c.Scalar] | None = None  # from eq / in / is
    never: frozenset[c.Scalar] = frozenset()  # from ne / not in

    def narrow(self, leaf: c.Leaf) -> _Range:
        op = leaf.op
        if op in LOWER:
            v, strict = _number(leaf), op == "gt"
            return replace(self, lo=v, lo_strict=strict) if (v, strict) > (self.lo, self.lo_strict) else self
        if op in UPPER:
            v, strict = _number(leaf), op == "lt"
            return replace(self, hi=v, hi_strict=strict) if (v, not strict) < (self.hi, not self.hi_strict) \
                else self
        vals = frozenset(_values(leaf))
        if op in ("ne", "nin"):
            return replace(self, never=self.never | vals)
        return replace(self, only=vals if self.only is None else self.only & vals)

    def within(self, v: c.Scalar) -> bool:
        if v in self.never:
            return False
        if isinstance(v, str):  # strings are never bounded: the loader allows lt/gt on numbers only
            return True
        return (self.lo < v or (self.lo == v and not self.lo_strict)) and \
            (v < self.hi or (v == self.hi and not self.hi_strict))

    def values(self) -> frozenset[c.Scalar] | None:
        """The finite set of values allowed, or None for an interval with more than one point."""
        if self.only is not None:
            return frozenset(v for v in self.only if self.within(v))
        if self.lo == self.hi:
            return frozenset([self.lo]) if self.within(self.lo) else frozenset()
        return None if self.lo < self.hi else frozenset()

    def empty(self) -> bool:
        return self.values() == frozenset()

    def implies(self, leaf: c.Leaf) -> bool:
        """Whether every value allowed here passes ``leaf``."""
        op = leaf.op
        vals = self.values()
        if vals is not None:
            return all(x not in _values(leaf) if op == "nin" else c.compare(op, x, leaf.value) for x in vals)
        if op == "gt":
            return self.lo > _number(leaf) or (self.lo == _number(leaf) and self.lo_strict)
        if op == "gte":
            return self.lo >= _number(leaf)
        if op == "lt":
            return self.hi < _number(leaf) or (self.hi == _number(leaf) and self.hi_strict)
        if op == "lte":
            return self.hi <= _number(leaf)
        if op in ("ne", "nin"):
            return not any(self.within(x) for x in _values(leaf))
        return False  # eq / in / is cannot hold for every point of an interval

    def show(self) -> str:
        if self.lo == self.hi:
            return str(self.lo)
        return f"{'(' if self.lo_strict else '['}{self.lo}, {self.hi}{')' if self.hi_strict else ']'}"


def _number(leaf: c.Leaf) -> float:
    """The threshold of lt, lte, gt or gte: the loader lets them compare numbers only."""
    if isinstance(leaf.value, (int, float)):
        return leaf.value
    raise TypeError(f"{leaf.fact} {leaf.op} compares numbers, not {leaf.value!r}")


def _values(leaf: c.Leaf) -> tuple[c.Scalar, ...]:
    """The values of an in (or not in) test, the one value of any other."""
    return leaf.value if isinstance(leaf.value, tuple) else (leaf.value,)


def _show(leaf: c.Leaf) -> str:
    value = "[" + ", ".join(map(str, leaf.value)) + "]" if isinstance(leaf.value, tuple) else leaf.value
    return f"{leaf.fact} {'not in' if leaf.op == 'nin' else leaf.op} {value}"


def _negate(leaf: c.Leaf) -> c.Leaf:
    # Kleene negation of a test is true only when the fact is known and the test false: the opposite test.
    if leaf.op == "is":
        return c.Leaf(leaf.fact, "is", not leaf.value)
    if leaf.op == "in":
        return c.Leaf(leaf.fact, "nin", leaf.value)
    return c.Leaf(leaf.fact, c.NEGATION[leaf.op], leaf.value)


def _dnf(expr: c.Expr, negated: bool = False) -> list[tuple[c.Leaf, ...]]:
    """The conjunctions of tests ``expr`` is true on; the loader caps their number (UR050)."""
    if isinstance(expr, c.ScoreLeaf):  # as a test on the score's value
        expr = c.Leaf(expr.fact, expr.op, expr.value)
    if isinstance(expr, c.Leaf):
        return [(_negate(expr) if negated else expr,)]
    if isinstance(expr, c.Not):
        return _dnf(expr.item, not negated)
    parts = [_dnf(item, negated) for item in expr.items]
    if isinstance(expr, c.Any) != negated:
        return [conj for part in parts for conj in part]
    out: list[tuple[c.Leaf, ...]] = [()]
    for part in parts:
        out = [a + b for a in out for b in part]
    return out


def _ranges(conj) -> tuple[dict[str, _Range], str | None]:
    """Ranges per fact of a conjunction, and the first fact left with no value (None when it can hold)."""
    ranges: dict[str, _Range] = {}
    for leaf in conj:
        ranges[leaf.fact] = ranges.get(leaf.fact, _Range()).narrow(leaf)
        if ranges[leaf.fact].empty():
            return ranges, leaf.fact
    return ranges, None


def _conflict(conj) -> str | None:
    fact = _ranges(conj)[1]
    return None if fact is None else " and ".join(_show(x) for x in conj if x.fact == fact)


def _culprit(expr: c.Expr) -> c.Leaf | None:
    """The test that leaves a fact no value in the first dead conjunction of ``expr``: the later of the two
    that clash, where the author looks."""
    for conj in _dnf(expr):
        ranges: dict[str, _Range] = {}
        for leaf in conj:
            ranges[leaf.fact] = ranges.get(leaf.fact, _Range()).narrow(leaf)
            if ranges[leaf.fact].empty():
                return leaf
    return None


def satisfiable(expr: c.Expr) -> bool:
    """Whether some set of facts makes ``expr`` true."""
    return any(_ranges(conj)[1] is None for conj in _dnf(expr))


def implies(a: c.Expr, b: c.Expr) -> bool:
    """Whether ``b`` is true whenever ``a`` is (sufficient test: each way ``a`` holds implies one way of ``b``)."""
    ways = _dnf(b)
    for conj in _dnf(a):
        ranges, dead = _ranges(conj)
        if dead is None and not any(all(ranges.get(x.fact, _Range()).implies(x) for x in way) for way in ways):
            return False
    return True


# --- the checks ------------------------------------------------------------------------------------------

def _criteria(lib):
    return [(rs, cr) for rs in lib.rulesets for cr in rs.criteria]


def _dead_alls(expr: c.Expr):
    # Under a `not`, a contradiction becomes a tautology: another problem, left alone here.
    if isinstance(expr, c.All) and not satisfiable(expr):
        yield expr
    elif isinstance(expr, (c.All, c.Any)):
        for item in expr.items:
            yield from _dead_alls(item)


def never_met(lib):
    """L001: criteria, or `all` parts of them, that no set of facts can meet."""
    for _, cr in _criteria(lib):
        if not satisfiable(cr.condition):
            why = next(filter(None, map(_conflict, _dnf(cr.condition))))
            yield _at("L001", f"{cr.id} can never be met: {why}", cr, _culprit(cr.condition))
            continue
        for part in _dead_alls(cr.condition):
            why = next(filter(None, map(_conflict, _dnf(part))))
            yield _at("L001", f"part of {cr.id} can never be met: {why}", cr, _culprit(part))


def _can_shadow(a, b) -> bool:
    # A pend criterion matters for its action even when its group would be met anyway.
    return (a.action != "pend" or b.action == "pend") and implies(a.condition, b.condition)


def shadowed(lib):
    """L002: criteria that never change their group, because another of the group is met whenever they are."""
    for rs in lib.rulesets:
        crits = [cr for cr in rs.criteria if satisfiable(cr.condition)]
        for a in crits:
            for b in crits:
                if a is b or a.group != b.group or not _can_shadow(a, b):
                    continue
                same = _can_shadow(b, a)
                if same and b.line > a.line:
                    continue  # reported on the later of the two
                what = f"the same condition as {b.id}" if same else \
                    f"shadowed by {b.id}, which is met whenever {a.id} is"
                yield _at("L002", f"{a.id} is {what}, so it never changes group '{a.group}'", a)
                break


def _nodes(expr: c.Expr):
    if not isinstance(expr, (c.Leaf, c.ScoreLeaf)):
        yield expr
        for item in (expr.items if isinstance(expr, (c.All, c.Any)) else (expr.item,)):
            yield from _nodes(item)


def redundant_bounds(lib):
    """L003: two bounds on the same side of one fact inside one any (or all): one adds nothing."""
    for _, cr in _criteria(lib):
        for node in _nodes(cr.condition):
            if isinstance(node, c.Not):
                continue
            leaves = [x for x in node.items if isinstance(x, c.Leaf) and x.op in LOWER + UPPER]
            for x, y in combinations(leaves, 2):
                if x.fact != y.fact or (x.op in LOWER) != (y.op in LOWER):
                    continue
                narrow, wide = (x, y) if _Range().narrow(x).implies(y) else (y, x)
                # In an any the narrower test is covered by the wider; in an all the wider one never decides.
                extra, kept = (narrow, wide) if isinstance(node, c.Any) else (wide, narrow)
                kind = "any" if isinstance(node, c.Any) else "all"
                yield _at("L003", f"{cr.id}: '{_show(extra)}' adds nothing to '{_show(kept)}' in the same {kind}",
                          cr, extra)


def _bands(rs: RuleSet) -> dict[str, list[tuple[_Range, Criterion]]]:
    """Criteria of a rule set that are exactly ``all: [fact gt(e) a, fact lt(e) b]``, by fact."""
    out: dict[str, list[tuple[_Range, Criterion]]] = {}
    for cr in rs.criteria:
        e = cr.condition
        if not (isinstance(e, c.All) and len(e.items) == 2):
            continue
        x, y = e.items
        if not (isinstance(x, c.Leaf) and isinstance(y, c.Leaf)):
            continue
        if x.fact == y.fact and {x.op in LOWER, y.op in LOWER} == {True, False} and {x.op, y.op} <= {*LOWER, *UPPER}:
            band = _Range().narrow(x).narrow(y)
            if not band.empty():
                out.setdefault(x.fact, []).append((band, cr))
    return out


def overlapping_bands(lib):
    """L003: bands of one rule set on the same fact that share values."""
    for rs in lib.rulesets:
        for fact, bands in _bands(rs).items():
            for (r1, a), (r2, b) in combinations(sorted(bands, key=lambda t: t[1].line), 2):
                both = r1
                for leaf in b.condition.items:
                    both = both.narrow(leaf)
                if not both.empty():
                    yield _at("L003", f"{b.id} band {r2.show()} of {fact} overlaps {a.id} band {r1.show()} "
                                      f"on {both.show()}", b)


def gapped_bands(lib):
    """L004: consecutive bands of one rule set on the same fact that leave values in no band."""
    for rs in lib.rulesets:
        for fact, bands in _bands(rs).items():
            bands = sorted(bands, key=lambda t: (t[0].lo, t[0].lo_strict, t[0].hi))
            reach, last = bands[0]
            for band, cr in bands[1:]:
                if (band.lo, band.lo_strict) > (reach.hi, not reach.hi_strict):
                    gap = _Range(reach.hi, not reach.hi_strict, band.lo, not band.lo_strict)
                    yield _at("L004", f"{fact} values {gap.show()} fall between {last.id} band {reach.show()} "
                                      f"and {cr.id} band {band.show()}", cr)
                if (band.hi, not band.hi_strict) > (reach.hi, not reach.hi_strict):
                    reach, last = band, cr


def unused_facts(lib):
    """L005: facts of facts.yaml that no criterion uses (an observation counts once for all its statistics)."""
    used = lib.facts.closure({f for _, cr in _criteria(lib) for f in cr.facts})  # score parts count as used
    spec = lib.facts.spec
    for name in spec.get("observations") or {}:
        if not any(f"{name}.{stat}" in used for stat in OBSERVATION_STATS):
            yield _finding("L005", f"observation '{name}' is defined but no criterion uses "
                                   f"{name}.{'/'.join(OBSERVATION_STATS)}", "facts.yaml")
    for section, prefix in FACT_PREFIX.items():
        for name in spec.get(section) or {}:
            if prefix + name not in used:
                yield _finding("L005", f"fact '{prefix}{name}' ({section}) is defined but no criterion uses it",
                               "facts.yaml")
    for name in spec.get("sets") or {}:
        if not any(f.startswith(f"{name}.") for f in used):
            yield _finding("L005", f"fact '{name}' (sets) is defined but no criterion uses it", "facts.yaml")


def unused_valuesets(lib):
    """L006: valuesets no fact of facts.yaml and no rule set's ``applies.diagnoses`` refers to."""
    used = {spec["valueset"] for section in ("diagnoses", "procedures")
            for spec in (lib.facts.spec.get(section) or {}).values() if "valueset" in spec}
    used |= {v for rs in lib.rulesets for v in rs.applies.diagnoses or ()}
    used |= {f["from_diagnoses"] for f in (lib.facts.spec.get("findings") or {}).values() if "from_diagnoses" in f}
    for name in sorted(set(lib.valuesets) - used):
        yield _finding("L006", f"valueset '{name}' is not used by any fact or rule set")


def _can_hold(expr: c.Expr, live: dict[str, bool]) -> bool:
    if isinstance(expr, (c.Leaf, c.ScoreLeaf)):
        return live[expr.fact]
    if isinstance(expr, c.Not):  # levels and gates are any / all of groups: the loader builds no 'not' there
        raise TypeError("a level or gate cannot be negated")
    return (all if isinstance(expr, c.All) else any)(_can_hold(x, live) for x in expr.items)


def unreachable_levels(lib):
    """L007: levels and gates whose groups can never be met, and gates on levels no rule set supports."""
    supported = {t for rs in lib.rulesets for t in rs.levels}
    for rs in lib.rulesets:
        by_id = {cr.id: cr for cr in rs.criteria}
        live = {g: any(satisfiable(by_id[i].condition) for i in ids) for g, ids in rs.groups.items()}
        dead = sorted(g for g, ok in live.items() if not ok)
        for kind, exprs in (("level", rs.levels), ("gate on", rs.requires)):
            for target, expr in exprs.items():
                if not _can_hold(expr, live):
                    names = [f"'{g}'" for g in dead if g in expr.facts()]
                    yield _finding("L007", f"{rs.id}: {kind} '{target}' can never hold: no criterion of group"
                                           f"{'s' * (len(names) > 1)} {', '.join(names)} can be met", rs.file, 1)
        for target in rs.requires:
            if target not in supported:
                yield _finding("L007", f"{rs.id} gates '{target}' but no rule set lists it under levels",
                               rs.file, 1)


def weak_sources(lib):
    """L008: sources with no section, number or year in them."""
    for rs in lib.rulesets:
        if not any(ch.isdigit() for ch in rs.source):
            yield _finding("L008", f"rule set {rs.id} source '{rs.source}' names no section, number or year",
                           rs.file, 1)
        for cr in rs.criteria:
            if not any(ch.isdigit() for ch in cr.source):
                yield _at("L008", f"{cr.id} source '{cr.source}' names no section, number or year", cr)


def untested(lib):
    """L009: rule files with no ``tests``."""
    for rs in lib.rulesets:
        if not rs.tests:
            yield _finding("L009", f"rule set {rs.id} has no tests", rs.file, 1)


CHECKS = (never_met, shadowed, redundant_bounds, overlapping_bands, gapped_bands, unused_facts,
          unused_valuesets, unreachable_levels, weak_sources, untested)


def lint(library, levels: dict[str, str] | None = None) -> list[Finding]:
    """All findings, sorted by file and line; `levels` overrides per-code levels ("off" drops the code)."""
    levels = dict(levels or {})
    for code, level in levels.items():
        if code not in CODES:
            raise LintConfigError(f"unknown lint code '{code}' (known: {', '.join(CODES)})",
                                  suggestion=did_you_mean(str(code), CODES))
        if level not in LEVELS:
            raise LintConfigError(f"unknown level '{level}' for {code} (use one of: {', '.join(LEVELS)})",
                                  suggestion=did_you_mean(str(level), LEVELS))
    found = [f for check in CHECKS for f in check(library)]
    found = [replace(f, level=levels.get(f.code, f.level)) for f in found]
    # Stable sort: at one place, findings keep check order and facts.yaml order.
    return sorted((f for f in found if f.level != "off"), key=lambda f: (f.file is None, f.file or "", f.line or 0))
