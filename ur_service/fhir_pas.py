"""Da Vinci PAS over FHIR: ``$submit`` a prior-authorization request, ``$inquire`` about it, read its
ClaimResponse, and the server's CapabilityStatement.

    POST /fhir/Claim/$submit             reviewer             a PAS request Bundle → a PAS response Bundle
    POST /fhir/Claim/$inquire            reviewer, physician  an inquiry (Bundle or Claim) → its current state
    GET  /fhir/ClaimResponse/{id}        reviewer, physician  the current ClaimResponse of a review
    GET  /fhir/metadata                  public               the CapabilityStatement of every FHIR endpoint

A request goes through the same intake and review as ``POST /v1/reviews`` and is stored with the Claim it came in.
The current state includes a physician's determination recorded since (``POST /v1/reviews/{id}/determination``):
only that turns a review action into A3 (not certified); the engine answers A1 or A4.
"""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.claim import Claim
from flask import Blueprint, current_app, g, request
from pydantic import ValidationError

from ur_engine.errors import RecordError
from ur_engine.intake.fhir_files import bundle_items
from ur_engine.output.claim_response import Determination, PasRequest, claim_response, response_bundle

from . import logs, reviews
from .auth import require
from .fhir_common import (
    ENDPOINTS,
    FHIR_VERSION,
    FhirEndpoint,
    fhir_body,
    fhir_response,
    operation_outcome,
    register,
)
from .store import utc_text

blueprint = Blueprint("fhir_pas", __name__)
PAS_OPERATIONS = "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/"
CLAIM = "Bundle.entry[0].resource"
BUNDLE_BODY = {"type": "object", "required": ["resourceType"], "properties": {
    "resourceType": {"const": "Bundle"}, "entry": {"type": "array", "items": {"type": "object"}}},
    "description": "A Da Vinci PAS request Bundle: type collection, the Claim (use preauthorization) first."}
INQUIRY_BODY = {"type": "object", "required": ["resourceType"], "properties": {
    "resourceType": {"enum": ["Bundle", "Claim"]}},
    "description": "A PAS inquiry Bundle (its Claim first) or a Claim, naming the request by its identifier."}
# A physician's determination as the X12 306 review action it gives (the service records approve or deny).
DETERMINATION_ACTIONS = {"approve": "A1", "deny": "A3"}

register(
    FhirEndpoint("fhir_pas.submit", "post", "/fhir/Claim/$submit", ("reviewer",),
                 "Submit a Da Vinci PAS prior-authorization request",
                 "Reads the request Bundle through the same intake as POST /v1/reviews, reviews the stay, stores "
                 "the review with its Claim and answers a PAS response Bundle: a ClaimResponse whose items carry "
                 "the X12 306 review action (A1 certified, A4 pended; never a denial).",
                 resource="Claim", operation="submit", definition=PAS_OPERATIONS + "Claim-submit",
                 body=BUNDLE_BODY, statuses={200: "A PAS response Bundle", 400: "An OperationOutcome naming the "
                                             "element (FHIRPath)", 415: "Not FHIR JSON"}),
    FhirEndpoint("fhir_pas.inquire", "post", "/fhir/Claim/$inquire", ("reviewer", "physician"),
                 "Inquire about an earlier PAS request",
                 "Finds the request by its Claim's identifier (else its id) and answers its current "
                 "ClaimResponse, including a physician's determination recorded since.",
                 resource="Claim", operation="inquire", definition=PAS_OPERATIONS + "Claim-inquiry",
                 body=INQUIRY_BODY, statuses={200: "A PAS inquiry response Bundle", 400: "An OperationOutcome",
                                              404: "No request matches", 415: "Not FHIR JSON"}),
    FhirEndpoint("fhir_pas.read_claim_response", "get", "/fhir/ClaimResponse/{review_id}",
                 ("reviewer", "physician"), "The current ClaimResponse of a review",
                 "Its review action is the engine's (A1 or A4) until a physician's determination is recorded; then "
                 "the physician's (A1, or A3 not certified).",
                 resource="ClaimResponse", interaction="read",
                 parameters=({"name": "review_id", "in": "path", "required": True,
                              "schema": {"type": "string", "minLength": 1, "maxLength": 40},
                              "description": "The review id (the ClaimResponse id)."},),
                 statuses={200: "A ClaimResponse", 404: "No such review"}),
    FhirEndpoint("fhir_pas.metadata", "get", "/fhir/metadata", None,
                 "The FHIR CapabilityStatement: every FHIR endpoint this service offers",
                 resource=None, statuses={200: "A CapabilityStatement"}),
)


@blueprint.post("/fhir/Claim/$submit")
@require("reviewer")
def submit():
    doc, bad = fhir_body()
    if bad is not None:
        return bad
    claim, issues = _submitted_claim(doc)
    if issues:
        return operation_outcome(400, issues)
    items = list(bundle_items(doc, "request"))
    stays = [i for i in items if i.record is not None]
    if not stays:
        return operation_outcome(400, [("Bundle.entry", str(i.error.message)) for i in items if i.error][:20]
                                 or [("Bundle.entry", "no stay to review")])
    ids = {claim.get("id"), *_encounter_ids(claim)}
    record = next((i.record for i in stays if i.record_id in ids), stays[0].record)
    priority = {c.get("code") for c in (claim.get("priority") or {}).get("coding") or () if isinstance(c, dict)}
    pas = {"claim": claim, "bundle_identifier": doc.get("identifier")}
    try:
        decision = reviews.submit(current_app, record, g.actor, "expedited" if "stat" in priority else "standard",
                                  pas_request=pas)
    except RecordError as exc:
        return operation_outcome(400, [("", f"{e.path or ''} {e.message}".strip())
                                       for e in getattr(exc, "errors", [exc])][:20])
    g.review_id = decision["review_id"]
    response = _response_bundle(decision, pas, None, utc_text(), doc)
    return fhir_response(response)


@blueprint.post("/fhir/Claim/$inquire")
@require("reviewer", "physician")
def inquire():
    doc, bad = fhir_body()
    if bad is not None:
        return bad
    claim, where = (doc, "Claim") if isinstance(doc, dict) and doc.get("resourceType") == "Claim" else \
        (_first_resource(doc), CLAIM)
    if not isinstance(claim, dict) or claim.get("resourceType") != "Claim":
        return operation_outcome(400, [(where, "an inquiry is a Claim, or a Bundle whose first entry is the Claim")])
    identifiers = [(i.get("system") if isinstance(i.get("system"), str) else None, i["value"])
                   for i in claim.get("identifier") or () if isinstance(i, dict) and isinstance(i.get("value"), str)]
    claim_id = claim.get("id") if isinstance(claim.get("id"), str) else None
    if not identifiers and not claim_id:
        return operation_outcome(400, [(f"{where}.identifier", "name the request by its Claim's identifier")])
    store = current_app.extensions["ur_store"]
    review_id = store.find_pas_request(identifiers, claim_id)
    if review_id is None:
        return operation_outcome(404, [(f"{where}.identifier", "no prior-authorization request with this "
                                        "identifier")], "not-found")
    g.review_id = review_id
    row, det = store.get_review(review_id)
    pas = store.pas_request(review_id)
    decision = orjson.loads(row["decision"])
    determination = _determination(det)
    response = _response_bundle(decision, pas, determination, _when(row, det),
                               doc if isinstance(doc, dict) and doc.get("resourceType") == "Bundle" else None)
    return fhir_response(response)


@blueprint.get("/fhir/ClaimResponse/<review_id>")
@require("reviewer", "physician")
def read_claim_response(review_id):
    store = current_app.extensions["ur_store"]
    found = store.get_review(review_id)
    if found is None:
        return operation_outcome(404, [("ClaimResponse.id", "no ClaimResponse with this id")], "not-found")
    g.review_id = review_id
    row, det = found
    pas = store.pas_request(review_id)
    return fhir_response(_checked(claim_response(
        orjson.loads(row["decision"]), _when(row, det), PasRequest.of_claim(pas["claim"]) if pas else None,
        facts=current_app.extensions["ur_engine"].library.facts, determination=_determination(det), check=False)))


@blueprint.get("/fhir/metadata")
def metadata():
    return fhir_response(capability_statement(request.host_url.rstrip("/") + "/fhir"))


def capability_statement(base: str) -> dict:
    """The CapabilityStatement of every registered FHIR endpoint, checked by the FHIR model."""
    by_type: dict[str, dict] = {}
    for e in ENDPOINTS:
        if e.resource is None:
            continue
        entry = by_type.setdefault(e.resource, {"type": e.resource})
        if e.operation:
            entry.setdefault("operation", []).append({"name": e.operation, "definition": e.definition})
        if e.interaction:
            entry.setdefault("interaction", []).append({"code": e.interaction})
    body = {
        "resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
        "date": datetime.now(timezone.utc).date().isoformat(), "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"], "software": {"name": "ur-engine"},
        "implementation": {"description": "Open, explainable utilization review: approve or pend, never deny",
                           "url": base},
        "rest": [{"mode": "server", "resource": list(by_type.values()),
                  "security": {"description": "An API key as 'Authorization: Bearer ur_…', of a role each "
                                              "endpoint names (see /openapi.json)"}}],
    }
    return CapabilityStatement.model_validate(body).model_dump(mode="json", by_alias=True, exclude_none=True)


# --- helpers -------------------------------------------------------------------------------------------------

def _first_resource(doc) -> dict | None:
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        return None
    entries = doc.get("entry")
    first = entries[0] if isinstance(entries, list) and entries else None
    resource = first.get("resource") if isinstance(first, dict) else None
    return resource if isinstance(resource, dict) else None


def _submitted_claim(doc) -> tuple[dict, list[tuple[str, str]]]:
    """The Claim of a PAS request Bundle, or the issues that make it one no longer: (FHIRPath, what is wrong)."""
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        found = doc.get("resourceType") if isinstance(doc, dict) else type(doc).__name__
        return {}, [("Bundle", f"a PAS request is a Bundle whose first entry is the Claim, not {found!r}")]
    entries = doc.get("entry")
    if not isinstance(entries, list) or not entries:
        return {}, [("Bundle.entry", "the request has no entries: its first entry must be the Claim")]
    claim = _first_resource(doc)
    if claim is None or claim.get("resourceType") != "Claim":
        found = claim.get("resourceType") if claim else None
        return {}, [(CLAIM, f"the first entry must be the Claim, not {found!r}")]
    issues = []
    try:
        Claim.model_validate(claim)
    except ValidationError as exc:
        for err in exc.errors()[:20]:
            issues.append((_fhirpath(CLAIM, err["loc"]), err["msg"]))
    if claim.get("use") != "preauthorization":
        issues.append((f"{CLAIM}.use", f"a PAS request's Claim has use 'preauthorization', not {claim.get('use')!r}"))
    return claim, issues


def _fhirpath(prefix: str, loc) -> str:
    """A pydantic error location as a FHIRPath below ``prefix``: ('item', 0, 'sequence') → prefix.item[0].sequence."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.replace("_", "").isalnum():
            out += f".{part}"
    return out


def _encounter_ids(claim: dict) -> set[str]:
    ids = set()
    for ext in claim.get("extension") or ():
        ref = (ext.get("valueReference") or {}).get("reference") if isinstance(ext, dict) else None
        if isinstance(ref, str) and ref.startswith("Encounter/"):
            ids.add(ref.split("/", 1)[1])
    return ids


def _readable(resource: dict) -> bool:
    """Whether the FHIR model reads ``resource`` as it is: the response repeats only such resources."""
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except (ValidationError, KeyError, ValueError, TypeError):
        return False
    return True


def _determination(det: dict | None) -> Determination | None:
    if det is None:
        return None
    return Determination(DETERMINATION_ACTIONS[det["decision"]], det["decided_at"], physician=det["actor_name"],
                         reason=det["reason_code"], text=det["text"])


def _when(row: dict, det: dict | None) -> str:
    return det["decided_at"] if det else row["received_at"]


def _response_bundle(decision: dict, pas: dict | None, determination: Determination | None, created: str,
                    doc: dict | None) -> dict:
    """The PAS response Bundle: the ClaimResponse, then the resources of ``doc`` (the request) it refers to."""
    asked = PasRequest.of_claim(pas["claim"]) if pas else None
    response = claim_response(decision, created, asked, facts=current_app.extensions["ur_engine"].library.facts,
                              determination=determination, check=False)
    refs = {r.get("reference") for r in (response.get("patient"), response.get("insurer"), response.get("requestor"))
            if isinstance(r, dict)}
    also = []
    for entry in (doc or {}).get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and f"{resource.get('resourceType')}/{resource.get('id')}" in refs \
                and _readable(resource):
            url = entry.get("fullUrl")
            also.append((url if isinstance(url, str) else f"{resource['resourceType']}/{resource['id']}", resource))
    identifier = (doc or {}).get("identifier") or (pas or {}).get("bundle_identifier")
    return _checked(response_bundle(response, utc_text(), request.host_url.rstrip("/") + "/fhir/",
                                    identifier if isinstance(identifier, dict) else None, tuple(also), check=False))


log = logs.get("http")


def _checked(resource: dict) -> dict:
    """``resource`` as built: the FHIR model reads it only where responses are checked (RESPONSE_VALIDATION, on in
    the tests). Reading a response Bundle through the model, and writing it back, was half of a $submit's time
    for a check of what the engine's own code builds (and of request parts checked as they were taken)."""
    mode = current_app.config["RESPONSE_VALIDATION"]
    if mode != "off":
        try:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except ValidationError as exc:
            if mode == "strict":
                raise
            # Paths only: the model's messages quote values, which may be patient data.
            log.error("response is not valid FHIR", extra={"fields": {
                "request_id": g.get("request_id"), "resource": resource["resourceType"],
                "paths": [".".join(map(str, e["loc"])) for e in exc.errors()[:10]]}})
    return resource
