"""Raw admission records as hospitals send them → a validated ``Admission``, losing no stay to one bad value.

Every edge (``ur review``, ``ur batch``, the API, Spark, FHIR) hands its records to ``admit``. What cannot be read
as the rules read it is set aside with a ``DataNotice`` (what, where, why) and counts as unknown; what needs a
code map or a unit conversion is read through one, the original kept in the notice:

- diagnoses coded in ICD-9-CM (declared, or all-digit codes, or V/E codes of a stay before October 2015) are
  read as ICD-10-CM through CMS's GEMs;
- units are read as UCUM through the aliases real systems send (``K/uL``, ``mm Hg``, ``bpm``, ``units`` for a pH)
  and converted to the fact's unit through UCUM; a blank unit is the fact's unit, or the one reading that is
  plausible (a blank-unit temperature of 37.2 is Celsius);
- a value written with a comparator (``">150"``) is kept as a bound (``comparator``), never as exactly 150;
- a value outside the fact's plausible range, in a unit that cannot be converted, without a value or at an
  impossible time is set aside; ``"end": null`` is a treatment still running;
- a section emptied because all its entries were set aside, or sent empty without being declared ``complete``,
  is unknown, never "none given".

A record is an error only when it has no identity, no arrival time or no coverage to judge it by. A record that
leaves out the patient's age or the requested level is reviewed and pends, naming them (``decision.BASICS``); one
that gives them wrong (an age of -3, a level of ``inpatiant``) is an error naming the field, to be corrected.
``strict=True`` keeps the reject-on-any-error behaviour for submitters who want it.
"""

from __future__ import annotations

import copy
import math
import re
from collections import Counter
from datetime import date, datetime
from typing import Any

from ur_engine import record as records
from ur_engine import schemas
from ur_engine.decision import Decision
from ur_engine.engine import Engine
from ur_engine.errors import RecordError, RecordErrors, RecordSchemaError
from ur_engine.facts import FactDictionary, ObservationDef
from ur_engine.record import Admission, DataNotice
from ur_engine.terminology import icd9
from ur_engine.terminology.units import factor, ucum

SECTIONS = ("diagnoses", "procedures", "observations", "treatments")
# Without these there is nothing to judge or nothing to judge it by: the record is an error, not a notice.
ESSENTIAL = {("id",), ("patient",), ("patient", "age"), ("coverage",), ("coverage", "line_of_business"),
             ("encounter",), ("encounter", "arrival_time"), ("encounter", "requested_level"),
             ("discharge_plan", "requested_setting"), ("review_type",)}
LOINC = re.compile(r"^[0-9]{1,7}-[0-9]$")
COMPARATOR = re.compile(r"^\s*(<=|>=|<|>|=)?\s*([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)\s*$")
SYSTEM_NAMES = {"icd10cm": "ICD-10-CM", "icd9cm": "ICD-9-CM", "snomed": "SNOMED CT", "loinc": "LOINC"}


def review(engine: Engine, raw: Any, *, strict: bool = False, as_of: date | None = None) -> Decision:
    """The one call an edge makes: admit a raw record (see ``admit``) and review it with ``engine``."""
    return engine.review(admit(raw, engine.library.facts, strict=strict), as_of=as_of)


def admit(raw: Any, facts: FactDictionary, *, strict: bool = False) -> Admission:
    """The typed record of ``raw``; raises RecordErrors only for what leaves nothing to judge (or, strict, for
    any invalid field)."""
    if strict:
        adm = records.parse(raw)
        facts.check(adm)
        return adm
    if not isinstance(raw, dict):
        raise RecordErrors([RecordSchemaError("a record must be a JSON object", path="$")])
    intake = _Intake(facts)
    rec = intake.normalise(raw)
    adm = intake.validate(rec)
    adm.data_notices = tuple(intake.notices)
    return adm


class _Intake:
    def __init__(self, facts: FactDictionary) -> None:
        self.facts = facts
        self.notices: list[DataNotice] = []
        self.unread: Counter[tuple[str, str]] = Counter()  # (system, code) of observations no fact reads
        # time text -> its time when plausible, else None; the typed record reuses them rather than parse again
        self._times: dict[str, datetime | None] = {}

    def aside(self, what: str, where: str, why: str) -> None:
        self.notices.append(DataNotice(what, where, why))

    # --- before the schema: codes, units, values, times -----------------------------------------------------

    def normalise(self, raw: dict[str, Any]) -> dict[str, Any]:
        rec = {k: v for k, v in raw.items() if v is not None and k != "data_notices"}
        for given in raw.get("data_notices") or ():  # what a mapper upstream (FHIR) already set aside
            if isinstance(given, dict):
                self.notices.append(DataNotice(str(given.get("what", "")), str(given.get("where", "")),
                                               str(given.get("why", "")), str(given.get("kind", "set_aside"))))
        enc = rec.get("encounter")
        if isinstance(enc, dict):
            rec["encounter"] = enc = {k: v for k, v in enc.items() if v is not None}
        pat = rec.get("patient")
        if isinstance(pat, dict):
            rec["patient"] = pat = {k: v for k, v in pat.items() if v is not None}
            if "age" not in pat:
                self.aside("patient age", "$.patient.age", "not given: the review pends until it is known (the age "
                           "decides which criteria apply)")
        if isinstance(enc, dict) and "requested_level" not in enc and rec.get("review_type") != "discharge":
            self.aside("requested level of care", "$.encounter.requested_level", "not given: the review pends "
                       "until it is known")
        arrival = _when(enc.get("arrival_time")) if isinstance(enc, dict) else None
        if isinstance(enc, dict) and arrival is not None:
            if records.plausible_time(arrival):
                self._times[enc["arrival_time"]] = arrival
            self._encounter_times(enc, arrival)
        coded_on = _coded_on(enc, arrival)
        complete = set(rec.get("complete") or ()) if isinstance(rec.get("complete"), list) else set()
        for section in SECTIONS:
            items = rec.get(section)
            if not isinstance(items, list):
                continue
            kept = []
            unread_before = sum(self.unread.values())
            read = getattr(self, f"_{section}")
            ready = self._ready if section == "observations" else None
            for i, item in enumerate(items):
                if ready is not None and type(item) is dict and ready(item):
                    kept.append(item)
                    continue
                where = f"$.{section}[{i}]"
                if not isinstance(item, dict):
                    self.aside(f"{section[:-1]} {str(item)[:60]!r}", where, "an entry must be an object")
                    continue
                if None in item.values():  # "end": null is a treatment still running: no end, not a bad one
                    item = {k: v for k, v in item.items() if v is not None}
                fixed = read(item, where, coded_on)
                if fixed is not None:
                    kept.append(fixed)
            set_aside = len(items) - len(kept) - (sum(self.unread.values()) - unread_before)
            if set_aside:  # what was set aside may have been the very thing a rule asks about
                rec["incomplete"] = sorted({*(rec.get("incomplete") or ()), section})
            if kept or (not items and section in complete):
                rec[section] = kept
            elif items and not set_aside:
                # Every entry read, none under a code a fact reads (a height, a weight): the section still says
                # what was measured, so a heart rate it does not list was not measured.
                rec[section] = []
                rec["complete"] = sorted({*complete, section})
            else:  # nothing readable, or nothing sent: unknown, never "none given"
                del rec[section]
        for system in sorted({s for s, _ in self.unread}):
            codes = sorted((code, n) for (s, code), n in self.unread.items() if s == system)
            shown = ", ".join(f"{code} ×{n}" if n > 1 else code for code, n in codes[:12])
            self.notices.append(DataNotice(
                f"observations under {SYSTEM_NAMES.get(system, system)} {shown}" + (" …" if len(codes) > 12 else ""),
                "$.observations", "no fact of the rule library reads these codes", "unread", system,
                sum(n for _, n in codes)))
        if isinstance(rec.get("findings"), dict):
            self._findings(rec)
        return rec

    def _encounter_times(self, enc: dict[str, Any], arrival: datetime) -> None:
        for name in ("order_time", "review_time", "discharge_time"):
            text = enc.get(name)
            if text is None:
                continue
            when = self._time_of(text)
            if when is None:
                why = "not a date and time between 1900 and one year from today"
            elif when < arrival:
                why = "before arrival_time"
            else:
                continue
            del enc[name]
            self.aside(f"{name} {text!r}", f"$.encounter.{name}", why)

    def _diagnoses(self, item: dict[str, Any], where: str, coded_on: date | None) -> dict[str, Any] | None:
        code, system = item.get("code"), item.get("system")
        if not isinstance(code, str):
            self.aside(f"diagnosis {code!r}", where, "no code")
            return None
        if system == "icd9cm" or (system is None and icd9.looks_icd9(code, coded_on)):
            mapped = icd9.to_icd10(code)
            if mapped is None:
                self.notices.append(DataNotice(f"ICD-9-CM {code}", where,
                                               "the General Equivalence Mappings give no ICD-10-CM code", "unread",
                                               "icd9cm"))
                return None
            self.notices.append(DataNotice(f"ICD-9-CM {code} read as ICD-10-CM {mapped}", where,
                                           "coded in ICD-9-CM; mapped through CMS's GEMs", "mapped", "icd9cm"))
            return {**{k: v for k, v in item.items() if k != "system"}, "code": mapped, "system": "icd10cm"}
        return item

    def _procedures(self, item: dict[str, Any], where: str, coded_on: date | None) -> dict[str, Any] | None:
        if isinstance(item.get("code"), str):
            return item
        self.aside(f"procedure {str(item)[:80]}", where, "no code")
        return None

    def _treatments(self, item: dict[str, Any], where: str, coded_on: date | None) -> dict[str, Any] | None:
        for name in ("start", "end"):
            text = item.get(name)
            if text is None:
                continue
            if not self._good_time(text):
                self.aside(f"treatment {item.get('type')!r} {name} {text!r}", f"{where}.{name}",
                           "not a date and time between 1900 and one year from today")
                return None
        return item

    def _ready(self, item: dict[str, Any]) -> bool:
        """Most observations come as the facts read them: a number in an accepted unit, plausible, at a good time,
        with no null. Those are kept as they are, uncopied (the record is copied before anything in it is cut)."""
        code, value, unit, time = item.get("code"), item.get("value"), item.get("unit"), item.get("time")
        if type(code) is not str or type(time) is not str or not (unit is None or type(unit) is str):
            return False  # anything else (a list where a text belongs) takes the careful path
        fast = None if "system" in item else self.facts.accepts(code, unit)
        if fast is None or not (type(value) is int or type(value) is float):
            return False
        if not fast[0] <= value * fast[2] + fast[3] <= fast[1]:  # NaN and infinities fail this too
            return False
        return (self._times.get(time) is not None or self._good_time(time)) and None not in item.values()

    def _observations(self, item: dict[str, Any], where: str, coded_on: date | None) -> dict[str, Any] | None:
        code, system = item.get("code"), item.get("system", "loinc")
        defs = self.facts.definitions(code) if isinstance(code, str) and system == "loinc" else ()
        if not defs:
            known = isinstance(code, str) and system == "loinc" and LOINC.match(code)
            self.unread[("loinc" if known else str(system), str(code))] += 1
            return None
        item = {k: v for k, v in item.items() if k != "system"}
        label = f"{defs[0].text} (LOINC {code})"
        value = item.get("value")
        if isinstance(value, str):
            found = COMPARATOR.match(value)
            if found is None:
                self.aside(f"{label} {value!r}", f"{where}.value", "not a number")
                return None
            if found.group(1) and found.group(1) != "=":
                item["comparator"] = found.group(1)
            value = float(found.group(2))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.aside(f"{label} {value!r}", f"{where}.value", "no numeric value")
            return None
        time = item.get("time")
        if not self._good_time(time):
            self.aside(f"{label} {value:g}", f"{where}.time",
                       "no time" if time is None else f"time {time!r} is not between 1900 and one year from today")
            return None
        unit = self._unit(defs[0], value, item.get("unit"))
        if unit is None:
            self.aside(f"{label} {value:g} {item.get('unit')}", f"{where}.unit",
                       f"the unit cannot be read as {defs[0].unit}")
            return None
        reading, value = unit
        item["value"] = value
        if reading is None:
            item.pop("unit", None)
        else:
            item["unit"] = reading
        canonical = defs[0].to_unit(value, reading)
        if not defs[0].plausible_value(canonical):
            low, high = defs[0].plausible
            self.aside(f"{label} {_number(canonical)} {defs[0].unit}", f"{where}.value",
                       f"outside the plausible range {_number(low)}–{_number(high)} {defs[0].unit}")
            return None
        return item

    def _good_time(self, text: Any) -> bool:
        return self._time_of(text) is not None

    def _time_of(self, text: Any) -> datetime | None:
        """The time of a date and time with an offset between 1900 and a year from today, else None; read once per
        record (a record's entries share a few times), and handed to the typed record."""
        if not isinstance(text, str):
            return None
        if text not in self._times:
            when = _when(text)
            self._times[text] = when if when is not None and records.plausible_time(when) else None
        return self._times[text]

    def _unit(self, ob: ObservationDef, value: float, text: Any) -> tuple[str | None, float] | None:
        """(unit the facts accept — None for the canonical one — and the value in it), or None if unreadable."""
        if text is not None and not isinstance(text, str):
            return None
        reading = ucum(text, ob.unit)
        if reading is None:  # blank: the fact's unit, unless only another unit it accepts makes it plausible
            if ob.plausible_value(value) or not ob.convert:
                return None, value
            others = [u for u in ob.convert if ob.plausible_value(ob.to_unit(value, u))]
            return (others[0], value) if len(others) == 1 else (None, value)
        if reading == ob.unit or reading in ob.convert:
            return reading, value
        for target in (ob.unit, *ob.convert):
            f = factor(reading, target)
            if f is not None:
                return (target if target != ob.unit else None), round(value * f[0] + f[1], 6)
        return None

    def _findings(self, rec: dict[str, Any]) -> None:
        kept = {}
        for key, value in rec["findings"].items():
            spec = self.facts.findings.get(key)
            if spec is None:
                self.notices.append(DataNotice(f"finding {key!r}", f"$.findings.{key}",
                                               "no fact of the rule library reads this finding", "unread"))
            elif (spec["type"] == "boolean") != isinstance(value, bool) or isinstance(value, str):
                self.aside(f"finding {key} = {value!r}", f"$.findings.{key}", f"must be a {spec['type']}")
            else:
                kept[key] = value
        rec["findings"] = kept

    # --- the schema, and the typed record ------------------------------------------------------------------

    def validate(self, rec: dict[str, Any]) -> Admission:
        """Set aside what the schema or the record's own checks refuse, then build the typed record."""
        copied = False
        for _ in range(4):  # each round removes what the last found; nested errors surface one level at a time
            problems: list[RecordError]
            if not schemas.fast_validator("admission").is_valid(rec):
                problems = [RecordSchemaError(msg, path=schemas.json_path(path), suggestion=hint)
                            for path, msg, hint, _ in schemas.iter_explained("admission", rec)]
            else:
                try:
                    return records.parse(rec, checked=True, times=self._times)
                except RecordErrors as exc:
                    problems = exc.errors
            fatal = [e for e in problems if _essential(_path(e))]
            if fatal:
                raise RecordErrors(fatal)
            if not copied:  # entries still shared with the caller's record: never cut into those
                rec, copied = copy.deepcopy(rec), True
            for e in sorted(problems, key=lambda e: [str(x) for x in _path(e)], reverse=True):
                self._drop(rec, _path(e), e.message)
        return records.parse(rec)

    def _drop(self, rec: dict[str, Any], path: tuple[Any, ...], why: str) -> None:
        # An error inside an entry of a list sets the whole entry aside; elsewhere, the field itself.
        cut = next((i + 1 for i, p in enumerate(path) if isinstance(p, int)), len(path))
        target = path[:cut]
        parent: Any = rec
        for p in target[:-1]:
            try:
                parent = parent[p]
            except (KeyError, IndexError, TypeError):
                return
        last = target[-1] if target else None
        if isinstance(parent, list) and isinstance(last, int) and last < len(parent):
            value = parent.pop(last)
            if not parent and len(target) == 2 and target[0] in SECTIONS:
                del rec[target[0]]  # emptied: unknown
        elif isinstance(parent, dict) and last in parent:
            value = parent.pop(last)
        else:
            return
        self.aside(f"{str(value)[:80]}", schemas.json_path(target), why)


def _essential(path: tuple[Any, ...]) -> bool:
    return not path or path[:2] in ESSENTIAL or path[:1] in ESSENTIAL and len(path) == 1


def _path(e: RecordError) -> tuple[Any, ...]:
    parts = (e.path or "$").replace("[", ".").replace("]", "").split(".")[1:]
    return tuple(int(p) if p.isdigit() else p for p in parts if p)


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _coded_on(enc: Any, arrival: datetime | None) -> date | None:
    """The day a stay's codes belong to: its discharge, or its arrival while it has none."""
    if isinstance(enc, dict):
        end = _when(enc.get("discharge_time"))
        if end is not None:
            return end.date()
    return arrival.date() if arrival else None


def _number(x: float | None) -> str:
    return "…" if x is None else f"{x:g}"
