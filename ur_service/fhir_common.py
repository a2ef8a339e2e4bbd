"""What the FHIR endpoints share: FHIR JSON in and out, OperationOutcome for what cannot be read, and the registry
of FHIR endpoints that ``/fhir/metadata`` (the CapabilityStatement) and the OpenAPI document are built from.

A module serving FHIR endpoints declares each one with ``register(FhirEndpoint(...))`` at import, and is imported
by ``openapi.py`` (so the document lists it) and registered as a blueprint by ``app.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from flask import Response, request

from .inputs import clip

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"


def fhir_response(resource: dict, status: int = 200) -> Response:
    """A FHIR resource (already checked by the FHIR model library) as ``application/fhir+json``."""
    return Response(orjson.dumps(resource), status=status, mimetype=FHIR_JSON)


def operation_outcome(status: int, issues: list[tuple[str, str]], code: str = "invalid") -> Response:
    """An OperationOutcome: one error issue per ``(FHIRPath expression of the element, what is wrong)``."""
    body = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": code, "diagnostics": clip(text),
         **({"expression": [where]} if where else {})}
        for where, text in issues]}
    return Response(orjson.dumps(body), status=status, mimetype=FHIR_JSON)


def fhir_body() -> tuple[object, Response | None]:
    """The request body as JSON (``application/fhir+json`` or ``application/json``), or an OperationOutcome."""
    from ur_engine.errors import RecordError

    from .inputs import loads

    if not (request.mimetype == "application/json" or request.mimetype.endswith("+json")):
        return None, operation_outcome(415, [("", "send the body as application/fhir+json")], "not-supported")
    try:
        return loads(request.get_data()), None
    except RecordError as exc:
        return None, operation_outcome(400, [("", f"the body is not JSON: {exc.message}")], "structure")


@dataclass(frozen=True)
class FhirEndpoint:
    """One FHIR endpoint: its route, who may call it, and what the CapabilityStatement and OpenAPI say of it."""

    endpoint: str  # the Flask endpoint, e.g. "fhir_pas.submit"
    method: str  # get | post
    path: str  # as OpenAPI writes it: /fhir/ClaimResponse/{review_id}
    roles: tuple[str, ...] | None  # None: public
    summary: str
    description: str = ""
    resource: str | None = None  # the FHIR resource type it serves (CapabilityStatement)
    operation: str | None = None  # a FHIR operation ("submit") …
    definition: str | None = None  # … and its OperationDefinition's canonical URL
    interaction: str | None = None  # or a REST interaction ("read")
    body: dict | None = None  # the JSON Schema of the request body
    parameters: tuple[dict, ...] = ()
    statuses: dict[int, str] = field(default_factory=lambda: {200: "OK"})  # FHIR JSON answers and their meaning


ENDPOINTS: list[FhirEndpoint] = []


def register(*endpoints: FhirEndpoint) -> None:
    for e in endpoints:
        if all(x.endpoint != e.endpoint for x in ENDPOINTS):  # a module imported twice registers once
            ENDPOINTS.append(e)
