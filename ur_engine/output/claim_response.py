"""A decision as a Da Vinci PAS ClaimResponse, built and checked with the FHIR model library (R4B, the R4 shape).

Each item the request asked about (or the request as a whole, when it lists no items) gets an adjudication
carrying the X12 306 review action of the PAS ``extension-reviewAction``:

- ``A1`` (certified in total) when the criteria support the level requested;
- ``A4`` (pended) for a pend and for an alternative setting, with the recommended setting said in the reason and
  the notes: the engine never refuses a stay;
- ``A3`` (not certified), ``A2`` (certified in part) or ``A6`` (modified) only from a physician's
  ``Determination``, passed in explicitly; nothing in a decision can make them.

The criteria trail is in ``processNote`` in words for people (each criterion, its finding, its evidence and its
source), with the rule version; what is still missing is asked for in a contained PAS CommunicationRequest.
Reasons are coded in the engine's own code system: the X12 review decision reason codes (external code list 886,
which the PAS IG binds ``reviewAction.reasonCode`` to) are not public, so no code of that list is sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.operationoutcome import OperationOutcome

from ur_engine.words import STAT_WORDS
from ur_engine.facts import FactDictionary

PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
REVIEW_ACTION = PAS + "extension-reviewAction"
ADMINISTRATION_REFERENCE = PAS + "extension-administrationReferenceNumber"
REVIEWER = PAS + "extension-claimResponseReviewer"
CLAIM_RESPONSE_PROFILE = PAS + "profile-claimresponse"
COMMUNICATION_REQUEST_PROFILE = PAS + "profile-communicationrequest"
X12_306 = "https://codesystem.x12.org/005010/306"  # Health Care Services Review action codes
X12_755 = "https://codesystem.x12.org/005010/755"  # Report type codes (what documentation is asked for)
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
UR = "https://ur-engine.org/fhir/"
REASONS_SYSTEM = UR + "CodeSystem/review-reason"
RULE_VERSION = UR + "StructureDefinition/rule-version"
RECORD_ID = UR + "record-id"
REVIEW_ID = UR + "review-id"

ACTIONS = {"A1": "Certified in total", "A2": "Certified - partial", "A3": "Not Certified", "A4": "Pended",
           "A6": "Modified"}
# What a physician's determination may say. A3 and A6 are adverse: only a physician's, never the engine's.
PHYSICIAN_ACTIONS = frozenset({"A1", "A2", "A3", "A6"})
REASONS = {
    "criteria-met": "The criteria support the level of care requested",
    "alternative-setting": "The criteria support another setting than the one requested: physician review",
    "information-missing": "Information is missing to judge the request: physician review",
    "physician-review": "The criteria do not settle the request: physician review",
    "physician-determination": "Decided by a physician",
}
STATUS_WORDS = {"met": "met", "not_met": "not met", "unknown": "not known (information missing)",
                "waived": "waived by the rule set"}
LEVEL_WORDS = {"critical": "critical care (ICU)", "intermediate": "intermediate care (step-down)",
               "inpatient": "acute inpatient care", "observation": "observation", "outpatient": "outpatient care",
               "ltch": "a long-term care hospital", "irf": "an inpatient rehabilitation facility",
               "snf": "a skilled nursing facility", "home_health": "home health care", "hospice": "hospice care",
               "home": "home"}


@dataclass(frozen=True)
class PasRequest:
    """What a ClaimResponse echoes of the PAS Claim it answers."""

    claim_id: str | None = None
    identifier: tuple[Mapping[str, Any], ...] = ()
    patient: Mapping[str, Any] | None = None
    insurer: Mapping[str, Any] | None = None
    provider: Mapping[str, Any] | None = None
    type: Mapping[str, Any] | None = None
    items: tuple[int, ...] = ()

    @classmethod
    def of_claim(cls, claim: Mapping[str, Any]) -> PasRequest:
        """The parts of a PAS Claim (as JSON) a response echoes; anything not of the expected shape is left out."""
        def ref(name: str) -> Mapping[str, Any] | None:
            value = claim.get(name)
            return value if isinstance(value, Mapping) else None
        items = claim.get("item")
        sequences = tuple(i["sequence"] for i in items if isinstance(i, Mapping)
                          and isinstance(i.get("sequence"), int) and i["sequence"] > 0) if isinstance(items, list) else ()
        idents = claim.get("identifier")
        return cls(claim_id=claim["id"] if isinstance(claim.get("id"), str) else None,
                   identifier=tuple(i for i in idents if isinstance(i, Mapping)) if isinstance(idents, list) else (),
                   patient=ref("patient"), insurer=ref("insurer"), provider=ref("provider"), type=ref("type"),
                   items=sequences)


@dataclass(frozen=True)
class Determination:
    """A physician's determination on a review: the only source of an adverse review action."""

    action: str  # X12 306: A1, A2, A3 or A6
    decided_at: str
    physician: str | None = None
    reason: str | None = None  # the service's reason code
    text: str | None = None

    def __post_init__(self) -> None:
        if self.action not in PHYSICIAN_ACTIONS:
            raise ValueError(f"a physician's determination is one of {sorted(PHYSICIAN_ACTIONS)}, not {self.action!r}")


def review_action(decision: Mapping[str, Any], determination: Determination | None = None) -> str:
    """The X12 306 code: a physician's when given; else A1 for approve and A4 for anything else."""
    if determination is not None:
        return determination.action
    return "A1" if decision.get("outcome") == "approve" else "A4"


def reason_code(decision: Mapping[str, Any], determination: Determination | None = None) -> str:
    if determination is not None:
        return "physician-determination"
    outcome = decision.get("outcome")
    if outcome == "approve":
        return "criteria-met"
    if outcome == "alternative_setting":
        return "alternative-setting"
    return "information-missing" if decision.get("missing") else "physician-review"


def claim_response(decision: Mapping[str, Any], created: str, request: PasRequest | None = None, *,
                   facts: FactDictionary | None = None, determination: Determination | None = None,
                   check: bool = True) -> dict[str, Any]:
    """The PAS ClaimResponse of ``decision`` (a ``Decision.to_dict()``), made at ``created``, checked by the FHIR
    model (``check=False``: as built, for a caller that checks it its own way). ``facts`` words the evidence (fact
    names otherwise); ``request`` is the Claim answered (absent for a stay that came without one, as in a
    batch)."""
    request = request or PasRequest()
    review_id, record_id = str(decision["review_id"]), str(decision["record_id"])
    action = review_action(decision, determination)
    notes = _notes(decision, facts, determination)
    reason = reason_code(decision, determination)
    reason_text = _reason_text(decision, determination)
    adjudication: dict[str, Any] = {
        "category": {"coding": [{"system": ADJUDICATION, "code": "submitted"}]},
        "reason": {"coding": [{"system": REASONS_SYSTEM, "code": reason, "display": REASONS[reason]}],
                   "text": reason_text},
        "extension": [{"url": REVIEW_ACTION, "extension": [
            {"url": "code", "valueCodeableConcept": {"coding": [
                {"system": X12_306, "code": action, "display": ACTIONS[action]}]}},
            {"url": "number", "valueString": review_id}]}],
    }
    numbers = [n["number"] for n in notes]
    body: dict[str, Any] = {
        "resourceType": "ClaimResponse", "id": _fhir_id(review_id),
        "meta": {"profile": [CLAIM_RESPONSE_PROFILE]},
        "extension": [
            {"url": RULE_VERSION, "valueString": _rule_version(decision)},
            {"url": REVIEWER, "extension": [{"url": "wasHumanReviewedFlag", "valueBoolean": determination is not None}]},
        ],
        "identifier": [dict(i) for i in request.identifier] or [{"system": REVIEW_ID, "value": review_id}],
        "status": "active",
        "type": dict(request.type) if request.type else {"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional"}]},
        "use": "preauthorization",
        "patient": dict(request.patient) if request.patient else {"display": f"The patient of stay {record_id}"},
        "created": created,
        "insurer": dict(request.insurer) if request.insurer else {"display": "Utilization review"},
        "request": ({"reference": f"Claim/{request.claim_id}"} if request.claim_id else
                    {"identifier": {"system": RECORD_ID, "value": record_id}}),
        # The review is complete as a review; its result (certified or pended) is the review action (PAS IG).
        "outcome": "complete",
        "disposition": reason_text,
        "processNote": notes,
    }
    if request.provider:
        body["requestor"] = dict(request.provider)
    if action in ("A1", "A2", "A6"):
        body["preAuthRef"] = review_id
    if request.items:
        body["item"] = [_item(seq, adjudication, numbers, action, review_id) for seq in request.items]
    else:
        body["adjudication"] = [adjudication]
    info = communication_request(decision, created, request) if action == "A4" else None
    if info is not None:
        body["contained"] = [info]
        body["communicationRequest"] = [{"reference": f"#{info['id']}"}]
    return checked(body) if check else body


def _item(sequence: int, adjudication: dict[str, Any], notes: list[int], action: str,
          review_id: str) -> dict[str, Any]:
    item: dict[str, Any] = {"itemSequence": sequence, "noteNumber": notes, "adjudication": [adjudication]}
    if action == "A4":  # the PAS IG's pended example names the pending review by this number
        item["extension"] = [{"url": ADMINISTRATION_REFERENCE, "valueString": review_id}]
    return item


def communication_request(decision: Mapping[str, Any], created: str,
                          request: PasRequest | None = None) -> dict[str, Any] | None:
    """A PAS CommunicationRequest for the information the decision still misses (None when nothing is)."""
    missing = [w for w in decision.get("missing_info") or ()
               if isinstance(w, Mapping) and isinstance(w.get("text"), str) and w["text"].strip()]
    if not missing:
        return None
    request = request or PasRequest()
    body: dict[str, Any] = {
        "resourceType": "CommunicationRequest", "id": "missing-information",
        "meta": {"profile": [COMMUNICATION_REQUEST_PROFILE]},
        "status": "active",
        # X12 755 report type 15 "Justification for Admissions", as in the PAS IG's CommunicationRequest example.
        "category": [{"coding": [{"system": X12_755, "code": "15", "display": "Justification for Admissions"}]}],
        "payload": [{"contentString": f"Please send: {w['text']}"} for w in missing],
        "authoredOn": created,
        "reasonCode": [{"text": "Needed to complete the utilization review of this stay; until it comes, the "
                                "review is pended for a physician"}],
    }
    if request.patient:
        body["subject"] = dict(request.patient)
    if request.claim_id:
        body["about"] = [{"reference": f"Claim/{request.claim_id}"}]
    if request.provider:
        body["recipient"] = [dict(request.provider)]
    return body


def response_bundle(claim_response: Mapping[str, Any], timestamp: str, base: str,
                    identifier: Mapping[str, Any] | None = None,
                    also: tuple[tuple[str, Mapping[str, Any]], ...] = (), check: bool = True) -> dict[str, Any]:
    """A PAS response Bundle: the ClaimResponse first (at ``{base}ClaimResponse/{id}``), then ``also`` — (full
    URL, resource) pairs the response refers to, such as the request's patient and organizations. ``identifier``
    echoes the request Bundle's (the submitter's transaction id); without one, the review id stands in. Checked
    by the FHIR model unless ``check=False``."""
    body = {
        "resourceType": "Bundle", "type": "collection", "timestamp": timestamp,
        "identifier": dict(identifier) if identifier else {"system": REVIEW_ID, "value": claim_response["id"]},
        "entry": [{"fullUrl": f"{base}ClaimResponse/{claim_response['id']}", "resource": dict(claim_response)},
                  *({"fullUrl": url, "resource": dict(r)} for url, r in also)],
    }
    if not check:
        return body
    model = Bundle.model_validate(body)
    out: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def bulk_resource(line: str | bytes, created: str, facts: FactDictionary | None = None) -> tuple[str, dict[str, Any]]:
    """One line of ``ur batch`` output as a FHIR Bulk Data resource: ``("ClaimResponse", …)`` for a decision,
    ``("OperationOutcome", …)`` for a record that could not be reviewed (its errors, each named)."""
    data = orjson.loads(line)
    if data.get("outcome") != "error":
        return "ClaimResponse", claim_response(data, created, facts=facts)
    where = data.get("position") or data.get("line")
    issues = [{"severity": "error", "code": "invalid",
               "diagnostics": f"{data.get('record_id') or 'record'} ({where}): {e.get('code', '')} "
                              f"{e.get('path', '')} {e.get('message', '')}".replace("  ", " ").strip()}
              for e in data.get("errors") or () if isinstance(e, Mapping)]
    outcome = OperationOutcome.model_validate({"resourceType": "OperationOutcome", "issue": issues or [
        {"severity": "error", "code": "invalid", "diagnostics": f"record at {where} could not be reviewed"}]})
    out: dict[str, Any] = outcome.model_dump(mode="json", by_alias=True, exclude_none=True)
    return "OperationOutcome", out


def checked(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` read through the FHIR model (raising on anything FHIR refuses), as FHIR JSON."""
    model = ClaimResponse.model_validate(body)
    out: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def _fhir_id(text: str) -> str:
    """A FHIR id (letters, digits, '-' and '.', at most 64): a review id already is one; else a stable UUID."""
    ok = 0 < len(text) <= 64 and all(c.isalnum() and c.isascii() or c in "-." for c in text)
    return text if ok else str(uuid.uuid5(uuid.NAMESPACE_URL, REVIEW_ID + "/" + text))


def _rule_version(decision: Mapping[str, Any]) -> str:
    rules = decision.get("rules")
    if not isinstance(rules, Mapping):
        return "unknown"
    return f"{rules.get('version')} ({rules.get('digest')})"


def _target(level: object) -> str:
    return LEVEL_WORDS.get(str(level), str(level))


def _reason_text(decision: Mapping[str, Any], determination: Determination | None) -> str:
    requested, recommended = decision.get("requested"), decision.get("recommended")
    if determination is not None:
        text = f"A physician's determination: {ACTIONS[determination.action].lower()}"
        if determination.text and determination.text.strip():
            text += f" — {determination.text.strip()}"
        return text
    outcome = decision.get("outcome")
    if outcome == "approve":
        return f"Certified: the criteria support {_target(requested)}, as requested"
    if outcome == "alternative_setting":
        return (f"Pended for physician review: the criteria support {_target(recommended)} rather than "
                f"{_target(requested)}; recommended setting: {_target(recommended)}")
    if decision.get("missing"):
        return "Pended for physician review: information is missing to judge the request"
    return "Pended for physician review: the criteria do not settle the request"


def _notes(decision: Mapping[str, Any], facts: FactDictionary | None,
           determination: Determination | None) -> list[dict[str, Any]]:
    texts = [_reason_text(decision, determination)]
    if determination is not None:
        who = f" by {determination.physician}" if determination.physician else ""
        reason = f" (reason {determination.reason})" if determination.reason else ""
        texts.append(f"Physician's determination{who} at {determination.decided_at}{reason}; the engine's "
                     f"screen had found: {decision.get('outcome')}")
    texts += [str(r) for r in decision.get("reasons") or ()]
    texts += [f"Still needed: {w['text']}" for w in decision.get("missing_info") or ()
              if isinstance(w, Mapping) and w.get("text")]
    review_type = str(decision.get("review_type") or "admission")
    for c in decision.get("criteria") or ():
        if isinstance(c, Mapping):
            texts.append(_criterion(c, facts, review_type))
    texts.append(f"Rules: version {_rule_version(decision)}; rule sets "
                 + (", ".join(f"{k} {v}" for k, v in (decision.get("rules") or {}).get("rulesets", {}).items())
                    or "none applied"))
    texts = [t.strip()[:4000] for t in texts if t.strip()]  # FHIR has no blank string
    return [{"number": n, "type": "display", "text": t} for n, t in enumerate(texts, start=1)]


def _criterion(c: Mapping[str, Any], facts: FactDictionary | None, review_type: str) -> str:
    status = STATUS_WORDS.get(str(c.get("status")), str(c.get("status")))
    evidence = [_evidence(e, facts, review_type) for e in c.get("evidence") or () if isinstance(e, Mapping)]
    # a finding's evidence repeats the criterion's own words: only its value is new
    evidence = [e.replace(f"{c.get('text')}: ", "Documented: ", 1) for e in evidence]
    text = f"{c.get('id')} ({c.get('ruleset')}) — {status}: {c.get('text')}."
    if evidence:
        text += " " + "; ".join(evidence) + "."
    return text + f" Source: {c.get('source')}."


def _evidence(e: Mapping[str, Any], facts: FactDictionary | None, review_type: str) -> str:
    name = str(e.get("fact"))
    info = facts.catalog.get(name) if facts is not None else None
    base, _, stat = name.rpartition(".")
    if info is not None and info.kind == "observation" and stat in STAT_WORDS:
        label = f"{info.text.rsplit(' (', 1)[0]}, {STAT_WORDS[stat]}{_window(facts, review_type)}"
    elif info is not None:
        label = info.text
    else:
        label = name.replace("_", " ").replace(".", ": ")
    value = e.get("value")
    if value is None:
        shown = "not documented"
    elif isinstance(value, bool):
        shown = "yes" if value else "no"
    elif isinstance(value, (int, float)):
        unit = f" {info.unit}" if info is not None and info.unit else ""
        shown = f"{e.get('comparator') or ''}{value:g}{unit}"
    else:
        shown = str(value)
    when = f" (at {e['time']})" if e.get("time") else ""
    return f"{label}: {shown}{when}"


def _window(facts: FactDictionary | None, review_type: str) -> str:
    window = facts.windows.get(review_type) if facts is not None else None
    if not window:
        return ""
    if window["anchor"] == "arrival":
        return f" in the first {window['end_hours']:g} h after arrival"
    return f" in the {-window['start_hours']:g} h before the review"

