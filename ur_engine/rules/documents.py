"""The shapes of the library's YAML files once they pass their JSON Schema (``schemas/*.schema.json``).

A file is plain YAML data until its schema has checked it; from then on the loader reads it through these
types, key for key as the schema gives them, so a key read that the schema does not promise fails the type
check instead of a review. Conditions (``any``/``all``/``not``/``fact``) stay plain data: the loader checks
them itself, against the facts, with sharper messages than a schema gives. Only the loader reads these
shapes; what it builds from them (``library.RuleSet``, ``Criterion``, ``Applies``, ``Expectation``) is what
the rest of the engine sees.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict, final

# --- valuesets/*.yaml ------------------------------------------------------------------------------------

_CodeDates = TypedDict("_CodeDates", {"from": str, "to": str, "text": str, "system": str}, total=False)


class CodeDoc(_CodeDates):
    code: str | int


class _ValuesetRequired(TypedDict):
    valueset: str
    title: str
    source: str
    codes: list[CodeDoc]


class ValuesetDoc(_ValuesetRequired, total=False):
    match: str  # exact | prefix
    system: str  # the codes' system unless a code names its own (default icd10cm)


# --- facts.yaml (the loader checks its references; facts.FactDictionary still takes it as a dict) --------

class WindowDoc(TypedDict):
    anchor: str  # arrival | review | day_start
    start_hours: float
    end_hours: float


class WindowsDoc(TypedDict):
    admission: WindowDoc
    continued_stay: WindowDoc
    discharge: WindowDoc
    day_of_care: NotRequired[WindowDoc]


class WhereDoc(TypedDict, total=False):
    o2_device: list[str]
    method: list[str]


class _ObservationRequired(TypedDict):
    text: str
    codes: list[str]  # LOINC
    unit: str  # canonical UCUM unit


class ObservationDoc(_ObservationRequired, total=False):
    convert: dict[str, list[float]]  # another unit -> [scale, offset]
    where: WhereDoc
    source: str
    repeat_within_hours: float
    repeat_disputes: str  # higher | either: which earlier results a repeat may contradict


class _FindingRequired(TypedDict):
    type: str  # boolean | number
    text: str


class FindingDoc(_FindingRequired, total=False):
    unit: str
    from_diagnoses: str  # a valueset: a diagnosis in it documents the finding
    source: str


class _DiagnosisRequired(TypedDict):
    valueset: str


class DiagnosisDoc(_DiagnosisRequired, total=False):
    principal: bool
    text: str


class _ProcedureRequired(TypedDict):
    text: str


class ProcedureDoc(_ProcedureRequired, total=False):
    valueset: str
    status: list[str]
    within_hours: float
    anesthesia: list[str]
    hospital_only: bool


class _FieldRequired(TypedDict):
    path: str
    type: str  # number | string | boolean


class FieldDoc(_FieldRequired, total=False):
    text: str


_IntervalRequired = TypedDict("_IntervalRequired", {"count": str, "from": str, "to": list[str]})


class IntervalDoc(_IntervalRequired, total=False):
    text: str


class _ComponentRequired(TypedDict):
    points: float
    when: object  # a condition, checked by the loader


class ComponentDoc(_ComponentRequired, total=False):
    text: str


class ScoreDoc(TypedDict):
    text: str
    source: str
    components: list[ComponentDoc]


class _FactsRequired(TypedDict):
    windows: WindowsDoc


class _SetRequired(TypedDict):
    path: str
    members: list[str]
    text: str


class SetDoc(_SetRequired, total=False):
    source: str


class PerioperativeDoc(TypedDict):
    text: str
    source: NotRequired[str]
    treatments: list[str]
    status: list[str]
    anesthesia: list[str]
    start_hours_before: float
    start_hours_after: float
    under_hours: float


class FactsDoc(_FactsRequired, total=False):
    library: str
    version: str
    observations: dict[str, ObservationDoc]
    treatments: dict[str, list[str]]  # name -> treatment types
    findings: dict[str, FindingDoc]
    diagnoses: dict[str, DiagnosisDoc]
    procedures: dict[str, ProcedureDoc]
    fields: dict[str, FieldDoc]
    sets: dict[str, SetDoc]
    intervals: dict[str, IntervalDoc]
    scores: dict[str, ScoreDoc]
    perioperative: dict[str, PerioperativeDoc]


# --- rule files ------------------------------------------------------------------------------------------

class _CriterionRequired(TypedDict):
    id: str
    group: str
    text: str
    source: str


class CriterionDoc(_CriterionRequired, total=False):
    """A criterion's own keys; its condition's keys sit beside them in the same mapping."""

    note: str
    action: str  # support | pend | notify


@final  # so that ``"all" in node`` tells the two apart
class AnyGroups(TypedDict):
    any: list[GroupExpr]


@final
class AllGroups(TypedDict):
    all: list[GroupExpr]


GroupExpr = str | AnyGroups | AllGroups  # a group's name, or any / all of group expressions

_EffectiveRequired = TypedDict("_EffectiveRequired", {"from": str})


class EffectiveDoc(_EffectiveRequired, total=False):
    to: str


class AgeDoc(TypedDict, total=False):
    min: float
    max: float


class AppliesDoc(TypedDict, total=False):
    age: AgeDoc
    review_type: str | list[str]
    line_of_business: list[str]
    requested: list[str]
    diagnoses: list[str]
    plan: list[str]


class ExpectDoc(TypedDict, total=False):
    outcome: str
    level: str | None
    met: list[str]
    not_met: list[str]
    unknown: list[str]
    missing: list[str]
    waived: list[str]


class RuleTestDoc(TypedDict):
    name: str
    record: dict[str, object]  # a partial admission record: the record's own schema checks it once completed
    expect: ExpectDoc


class _RuleSetRequired(TypedDict):
    ruleset: str
    version: str
    title: str
    source: str
    criteria: list[CriterionDoc]


class RuleSetDoc(_RuleSetRequired, total=False):
    description: str
    effective: EffectiveDoc
    applies: AppliesDoc
    levels: dict[str, GroupExpr]
    requires: dict[str, GroupExpr]
    tests: list[RuleTestDoc]
    waives: list[str]
