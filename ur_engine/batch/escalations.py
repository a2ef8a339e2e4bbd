"""Escalations and de-escalations over a batch of day-by-day decisions (``by_day``, see ``ur_engine.stay_days``).

A stay whose supported level rises after its first day is what an admission review cannot see: the patient who
reaches the ICU on day 3. Analysts look for those stays, so the batch counts them and names a few.

Counts come from the ``by_day`` of each output line, which compact and full trails carry alike; a summary is
rebuilt from the lines when a run is resumed, and from its JSON (``to_dict``) by ``from_dict``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

EXAMPLES = 10  # record ids kept as examples of late escalations: enough to open a few, not a list to page


def transition(before: object, after: object) -> str:
    """``inpatient→critical``; a side with no level supported is ``none`` (as requested_vs_supported writes it)."""
    return f"{before or 'none'}→{after or 'none'}"


@dataclass
class DayChanges:
    """Stays reviewed day by day; their escalations and de-escalations by (from → to) and by day of care; and
    the stays whose level rose after day 1, with the first few as examples (in input order)."""

    stays: int = 0
    escalations: Counter = field(default_factory=Counter)  # "inpatient→critical" -> changes
    de_escalations: Counter = field(default_factory=Counter)
    escalation_days: Counter = field(default_factory=Counter)  # day of care (int) -> escalations that day
    de_escalation_days: Counter = field(default_factory=Counter)
    late: int = 0  # stays with at least one escalation after day 1
    examples: list = field(default_factory=list)  # [{record_id, day, from, to}], the stay's first such rise

    def add(self, record_id: object, by_day: dict) -> None:
        """Count one decision's ``by_day``."""
        self.stays += 1
        first_rise = None
        for c in by_day.get("changes") or ():
            day, key = int(c["day"]), transition(c["from"], c["to"])
            if c["kind"] == "escalation":
                self.escalations[key] += 1
                self.escalation_days[day] += 1
                if day > 1 and first_rise is None:
                    first_rise = c
            else:
                self.de_escalations[key] += 1
                self.de_escalation_days[day] += 1
        if first_rise is not None:
            self.late += 1
            if len(self.examples) < EXAMPLES:
                self.examples.append({"record_id": record_id, "day": first_rise["day"],
                                      "from": first_rise["from"], "to": first_rise["to"]})

    def merge(self, other: DayChanges) -> None:
        """Add the counts of a later part of the input (its examples come after ours)."""
        self.stays += other.stays
        self.late += other.late
        for name in ("escalations", "de_escalations", "escalation_days", "de_escalation_days"):
            getattr(self, name).update(getattr(other, name))
        self.examples.extend(other.examples[:EXAMPLES - len(self.examples)])

    def to_dict(self) -> dict:
        return {
            "stays": self.stays,
            "escalations": _kind(self.escalations, self.escalation_days),
            "de_escalations": _kind(self.de_escalations, self.de_escalation_days),
            "late_escalations": {"stays": self.late, "examples": list(self.examples)},
        }

    @classmethod
    def from_dict(cls, d: dict) -> DayChanges:
        up, down, late = d.get("escalations", {}), d.get("de_escalations", {}), d.get("late_escalations", {})
        return cls(stays=d.get("stays", 0),
                   escalations=Counter(up.get("levels", {})), de_escalations=Counter(down.get("levels", {})),
                   escalation_days=Counter({int(k): v for k, v in up.get("days", {}).items()}),
                   de_escalation_days=Counter({int(k): v for k, v in down.get("days", {}).items()}),
                   late=late.get("stays", 0), examples=list(late.get("examples", [])))


def _kind(levels: Counter, days: Counter) -> dict:
    # Days in their order (JSON keys are strings: "10" must not sort before "2"), transitions largest first.
    return {"count": sum(levels.values()),
            "levels": dict(sorted(levels.items(), key=lambda kv: (-kv[1], kv[0]))),
            "days": {str(day): days[day] for day in sorted(days)}}
