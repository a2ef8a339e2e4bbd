"""The engine's words, as Enums: outcomes, lines of business, levels of care, post-acute settings, criterion
statuses, review types and X12 306 review actions.

Each member is also its text (``Outcome.APPROVE == "approve"``), so decisions serialise to the strings of
``schemas/decision.schema.json`` unchanged, and records parsed from JSON compare equal to members.
"""

from __future__ import annotations

from enum import Enum


class Word(str, Enum):
    """A member that is its own text, in JSON, in f-strings and in ``str()``."""

    __str__ = str.__str__
    __format__ = str.__format__  # type: ignore[assignment]


class Outcome(Word):
    """What the engine answers. There is no deny: an adverse decision is a physician's alone."""

    APPROVE = "approve"
    PEND = "pend"
    ALTERNATIVE_SETTING = "alternative_setting"


class LineOfBusiness(Word):
    """Who pays, as the record says it: it chooses the payment rules (Medicare's two-midnight benchmark…)."""

    MEDICARE = "medicare"
    MEDICARE_ADVANTAGE = "medicare_advantage"
    MEDICAID = "medicaid"
    COMMERCIAL = "commercial"


class Level(Word):
    """Levels of acute care, the most intensive first."""

    CRITICAL = "critical"
    INTERMEDIATE = "intermediate"
    INPATIENT = "inpatient"
    OBSERVATION = "observation"
    OUTPATIENT = "outpatient"


class Setting(Word):
    """Settings after discharge, the most intensive first (hospice is judged on its own)."""

    LTCH = "ltch"
    IRF = "irf"
    SNF = "snf"
    HOME_HEALTH = "home_health"
    HOSPICE = "hospice"
    HOME = "home"


class Status(Word):
    """A criterion's, group's or level's finding on one record (three-valued, plus waived)."""

    MET = "met"
    NOT_MET = "not_met"
    UNKNOWN = "unknown"
    WAIVED = "waived"

    @classmethod
    def of(cls, value: bool | None) -> Status:
        return _STATUS[value]


_STATUS = {True: Status.MET, False: Status.NOT_MET, None: Status.UNKNOWN}


class ReviewType(Word):
    ADMISSION = "admission"
    CONTINUED_STAY = "continued_stay"
    DISCHARGE = "discharge"
    # One day of care (the 24 h ending at the review time) judged by day-of-care criteria and the level criteria
    # applied to that day's data: the unit of the day-by-day review of a whole stay (stay_days.py).
    DAY_OF_CARE = "day_of_care"


class ReviewAction(Word):
    """X12 306 review actions the engine may give (A3 not certified and A6 modified are a physician's)."""

    CERTIFIED = "A1"
    PENDED = "A4"


class Action(Word):
    """What a met criterion does: support its group, send the case to a physician, or add a notice."""

    SUPPORT = "support"
    PEND = "pend"
    NOTIFY = "notify"


# Plain strings: they key JSON objects (levels judged), and orjson takes only exact str keys.
ACUTE_LEVELS: tuple[str, ...] = tuple(level.value for level in Level)
POST_ACUTE_SETTINGS: tuple[str, ...] = tuple(setting.value for setting in Setting)
LINES_OF_BUSINESS: tuple[str, ...] = tuple(line.value for line in LineOfBusiness)
