"""A value in its clinical context, for the facts: a treatment read against the surgery it followed, and a
laboratory result read against its repeat.

Both settings (the perioperative window, the time within which a repeat verifies a result) live in
``rules/facts.yaml`` beside the facts that use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ur_engine.record import Admission, DataNotice, Observation

STATS = ("min", "max", "first", "last")
STAT_WORDS = {"min": "lowest", "max": "highest", "first": "first", "last": "latest"}
Dispute = tuple[float, Observation, float, Observation]  # value, result, repeat value, repeat


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


def disputed(series: Sequence[tuple[float, Observation]], end: datetime, within: timedelta, name: str,
             values: dict[str, Any], thresholds: dict[str, tuple[float, ...]],
             only_higher: bool = False) -> tuple[list[str], list[Dispute]]:
    """The statistics of observation ``name`` that results of the window (up to ``end``) contradicted by a repeat
    leave unsettled — those that, without them, the rules would judge apart — and those results. ``series`` holds
    the window's results and those up to ``within`` after it: a repeat after the window still verifies."""
    facts = [f"{name}.{s}" for s in STATS]
    found = [d for d in contradicted(series, within, [t for f in facts for t in thresholds.get(f, ())], only_higher)
             if d[1].time <= end]
    if not found:
        return [], []
    gone = {id(d[1]) for d in found}
    kept = sorted((vo for vo in series if vo[1].time <= end and id(vo[1]) not in gone), key=lambda vo: vo[1].time)
    if not kept:  # every result of the window is disputed: none of its statistics is known
        return [f for f in facts if f in values], found
    without = (min(v for v, _ in kept), max(v for v, _ in kept), kept[0][0], kept[-1][0])
    return [f for f, b in zip(facts, without) if isinstance(value := values.get(f), float | int)
            and judged_apart(float(value), b, thresholds.get(f, ()))], found


def dispute_notices(found: list[Dispute], unsettled: list[str], label: str, unit: str,
                    within: timedelta) -> list[DataNotice]:
    """A notice for each disputed result, when it left something unsettled."""
    if not unsettled:
        return []
    open_ = " and ".join(STAT_WORDS[f.rsplit(".", 1)[1]] for f in unsettled)
    return [DataNotice(
        f"{label} {value:g} {unit} at {result.time_text}", f"$.observations[{result.index}]",
        f"contradicted by a repeat {(repeat.time - result.time).total_seconds() / 3600:.1f} h later ({again:g} "
        f"{unit}), within the {within.total_seconds() / 3600:g} h in which a repeat verifies a result: it decides "
        f"nothing, and the {open_} {label.lower()} of the window, which it alone would settle, is unknown",
        kind="disputed") for value, result, again, repeat in found]


def contradicted(series: Sequence[tuple[float, Observation]], within: timedelta,
                 thresholds: Sequence[float], only_higher: bool = False) -> list[Dispute]:
    """(value, result, repeat value, repeat) for each result that a later result of the same fact, within
    ``within``, contradicts: a number the rules compare the fact with lies between the two, so they would judge
    them differently. The repeat verifies the result, never the reverse, so the latest result is never disputed.
    ``only_higher``: only a result above its repeat is contradicted, as when the known error raises the value
    (pseudohyperkalemia), and a higher repeat may itself carry that error."""
    ordered = sorted(series, key=lambda vo: vo[1].time)
    out = []
    for i, (value, result) in enumerate(ordered):
        for again, repeat in ordered[i + 1:]:
            if repeat.time - result.time > within:
                break
            if repeat.time > result.time and (not only_higher or value > again) and judged_apart(value, again,
                                                                                                thresholds):
                out.append((value, result, again, repeat))
                break
    return out


def judged_apart(a: float, b: float, thresholds: Sequence[float]) -> bool:
    """Whether some threshold lies between ``a`` and ``b`` (either end included), so a rule may judge them apart."""
    lo, hi = min(a, b), max(a, b)
    return lo != hi and any(lo <= t <= hi for t in thresholds)
