"""CRD over CDS Hooks: a screen's decision → a CDS Hooks 2.0 card, and Da Vinci CRD coverage information.

The card says the outcome in words a clinician reads at the point of care, never a denial: the criteria support
the requested level (certified), support another one, or cannot judge it yet and a physician reviews it, with the
documentation still needed. The coverage-information extension (CRD STU 2.1) says the same for the EHR to keep on
the order: ``covered`` when the criteria support the request, else ``conditional`` with what is needed; never
``not-covered``, which only a physician's determination could say. Pure functions: no file, network or web.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from ur_engine.output.questionnaire import checked

COVERAGE_INFORMATION = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
LEVEL_WORDS = {"critical": "Critical care", "intermediate": "Intermediate (step-down) care",
               "inpatient": "Inpatient admission", "observation": "Observation stay", "outpatient": "Outpatient care",
               "ltch": "Long-term care hospital", "irf": "Inpatient rehabilitation facility",
               "snf": "Skilled nursing facility", "home_health": "Home health care", "hospice": "Hospice",
               "home": "Discharge home"}
SHOWN = 20  # documentation items listed on a card; the questionnaire has them all
Json = dict[str, Any]


def _level(name: object) -> str:
    return LEVEL_WORDS.get(str(name), str(name).replace("_", " ").capitalize())


def summary(decision: Mapping[str, Any]) -> str:
    """One line under 140 characters: the outcome, in words."""
    asked = _level(decision.get("requested"))
    outcome = decision["outcome"]
    if outcome == "approve":
        text = f"{asked}: the criteria support it — certified, no further documentation needed"
    elif outcome == "alternative_setting":
        text = (f"{asked}: the criteria support {_level(decision.get('recommended')).lower()} instead; "
                "a physician reviews the request")
    else:
        needed = len(decision.get("missing_info") or ())
        text = (f"{asked}: {needed} item{'s' if needed != 1 else ''} of documentation needed; "
                "until then a physician reviews it" if needed else f"{asked}: pended for a physician's review")
    return text if len(text) < 140 else text[:136] + "…"


def detail(decision: Mapping[str, Any]) -> str:
    """The card's detail (Markdown): why, what is still needed, what was met, and the rules that judged."""
    lines = ["**Why:** " + " ".join(str(r) for r in decision.get("reasons") or ())]
    needed = list(decision.get("missing_info") or ())
    if needed:
        lines += ["", "**Documentation still needed:**"]
        lines += [f"- {m['text']}" for m in needed[:SHOWN]]
        if len(needed) > SHOWN:
            lines.append(f"- and {len(needed) - SHOWN} more (see the questionnaire)")
    met = [c for c in decision.get("criteria") or () if c["status"] in ("met", "waived")]
    if met:
        lines += ["", "**Criteria met:**"] + [f"- {c['text']} ({c['source']})" for c in met]
    rules = decision.get("rules") or {}
    lines += ["", f"Screened on rules {rules.get('version', '?')}. An algorithm never denies: only a physician may "
                  "decide against a request (42 CFR 422.566(d))."]
    return "\n".join(lines)


def card(decision: Mapping[str, Any], *, label: str, url: str | None = None,
         questionnaire_url: str | None = None) -> Json:
    """The CDS Hooks card of a screen's decision."""
    out: Json = {"uuid": str(decision["review_id"]), "summary": summary(decision), "detail": detail(decision),
                 "indicator": "info" if decision["outcome"] == "approve" else "warning",
                 "source": {"label": label, **({"url": url} if url else {})}}
    if questionnaire_url and decision.get("missing_info"):
        out["links"] = [{"label": "Answer the documentation questionnaire", "url": questionnaire_url,
                         "type": "absolute"}]
    return out


def coverage_information(decision: Mapping[str, Any], *, coverage: str, date: str, assertion_id: str,
                         questionnaire: str | None = None) -> Json:
    """The CRD coverage-information extension of a screen's decision, checked by the FHIR model library."""
    parts: list[Json] = [{"url": "coverage", "valueReference": {"reference": coverage}}]
    outcome = decision["outcome"]
    if outcome == "approve":
        parts.append({"url": "covered", "valueCode": "covered"})
    else:
        parts.append({"url": "covered", "valueCode": "conditional"})
        needed = [str(m["text"]) for m in decision.get("missing_info") or ()]
        if needed:
            parts.append({"url": "doc-needed", "valueCode": "clinical"})
        parts.append({"url": "info-needed", "valueCode": "OTH"})
        reason = (f"Documentation the criteria need: {'; '.join(needed[:SHOWN])}" if needed else
                  " ".join(str(r) for r in decision.get("reasons") or ()) or "A physician reviews the request")
        parts.append({"url": "reason", "valueCodeableConcept": {"text": reason[:2000]}})
        if needed and questionnaire:
            parts.append({"url": "questionnaire", "valueCanonical": questionnaire})
    parts += [{"url": "date", "valueDate": date}, {"url": "coverage-assertion-id", "valueString": assertion_id}]
    ext = {"url": COVERAGE_INFORMATION, "extension": parts}
    checked({"resourceType": "Basic", "code": {"text": "coverage information"}, "extension": [ext]})
    return ext


def updates(orders: Sequence[Mapping[str, Any]], ext: Json) -> list[Json]:
    """CDS Hooks system actions updating each order (or the encounter) with the coverage information.

    Only an order the FHIR model library reads is given back updated: the EHR is never sent a resource that is not
    FHIR (the card says the same in words either way)."""
    out = []
    for order in orders:
        resource = copy.deepcopy(dict(order))
        given = resource.get("extension") or []
        if not isinstance(given, list) or not all(isinstance(e, dict) for e in given):
            continue
        resource["extension"] = [*(e for e in given if e.get("url") != COVERAGE_INFORMATION), ext]
        try:
            checked(resource)
        except (ValidationError, KeyError, TypeError, ValueError):  # not a resource type, or not one as FHIR says
            continue
        out.append({"type": "update", "resource": resource,
                    "description": f"Coverage information from the admission screen on "
                                   f"{resource.get('resourceType')}/{resource.get('id')}"})
    return out
