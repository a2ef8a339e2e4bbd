"""The rule library: facts.yaml, valuesets and rule files → a checked, typed ``Library``.

Every problem in every file is collected and raised together as ``RuleErrors``, each with file, line and
column, and a did-you-mean for unknown facts, operators, groups and valuesets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property

from ur_engine import conditions as c
from ur_engine import schemas
from ur_engine.errors import RecordErrors, RuleError, RuleErrors, did_you_mean
from ur_engine.facts import FactDictionary
from ur_engine.record import ACUTE_LEVELS, POST_ACUTE_SETTINGS, Admission
from ur_engine.rules import source as yamlsrc
from ur_engine.terminology.valuesets import DEFAULT_SYSTEM, Valueset

CRITERION_KEYS = ("id", "group", "text", "source", "note", "action")
CONDITION_KEYS = ("any", "all", "not", "fact")
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
    action: str
    condition: c.Expr
    facts: tuple[str, ...]
    file: str
    line: int


@dataclass(frozen=True)
class Applies:
    age_min: float | None = None
    age_max: float | None = None
    review_types: frozenset = frozenset({"admission"})
    lines: frozenset | None = None
    requested: frozenset | None = None
    diagnoses: tuple[str, ...] | None = None
    plans: frozenset | None = None


@dataclass(frozen=True)
class RuleTest:
    name: str
    record: dict
    expect: dict
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
        return tuple(cr for cr in self.criteria if cr.action != "support")

    @cached_property
    def target_groups(self) -> dict[str, tuple[frozenset, frozenset]]:
        """Target -> (groups its level reads, groups its gate reads): decisions ask this for every record."""
        return {t: (frozenset(self.levels[t].facts()) if t in self.levels else frozenset(),
                    frozenset(self.requires[t].facts()) if t in self.requires else frozenset())
                for t in {**self.levels, **self.requires}}

    def in_effect(self, on: date) -> bool:
        return (self.effective_from is None or self.effective_from <= on) and \
            (self.effective_to is None or on <= self.effective_to)


@dataclass
class Library:
    facts: FactDictionary
    valuesets: dict[str, Valueset]
    rulesets: tuple[RuleSet, ...]
    digest: str
    # diagnosis code -> the undated gating code sets that hold it (see _diagnosis_sets)
    _by_code: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def version(self) -> str:
        return self.facts.version

    def applicable(self, adm: Admission, as_of: date | None = None) -> list[RuleSet]:
        """The rule sets that judge this record: in effect on its arrival date (or ``as_of``), matching ``applies``."""
        on = as_of or adm.encounter.arrival_time.date()
        age, line, plan = adm.patient.age, adm.coverage.line_of_business, adm.coverage.plan
        requested = adm.requested
        hits = None  # diagnosis code sets that hold one of the record's codes, found once for every rule set
        out = []
        for rs, start, end, age_min, age_max, lines, plans, wanted, dx in self._tests.get(adm.review_type, ()):
            if (start is not None and on < start) or (end is not None and on > end) or \
                    (age_min is not None and age < age_min) or (age_max is not None and age > age_max) or \
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
    def _tests(self) -> dict[str, tuple]:
        """What ``applicable`` asks of each rule set, by review type in library order (most rule out most)."""
        out: dict[str, list] = {}
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
        except RuleError as e:
            errors.append(e)
    facts_doc = docs.pop("facts.yaml", None)
    if facts_doc is None and not any(e.file == "facts.yaml" for e in errors):
        errors.append(RuleError("the library has no facts.yaml", code="UR003", file="facts.yaml"))
    vs_docs = {n: d for n, d in docs.items() if n.startswith("valuesets/")}
    rule_docs = {n: d for n, d in docs.items() if n not in vs_docs}

    valuesets: dict[str, Valueset] = {}
    for name, doc in sorted(vs_docs.items()):
        if _schema_errors(doc, "valueset", errors):
            continue
        vs = _valueset(doc, errors)
        if vs.name in valuesets:
            errors.append(doc.error(("valueset",), f"valueset '{vs.name}' is defined twice", "UR041"))
        valuesets[vs.name] = vs

    fact_dict = None
    if facts_doc is not None and not _schema_errors(facts_doc, "facts", errors):
        for kind in ("diagnoses", "procedures"):
            for name, spec in (facts_doc.data.get(kind) or {}).items():
                ref = spec.get("valueset")
                if ref is not None and ref not in valuesets:
                    errors.append(facts_doc.error((kind, name, "valueset"), f"unknown valueset '{ref}'", "UR040",
                                                  suggestion=did_you_mean(ref, valuesets)))
        _check_paths(facts_doc, errors)
        fact_dict = FactDictionary(facts_doc.data, valuesets)
        fact_dict.scores = _scores(facts_doc, fact_dict, errors)

    rulesets: list[RuleSet] = []
    for name, doc in sorted(rule_docs.items()):
        if _schema_errors(doc, "ruleset", errors) or fact_dict is None:
            continue
        rulesets.append(_ruleset(doc, fact_dict, valuesets, errors))
    _check_unique(rulesets, rule_docs, errors)

    lib = Library(fact_dict, valuesets, tuple(rulesets), digest(sources))
    if not errors:
        _check_tests(lib, rule_docs, errors)
    if errors:
        raise RuleErrors(errors)
    return lib


def _check_paths(doc: yamlsrc.Document, errors: list) -> None:
    """Record paths in facts.yaml must exist: a misspelt path would silently make a fact always unknown."""
    from ur_engine.record import paths

    known = paths()
    times = [p for p, t in known.items() if t in (datetime, date)]
    for name, spec in (doc.data.get("fields") or {}).items():
        if spec["path"] not in known:
            errors.append(doc.error(("fields", name, "path"), f"the record has no field '{spec['path']}'", "UR026",
                                    suggestion=did_you_mean(spec["path"], known)))
    for name, spec in (doc.data.get("intervals") or {}).items():
        for where, path in [(("from",), spec["from"])] + [(("to", i), p) for i, p in enumerate(spec["to"])]:
            if path not in times:
                errors.append(doc.error(("intervals", name) + where, f"'{path}' is not a date or time of the record",
                                        "UR026", suggestion=did_you_mean(path, times)))


def _scores(doc: yamlsrc.Document, facts: FactDictionary, errors: list) -> dict[str, tuple]:
    """Score components, parsed like criteria; a score may not be built on another score."""
    out = {}
    for name, spec in (doc.data.get("scores") or {}).items():
        parts = []
        for i, comp in enumerate(spec["components"]):
            path = ("scores", name, "components", i, "when")
            expr = _expr(comp["when"], path, doc, facts, errors)
            if expr is None:
                continue
            nested = [f for f in expr.facts() if f.startswith("score.")]
            if nested:
                errors.append(doc.error(path, f"score '{name}' uses another score ({nested[0]})", "UR024"))
                continue
            parts.append((comp["points"], expr))
        out[f"score.{name}"] = tuple(parts)
    return out


def _check_unique(rulesets: list[RuleSet], docs: dict, errors: list) -> None:
    """Criterion ids are unique across rule sets; versions of one rule set may not overlap in time."""
    owner: dict[str, str] = {}
    for rs in rulesets:
        doc = docs[rs.file]
        for other in rulesets:
            if other is rs or other.id != rs.id or other.file > rs.file:
                continue
            if other.version == rs.version or _overlap(rs, other):
                errors.append(doc.error(("effective",), f"rule set '{rs.id}' {rs.version} overlaps {other.version} "
                                        f"in {other.file}: give versions disjoint effective dates", "UR011"))
        for i, cr in enumerate(rs.criteria):
            if owner.get(cr.id, rs.id) != rs.id:
                errors.append(doc.error(("criteria", i, "id"),
                                        f"criterion id '{cr.id}' is also used by rule set {owner[cr.id]}", "UR010"))
            owner.setdefault(cr.id, rs.id)
    for rs in rulesets:
        for i, cid in enumerate(rs.waives):
            if cid not in owner:
                errors.append(docs[rs.file].error(("waives", i), f"waives unknown criterion '{cid}'", "UR031",
                                                  suggestion=did_you_mean(cid, owner)))


def _overlap(a: RuleSet, b: RuleSet) -> bool:
    lo = max(a.effective_from or date.min, b.effective_from or date.min)
    hi = min(a.effective_to or date.max, b.effective_to or date.max)
    return lo <= hi


def _schema_errors(doc: yamlsrc.Document, kind: str, errors: list) -> bool:
    found = False
    for path, msg, hint, at_key in schemas.iter_explained(kind, doc.data if doc.data is not None else {}):
        errors.append(doc.error(path, msg, "UR004", key=at_key, suggestion=hint))
        found = True
    return found


def _date(text: str | None, doc, path, errors) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(doc.error(path, f"'{text}' is not a valid date", "UR005"))
        return None


def _valueset(doc: yamlsrc.Document, errors: list) -> Valueset:
    d = doc.data
    vs = Valueset(d["valueset"], d["title"], d["source"], d.get("system", DEFAULT_SYSTEM), d.get("match", "exact"))
    for i, entry in enumerate(d["codes"]):
        start = _date(entry.get("from"), doc, ("codes", i, "from"), errors)
        end = _date(entry.get("to"), doc, ("codes", i, "to"), errors)
        if start and end and end < start:
            errors.append(doc.error(("codes", i, "to"), "'to' is before 'from'", "UR005"))
        vs.add(entry["code"], start, end, entry.get("system"))
    return vs


def _ruleset(doc: yamlsrc.Document, facts: FactDictionary, valuesets: dict, errors: list) -> RuleSet:
    d = doc.data
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
                                          f"{MAX_ALTERNATIVES}); split it into several criteria", "UR050",
                                    rule_id=raw["id"]))
        criteria.append(Criterion(raw["id"], rid, raw["group"], raw["text"], raw["source"],
                                  raw.get("action", "support"), expr, expr.facts(), doc.name,
                                  doc.where(path)[0]))
        groups[raw["group"]].append(raw["id"])
    levels = {t: _group_expr(e, ("levels", t), doc, groups, errors) for t, e in d.get("levels", {}).items()}
    requires = {t: _group_expr(e, ("requires", t), doc, groups, errors) for t, e in d.get("requires", {}).items()}
    eff = d.get("effective", {})
    start = _date(eff.get("from"), doc, ("effective", "from"), errors)
    end = _date(eff.get("to"), doc, ("effective", "to"), errors)
    if start and end and end < start:
        errors.append(doc.error(("effective", "to"), "'to' is before 'from'", "UR005"))
    a = d.get("applies", {})
    for i, v in enumerate(a.get("diagnoses", ())):
        if v not in valuesets:
            errors.append(doc.error(("applies", "diagnoses", i), f"unknown valueset '{v}'", "UR040",
                                    suggestion=did_you_mean(v, valuesets)))
    rt = a.get("review_type", "admission")
    applies = Applies(
        a.get("age", {}).get("min"), a.get("age", {}).get("max"),
        frozenset([rt] if isinstance(rt, str) else rt),
        frozenset(a["line_of_business"]) if "line_of_business" in a else None,
        frozenset(a["requested"]) if "requested" in a else None,
        tuple(a["diagnoses"]) if "diagnoses" in a else None,
        frozenset(a["plan"]) if "plan" in a else None)
    tests = tuple(RuleTest(t["name"], t["record"], t["expect"], doc.name, doc.where(("tests", i))[0])
                  for i, t in enumerate(d.get("tests", ())))
    return RuleSet(rid, d["version"], d["title"], d["source"], doc.name, start, end, applies, tuple(criteria),
                   {g: tuple(ids) for g, ids in groups.items()},
                   {t: e for t, e in levels.items() if e is not None},
                   {t: e for t, e in requires.items() if e is not None}, tests, tuple(d.get("waives", ())))


def _expr(node, path, doc, facts: FactDictionary, errors: list, top: bool = False) -> c.Expr | None:
    if not isinstance(node, dict) or not node:
        errors.append(doc.error(path, "a condition must be a mapping with any, all, not or fact", "UR021"))
        return None
    present = [k for k in CONDITION_KEYS if k in node]
    allowed = CONDITION_KEYS + c.OPERATORS + (CRITERION_KEYS if top else ())
    for key in node:
        if key not in allowed:
            errors.append(doc.error(path + (key,), f"unknown key '{key}'", "UR021", key=True,
                                    suggestion=did_you_mean(str(key), allowed)))
            return None
    if len(present) != 1:
        what = "no condition" if not present else "more than one of " + ", ".join(present)
        errors.append(doc.error(path, f"{what}: give exactly one of any, all, not or fact", "UR021"))
        return None
    kind = present[0]
    if kind in ("any", "all"):
        items = node[kind]
        if not isinstance(items, list) or not items:
            errors.append(doc.error(path + (kind,), f"'{kind}' takes a non-empty list of conditions", "UR021"))
            return None
        extra = [k for k in node if k != kind and k in c.OPERATORS]
        if extra:
            errors.append(doc.error(path + (extra[0],), f"'{extra[0]}' needs a 'fact'", "UR021", key=True))
            return None
        parts = [_expr(item, path + (kind, i), doc, facts, errors) for i, item in enumerate(items)]
        if any(p is None for p in parts):
            return None
        return (c.All if kind == "all" else c.Any)(tuple(parts))
    if kind == "not":
        inner = _expr(node["not"], path + ("not",), doc, facts, errors)
        return None if inner is None else c.Not(inner)
    return _leaf(node, path, doc, facts, errors)


def _leaf(node, path, doc, facts: FactDictionary, errors: list) -> c.Leaf | None:
    name = node["fact"]
    ops = [k for k in node if k in c.OPERATORS]
    if len(ops) != 1:
        errors.append(doc.error(path, f"a fact test needs exactly one operator ({', '.join(c.OPERATORS)})",
                                "UR022"))
        return None
    op, value = ops[0], node[ops[0]]
    info = facts.catalog.get(name) if isinstance(name, str) else None
    if info is None:
        errors.append(doc.error(path + ("fact",), f"unknown fact '{name}'", "UR020",
                                suggestion=did_you_mean(str(name), facts.catalog)))
        return None
    problem = _type_problem(op, value, info.type)
    if problem:
        errors.append(doc.error(path + (op,), f"{name} is a {info.type}: {problem}", "UR023"))
        return None
    if op == "in":
        value = tuple(value)
    if info.kind == "score":
        if op == "in":
            errors.append(doc.error(path + (op,), f"{name} is a score: compare it with lt, lte, gt, gte, eq or ne",
                                    "UR023"))
            return None
        return c.ScoreLeaf(name, op, value)
    return c.Leaf(name, op, value)


def _type_problem(op: str, value, type_: str) -> str | None:
    def is_num(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if op in c.NUMERIC_OPERATORS:
        if type_ != "number":
            return f"'{op}' compares numbers only"
        return None if is_num(value) else f"'{op}' needs a number"
    if op == "is":
        if type_ != "boolean":
            return "'is' tests booleans only; use eq"
        return None if isinstance(value, bool) else "'is' needs true or false"
    if type_ == "boolean":
        return f"use 'is' for a boolean, not '{op}'"
    values = value if op == "in" else [value]
    if op == "in" and (not isinstance(value, list) or not value):
        return "'in' needs a non-empty list"
    want = is_num if type_ == "number" else (lambda v: isinstance(v, str))
    return None if all(want(v) for v in values) else f"'{op}' needs {type_} values"


def _group_expr(node, path, doc, groups: dict, errors: list) -> c.Expr | None:
    if isinstance(node, str):
        if node not in groups:
            errors.append(doc.error(path, f"unknown criteria group '{node}'", "UR030",
                                    suggestion=did_you_mean(node, groups)))
            return None
        return c.Leaf(node, "is", True)
    kind = "all" if "all" in node else "any"
    parts = [_group_expr(item, path + (kind, i), doc, groups, errors) for i, item in enumerate(node[kind])]
    if any(p is None for p in parts):
        return None
    return (c.All if kind == "all" else c.Any)(tuple(parts))


def _check_tests(lib: Library, docs: dict, errors: list) -> None:
    from ur_engine.record import parse
    from ur_engine.rules.ruletest import complete_record

    for rs in lib.rulesets:
        doc = docs[rs.file]
        for i, t in enumerate(rs.tests):
            try:
                adm = parse(complete_record(rs, t.record))
                lib.facts.check(adm)
            except RecordErrors as exc:
                for e in exc.errors:
                    parts = [p for p in e.path.replace("[", ".").replace("]", "").split(".")[1:] if p]
                    sub = tuple(int(p) if p.isdigit() else p for p in parts)
                    errors.append(doc.error(("tests", i, "record") + sub, f"test '{t.name}': {e.message}",
                                            "UR060", suggestion=e.suggestion))
