"""CRD over CDS Hooks 2.0: the admission screen at encounter-start and order-sign, answered as a card.

    GET  /cds-services                   public       discovery: the services, their hooks and prefetch templates
    POST /cds-services/{service_id}      reviewer     the hook request (context + prefetch) → cards, systemActions

The prefetched resources (Patient, Encounter, Conditions, Observations, Procedures, MedicationAdministrations,
Coverage) and the draft orders are read by the same FHIR intake as a Bundle, screened on the serving rules and
answered as one card: the outcome in words, the documentation still needed with a link to its questionnaire, and a
system action putting Da Vinci CRD coverage information on the admission order (or the encounter). An admission
order is a draft order with the requested-level extension; an order-sign without one, or an encounter that is not
a hospital stay (an emergency or clinic visit), gets no card: nothing for an admission screen to say. A screen is
not stored as a review: the PAS request that follows is. This service does not query the EHR's FHIR server: a
request without the prefetch it needs is refused (400) saying which.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date
from urllib.parse import quote

from flask import Blueprint, current_app, request
from jsonschema import Draft202012Validator

from ur_engine import schemas as engine_schemas
from ur_engine.errors import RecordError
from ur_engine.intake.fhir import REQUESTED_LEVEL
from ur_engine.intake.fhir_files import bundle_items
from ur_engine.intake.normalise import review
from ur_engine.output.cds_card import card, coverage_information, updates

from . import inputs
from .auth import require
from .http import json_response, problem

blueprint = Blueprint("fhir_cds", __name__)
_PATIENT = "patient={{context.patientId}}"
_PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "encounter": "Encounter/{{context.encounterId}}",
    "coverage": f"Coverage?{_PATIENT}&status=active",
    "conditions": f"Condition?{_PATIENT}&encounter={{{{context.encounterId}}}}",
    "observations": f"Observation?{_PATIENT}&encounter={{{{context.encounterId}}}}",
    "procedures": f"Procedure?{_PATIENT}&encounter={{{{context.encounterId}}}}",
    "medications": f"MedicationAdministration?{_PATIENT}&context={{{{context.encounterId}}}}",
}
NEEDED = ("patient", "encounter", "coverage")
SERVICES = {
    "ur-admission-encounter-start": {
        "hook": "encounter-start", "title": "Admission screen when a stay starts",
        "description": "Screens the stay on the open admission criteria (severity of illness and intensity of "
                       "service, the two-midnight benchmark) and says whether they support the level the encounter "
                       "asks for, or what documentation they still need. Never a denial.",
        "prefetch": _PREFETCH},
    "ur-admission-order-sign": {
        "hook": "order-sign", "title": "Admission screen when an admission is ordered",
        "description": "Screens the stay an admission order asks for (the order's requested-level extension, else "
                       "the encounter's class) on the open admission criteria; the card says whether they support it "
                       "or what documentation they still need, and the coverage information goes on the order. "
                       "Never a denial.",
        "prefetch": _PREFETCH},
}
CONTEXTS = {"encounter-start": "encounterStartContext", "order-sign": "orderSignContext"}
NO_ADVICE = {"cards": []}  # CDS Hooks: a service with nothing to say answers 200 and no cards


def _validator(name: str) -> Draft202012Validator:
    doc = engine_schemas.schema("cds-hooks")
    return Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": doc["$defs"]})


def _errors(name: str, data, prefix: str = "$") -> list[dict]:
    return [{"path": prefix + engine_schemas.json_path(e.absolute_path)[1:], "message": e.message}
            for e in sorted(_validator(name).iter_errors(data), key=lambda e: list(map(str, e.path)))]


@blueprint.get("/cds-services")
def discovery():
    return json_response({"services": [{"id": sid, **spec} for sid, spec in SERVICES.items()]})


@blueprint.post("/cds-services/<service_id>")
@require("reviewer")
def call(service_id):
    spec = SERVICES.get(service_id)
    if spec is None:
        return problem(404, "Not Found", f"no CDS service {service_id!r}; GET /cds-services lists them")
    if not (request.mimetype == "application/json" or request.mimetype.endswith("+json")):
        return problem(415, "Unsupported Media Type", "send the hook request as application/json")
    try:
        body = inputs.loads(request.get_data())
    except RecordError as exc:
        return problem(400, "Invalid JSON", str(exc))
    errors = _errors("request", body)
    if not errors:
        if body["hook"] != spec["hook"]:
            errors = [{"path": "$.hook", "message": f"this service answers {spec['hook']}, not {body['hook']!r}"}]
        else:
            errors = _errors(CONTEXTS[spec["hook"]], body["context"], "$.context")
    if not errors:
        prefetch = body.get("prefetch") or {}
        errors = [{"path": f"$.prefetch.{key}", "message": f"send the prefetch {key!r} ({_PREFETCH[key]}): this "
                   "service does not query the EHR's FHIR server"} for key in NEEDED if not prefetch.get(key)]
    if errors:
        return problem(400, "Invalid hook request", "see errors", errors=errors)
    context = body["context"]
    resources = _resources((body.get("prefetch") or {}).values())
    orders = _resources([context["draftOrders"]]) if "draftOrders" in context else []
    encounter_id = context.get("encounterId") or next(
        (r.get("id") for r in resources if r.get("resourceType") == "Encounter"), None)
    admission = _admission_orders(orders)
    if spec["hook"] == "order-sign" and not admission:
        return json_response(NO_ADVICE)  # no order asks for a level of care: nothing for this service to say
    _ask_for_level(resources, admission, encounter_id)
    record, error = _record(resources + orders, encounter_id)
    if error is not None:
        return problem(400, "Nothing to screen", error.message,
                       errors=[{"path": "$.prefetch", "message": error.message}])
    if record is None:
        return json_response(NO_ADVICE)  # an emergency or clinic visit is not a stay the criteria judge
    service = current_app.extensions["ur_engine"]
    try:
        with service.engine() as engine, service.turn:
            decision = review(engine, record).to_dict()
    except RecordError as exc:
        errors = [_essential(e) for e in getattr(exc, "errors", [exc])]
        return problem(400, "Nothing to screen", "; ".join(e["message"] for e in errors), errors=errors)
    return json_response(_answer(decision, resources, admission, encounter_id))


# What the screen cannot go without, by the record's field: where in the prefetch it comes from.
ESSENTIAL = {"$.patient.age": ("$.prefetch.patient", "the patient's age: Patient.birthDate, a full date"),
             "$.encounter.arrival_time": ("$.prefetch.encounter", "the arrival: Encounter.period.start, a date and "
                                                                 "time with its UTC offset"),
             "$.encounter.requested_level": ("$.prefetch.encounter", "the level asked for: Encounter.class")}


def _essential(e: RecordError) -> dict:
    where, needed = ESSENTIAL.get(e.path or "", ("$.prefetch", e.message))
    return {"path": where, "message": f"the screen needs {needed}" if where != "$.prefetch" else needed}


def _resources(values: Iterable) -> list[dict]:
    """Every resource of prefetch values (a resource, or a Bundle of search results) or of the draft orders."""
    out = []
    for value in values:
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            entries = value.get("entry") if isinstance(value.get("entry"), list) else []
            out += [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
        else:
            out.append(value)
    return out


def _level(order: dict) -> str | None:
    return next((e.get("valueCode") or e.get("valueString") for e in order.get("extension") or ()
                 if isinstance(e, dict) and e.get("url") == REQUESTED_LEVEL), None)


def _admission_orders(orders: list[dict]) -> list[dict]:
    """The draft orders that ask for a level of care (our requested-level extension): the ones a screen is about."""
    return [o for o in orders if _level(o)]


def _ask_for_level(resources: list[dict], admission: list[dict], encounter_id: str | None) -> None:
    """An admission order names the level it asks for: the encounter it belongs to is screened for that level."""
    level = next((_level(o) for o in admission), None)
    if not level:
        return
    for i, r in enumerate(resources):
        if r.get("resourceType") == "Encounter" and r.get("id") == encounter_id:
            kept = [e for e in r.get("extension") or () if isinstance(e, dict) and e.get("url") != REQUESTED_LEVEL]
            resources[i] = {**r, "extension": [*kept, {"url": REQUESTED_LEVEL, "valueCode": level}]}


def _record(resources: list[dict], encounter_id: str | None):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    items = list(bundle_items(bundle, "prefetch"))
    stays = [i for i in items if i.record is not None]
    chosen = next((i for i in stays if i.record.get("id") == encounter_id), stays[0] if len(stays) == 1 else None)
    if chosen is not None:
        return chosen.record, None
    # A stay that cannot be read is bad input; no stay at all (an emergency or clinic visit) is no advice.
    return None, next((i.error for i in items if i.error is not None), None)


def _answer(decision: dict, resources: list[dict], admission: list[dict], encounter_id: str | None) -> dict:
    root = request.url_root
    library = current_app.extensions["ur_engine"].library
    questionnaire = None
    if decision.get("missing_info"):
        facts = ",".join(str(f) for m in decision["missing_info"] for f in m["facts"])
        questionnaire = (f"{root}fhir/Questionnaire/documentation?fact={quote(facts, safe=',.')}"
                         f"&review_type={decision['review_type']}")
    answer = {"cards": [card(decision, label=f"ur-engine open admission criteria {library.version}",
                             url=f"{root}v1/rulesets", questionnaire_url=questionnaire)], "systemActions": []}
    coverage = next((r for r in resources if r.get("resourceType") == "Coverage" and r.get("id")), None)
    if coverage is not None:  # the extension names the coverage it speaks for; without an id there is none to name
        ext = coverage_information(decision, coverage=f"Coverage/{coverage['id']}", date=date.today().isoformat(),
                                   assertion_id=uuid.uuid4().hex, questionnaire=questionnaire)
        targets = admission or [r for r in resources
                                if r.get("resourceType") == "Encounter" and r.get("id") == encounter_id]
        answer["systemActions"] = updates(targets, ext)
    return answer
