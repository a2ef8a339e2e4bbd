"""A Da Vinci PAS request for care after a hospital stay — home health — read as a post-acute review.

Such a request asks for no hospital level of care: it asks for a setting (``discharge_plan.requested_setting``),
from a start of care (``discharge_plan.planned_date``), and is judged by the post-acute rule sets
(``review_type: discharge``). Which codes name a setting is ``fhir_codes.PAS_SETTINGS`` and the home health care
information extension; what the request states of the patient's function comes from its supporting information
(``fhir_codes.REVIEW_INFORMATION``). What it does not state is left out: the review pends for it, by name.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, cast

from ur_engine.intake import fhir_codes as codes
from ur_engine.intake.fhir_model import Read, cancelled, codings, day, notice, number

if TYPE_CHECKING:  # named for the type checker only
    from fhir.resources.R4B.claim import Claim, ClaimSupportingInfo
    from fhir.resources.R4B.extension import Extension

    from ur_engine.intake.fhir_sections import Stay

SKILLED_NEEDS = ("none", "intermittent", "daily", "continuous")  # function.skilled_need


def _home_health_information(asked: Claim) -> Extension | None:
    return next((e for e in asked.extension or [] if e.url == codes.HOME_HEALTH_INFORMATION), None)


def requested_setting(claim: Read) -> str | None:
    """The post-acute setting a PAS Claim asks for, or None: the home health care information extension, else the
    first code of an item it still asks for (``fhir_codes.PAS_SETTING_ELEMENTS``) found in ``PAS_SETTINGS``."""
    asked = cast("Claim", claim.model)
    if _home_health_information(asked) is not None:
        return "home_health"
    for item in asked.item or []:
        if cancelled(item):
            continue
        for concept in (item.productOrService, item.category):
            for c in codings(concept):
                setting = codes.pas_setting(c.system, c.code)
                if setting:
                    return setting
    return None


def start_of_care(claim: Read) -> tuple[date, str, str | None] | None:
    """(date, where, what stands in for it) of the start of care a request asks for: the home health start date of
    the home health care information extension (what: None, it is the start of care), else an item's requested
    service date, else the patient event's date."""
    asked = cast("Claim", claim.model)
    info = _home_health_information(asked)
    for sub in (info.extension or []) if info is not None else []:
        if sub.url == "date" and sub.valueDate is not None:
            return sub.valueDate, f"{claim.label}.extension[homeHealthCareInformation].extension[date]", None
    for n, item in enumerate(asked.item or []):
        if cancelled(item):
            continue
        start = item.servicedPeriod.start if item.servicedPeriod else None
        for value, where in ((item.servicedDate, "servicedDate"), (start, "servicedPeriod.start")):
            on = day(value)
            if on is not None:
                return on, f"{claim.label}.item[{n}].{where}", "the requested service date"
    for n, info_ in enumerate(asked.supportingInfo or []):
        if "patientEvent" in {c.code for c in codings(info_.category)}:
            on = day(info_.timingDate or (info_.timingPeriod.start if info_.timingPeriod else None))
            if on is not None:
                return on, f"{claim.label}.supportingInfo[{n}].timing[x]", "the patient event's date"
    return None


def discharge_plan(stay: Stay, claim: Read, setting: str) -> dict:
    """The record's ``discharge_plan``: the setting asked for and, when the request gives it, the planned start."""
    out: dict = {"requested_setting": setting}
    found = start_of_care(claim)
    if found is None:
        stay.note(None, f"{claim.label}.item", "no start of care (home health start date or requested service "
                  "date): the planned date is unknown")
        return out
    on, where, what = found
    out["planned_date"] = on.isoformat()
    if what is not None:  # a value read as something else: said, the original shown
        stay.notices.append({**notice(str(on), where, f"the planned start of care is taken from {what}"),
                             "kind": "mapped"})
    return out


def stated(stay: Stay, claim: Read) -> tuple[dict, dict]:
    """(``function``, ``findings``) as the request's supporting information states them; what it does not state
    is not there. A value that cannot be read is set aside with a notice naming it."""
    function: dict = {}
    findings: dict = {}
    for n, info in enumerate(cast("Claim", claim.model).supportingInfo or []):
        kinds = [c.code for c in codings(info.category) if c.system == codes.REVIEW_INFORMATION]
        if not kinds:
            continue
        where = f"{claim.label}.supportingInfo[{n}]"
        kind = kinds[0]
        if kind == "homebound":
            if isinstance(info.valueBoolean, bool):
                function["homebound"] = info.valueBoolean
            else:
                stay.note(_shown(info), f"{where}.valueBoolean", "not true or false: whether the patient is "
                          "homebound is unknown")
        elif kind == "skilled-need":
            need = next((c.code for c in codings(info.code) if c.system == codes.SKILLED_NEED), None) \
                or info.valueString
            if need in SKILLED_NEEDS:
                function["skilled_need"] = need
            else:
                stay.note(need or _shown(info), f"{where}.code", "not one of none, intermittent, daily or "
                          "continuous: how often skilled care is needed is unknown")
        elif kind == "face-to-face":
            on = day(info.timingDate) or day(info.timingPeriod.start if info.timingPeriod else None)
            if on is not None:
                function["face_to_face_date"] = on.isoformat()
            else:
                stay.note(None, f"{where}.timing[x]", "no date: the face-to-face encounter's date is unknown")
        elif kind == "finding":
            name = next((c.code for c in codings(info.code) if c.system == codes.FINDING), None)
            value = info.valueBoolean if isinstance(info.valueBoolean, bool) else (
                number(info.valueQuantity.value) if info.valueQuantity is not None else info.valueString)
            if name and value is not None:
                findings[name] = value  # the intake checks the name and type against the rule library
            else:
                stay.note(_shown(info), where, "a finding needs a code (its name) and a value: set aside")
        else:
            stay.note(kind, f"{where}.category", "not a kind of review information this engine reads")
    return function, findings


def _shown(info: ClaimSupportingInfo) -> object:
    for name in ("valueBoolean", "valueString", "valueQuantity", "valueReference", "valueAttachment"):
        value = getattr(info, name, None)
        if value is not None:
            return value.model_dump(mode="json") if hasattr(value, "model_dump") else value
    return None
