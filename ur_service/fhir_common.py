"""What the FHIR endpoints share: FHIR JSON in and out, and OperationOutcome for what cannot be read."""

from __future__ import annotations

import orjson
from flask import Response

from .inputs import clip

FHIR_JSON = "application/fhir+json"


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
