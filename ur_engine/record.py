"""The admission record: JSON → validated, typed ``Admission``. Errors name the JSON path of the bad field.

A section the record leaves out (``treatments``, ``diagnoses``…) is *unknown*; a section that is present is
taken as complete, so a treatment it does not list was not given, unless the record names it ``incomplete`` or
sends it empty without declaring it ``complete``. Findings are known only where stated, unless the record
declares them ``complete``. Every date and time must
lie between 1900 and one year from today: anything else is a typing error, never a stay to judge.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

import orjson

from ur_engine import schemas
from ur_engine.errors import (
    InvalidJsonError,
    InvalidTimeError,
    NonFiniteNumberError,
    RecordError,
    RecordErrors,
    RecordSchemaError,
    TimeOrderError,
)
from ur_engine.terminology.valuesets import DEFAULT_SYSTEM, Code, normalize
from ur_engine.vocabulary import ReviewType

EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class DataNotice:
    """What the intake did with a value that did not come as the rules read it: what, where (a JSON path or a
    FHIR element), why, and its kind — ``set_aside`` (counted as unknown), ``mapped`` (read through a code map,
    the original shown), ``unread`` (codes no rule reads, kept but not used), ``disputed`` (a result its repeat
    contradicts: what it alone would settle is unknown)."""

    what: str
    where: str
    why: str
    kind: str = "set_aside"
    system: str | None = None  # the code system, for mapped and unread codes
    count: int = 1  # how many values or codes the notice stands for

    def as_dict(self) -> dict[str, str | int]:
        d: dict[str, str | int] = {"kind": self.kind, "what": self.what, "where": self.where, "why": self.why}
        if self.system is not None:
            d["system"] = self.system
        if self.count != 1:
            d["count"] = self.count
        return d


@dataclass(slots=True)
class Patient:
    age: float | None  # None: not known; the review pends naming it (it chooses the rule sets)
    sex: str | None = None


@dataclass(slots=True)
class Coverage:
    line_of_business: str | None  # None: not known; the review pends naming it (it chooses the payment rules)
    plan: str | None = None


@dataclass(slots=True)
class Encounter:
    arrival_time: datetime
    requested_level: str | None = None
    order_time: datetime | None = None
    review_time: datetime | None = None
    admit_source: str | None = None
    expected_midnights: int | None = None
    discharge_time: datetime | None = None


@dataclass(slots=True)
class Diagnosis:
    code: str  # a ``Code`` that knows its system; ICD codes upper case, without the dot: J189
    principal: bool = False
    system: str = DEFAULT_SYSTEM
    display: str | None = None


@dataclass(slots=True)
class Procedure:
    code: str  # a ``Code`` that knows its system when the record names one
    system: str | None = None
    status: str = "planned"
    time: datetime | None = None
    time_text: str | None = None
    anesthesia: str | None = None
    hospital_only: bool | None = None
    display: str | None = None


@dataclass(slots=True)
class Observation:
    index: int  # position in the record, for error paths
    code: str
    value: float
    time: datetime
    time_text: str
    unit: str | None = None
    o2_device: str | None = None
    method: str | None = None
    comparator: str | None = None  # "<", "<=", ">", ">=": the value is a bound, not a measurement


@dataclass(slots=True)
class Treatment:
    type: str
    every_hours: float | None = None
    start: datetime | None = None
    start_text: str | None = None
    end: datetime | None = None


@dataclass(slots=True)
class Function:
    therapy_disciplines: tuple[str, ...] | None = None
    therapy_hours_per_day: float | None = None
    therapy_days_per_week: int | None = None
    expected_to_benefit: bool | None = None
    physician_visits_per_week: int | None = None
    homebound: bool | None = None
    skilled_need: str | None = None
    face_to_face_date: date | None = None


@dataclass(slots=True)
class DischargePlan:
    requested_setting: str | None = None
    inpatient_midnights: int | None = None
    planned_date: date | None = None


@dataclass(slots=True)
class Admission:
    id: str
    review_type: ReviewType
    patient: Patient
    coverage: Coverage
    encounter: Encounter
    diagnoses: tuple[Diagnosis, ...] | None = None
    procedures: tuple[Procedure, ...] | None = None
    observations: tuple[Observation, ...] | None = None
    treatments: tuple[Treatment, ...] | None = None
    findings: dict[str, bool | float | str] | None = None
    function: Function | None = None
    discharge_plan: DischargePlan | None = None
    incomplete: frozenset[str] = frozenset()
    complete: frozenset[str] = frozenset()
    data_notices: tuple[DataNotice, ...] = ()

    @property
    def requested(self) -> str | None:
        """The level (admission, continued stay) or post-acute setting (discharge) under review."""
        if self.review_type == "discharge":
            return self.discharge_plan.requested_setting if self.discharge_plan else None
        return self.encounter.requested_level

    def lookup(self, dotted: str) -> Any:
        """A field by dotted path, e.g. ``encounter.expected_midnights``; None when absent."""
        value: Any = self
        for part in dotted.split("."):
            value = getattr(value, part, None)
            if value is None:
                return None
        return value


def paths(cls: type | None = None, prefix: str = "") -> dict[str, type]:
    """Every dotted path ``Admission.lookup`` can read, with its type: ``{"encounter.arrival_time": datetime}``."""
    import dataclasses
    import typing

    cls = cls or Admission
    out: dict[str, type] = {}
    for name, hint in typing.get_type_hints(cls).items():
        inner = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        target = inner[0]
        if isinstance(target, type) and dataclasses.is_dataclass(target):
            out.update(paths(target, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = target
    return out


def loads(text: str | bytes) -> Any:
    """Parse JSON text; a syntax error becomes a RecordError at ``$`` with its line and column."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidJsonError(f"invalid JSON: {exc.msg}", path="$", line=exc.lineno,
                          column=exc.colno) from None


def parse(data: object, checked: bool = False, times: dict[str, datetime | None] | None = None) -> Admission:
    """Validate ``data`` against ``schemas/admission.schema.json`` and build the typed record.

    Raises RecordErrors listing every bad field, each with its JSON path. ``checked``: the caller has just
    validated ``data`` against the schema itself. ``times``: observation time texts the caller has already read
    (and found plausible), so they are not read again.
    """
    if not isinstance(data, dict):
        raise RecordErrors([RecordSchemaError("a record must be a JSON object", path="$")])
    if not checked and not schemas.fast_validator("admission").is_valid(data):
        raise RecordErrors([
            RecordSchemaError(msg, path=schemas.json_path(path), suggestion=hint)
            for path, msg, hint, _ in schemas.iter_explained("admission", data)
        ])
    errors: list[RecordError] = []
    adm = _build(data, errors, {} if times is None else times)
    if errors:
        raise RecordErrors(errors)
    return adm


SECTIONS = ("diagnoses", "procedures", "observations", "treatments")


def _incomplete(d: dict[str, Any]) -> frozenset[str]:
    """Sections that may leave things out: those named incomplete, and those sent empty without being declared
    complete (an empty list from an extract says nothing was charted, not that nothing was done)."""
    declared = d.get("complete", ())
    empty = [s for s in SECTIONS if s in d and not d[s] and s not in declared]
    return frozenset((*d.get("incomplete", ()), *empty))


@lru_cache(maxsize=2)
def _latest(today: date) -> datetime:
    return datetime.combine(today + timedelta(days=366), datetime.min.time(), timezone.utc)


def plausible_time(when: datetime) -> bool:
    """Between 1900 and one year from today: a time outside is a typing error (9999-12-31, 0001-01-01)."""
    return EARLIEST <= when <= _latest(_today())


def _today() -> date:
    # date.today() asks the clock on every call; a record's dozens of times need it once a second at most.
    global _CLOCK
    now = time.monotonic()
    if now - _CLOCK[0] > 1.0:
        _CLOCK = (now, date.today())
    return _CLOCK[1]


_CLOCK: tuple[float, date] = (-2.0, date.today())


def _time(text: str | None, path: str, errors: list[RecordError],
          seen: dict[str, datetime | None] | None = None) -> datetime | None:
    """The time ``text`` gives, or None with an error; ``seen``: texts already read and found plausible (a None
    there is not trusted: the text is read again, to name its error)."""
    if text is None:
        return None
    if seen is not None:
        known = seen.get(text)
        if known is not None:
            return known
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        errors.append(InvalidTimeError(f"'{text}' is not a valid date and time", path=path))
        return None
    if not plausible_time(when):
        errors.append(InvalidTimeError(f"'{text}' is outside 1900 to one year from today", path=path))
        return None
    if seen is not None:
        seen[text] = when
    return when


def _date(text: str | None, path: str, errors: list[RecordError]) -> date | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        errors.append(InvalidTimeError(f"'{text}' is not a valid date", path=path))
        return None
    if not plausible_time(datetime.combine(day, datetime.min.time(), timezone.utc)):
        errors.append(InvalidTimeError(f"'{text}' is outside 1900 to one year from today", path=path))
        return None
    return day


def _code(text: str, system: str | None) -> str:
    """A code normalized for its system; a ``Code`` carrying the system when the record names one, so code-set
    membership asks the right system (a plain code is taken to be in the code set's own system)."""
    normal = normalize(text, system)
    return Code(normal, system) if system else normal


def _diagnosis(x: dict[str, Any]) -> Diagnosis:
    system = x.get("system", DEFAULT_SYSTEM)
    return Diagnosis(Code(normalize(x["code"], system), system), bool(x.get("principal", False)), system,
                     x.get("display"))


def _build(d: dict[str, Any], errors: list[RecordError], seen: dict[str, datetime | None]) -> Admission:
    enc = d["encounter"]
    encounter = Encounter(
        # A bad arrival is in ``errors``, and a record with errors is never used: the placeholder is never read.
        arrival_time=_time(enc["arrival_time"], "$.encounter.arrival_time", errors, seen) or EARLIEST,
        requested_level=enc.get("requested_level"),
        order_time=_time(enc.get("order_time"), "$.encounter.order_time", errors, seen),
        review_time=_time(enc.get("review_time"), "$.encounter.review_time", errors, seen),
        admit_source=enc.get("admit_source"),
        expected_midnights=enc.get("expected_midnights"),
        discharge_time=_time(enc.get("discharge_time"), "$.encounter.discharge_time", errors, seen),
    )
    obs = None
    if "observations" in d:
        read: list[Observation] = []
        # Observations taken together share a time: each is read once (``seen`` may come from the intake). Looked
        # up here rather than through _time(..., seen): the error path is then built only for a time not yet read.
        for i, o in enumerate(d["observations"]):
            value = o["value"]
            if isinstance(value, float) and not math.isfinite(value):
                errors.append(NonFiniteNumberError("value must be a finite number",
                                          path=f"$.observations[{i}].value"))
                continue
            text = o["time"]
            when = seen.get(text)
            if when is None:
                when = _time(text, f"$.observations[{i}].time", errors)
                if when is None:
                    continue
                seen[text] = when
            read.append(Observation(i, o["code"], value, when, text, o.get("unit"), o.get("o2_device"),
                                    o.get("method"), o.get("comparator")))
        obs = tuple(read)
    treatments = None
    if "treatments" in d:
        treatments = tuple(
            Treatment(t["type"], t.get("every_hours"),
                      _time(t.get("start"), f"$.treatments[{i}].start", errors, seen), t.get("start"),
                      _time(t.get("end"), f"$.treatments[{i}].end", errors, seen))
            for i, t in enumerate(d["treatments"]))
    diagnoses = None
    if "diagnoses" in d:
        diagnoses = tuple(_diagnosis(x) for x in d["diagnoses"])
    procedures = None
    if "procedures" in d:
        procedures = tuple(
            Procedure(_code(p["code"], p.get("system")), p.get("system"), p.get("status", "planned"),
                      _time(p.get("time"), f"$.procedures[{i}].time", errors, seen), p.get("time"),
                      p.get("anesthesia"), p.get("hospital_only"), p.get("display"))
            for i, p in enumerate(d["procedures"]))
    function = None
    if "function" in d:
        f = d["function"]
        function = Function(
            tuple(f["therapy_disciplines"]) if "therapy_disciplines" in f else None,
            f.get("therapy_hours_per_day"), f.get("therapy_days_per_week"), f.get("expected_to_benefit"),
            f.get("physician_visits_per_week"), f.get("homebound"), f.get("skilled_need"),
            _date(f.get("face_to_face_date"), "$.function.face_to_face_date", errors))
    plan = None
    if "discharge_plan" in d:
        p = d["discharge_plan"]
        plan = DischargePlan(p.get("requested_setting"), p.get("inpatient_midnights"),
                             _date(p.get("planned_date"), "$.discharge_plan.planned_date", errors))
    for name, later, earlier in (("order_time", encounter.order_time, encounter.arrival_time),
                                 ("review_time", encounter.review_time, encounter.arrival_time),
                                 ("discharge_time", encounter.discharge_time, encounter.arrival_time)):
        if later is not None and earlier is not None and later < earlier:
            errors.append(TimeOrderError(f"{name} is before arrival_time", path=f"$.encounter.{name}"))
    pat, cov = d["patient"], d.get("coverage") or {}
    return Admission(
        id=d["id"], review_type=ReviewType(d.get("review_type", "admission")),
        patient=Patient(pat.get("age"), pat.get("sex")),
        coverage=Coverage(cov.get("line_of_business"), cov.get("plan")),
        encounter=encounter, diagnoses=diagnoses, procedures=procedures, observations=obs,
        treatments=treatments, findings=dict(d["findings"]) if "findings" in d else None,
        function=function, discharge_plan=plan, incomplete=_incomplete(d), complete=frozenset(d.get("complete", ())),
    )
