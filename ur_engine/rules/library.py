"""The rule library: facts.yaml, valuesets and rule files → a checked, typed ``Library``.

Every problem in every file is collected and raised together as ``RuleErrors``, each with file, line and
column, and a did-you-mean for unknown facts, operators, groups and valuesets. A file that breaks its schema
(a missing or misspelt key) is still checked through, so that one mistake never hides the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import TypeGuard, cast

from ur_engine import conditions as c
from ur_engine.errors import (
    ConditionShapeError,
    DuplicateCriterionError,
    DuplicateValuesetError,
    MissingRuleFileError,
    NestedScoreError,
    OperatorError,
    RecordErrors,
    RuleDateError,
    RuleError,
    RuleErrors,
    RuleTestRecordError,
    ThresholdRangeError,
    ThresholdTypeError,
    TooManyAlternativesError,
    UnknownFactError,
    UnknownGroupError,
    UnknownValuesetError,
    did_you_mean,
)
from ur_engine.facts import FactDictionary
from ur_engine.rules.interned import intern_keys
from ur_engine.record import Admission
from ur_engine.rules import checks
from ur_engine.rules import source as yamlsrc
from ur_engine.rules.documents import (
    AppliesDoc,
    ExpectDoc,
    FactsDoc,
    GroupExpr,
    RuleSetDoc,
    ValuesetDoc,
)
from ur_engine.rules.ruletest import Expectation, complete_record
from ur_engine.terminology.valuesets import DEFAULT_SYSTEM, Valueset
from ur_engine.vocabulary import ACUTE_LEVELS, POST_ACUTE_SETTINGS, Action

CRITERION_KEYS, CONDITION_KEYS = checks.CRITERION_KEYS, checks.CONDITION_KEYS
TARGETS = ACUTE_LEVELS + POST_ACUTE_SETTINGS
MAX_ALTERNATIVES = 48  # durable-rules fails past 64 simultaneous matches under one node; keep a margin


@dataclass(frozen=True)
class Source:
    """One file of a rule library: its name relative to the library root, and its text."""

    name: str
    text: str


@dataclass(frozen=True)
class Criterion:
    id: str
    ruleset: str
    group: str
    text: str
    source: str
    action: Action
    condition: c.Expr
    facts: tuple[str, ...]
    file: str
    line: int
    # (fact, operator, threshold) of each test -> its line, so a finding on one test points at it
    test_lines: tuple[tuple[tuple[str, str, object], int], ...] = field(default=(), compare=False, repr=False)

    def line_of(self, fact: str, op: str, value: object) -> int:
        """The line of the test ``fact op value`` in this criterion, or the criterion's own line."""
        return next((line for key, line in self.test_lines if key == (fact, op, value)), self.line)


@dataclass(frozen=True)
class Applies:
    age_min: float | None = None
    age_max: float | None = None
    review_types: frozenset[str] = frozenset({"admission"})
    lines: frozenset[str] | None = None
    requested: frozenset[str] | None = None
    diagnoses: tuple[str, ...] | None = None
    plans: frozenset[str] | None = None


@dataclass(frozen=True)
class RuleTest:
    name: str
    record: Mapping[str, object]  # a partial admission record; see ruletest.complete_record
    expect: Expectation
    file: str
    line: int


@dataclass
class RuleSet:
    id: str
    version: str
    title: str
    source: str
    file: str
    effective_from: date | None
    effective_to: date | None
    applies: Applies
    criteria: tuple[Criterion, ...]
    groups: dict[str, tuple[str, ...]]  # group -> criterion ids
    levels: dict[str, c.Expr]  # target -> expression over groups (Leaf(group, "is", True))
    requires: dict[str, c.Expr]
    tests: tuple[RuleTest, ...] = ()
    waives: tuple[str, ...] = ()

    @cached_property
    def key(self) -> str:
        """Unique in a library: a rule set may have several versions with disjoint effective dates."""
        return f"{self.id}@{self.version}"

    @property
    def facts(self) -> tuple[str, ...]:
        return c._union(cr.condition for cr in self.criteria)

    @cached_property
    def acting_criteria(self) -> tuple[Criterion, ...]:
        """Criteria that do more than support a level when met (pend, notify), in file order."""
        return tuple(cr for cr in self.criteria if cr.action is not Action.SUPPORT)

    @cached_property
    def target_groups(self) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
        """Target -> (groups its level reads, groups its gate reads): decisions ask this for every record."""
        return {t: (frozenset(self.levels[t].facts()) if t in self.levels else frozenset(),
                    frozenset(self.requires[t].facts()) if t in self.requires else frozenset())
                for t in {**self.levels, **self.requires}}

    def in_effect(self, on: date) -> bool:
        return (self.effective_from is None or self.effective_from <= on) and \
            (self.effective_to is None or on <= self.effective_to)


# What ``Library.applicable`` tests of a rule set: the rule set, its effective dates, then ``applies``' ages,
# lines of business, plans, requested levels and diagnosis code sets (None: any).
_Gate = tuple[RuleSet, date | None, date | None, float | None, float | None,
              frozenset[str] | None, frozenset[str] | None, frozenset[str] | None,
              tuple[str, ...] | None]


@dataclass
class Library:
    facts: FactDictionary
    valuesets: dict[str, Valueset]
    rulesets: tuple[RuleSet, ...]
    digest: str
    # (system, code) -> names of the undated gating sets that hold it (see _diagnosis_sets)
    _by_code: dict[tuple[str | None, str], frozenset[str]] = field(default_factory=dict, repr=False, compare=False)

    def __setstate__(self, state: dict[str, object]) -> None:
        """Read back from a pickle (a batch worker's copy, the load cache): see ``interned``."""
        self.__dict__.update(state)
        intern_keys(self)

    @property
    def version(self) -> str:
        version: str = self.facts.version
        return version

    def applicable(self, adm: Admission, as_of: date | None = None) -> list[RuleSet]:
        """The rule sets that judge this record: in effect on its arrival date (or ``as_of``), matching ``applies``.

        A rule set for an age range never applies to a record whose age is unknown (its decision pends for it)."""
        on = as_of or adm.encounter.arrival_time.date()
        age, line, plan = adm.patient.age, adm.coverage.line_of_business, adm.coverage.plan
        requested = adm.requested
        hits: set[str] | None = None  # code sets that hold one of the record's codes, found once for all rule sets
        out = []
        for rs, start, end, age_min, age_max, lines, plans, wanted, dx in self._tests.get(adm.review_type, ()):
            if (start is not None and on < start) or (end is not None and on > end) or \
                    (age_min is not None and (age is None or age < age_min)) or \
                    (age_max is not None and (age is None or age > age_max)) or \
                    (lines is not None and line not in lines) or (plans is not None and plan not in plans) or \
                    (wanted is not None and requested not in wanted):
                continue
            if dx is not None:
                if hits is None:
                    hits = self._diagnosis_sets([d.code for d in adm.diagnoses or ()], on)
                if hits.isdisjoint(dx):
                    continue
            out.append(rs)
        return out

    @cached_property
    def _tests(self) -> dict[str, tuple[_Gate, ...]]:
        """What ``applicable`` asks of each rule set, by review type in library order (most rule out most)."""
        out: dict[str, list[_Gate]] = {}
        for rs in self.rulesets:
            a = rs.applies
            for t in sorted(a.review_types):
                out.setdefault(t, []).append((rs, rs.effective_from, rs.effective_to, a.age_min, a.age_max, a.lines,
                                              a.plans, a.requested, a.diagnoses))
        return {t: tuple(v) for t, v in out.items()}

    def _diagnosis_sets(self, codes: list[str], on: date) -> set[str]:
        """The code sets named in ``applies.diagnoses`` that hold one of ``codes`` on ``on``.

        Sets that never start or end answer the same on every date: their answer is kept per code (at most 4,096).
        """
        undated, dated = self._gating_valuesets
        hits: set[str] = set()
        for code in codes:
            key = (getattr(code, "system", None), str(code))  # the same text in two systems is two codes
            found = self._by_code.get(key)
            if found is None:
                found = frozenset(v for v in undated if self.valuesets[v].contains(code, on))
                if len(self._by_code) < 4096:
                    self._by_code[key] = found
            hits |= found
            hits.update(v for v in dated if self.valuesets[v].contains(code, on))
        return hits

    @cached_property
    def _gating_valuesets(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        names = tuple(dict.fromkeys(v for rs in self.rulesets for v in rs.applies.diagnoses or ()))
        return (tuple(v for v in names if not self.valuesets[v].dated),
                tuple(v for v in names if self.valuesets[v].dated))


def digest(sources: Iterable[Source]) -> str:
    h = hashlib.sha256()
    for s in sorted(sources, key=lambda s: s.name):
        h.update(s.name.encode() + b"\0" + s.text.encode() + b"\0")
    return "sha256:" + h.hexdigest()


def load(sources: Iterable[Source]) -> Library:
    """Check and load a whole rule library; raise RuleErrors with every error found."""
    sources = list(sources)
    errors: list[RuleError] = []
    docs: dict[str, yamlsrc.Document] = {}
    for s in sources:
        try:
            docs[s.name] = yamlsrc.parse(s.name, s.text)
        except RuleError as e:  # RuleErrors: several syntax errors of one file
            errors.extend(e.errors if isinstance(e, RuleErrors) else [e])
        else:
            errors.extend(docs[s.name].problems)
    facts_doc = docs.pop("facts.yaml", None)
    if facts_doc is None and not any(e.file == "facts.yaml" for e in errors):
        errors.append(MissingRuleFileError("the library has no facts.yaml", file="facts.yaml"))
    vs_docs = {n: d for n, d in docs.items() if n.startswith("valuesets/")}
    rule_docs = {n: d for n, d in docs.items() if n not in vs_docs}

    valuesets: dict[str, Valueset] = {}
    # Names of valuesets whose file is broken: a reference to one is not another error. A file that is not
    # even YAML is known by its file name.
    named = {s.name.removeprefix("valuesets/").rsplit(".", 1)[0] for s in sources
             if s.name.startswith("valuesets/") and s.name not in docs}
    for name, doc in sorted(vs_docs.items()):
        if checks.schema_errors(doc, "valueset", errors):
            given = doc.data.get("valueset") if isinstance(doc.data, dict) else None
            named.add(given if isinstance(given, str) else name.removeprefix("valuesets/").rsplit(".", 1)[0])
            continue
        vs = _valueset(doc, cast(ValuesetDoc, doc.data), errors)  # the shape its schema just checked
        if vs.name in valuesets:
            errors.append(doc.error(("valueset",), f"valueset '{vs.name}' is defined twice", DuplicateValuesetError))
        valuesets[vs.name] = vs

    fact_dict = None
    spec = None if facts_doc is None else facts_doc.data
    dropped: tuple[str, ...] = ()  # facts of broken entries of facts.yaml, left out so the rest is still checked
    if facts_doc is not None and checks.schema_errors(facts_doc, "facts", errors):
        spec, dropped = checks.whole_entries(spec)
    if facts_doc is not None and isinstance(spec, dict):
        facts = cast(FactsDoc, spec)  # the shape its schema checked (its whole entries, when some are broken)
        for kind, entries in (("diagnoses", facts.get("diagnoses") or {}),
                              ("procedures", facts.get("procedures") or {})):
            for name, entry in entries.items():
                ref = entry.get("valueset")
                if ref is not None and ref not in valuesets and ref not in named:
                    errors.append(facts_doc.error((kind, name, "valueset"), f"unknown valueset '{ref}'",
                                                  UnknownValuesetError, suggestion=did_you_mean(ref, valuesets)))
        checks.check_diagnosis_findings(facts_doc, facts, valuesets, errors)
        checks.check_paths(facts_doc, facts, errors)
        fact_dict = FactDictionary(spec, valuesets)
        fact_dict.scores = _scores(facts_doc, facts, fact_dict, errors)

    rulesets: list[RuleSet] = []
    for name, doc in sorted(rule_docs.items()):
        broken = checks.schema_errors(doc, "ruleset", errors)
        if fact_dict is None or not isinstance(doc.data, dict):
            continue
        if broken:  # checked through for its other errors; the rule set itself cannot be built
            _ruleset_errors(doc, fact_dict, named | set(valuesets), errors)
            continue
        rulesets.append(_ruleset(doc, cast(RuleSetDoc, doc.data), fact_dict, named | set(valuesets), errors))
    checks.check_unique(rulesets, rule_docs, errors)
    if fact_dict is not None:
        fact_dict.set_thresholds([cr.condition for rs in rulesets for cr in rs.criteria]
                                 + [expr for parts in fact_dict.scores.values() for _, expr in parts])

    errors = checks.without_facts(errors, dropped)  # their entry's own error says it
    if fact_dict is None or dropped:  # no facts.yaml, or a broken one, is always among the errors
        raise RuleErrors(checks.once(errors))
    # The rule tests' records are checked even when criteria are broken: an error elsewhere hides none of theirs.
    lib = Library(fact_dict, valuesets, tuple(rulesets), digest(sources))
    _check_tests(lib, rule_docs, errors)
    if errors:
        raise RuleErrors(checks.once(errors))
    return lib


Score = tuple[tuple[float, c.Expr], ...]  # (points, condition) of each component of a score


def _scores(doc: yamlsrc.Document, facts_doc: FactsDoc, facts: FactDictionary,
            errors: list[RuleError]) -> dict[str, Score]:
    """Score components, parsed like criteria; a score may not be built on another score."""
    out = {}
    for name, score in (facts_doc.get("scores") or {}).items():
        parts = []
        for i, comp in enumerate(score["components"]):
            path = ("scores", name, "components", i, "when")
            expr = _expr(comp["when"], path, doc, facts, errors)
            if expr is None:
                continue
            nested = [f for f in expr.facts() if f.startswith("score.")]
            if nested:
                errors.append(doc.error(path, f"score '{name}' uses another score ({nested[0]})", NestedScoreError))
                continue
            parts.append((comp["points"], expr))
        out[f"score.{name}"] = tuple(parts)
    return out


def _date(text: str | None, doc: yamlsrc.Document, path: yamlsrc.Path, errors: list[RuleError]) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(doc.error(path, f"'{text}' is not a valid date", RuleDateError))
        return None


def _valueset(doc: yamlsrc.Document, d: ValuesetDoc, errors: list[RuleError]) -> Valueset:
    vs = Valueset(d["valueset"], d["title"], d["source"], d.get("system", DEFAULT_SYSTEM), d.get("match", "exact"))
    for i, entry in enumerate(d["codes"]):
        start = _date(entry.get("from"), doc, ("codes", i, "from"), errors)
        end = _date(entry.get("to"), doc, ("codes", i, "to"), errors)
        if start and end and end < start:
            errors.append(doc.error(("codes", i, "to"), "'to' is before 'from'", RuleDateError))
        vs.add(entry["code"], start, end, entry.get("system"))
    return vs


def _ruleset(doc: yamlsrc.Document, d: RuleSetDoc, facts: FactDictionary, valuesets: Collection[str],
             errors: list[RuleError]) -> RuleSet:
    rid = d["ruleset"]
    criteria: list[Criterion] = []
    groups: dict[str, list[str]] = {}
    for i, raw in enumerate(d["criteria"]):
        path = ("criteria", i)
        cond_node = {k: v for k, v in raw.items() if k not in CRITERION_KEYS}
        expr = _expr(cond_node, path, doc, facts, errors, top=True)
        groups.setdefault(raw["group"], [])  # known even when the condition is broken: no cascade of errors
        if expr is None:
            continue
        n = max(c.alternatives(expr), c.alternatives(expr, negated=True))
        if n > MAX_ALTERNATIVES:
            errors.append(doc.error(path, f"criterion {raw['id']} expands to {n} alternatives (at most "
                                          f"{MAX_ALTERNATIVES}); split it into several criteria",
                                    TooManyAlternativesError, rule_id=raw["id"]))
        criteria.append(Criterion(raw["id"], rid, raw["group"], raw["text"], raw["source"],
                                  Action(raw.get("action", "support")), expr, expr.facts(), doc.name,
                                  doc.where(path)[0], tuple(checks.test_lines(cond_node, path, doc))))
        groups[raw["group"]].append(raw["id"])
    levels = {t: _group_expr(e, ("levels", t), doc, groups, errors) for t, e in d.get("levels", {}).items()}
    requires = {t: _group_expr(e, ("requires", t), doc, groups, errors) for t, e in d.get("requires", {}).items()}
    eff = d.get("effective")
    start = _date(eff["from"], doc, ("effective", "from"), errors) if eff else None
    end = _date(eff.get("to"), doc, ("effective", "to"), errors) if eff else None
    if start and end and end < start:
        errors.append(doc.error(("effective", "to"), "'to' is before 'from'", RuleDateError))
    a = d.get("applies", {})
    checks.applies_errors(doc, a, valuesets, errors)
    tests = tuple(RuleTest(t["name"], t["record"], _expectation(t["expect"]), doc.name, doc.where(("tests", i))[0])
                  for i, t in enumerate(d.get("tests", ())))
    return RuleSet(rid, d["version"], d["title"], d["source"], doc.name, start, end, _applies(a), tuple(criteria),
                   {g: tuple(ids) for g, ids in groups.items()},
                   {t: e for t, e in levels.items() if e is not None},
                   {t: e for t, e in requires.items() if e is not None}, tests, tuple(d.get("waives", ())))


def _ruleset_errors(doc: yamlsrc.Document, facts: FactDictionary, valuesets: Collection[str],
                    errors: list[RuleError]) -> None:
    """The errors of a rule file that breaks its schema, beyond the schema's: its criteria, groups, applies and
    ids are checked as far as their own shape allows."""
    d = cast(dict[str, object], doc.data)
    groups: dict[str, object] = {}
    every_group_known = True
    seen: dict[str, int] = {}
    crits = d.get("criteria")
    for i, raw in enumerate(crits if isinstance(crits, list) else []):
        if not isinstance(raw, dict):
            continue
        _expr({k: v for k, v in raw.items() if k not in CRITERION_KEYS}, ("criteria", i), doc, facts, errors,
              top=True)
        group, cid = raw.get("group"), raw.get("id")
        if isinstance(group, str):
            groups[group] = ()
        else:
            every_group_known = False
        if not isinstance(cid, str):
            continue
        if cid in seen:
            errors.append(doc.error(("criteria", i, "id"), f"criterion id '{cid}' is used twice in this rule set "
                                    f"(first at line {seen[cid]}): give each criterion its own id",
                                    DuplicateCriterionError))
        seen.setdefault(cid, doc.where(("criteria", i))[0])
    for section in ("levels", "requires"):
        targets = d.get(section)
        if every_group_known and isinstance(targets, dict):
            for target, expr in targets.items():
                _group_expr(expr, (section, target), doc, groups, errors)
    applies = d.get("applies")
    if isinstance(applies, dict):
        checks.applies_errors(doc, cast(AppliesDoc, applies), valuesets, errors)


def _applies(a: AppliesDoc) -> Applies:
    age = a.get("age", {})
    rt = a.get("review_type", "admission")
    return Applies(
        age.get("min"), age.get("max"),
        frozenset([rt] if isinstance(rt, str) else rt),
        frozenset(a["line_of_business"]) if "line_of_business" in a else None,
        frozenset(a["requested"]) if "requested" in a else None,
        tuple(a["diagnoses"]) if "diagnoses" in a else None,
        frozenset(a["plan"]) if "plan" in a else None)


def _expectation(e: ExpectDoc) -> Expectation:
    return Expectation(e.get("outcome"), "level" in e, e.get("level"), tuple(e.get("met", ())),
                       tuple(e.get("not_met", ())), tuple(e.get("unknown", ())), tuple(e.get("waived", ())),
                       tuple(e.get("missing", ())))


def _expr(node: object, path: yamlsrc.Path, doc: yamlsrc.Document, facts: FactDictionary, errors: list[RuleError],
          top: bool = False) -> c.Expr | None:
    if not isinstance(node, dict) or not node:
        errors.append(doc.error(path, "a condition must be a mapping with any, all, not or fact", ConditionShapeError))
        return None
    present = [k for k in CONDITION_KEYS if k in node]
    allowed = CONDITION_KEYS + c.OPERATORS + (CRITERION_KEYS if top else ())
    unknown = [key for key in node if key not in allowed]
    for key in unknown:
        errors.append(doc.error(path + (key,), f"unknown key '{key}'", ConditionShapeError, key=True,
                                suggestion=did_you_mean(str(key), allowed)))
    if unknown:
        return None
    if len(present) != 1:
        what = "no condition" if not present else "more than one of " + ", ".join(present)
        errors.append(doc.error(path, f"{what}: give exactly one of any, all, not or fact", ConditionShapeError))
        return None
    kind = present[0]
    if kind in ("any", "all"):
        items = node[kind]
        if not isinstance(items, list) or not items:
            errors.append(doc.error(path + (kind,), f"'{kind}' takes a non-empty list of conditions",
                                    ConditionShapeError))
            return None
        extra = [k for k in node if k != kind and k in c.OPERATORS]
        if extra:
            errors.append(doc.error(path + (extra[0],), f"'{extra[0]}' needs a 'fact'", ConditionShapeError, key=True))
            return None
        parts = [_expr(item, path + (kind, i), doc, facts, errors) for i, item in enumerate(items)]
        known = [p for p in parts if p is not None]
        if len(known) < len(parts):
            return None
        return (c.All if kind == "all" else c.Any)(tuple(known))
    if kind == "not":
        inner = _expr(node["not"], path + ("not",), doc, facts, errors)
        return None if inner is None else c.Not(inner)
    return _leaf(node, path, doc, facts, errors)


def _leaf(node: dict[object, object], path: yamlsrc.Path, doc: yamlsrc.Document, facts: FactDictionary,
          errors: list[RuleError]) -> c.Leaf | c.ScoreLeaf | None:
    name = node["fact"]
    ops = [k for k in c.OPERATORS if k in node]
    if len(ops) != 1:
        errors.append(doc.error(path, f"a fact test needs exactly one operator ({', '.join(c.OPERATORS)})",
                                OperatorError))
        return None
    op = ops[0]
    info = facts.catalog.get(name) if isinstance(name, str) else None
    if info is None or not isinstance(name, str):
        errors.append(doc.error(path + ("fact",), f"unknown fact '{name}'", UnknownFactError,
                                suggestion=did_you_mean(str(name), facts.catalog)))
        return None
    value = _threshold(op, node[op], info.type)
    if isinstance(value, _Problem):
        errors.append(doc.error(path + (op,), f"{name} is a {info.type}: {value.text}", ThresholdTypeError))
        return None
    bounds = facts.plausible(name)
    if bounds is not None and _number(value):
        low, high = bounds
        if (low is not None and value < low) or (high is not None and value > high):
            span = f"{'…' if low is None else f'{low:g}'}–{'…' if high is None else f'{high:g}'} {info.unit}"
            errors.append(doc.error(path + (op,), f"{value:g} is outside the plausible range of {name} ({span}): "
                                    f"write the threshold in {info.unit}", ThresholdRangeError))
            return None
    if info.kind == "score":
        if isinstance(value, (tuple, str)):  # 'in' (a score is a number: a string cannot get past _threshold)
            errors.append(doc.error(path + (op,), f"{name} is a score: compare it with lt, lte, gt, gte, eq or ne",
                                    ThresholdTypeError))
            return None
        return c.ScoreLeaf(name, op, value)
    return c.Leaf(name, op, value)


@dataclass(frozen=True, slots=True)
class _Problem:
    """Why a threshold does not suit its fact's type."""

    text: str


def _number(v: object) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _of_type(v: object, type_: str) -> TypeGuard[float | str]:
    return _number(v) if type_ == "number" else isinstance(v, str)


def _threshold(op: str, value: object, type_: str) -> c.Value | _Problem:
    """``value`` as the threshold of ``op`` on a fact of type ``type_`` (a list for 'in' as a tuple), or the
    problem that it has."""
    if op in c.NUMERIC_OPERATORS:
        if type_ != "number":
            return _Problem(f"'{op}' compares numbers only")
        return value if _number(value) else _Problem(f"'{op}' needs a number")
    if op == "is":
        if type_ != "boolean":
            return _Problem("'is' tests booleans only; use eq")
        return value if isinstance(value, bool) else _Problem("'is' needs true or false")
    if type_ == "boolean":
        return _Problem(f"use 'is' for a boolean, not '{op}'")
    if op == "in":
        if not isinstance(value, list) or not value:
            return _Problem("'in' needs a non-empty list")
        values = tuple(v for v in value if _of_type(v, type_))
        return values if len(values) == len(value) else _Problem(f"'{op}' needs {type_} values")
    return value if _of_type(value, type_) else _Problem(f"'{op}' needs {type_} values")


def _group_expr(node: GroupExpr, path: yamlsrc.Path, doc: yamlsrc.Document, groups: Mapping[str, object],
                errors: list[RuleError]) -> c.Expr | None:
    if isinstance(node, str):
        if node not in groups:
            errors.append(doc.error(path, f"unknown criteria group '{node}'", UnknownGroupError,
                                    suggestion=did_you_mean(node, groups)))
            return None
        return c.Leaf(node, "is", True)
    if not isinstance(node, dict) or not isinstance(node.get("all", node.get("any")), list):
        return None  # not a group expression at all: its schema error says so
    kind, items = ("all", node["all"]) if "all" in node else ("any", node["any"])
    parts = [_group_expr(item, path + (kind, i), doc, groups, errors) for i, item in enumerate(items)]
    known = [p for p in parts if p is not None]
    if len(known) < len(parts):
        return None
    return (c.All if kind == "all" else c.Any)(tuple(known))


def _check_tests(lib: Library, docs: dict[str, yamlsrc.Document], errors: list[RuleError]) -> None:
    from ur_engine.record import parse

    for rs in lib.rulesets:
        doc = docs[rs.file]
        for i, t in enumerate(rs.tests):
            try:
                adm = parse(complete_record(rs, t.record))
                lib.facts.check(adm)
            except RecordErrors as exc:
                for e in exc.errors:
                    parts = [p for p in (e.path or "").replace("[", ".").replace("]", "").split(".")[1:] if p]
                    sub = tuple(int(p) if p.isdigit() else p for p in parts)
                    errors.append(doc.error(("tests", i, "record") + sub, f"test '{t.name}': {e.message}",
                                            RuleTestRecordError, suggestion=e.suggestion))
