"""A rule test: what it ``expect``s of its decision, and its partial ``record`` completed into the admission
record it stands for.

Defaults a test record gets when it leaves them out: ``id`` (the rule set and test number), ``patient.age``
50 (or the nearest age the rule set applies to), ``coverage.line_of_business`` (the first the rule set
names, else commercial), ``review_type`` (the rule set's when it judges no admission: continued stay before day of
care), ``encounter.arrival_time``
(08:00 UTC the day the rule set takes effect, else 2026-01-05), ``encounter.review_time`` 24 h after arrival
for continued-stay and discharge reviews, one hour after arrival for observations without a time, and
``complete`` for every section (what the test does not state is absent; give ``complete: []`` to test unknowns).
The loader checks every completed record, and ``ur rules test`` reviews them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ur_engine.rules.library import RuleSet


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a rule test expects of its decision (its ``expect``); a part the test leaves out is not checked."""

    outcome: str | None = None
    checks_level: bool = False  # whether ``level`` is expected: None then means that no level is supported
    level: str | None = None
    met: tuple[str, ...] = ()
    not_met: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    waived: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def statuses(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(criterion status, the criterion ids expected to have it), in the order tests report them."""
        return (("met", self.met), ("not_met", self.not_met), ("unknown", self.unknown), ("waived", self.waived))


def complete_record(rs: RuleSet, partial: Mapping[str, object]) -> dict[str, object]:
    """The full admission record a rule test's partial ``record`` stands for.

    Parts of the wrong type are left as they are, for the record's validation to report.
    """
    rec = copy.deepcopy(dict(partial))
    index = next((i for i, t in enumerate(rs.tests) if t.record is partial), 0)
    rec.setdefault("id", f"{rs.id}:test-{index + 1}")
    if "admission" not in rs.applies.review_types:  # the rule set's own review type (continued stay first)
        rec.setdefault("review_type", sorted(rs.applies.review_types)[0])
    review_type = rec.get("review_type", "admission")
    age: float = 50
    if rs.applies.age_min is not None:
        age = max(age, rs.applies.age_min)
    if rs.applies.age_max is not None:
        age = min(age, rs.applies.age_max)
    patient = rec.setdefault("patient", {})
    if isinstance(patient, dict):
        patient.setdefault("age", age)
    lines = sorted(rs.applies.lines) if rs.applies.lines else ["commercial"]
    coverage = rec.setdefault("coverage", {})
    if isinstance(coverage, dict):
        coverage.setdefault("line_of_business", lines[0])
    # A rule test spells out the case in full: a finding or treatment it does not state is absent, not unknown.
    rec.setdefault("complete", ["diagnoses", "procedures", "observations", "treatments", "findings"])
    enc = rec.setdefault("encounter", {})
    if not isinstance(enc, dict):
        return rec
    start = rs.effective_from.isoformat() if rs.effective_from else "2026-01-05"
    arrival_time = enc.setdefault("arrival_time", f"{start}T08:00:00+00:00")
    try:
        arrival = datetime.fromisoformat(arrival_time) if isinstance(arrival_time, str) else None
    except ValueError:
        arrival = None
    if arrival is None:
        return rec  # validation reports the bad time
    if review_type != "admission":
        enc.setdefault("review_time", (arrival + timedelta(hours=24)).isoformat())
    observations = rec.get("observations", ())
    for obs in observations if isinstance(observations, list) else ():
        if isinstance(obs, dict):
            obs.setdefault("time", (arrival + timedelta(hours=1)).isoformat())
    return rec
