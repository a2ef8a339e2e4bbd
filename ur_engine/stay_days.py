"""The whole stay, day by day: each day of care judged apart, and where the level of care it supports changes.

A stay is cut into days of care, 24 h each from arrival, up to the discharge (or the review, or the last time the
record gives). Each day is a ``day_of_care`` review of its own: the day-of-care criteria (rules/aep-day-of-care)
and the level criteria of the stay's rule sets, applied to that day's observations, treatments and procedures.
So a patient who reaches the ICU on day 3 is seen on day 3, where an admission review sees only the first day.

A day the record says nothing about is unknown, never "not met": no level is claimed for it, and changes are read
between days that have data. Findings carry no time, so they count on the first day only; on later days a
criterion that needs one is unknown.

>>> decision = review_by_day(engine, admission)       # doctest: +SKIP
>>> decision.by_day["changes"]                        # doctest: +SKIP
[{'day': 3, 'kind': 'escalation', 'from': 'inpatient', 'to': 'critical', 'criteria': ['CC-VASOPRESSOR']}]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from ulid import ULID

from ur_engine.decision import Decision
from ur_engine.engine import Engine
from ur_engine.record import Admission
from ur_engine.vocabulary import ACUTE_LEVELS, ReviewType, Status

DAY = timedelta(hours=24)
# A bound on the work one record can ask for: a year of days. Longer stays are judged on their first year.
MAX_DAYS = 366
_RANK = {level: i for i, level in enumerate(ACUTE_LEVELS)}  # 0 = critical, the most intensive


@dataclass(frozen=True)
class Day:
    """One day of care: its number (1 = the first 24 h from arrival), its span, whether the record gives any data
    in it, the highest level its criteria support (None: none), every judged level's status and the criteria
    that support that level."""

    number: int
    start: datetime
    end: datetime
    data: bool
    supported: str | None
    levels: dict[str, Status]
    met: tuple[str, ...]
    all_met: frozenset[str]

    @property
    def status(self) -> Status:
        """met: a level is supported; not_met: none is and none could be; unknown: no data, or none is supported
        but a level could not be judged."""
        if not self.data:
            return Status.UNKNOWN
        if self.supported is not None:
            return Status.MET
        return Status.UNKNOWN if Status.UNKNOWN in self.levels.values() else Status.NOT_MET

    def to_dict(self) -> dict[str, object]:
        return {"day": self.number, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "data": self.data, "status": self.status, "supported": self.supported,
                "levels": dict(self.levels), "criteria": list(self.met)}


@dataclass(frozen=True)
class Change:
    """The supported level moved between two days with data: up (escalation) or down (de-escalation), and the
    criteria that moved it — newly met for an escalation, no longer met for a de-escalation."""

    day: int
    kind: str  # escalation | de-escalation
    from_level: str | None
    to_level: str | None
    criteria: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"day": self.day, "kind": self.kind, "from": self.from_level, "to": self.to_level,
                "criteria": list(self.criteria)}


@dataclass(frozen=True)
class StayDays:
    days: tuple[Day, ...]
    changes: tuple[Change, ...]
    until: str  # what ended the last day: discharge, review, or the last data the record gives
    truncated: bool = False  # more than MAX_DAYS days: only the first were judged

    def to_dict(self) -> dict[str, object]:
        return {"until": self.until, "truncated": self.truncated,
                "days": [d.to_dict() for d in self.days], "changes": [c.to_dict() for c in self.changes]}


def review_by_day(engine: Engine, adm: Admission, as_of: date | None = None,
                  review_id: str | None = None) -> Decision:
    """The record's own review, with ``by_day``: every day of care of the stay and the changes between them."""
    review_id = review_id or str(ULID())
    decision = engine.review(adm, review_id=review_id, as_of=as_of)
    decision.by_day = judge_days(engine, adm, as_of, review_id).to_dict()
    return decision


def judge_days(engine: Engine, adm: Admission, as_of: date | None = None, review_id: str = "") -> StayDays:
    """Each day of care of the stay, judged as a day-of-care review, and the level changes between them."""
    enc = adm.encounter
    arrival = enc.arrival_time
    last, until = _end(adm)
    count = max(1, math.ceil((last - arrival) / DAY))
    truncated = count > MAX_DAYS
    # The level chain is judged whatever level was asked, so a post-acute request is read as an inpatient stay.
    requested = enc.requested_level if enc.requested_level in _RANK else "inpatient"
    # Rules in effect on arrival, as for the stay's own review, unless the caller names a day.
    day_rules = as_of or arrival.date()
    days: list[Day] = []
    # Criteria that pend or notify support no level: they never move one.
    acting = frozenset(cr.id for rs in engine.library.rulesets for cr in rs.acting_criteria)
    for i in range(min(count, MAX_DAYS)):
        start = arrival + i * DAY
        end = start + DAY
        if not _has_data(adm, start, end):  # nothing to judge the day by: unknown, and no review is asked
            days.append(Day(i + 1, start, min(end, last), False, None, {}, (), frozenset()))
            continue
        one = replace(adm, review_type=ReviewType.DAY_OF_CARE,
                      encounter=replace(enc, review_time=end, requested_level=requested),
                      findings=adm.findings if i == 0 else None)
        d = engine.review(one, review_id=f"{review_id}:day{i + 1}", as_of=day_rules)
        supported = d.supported
        all_met = frozenset(c.id for c in d.criteria if c.status is Status.MET)
        days.append(Day(i + 1, start, min(end, last), True, supported, dict(d.levels),
                        tuple(d.met_for(supported)) if supported else (), all_met - acting))
    return StayDays(tuple(days), tuple(_changes(days)), until, truncated)


def _changes(days: list[Day]) -> list[Change]:
    out: list[Change] = []
    before: Day | None = None
    for day in days:
        if day.status is Status.UNKNOWN and day.supported is None:
            continue  # a day without data, or one nothing could be judged on, moves nothing
        if before is not None and day.supported != before.supported:
            up = _rank(day.supported) < _rank(before.supported)
            if up:
                moved = tuple(c for c in day.met if c not in before.all_met) or day.met
            else:
                moved = tuple(c for c in before.met if c not in day.all_met)
            out.append(Change(day.number, "escalation" if up else "de-escalation", before.supported,
                              day.supported, moved))
        before = day
    return out


def _rank(level: str | None) -> int:
    return _RANK.get(level, len(_RANK)) if level is not None else len(_RANK)


def _end(adm: Admission) -> tuple[datetime, str]:
    """When the stay (as far as the record knows it) ends, and what says so."""
    enc = adm.encounter
    if enc.discharge_time is not None:
        return enc.discharge_time, "discharge"
    if enc.review_time is not None:
        return enc.review_time, "review"
    times = [o.time for o in adm.observations or ()]
    times += [t for tr in adm.treatments or () for t in (tr.start, tr.end) if t is not None]
    times += [p.time for p in adm.procedures or () if p.time is not None]
    return max([enc.arrival_time, *times]), "data"


def _has_data(adm: Admission, start: datetime, end: datetime) -> bool:
    """Whether the record gives anything timed in the day: an observation, a treatment running, a procedure."""
    if any(start <= o.time <= end for o in adm.observations or ()):
        return True
    if any(t.start is not None and t.start <= end and (t.end is None or t.end >= start)
           for t in adm.treatments or ()):
        return True
    return any(p.time is not None and start <= p.time <= end for p in adm.procedures or ())
