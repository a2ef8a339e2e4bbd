"""The ``tests:`` blocks of rule files: complete each partial record with defaults, review it, compare.

How a partial record is completed: ``ur_engine.rules.ruletest``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ur_engine.decision import Decision
from ur_engine.engine import Engine
from ur_engine.errors import RecordError
from ur_engine.rules.library import Library, RuleTest
from ur_engine.rules.ruletest import Expectation, complete_record


@dataclass
class TestOutcome:
    ruleset: str
    test: RuleTest
    passed: bool
    problems: list[str] = field(default_factory=list)
    decision: Decision | None = None


def run_tests(engine: Engine, library: Library) -> list[TestOutcome]:
    """Run every rule test of the library through ``engine``; one outcome per test."""
    outcomes = []
    for rs in library.rulesets:
        for t in rs.tests:
            try:
                d = engine.review(complete_record(rs, t.record))
            except RecordError as exc:
                outcomes.append(TestOutcome(rs.id, t, False, [f"record rejected: {exc}"]))
                continue
            problems = compare(t.expect, d)
            outcomes.append(TestOutcome(rs.id, t, not problems, problems, d))
    return outcomes


@dataclass
class Coverage:
    """Which criteria the rule tests exercised met and not met."""

    seen: dict[tuple[str, str], set[str]]  # (ruleset key, criterion id) -> statuses seen in test decisions

    @property
    def percent(self) -> float:
        if not self.seen:
            return 100.0
        hit = sum(len(s & {"met", "not_met"}) for s in self.seen.values())
        return 100.0 * hit / (2 * len(self.seen))

    def gaps(self) -> list[tuple[str, str, list[str]]]:
        """(rule set, criterion, statuses never exercised) for each criterion not fully covered."""
        return [(key.split("@")[0], cid, [s for s in ("met", "not_met") if s not in got])
                for (key, cid), got in sorted(self.seen.items()) if not {"met", "not_met"} <= got]


def coverage(library: Library, outcomes: list[TestOutcome]) -> Coverage:
    """Per criterion, the statuses that rule-test decisions gave it."""
    seen: dict[tuple[str, str], set[str]] = {(rs.key, cr.id): set() for rs in library.rulesets for cr in rs.criteria}
    for o in outcomes:
        if o.decision is None:
            continue
        versions = o.decision.rules["rulesets"]
        for cr in o.decision.criteria:
            seen[(f"{cr.ruleset}@{versions[cr.ruleset]}", cr.id)].add(cr.status)
    return Coverage(seen)


def compare(expect: Expectation, d: Decision) -> list[str]:
    """What differs between a test's ``expect`` and a decision; empty when it passes."""
    problems = []
    if expect.outcome is not None and expect.outcome != d.outcome:
        problems.append(f"outcome: expected {expect.outcome}, got {d.outcome}")
    if expect.checks_level and expect.level != d.supported:
        problems.append(f"level: expected {expect.level}, got {d.supported}")
    by_status: dict[str, set[str]] = {"met": set(), "not_met": set(), "unknown": set(), "waived": set()}
    for cr in d.criteria:
        by_status[cr.status].add(cr.id)
    for status, ids in expect.statuses:
        wrong = [i for i in ids if i not in by_status[status]]
        if wrong:
            actual = {i: next((cr.status for cr in d.criteria if cr.id == i), "not evaluated") for i in wrong}
            problems.append(f"{status}: expected {', '.join(wrong)}; actual " +
                            ", ".join(f"{k}={v}" for k, v in actual.items()))
    missing = [f for f in expect.missing if f not in d.missing]
    if missing:
        problems.append(f"missing: expected {', '.join(missing)} among {d.missing}")
    if problems:
        problems.append("criteria met: " + (", ".join(sorted(by_status["met"])) or "none"))
    return problems
