"""A value in its clinical context, for the facts: a treatment read against the surgery it followed, and a
laboratory result read against its repeat.

Both settings (the perioperative window, the time within which a repeat verifies a result) live in
``rules/facts.yaml`` beside the facts that use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ur_engine.record import Admission, Observation


def perioperative(adm: Admission, spec: dict[str, Any], start: datetime,
                  end: datetime) -> tuple[bool | None, str | None]:
    """Whether every episode of the treatments in the window started in the perioperative window of a surgical
    procedure and lasted under ``under_hours`` (False when none was given, or no surgery is listed), with the start
    of the episode that shows it; None when the record cannot say: an episode without a start, or one whose length
    it leaves open under the bound, beside a listed surgery. A surgery is a procedure the record gives with general
    or regional anesthesia (an intubation, or a procedure whose anesthesia it does not give, is not)."""
    if adm.treatments is None:
        return None, None
    episodes = [t for t in adm.treatments if t.type in spec["treatments"]
                and (t.start is None or t.start <= end) and (t.end is None or t.end >= start)]
    if not episodes:
        return (None if "treatments" in adm.incomplete else False), None
    surgery = [p.time for p in adm.procedures or () if p.time is not None and p.status in spec["status"]
               and p.anesthesia in spec["anesthesia"]]
    # The exception rests on a surgery the record shows: one that lists none (or no procedures at all) cannot
    # show ventilation was for surgery, and ventilation counts as it does without the exception. Reading it as
    # unknown would pend every ventilated patient whose extract leaves procedures out.
    if not surgery:
        return False, episodes[0].start_text
    before, after = timedelta(hours=spec["start_hours_before"]), timedelta(hours=spec["start_hours_after"])
    under = timedelta(hours=spec["under_hours"])
    discharged = adm.encounter.discharge_time
    stay_end = discharged or adm.encounter.review_time
    found: bool | None = True
    for t in episodes:
        if t.start is None:
            found = None
            continue
        if not any(when - before <= t.start <= when + after for when in surgery):
            return False, t.start_text
        # how long it lasted: to its end; else, still running, at least to the discharge (then exactly) or review
        lasted = (t.end or stay_end or t.start) - t.start
        if lasted >= under:
            return False, t.start_text
        if t.end is None and discharged is None:
            found = None
    return found, episodes[0].start_text if found else None


def contradicted(series: Sequence[tuple[float, Observation]], within: timedelta,
                 thresholds: Sequence[float]) -> list[tuple[float, Observation, float, Observation]]:
    """(value, result, repeat value, repeat) for each result that a later result of the same fact, within
    ``within``, contradicts: a number the rules compare the fact with lies between the two, so they would judge
    them differently. The repeat verifies the result, never the reverse, so the latest result is never disputed."""
    ordered = sorted(series, key=lambda vo: vo[1].time)
    out = []
    for i, (value, result) in enumerate(ordered):
        for again, repeat in ordered[i + 1:]:
            if repeat.time - result.time > within:
                break
            if repeat.time > result.time and judged_apart(value, again, thresholds):
                out.append((value, result, again, repeat))
                break
    return out


def judged_apart(a: float, b: float, thresholds: Sequence[float]) -> bool:
    """Whether some threshold lies between ``a`` and ``b`` (either end included), so a rule may judge them apart."""
    lo, hi = min(a, b), max(a, b)
    return lo != hi and any(lo <= t <= hi for t in thresholds)
