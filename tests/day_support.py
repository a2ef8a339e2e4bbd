"""What the day-by-day tests share: times counted in hours from the base record's arrival, and a round of vitals."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

ARRIVAL = datetime(2026, 3, 2, 9, 40, tzinfo=timezone.utc)  # the base record's arrival (conftest.BASE_RECORD)


def at(hours: float) -> str:
    return (ARRIVAL + timedelta(hours=hours)).isoformat()


def vitals(hours: float, pulse: float = 88, systolic: float = 122) -> list[dict]:
    return [{"code": "8867-4", "value": pulse, "unit": "/min", "time": at(hours)},
            {"code": "8480-6", "value": systolic, "unit": "mm[Hg]", "time": at(hours)}]
