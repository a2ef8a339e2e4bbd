"""Facts: the flat ``{name: value}`` view of an admission that rules test, defined by ``rules/facts.yaml``.

A fact the record cannot give is absent (unknown), never false or zero. Each fact may carry the time of the
observation or treatment it comes from, shown as evidence in the decision.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from ur_engine import context
from ur_engine.conditions import Expr, Scalar, evaluate, leaves
from ur_engine.errors import (
    FindingError,
    RecordError,
    RecordErrors,
    UnitError,
    did_you_mean,
)
from ur_engine.record import Admission, DataNotice, Observation, Procedure
from ur_engine.terminology.valuesets import Valueset

OBSERVATION_STATS = ("min", "max", "first", "last", "count")

# A statistic known only to lie in an interval: (lo, lo open, hi, hi open, the observation that gives it).
_Span = tuple[float, bool, float, bool, Observation]


@dataclass(frozen=True)
class FactInfo:
    """What a rule may know of a fact: its type, text and unit."""

    name: str
    type: str  # number | string | boolean
    kind: str  # observation | treatment | diagnosis | procedure | field | set | interval | finding
    text: str
    unit: str | None = None


@dataclass
class Facts:
    """Derived facts of one record: values (unknown facts absent), evidence times, and for a fact that only a
    bound gives (a laboratory's ``>15``), that bound as ``(comparator, value)`` for the evidence."""

    values: dict[str, Scalar] = field(default_factory=dict)
    times: dict[str, str] = field(default_factory=dict)
    bounds: dict[str, tuple[str, float]] = field(default_factory=dict)
    # What deriving found in the values themselves (a result its repeat contradicts), for the decision to show.
    notices: list[DataNotice] = field(default_factory=list)


@dataclass(frozen=True)
class _Plan:
    """What ``derive`` computes for one set of needed facts: see FactDictionary._plan."""

    families: frozenset[str] | None  # fact families needed (dx, treatment…); None: all
    obs_by_code: dict[str, tuple[ObservationDef, ...]]  # LOINC code -> observation definitions needed
    observations: tuple[tuple[str, ...], ...]  # (name, min, max, first, last, count fact names)
    fields: tuple[tuple[str, tuple[str, ...]], ...]  # (fact, path split at dots)
    intervals: tuple[tuple[str, dict[str, Any]], ...]  # (fact, spec)
    findings: tuple[tuple[str, str, bool], ...]  # (key in the record, fact, boolean?)
    scores: tuple[tuple[str, str, str, tuple[tuple[float, Expr], ...]], ...]  # (fact, lo, hi fact, components)
    sets: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()  # (name, path split at dots, members)
    perioperative: tuple[tuple[str, dict[str, Any]], ...] = ()  # (fact, spec)
    inferred: tuple[tuple[str, str, str], ...] = ()  # (key in the record, fact, valueset) of findings diagnoses give


@dataclass(frozen=True)
class ObservationDef:
    """One way a LOINC code gives an observation fact: its canonical unit, the other units it converts, the
    conditions on the observation (``where``), and the range outside which a value cannot be a measurement."""

    name: str
    text: str
    unit: str
    convert: dict[str, tuple[float, float]]
    where: dict[str, tuple[object, ...]]
    plausible: tuple[float | None, float | None] = (None, None)

    def to_unit(self, value: float, unit: str | None) -> float:
        """``value`` in the canonical unit (the unit must be canonical, absent, or one of ``convert``)."""
        if unit is None or unit == self.unit:
            return value
        scale, offset = self.convert[unit]
        return round(value * scale + offset, 4)

    def plausible_value(self, value: float) -> bool:
        low, high = self.plausible
        return (low is None or value >= low) and (high is None or value <= high)


_DAY = timedelta(hours=24)
# The day-of-care window of a library whose facts.yaml names none: the day that ends at the review time.
DAY_OF_CARE_WINDOW = {"anchor": "day_start", "start_hours": 0, "end_hours": 24}
# (code, unit) answers of ``accepts`` kept at most, then forgotten at once: both come from the input (any code an
# extract sends, any unit text), so the pairs a long batch meets do not end.
ACCEPTS_KEPT = 4096


def _day(x: date) -> date:
    return x.date() if isinstance(x, datetime) else x


def _extreme(spans: list[_Span], pick: Callable[[Iterable[float]], float]) -> _Span:
    """The interval of min or max over results each known to lie in (lo, hi), with whether each end is open."""
    lo, hi = pick(sp[0] for sp in spans), pick(sp[2] for sp in spans)
    at_lo = [sp for sp in spans if sp[0] == lo]
    at_hi = [sp for sp in spans if sp[2] == hi]
    if pick is max:  # max > lo once one result is surely above it; max < hi only if all that reach hi stop short
        lo_open, hi_open = any(sp[1] for sp in at_lo), all(sp[3] for sp in at_hi)
    else:
        lo_open, hi_open = all(sp[1] for sp in at_lo), any(sp[3] for sp in at_hi)
    witness = (at_hi if pick is max else at_lo)[0][4]
    return lo, lo_open, hi, hi_open, witness


def _representative(lo: float, lo_open: bool, hi: float, hi_open: bool, thresholds: tuple[float, ...]) -> float | None:
    """A value that every threshold judges as it judges the whole interval, or None when some threshold falls
    inside it (the rules would judge its values differently: unknown)."""
    if lo == hi:
        return lo
    for t in thresholds:
        if (lo < t or (lo == t and not lo_open)) and (t < hi or (t == hi and not hi_open)):
            return None
    if not lo_open and lo != -math.inf:
        return lo
    if not hi_open and hi != math.inf:
        return hi
    if lo == -math.inf:
        return hi - 1
    if hi == math.inf:
        return lo + 1
    return (lo + hi) / 2


class FactDictionary:
    """The fact catalogue of a rule library and the derivation of facts from a record."""

    def __init__(self, spec: Mapping[str, Any], valuesets: dict[str, Valueset]):
        self.spec = spec
        self.library: str = spec.get("library", "ur-engine rules")
        self.version: str = spec.get("version", "0.0.0")
        self.windows: dict[str, dict[str, Any]] = {"day_of_care": DAY_OF_CARE_WINDOW, **spec["windows"]}
        self.valuesets = valuesets
        self.catalog: dict[str, FactInfo] = {}
        self._obs_by_code: dict[str, list[ObservationDef]] = {}
        for name, o in spec.get("observations", {}).items():
            plausible = tuple(o.get("plausible", (None, None)))
            ob = ObservationDef(name, o["text"], o["unit"],
                                {u: tuple(sv) for u, sv in o.get("convert", {}).items()},
                                {k: tuple(v) for k, v in o.get("where", {}).items()}, plausible)
            for code in o["codes"]:
                if isinstance(code, dict):  # a code read only under its own conditions (a specimen, a method)
                    where = {**ob.where, **{k: tuple(v) for k, v in code.get("where", {}).items()}}
                    self._obs_by_code.setdefault(code["code"], []).append(
                        ObservationDef(name, ob.text, ob.unit, ob.convert, where, plausible))
                else:
                    self._obs_by_code.setdefault(code, []).append(ob)
            for stat in OBSERVATION_STATS:
                unit = None if stat == "count" else o["unit"]
                self._add(f"{name}.{stat}", "number", "observation", f"{o['text']} ({stat})", unit)
        # heart_rate.min … .last -> the plausible range a threshold on it must also lie in (not .count)
        self._plausible: dict[str, tuple[float | None, float | None]] = {
            f"{name}.{stat}": tuple(o["plausible"]) for name, o in spec.get("observations", {}).items()
            if "plausible" in o for stat in OBSERVATION_STATS if stat != "count"}
        # observation name -> the time within which a later result verifies an earlier one (see _disputes)
        self._repeats: dict[str, timedelta] = {name: timedelta(hours=o["repeat_within_hours"])
                                               for name, o in spec.get("observations", {}).items()
                                               if "repeat_within_hours" in o}
        self._only_higher = {name for name, o in spec.get("observations", {}).items()
                             if o.get("repeat_disputes") == "higher"}
        self._obs_names = tuple(dict.fromkeys(ob.name for defs in self._obs_by_code.values() for ob in defs))
        # observation name -> the codes it is read from: _disputes looks at those results only
        self._codes_of = {name: frozenset(code for code, defs in self._obs_by_code.items()
                                          if any(ob.name == name for ob in defs)) for name in self._repeats}
        # Units every definition of a code accepts: ``check`` looks further only at a unit outside this set.
        self._units_ok = {code: frozenset.intersection(*(frozenset((ob.unit, *ob.convert)) for ob in defs))
                          for code, defs in self._obs_by_code.items()}
        # Windows as (anchor, start, end offsets): the offsets are made once, not for every record.
        self._windows: dict[str, tuple[str, timedelta, timedelta]] = {
            t: (w["anchor"], timedelta(hours=w["start_hours"]), timedelta(hours=w["end_hours"]))
            for t, w in self.windows.items()}
        self._plans: dict[frozenset[str] | None, _Plan] = {}  # needed facts -> what to derive for them (see _plan)
        self.treatments: dict[str, frozenset[str]] = {
            name: frozenset(types) for name, types in spec.get("treatments", {}).items()}
        self._treatment_facts: dict[str, list[str]] = {}  # treatment type -> facts it makes true
        for name, types in self.treatments.items():
            for t in types:
                self._treatment_facts.setdefault(t, []).append(f"treatment.{name}")
        for name in self.treatments:
            self._add(f"treatment.{name}", "boolean", "treatment", f"Treatment: {name.replace('_', ' ')}")
        self._no_treatment = {f"treatment.{name}": False for name in self.treatments}
        self.diagnoses: dict[str, dict[str, Any]] = spec.get("diagnoses", {})
        for name, d in self.diagnoses.items():
            self._add(f"dx.{name}", "boolean", "diagnosis", d.get("text", f"Diagnosis in {d['valueset']}"))
        self.procedures: dict[str, dict[str, Any]] = spec.get("procedures", {})
        for name, p in self.procedures.items():
            self._add(f"procedure.{name}", "boolean", "procedure", p["text"])
        # A list field read as facts: NAME.count, and NAME.<member> true or false (a list given without it).
        self.sets: dict[str, dict[str, Any]] = spec.get("sets", {})
        for name, s in self.sets.items():
            self._add(f"{name}.count", "number", "set", f"{s['text']}: how many")
            for member in s["members"]:
                self._add(f"{name}.{member}", "boolean", "set", f"{s['text']}: {member.replace('_', ' ')}")
        self.fields: dict[str, dict[str, Any]] = spec.get("fields", {})
        for name, f in self.fields.items():
            self._add(name, f["type"], "field", f.get("text", f["path"]))
        self.intervals: dict[str, dict[str, Any]] = spec.get("intervals", {})
        for name, i in self.intervals.items():
            self._add(name, "number", "interval", i.get("text", name), i["count"])
        # Treatment episodes read against the record's surgery: perioperative.NAME, true when every episode in the
        # window started in the perioperative window of a surgical procedure and lasted under the hours given.
        self.perioperative: dict[str, dict[str, Any]] = spec.get("perioperative", {})
        for name, p in self.perioperative.items():
            self._add(f"perioperative.{name}", "boolean", "perioperative", p["text"])
        self.findings: dict[str, dict[str, Any]] = spec.get("findings", {})
        for name, f in self.findings.items():
            self._add(f"finding.{name}", f["type"], "finding", f["text"], f.get("unit"))
        for name, sc in spec.get("scores", {}).items():
            self._add(f"score.{name}", "number", "score", sc["text"], "points")
            # Bounds a partly known score lies between; rules test the score, the engine its bounds.
            self._add(f"score.{name}.lo", "number", "score bound", f"{sc['text']}: points surely scored", "points")
            self._add(f"score.{name}.hi", "number", "score bound", f"{sc['text']}: most points possible", "points")
        # score fact -> ((points, condition), ...), set by the library loader
        self.scores: dict[str, tuple[tuple[float, Expr], ...]] = {}
        self.thresholds: dict[str, tuple[float, ...]] = {}  # fact -> the numbers rules compare it with
        self._inputs: dict[str, tuple[str, ...]] = {}  # see inputs(); filled once scores are set
        # (code, unit) -> what ``accepts`` answers: worked out once, asked for every observation of a batch
        self._accepts: dict[tuple[str, str | None], tuple[float, float, float, float] | None] = {}

    def set_thresholds(self, conditions: Iterable[Expr]) -> None:
        """Remember the numbers each fact is compared with, so that a fact only a bound gives can be decided."""
        found: dict[str, set[float]] = {}
        for condition in conditions:
            for leaf in leaves(condition):
                values = leaf.value if isinstance(leaf.value, tuple) else (leaf.value,)
                found.setdefault(leaf.fact, set()).update(
                    float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool))
        self.thresholds = {f: tuple(sorted(v)) for f, v in found.items()}

    def accepts(self, code: str, unit: str | None) -> tuple[float, float, float, float] | None:
        """(lowest, highest, scale, offset) when the facts read ``code`` in ``unit`` as it is: the value, times scale
        plus offset, must lie between lowest and highest (the plausible range of the fact's unit). None when the
        code or unit needs more than that (no fact reads the code, or the unit must be converted first)."""
        key = (code, unit)
        found = self._accepts.get(key)
        if found is not None or key in self._accepts:
            return found
        defs = self._obs_by_code.get(code)
        ob = defs[0] if defs else None
        found = None
        if ob is not None and (unit is None or unit == ob.unit or unit in ob.convert):
            scale, offset = ob.convert[unit] if unit is not None and unit != ob.unit else (1.0, 0.0)
            low, high = ob.plausible
            found = (-math.inf if low is None else low, math.inf if high is None else high, scale, offset)
        if len(self._accepts) >= ACCEPTS_KEPT:
            self._accepts.clear()
        self._accepts[key] = found
        return found

    def plausible(self, name: str) -> tuple[float | None, float | None] | None:
        """The plausible range of an observation statistic (``heart_rate.max``) in its unit; None for other facts."""
        return self._plausible.get(name)

    def definitions(self, code: str) -> Sequence[ObservationDef]:
        """How the facts read an observation under LOINC ``code``; empty when no fact reads it."""
        return self._obs_by_code.get(code, ())

    def _add(self, name: str, type_: str, kind: str, text: str, unit: str | None = None) -> None:
        self.catalog[name] = FactInfo(name, type_, kind, text, unit)

    # --- derivation -------------------------------------------------------------------------------------

    def window(self, adm: Admission) -> tuple[datetime, datetime, datetime]:
        """(anchor, start, end) of the window that counts for this review type."""
        kind, start, end = self._windows[adm.review_type]
        anchor = adm.encounter.arrival_time
        if kind != "arrival" and adm.encounter.review_time is not None:
            anchor = adm.encounter.review_time
            if kind == "day_start":  # the day of care that ends at the review time: procedures "that day" too
                anchor -= _DAY
        return anchor, anchor + start, anchor + end

    def check(self, adm: Admission) -> None:
        """Raise RecordErrors for what the record says that the fact dictionary cannot read (units, findings)."""
        errors: list[RecordError] = []
        units_ok = self._units_ok
        for o in adm.observations or ():
            if o.unit is None or o.unit in units_ok.get(o.code, ()):
                continue
            for ob in self._obs_by_code.get(o.code, ()):
                if o.unit != ob.unit and o.unit not in ob.convert:
                    accepted = [ob.unit, *ob.convert]
                    errors.append(UnitError(
                        f"unit '{o.unit}' is not accepted for {ob.name} (LOINC {o.code}); use one of: "
                        + ", ".join(accepted), path=f"$.observations[{o.index}].unit",
                        suggestion=did_you_mean(o.unit, accepted)))
                    break
        for key, value in (adm.findings or {}).items():
            spec = self.findings.get(key)
            if spec is None:
                errors.append(FindingError(f"unknown finding '{key}'", path=f"$.findings.{key}",
                                          suggestion=did_you_mean(key, self.findings)))
            elif (spec["type"] == "boolean") != isinstance(value, bool) or isinstance(value, str):
                errors.append(FindingError(f"finding '{key}' must be a {spec['type']}",
                                          path=f"$.findings.{key}"))
        if errors:
            raise RecordErrors(errors)

    def components(self, name: str) -> set[str]:
        """The facts a score (or one of its bounds) is computed from; empty for other facts."""
        base = name[:-3] if name.endswith((".lo", ".hi")) else name
        return {f for _, condition in self.scores.get(base, ()) for f in condition.facts()}

    def inputs(self, name: str) -> tuple[str, ...]:
        """The facts a record must give for ``name``: its sorted components for a score, else itself; cached."""
        found = self._inputs.get(name)
        if found is None:
            found = self._inputs[name] = tuple(sorted(self.components(name) or {name}))
        return found

    def closure(self, names: Collection[str]) -> frozenset[str]:
        """``names`` plus the facts the scores among them are computed from."""
        out = set(names)
        for name in names:
            out |= self.components(name)
        return frozenset(out)

    def derive(self, adm: Admission, needed: frozenset[str] | None = None) -> Facts:
        """The facts the record gives (only ``needed`` ones, and those a family computes together, when given).

        Call ``check`` first: derive assumes units and findings are valid.
        """
        out = Facts()
        values, times = out.values, out.times
        anchor, start, end = self.window(adm)
        plan = self._plan(needed)
        families = plan.families
        if adm.observations is not None and plan.observations:
            self._observations(adm.observations, start, end, values, times, out.bounds,
                               "observations" in adm.incomplete, plan.obs_by_code, plan.observations)
            if self._repeats:
                self._disputes(adm.observations, start, end, plan.obs_by_code, values, times, out.notices)
        if adm.treatments is not None and (families is None or "treatment" in families):
            if "treatments" not in adm.incomplete:
                values.update(self._no_treatment)
            for t in adm.treatments:
                if (t.start is None or t.start <= end) and (t.end is None or t.end >= start):
                    for fact in self._treatment_facts.get(t.type, ()):
                        if not values.get(fact):  # the first treatment that counts is the evidence
                            values[fact] = True
                            if t.start_text:
                                times[fact] = t.start_text
        on = adm.encounter.arrival_time.date()
        if adm.diagnoses is not None and (families is None or "dx" in families):
            for name, d in self.diagnoses.items():
                vs = self.valuesets[d["valueset"]]
                hit = any(vs.contains(x.code, on) for x in adm.diagnoses if x.principal or not d.get("principal"))
                if hit or "diagnoses" not in adm.incomplete:
                    values[f"dx.{name}"] = hit
        if adm.procedures is not None and (families is None or "procedure" in families):
            for name, p in self.procedures.items():
                matches = [(x, self._procedure_matches(x, p, anchor, on)) for x in adm.procedures]
                proc = next((x for x, m in matches if m), None)
                if proc is None and ("procedures" in adm.incomplete or any(m is None for _, m in matches)):
                    continue  # a procedure that may be the one asked about (its time or anesthesia not given)
                values[f"procedure.{name}"] = proc is not None
                if proc is not None and proc.time_text:
                    times[f"procedure.{name}"] = proc.time_text
        for name, path in plan.fields:
            node: Any = adm  # the record, then each attribute along the path
            for part in path:
                node = getattr(node, part, None)
                if node is None:
                    break
            if node is not None:
                values[name] = node
        for name, path, members in plan.sets:
            listed: Any = adm
            for part in path:
                listed = getattr(listed, part, None)
                if listed is None:
                    break
            if listed is not None:  # a list the record gives: what it leaves out is not there
                members_given = set(listed)
                values[f"{name}.count"] = len(members_given)
                for member in members:
                    values[f"{name}.{member}"] = member in members_given
        for name, spec in plan.intervals:
            value = self._interval(adm, spec)
            if value is not None:
                values[name] = value
        for name, spec in plan.perioperative:
            found, when = context.perioperative(adm, spec, start, end)
            if found is not None:
                values[name] = found
                if when:
                    times[name] = when
        if adm.findings is not None and plan.findings:
            given, complete = adm.findings, "findings" in adm.complete
            for key, fact, boolean in plan.findings:
                if key in given:
                    values[fact] = given[key]
                elif boolean and complete:
                    values[fact] = False
        if plan.inferred and adm.diagnoses:
            # A coded diagnosis documents a finding the record does not state (a stated value wins).
            for key, fact, vs_name in plan.inferred:
                if (adm.findings is None or key not in adm.findings) and any(
                        self.valuesets[vs_name].contains(x.code, on) for x in adm.diagnoses):
                    values[fact] = True
        for name, lo_name, hi_name, components in plan.scores:
            lo: float = 0
            hi: float = 0
            for points, condition in components:
                met = evaluate(condition, values)
                if met is None:  # unknown: the score may or may not have these points
                    lo, hi = lo + min(points, 0), hi + max(points, 0)
                elif met:
                    lo, hi = lo + points, hi + points
            values[lo_name], values[hi_name] = lo, hi
            if lo == hi:
                values[name] = lo
        return out

    def _plan(self, needed: frozenset[str] | None) -> _Plan:
        """What ``derive`` computes for a set of needed facts (None: all); cached, as batches repeat a few sets.

        Observations, treatments, diagnoses and procedures are derived by family (one pass gives them all);
        fields, intervals, findings and scores only when needed.
        """
        plan = self._plans.get(needed)
        if plan is None:
            families = None if needed is None else frozenset(n.split(".")[0] for n in needed)
            keep = (lambda name: True) if families is None else families.__contains__
            wanted = (lambda name: True) if needed is None else needed.__contains__
            by_code = {code: tuple(ob for ob in defs if keep(ob.name)) for code, defs in self._obs_by_code.items()}
            plan = self._plans[needed] = _Plan(
                families, {c: d for c, d in by_code.items() if d},
                tuple((n, *(f"{n}.{stat}" for stat in OBSERVATION_STATS)) for n in self._obs_names if keep(n)),
                tuple((name, tuple(f["path"].split("."))) for name, f in self.fields.items() if wanted(name)),
                tuple((name, spec) for name, spec in self.intervals.items() if wanted(name)),
                tuple((name, f"finding.{name}", spec["type"] == "boolean") for name, spec in self.findings.items()
                      if wanted(f"finding.{name}")),
                tuple((name, f"{name}.lo", f"{name}.hi", components) for name, components in self.scores.items()
                      if wanted(name) or wanted(f"{name}.lo")),
                tuple((name, tuple(s["path"].split(".")), tuple(s["members"])) for name, s in self.sets.items()
                      if wanted(f"{name}.count") or any(wanted(f"{name}.{m}") for m in s["members"])),
                tuple((f"perioperative.{name}", spec) for name, spec in self.perioperative.items()
                      if wanted(f"perioperative.{name}")),
                tuple((name, f"finding.{name}", spec["from_diagnoses"]) for name, spec in self.findings.items()
                      if "from_diagnoses" in spec and wanted(f"finding.{name}")))
        return plan

    def _observations(self, observed: tuple[Observation, ...], start: datetime, end: datetime,
                      values: dict[str, Scalar], times: dict[str, str], bounds: dict[str, tuple[str, float]],
                      partial: bool, obs_by_code: dict[str, tuple[ObservationDef, ...]],
                      observations: tuple[tuple[str, ...], ...]) -> None:
        # name -> [min, min_obs, max, max_obs, first, first_obs, last, last_obs, count], updated in place: numbers
        # and observations side by side in one list, which a type checker can only see as a list of Any
        stats: dict[str, list[Any]] = {}
        # name -> [(value, comparator, observation)] of results given as bounds
        bounded: dict[str, list[tuple[float, str, Observation]]] = {}
        for o in observed:
            defs = obs_by_code.get(o.code)
            if not defs or not (start <= o.time <= end):
                continue
            for ob in defs:
                if ob.where and not all(getattr(o, k) in allowed for k, allowed in ob.where.items()):
                    continue
                # Most results come in the fact's own unit: no conversion to call for
                value = o.value if o.unit is None or o.unit == ob.unit else ob.to_unit(o.value, o.unit)
                if o.comparator is not None:
                    bounded.setdefault(ob.name, []).append((value, o.comparator, o))
                    continue
                s = stats.get(ob.name)
                if s is None:  # [min, min_obs, max, max_obs, first, first_obs, last, last_obs, count]
                    stats[ob.name] = [value, o, value, o, value, o, value, o, 1]
                    continue
                if value < s[0]:
                    s[0], s[1] = value, o
                if value > s[2]:
                    s[2], s[3] = value, o
                if o.time < s[5].time:
                    s[4], s[5] = value, o
                if o.time >= s[7].time:
                    s[6], s[7] = value, o
                s[8] += 1
        for name, low, high, first, last, count in observations:
            s = stats.get(name)
            if name in bounded:
                self._bounded(name, s, bounded[name], values, times, bounds)
                continue
            if s is None:
                if not partial:
                    values[count] = 0
                continue
            values[low], times[low] = s[0], s[1].time_text
            values[high], times[high] = s[2], s[3].time_text
            values[first], times[first] = s[4], s[5].time_text
            values[last], times[last] = s[6], s[7].time_text
            values[count] = s[8]

    def _disputes(self, observed: tuple[Observation, ...], start: datetime, end: datetime,
                  obs_by_code: dict[str, tuple[ObservationDef, ...]], values: dict[str, Scalar],
                  times: dict[str, str], notices: list[DataNotice]) -> None:
        """A result that its repeat contradicts (context.contradicted) decides nothing: a statistic it alone puts on
        the other side of a threshold becomes unknown, and a notice names the result and its repeat. The repeat may
        come after the window: it still verifies a result inside it."""
        for name, within in self._repeats.items():
            codes, until = self._codes_of[name], end + within
            series = [(ob.to_unit(o.value, o.unit), o) for o in observed
                      if o.code in codes and o.comparator is None and start <= o.time <= until
                      for ob in obs_by_code.get(o.code, ()) if ob.name == name
                      and (not ob.where or all(getattr(o, k) in allowed for k, allowed in ob.where.items()))]
            if len(series) < 2:
                continue
            info = self.catalog[f"{name}.max"]
            unsettled, found = context.disputed(series, end, within, name, values, self.thresholds,
                                                name in self._only_higher)
            for fact in unsettled:
                del values[fact]
                times.pop(fact, None)
            notices += context.dispute_notices(found, unsettled, info.text.rsplit(" (", 1)[0], info.unit or "",
                                               within)

    def _bounded(self, name: str, s: list[Any] | None, given: list[tuple[float, str, Observation]],
                 values: dict[str, Scalar], times: dict[str, str], bounds: dict[str, tuple[str, float]]) -> None:
        """Statistics of an observation some of whose results are bounds (``>15``): each statistic is an interval;
        it gets a value only when every number the rules compare it with judges the whole interval alike."""
        # The exact results' min, max, first and last stand for them all: (lo, lo open, hi, hi open, observation).
        spans: list[_Span] = [(s[i], False, s[i], False, s[i + 1]) for i in (0, 2, 4, 6)] if s else []
        for bound, comparator, o in given:
            if comparator.startswith(">"):
                spans.append((bound, comparator == ">", math.inf, True, o))
            else:
                spans.append((-math.inf, True, bound, comparator == "<", o))
        ordered = sorted(spans, key=lambda sp: sp[4].time)
        stats = {
            "min": _extreme(spans, min), "max": _extreme(spans, max),
            "first": ordered[0][:4] + (ordered[0][4],), "last": ordered[-1][:4] + (ordered[-1][4],),
        }
        values[f"{name}.count"] = (s[8] if s else 0) + len(given)
        for stat, (lo, lo_open, hi, hi_open, o) in stats.items():
            fact = f"{name}.{stat}"
            value = _representative(lo, lo_open, hi, hi_open, self.thresholds.get(fact, ()))
            if value is None:
                continue
            values[fact], times[fact] = value, o.time_text
            if lo != hi:
                bounds[fact] = (">" if lo_open else ">=", lo) if hi == math.inf else \
                    ("<" if hi_open else "<=", hi) if lo == -math.inf else (">=", lo)

    def _procedure_matches(self, proc: Procedure, spec: dict[str, Any], anchor: datetime, on: date) -> bool | None:
        """Is ``proc`` a procedure the fact asks about: yes, no, or None when what would tell (its time, its
        anesthesia, whether only a hospital can do it) is not given."""
        if "status" in spec and proc.status not in spec["status"]:
            return False
        if "valueset" in spec:
            day = proc.time.date() if proc.time is not None else on
            if not self.valuesets[spec["valueset"]].contains(proc.code, day):
                return False
        found: bool | None = True
        if "within_hours" in spec:
            if proc.time is None:
                found = None
            elif not (anchor <= proc.time <= anchor + timedelta(hours=spec["within_hours"])):
                return False
        if "anesthesia" in spec:
            if proc.anesthesia is None:
                found = None
            elif proc.anesthesia not in spec["anesthesia"]:
                return False
        if "hospital_only" in spec:
            if proc.hospital_only is None:
                found = None
            elif proc.hospital_only is not spec["hospital_only"]:
                return False
        return found

    @staticmethod
    def _interval(adm: Admission, spec: dict[str, Any]) -> float | None:
        begin = adm.lookup(spec["from"])
        end = next((t for t in (adm.lookup(p) for p in spec["to"]) if t is not None), None)
        if begin is None or end is None:
            return None
        count = spec["count"]
        if isinstance(begin, datetime) and isinstance(end, datetime):
            if count == "midnights":
                # Midnights are counted on the clock of the hospital: the offset of the starting time.
                return max(0, (end.astimezone(begin.tzinfo).date() - begin.date()).days)
            seconds = (end - begin).total_seconds()
            return round(seconds / (3600 if count == "hours" else 86400), 2)
        # A plain date (a planned date, a face-to-face date) has no time: count whole days between dates.
        days = (_day(end) - _day(begin)).days
        return days * 24 if count == "hours" else max(0, days) if count == "midnights" else days
