"""A rule test's partial ``record``, completed into the admission record it stands for.

Defaults a test record gets when it leaves them out: ``id`` (the rule set and test number), ``patient.age``
50 (or the nearest age the rule set applies to), ``coverage.line_of_business`` (the first the rule set
names, else commercial), ``review_type`` (the rule set's, if it names one), ``encounter.arrival_time``
(08:00 UTC the day the rule set takes effect, else 2026-01-05), ``encounter.review_time`` 24 h after arrival
for continued-stay and discharge reviews, one hour after arrival for observations without a time, and
``complete`` for every section (what the test does not state is absent; give ``complete: []`` to test unknowns).
The loader checks every completed record, and ``ur rules test`` reviews them.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ur_engine.rules.library import RuleSet


def complete_record(rs: RuleSet, partial: dict) -> dict:
    """The full admission record a rule test's partial ``record`` stands for."""
    rec = copy.deepcopy(partial)
    index = next((i for i, t in enumerate(rs.tests) if t.record is partial), 0)
    rec.setdefault("id", f"{rs.id}:test-{index + 1}")
    if len(rs.applies.review_types) == 1:
        rec.setdefault("review_type", next(iter(rs.applies.review_types)))
    review_type = rec.get("review_type", "admission")
    age = 50
    if rs.applies.age_min is not None:
        age = max(age, rs.applies.age_min)
    if rs.applies.age_max is not None:
        age = min(age, rs.applies.age_max)
    rec.setdefault("patient", {}).setdefault("age", age)
    lines = sorted(rs.applies.lines) if rs.applies.lines else ["commercial"]
    rec.setdefault("coverage", {}).setdefault("line_of_business", lines[0])
    # A rule test spells out the case in full: a finding or treatment it does not state is absent, not unknown.
    rec.setdefault("complete", ["diagnoses", "procedures", "observations", "treatments", "findings"])
    enc = rec.setdefault("encounter", {})
    start = rs.effective_from.isoformat() if rs.effective_from else "2026-01-05"
    enc.setdefault("arrival_time", f"{start}T08:00:00+00:00")
    try:
        arrival = datetime.fromisoformat(enc["arrival_time"])
    except (TypeError, ValueError):
        return rec  # validation reports the bad time
    if review_type != "admission":
        enc.setdefault("review_time", (arrival + timedelta(hours=24)).isoformat())
    for obs in rec.get("observations", ()):
        if isinstance(obs, dict):
            obs.setdefault("time", (arrival + timedelta(hours=1)).isoformat())
    return rec
