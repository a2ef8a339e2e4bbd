"""The OpenAPI 3.1 document of the JSON API, and the validators the app derives from it.

The admission and decision schemas come from ``schemas/`` (their ``$defs`` move under ``components/schemas``),
with the tighter date and time patterns the service enforces; the service's own schemas are below. One document drives three things: what
``/openapi.json`` and ``/docs`` show, how query strings and bodies are checked, and how responses are checked.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache

import jsonschema_rs
from jsonschema import Draft202012Validator

from ur_engine import schemas as engine_schemas

from . import fhir_common, fhir_pas  # noqa: F401  (fhir_pas registers its endpoints in fhir_common)
from .auth import ROLES
from .inputs import DATE_PATTERN, TIME_PATTERN
from .openapi_fhir import FHIR_OPERATIONS, FHIR_SCHEMAS

RANGE_TEXT = "from 1900-01-01 to one year from now; outside that range the request is refused (400)"
TIME = {"type": "string", "pattern": TIME_PATTERN,
        "description": f"ISO 8601 date and time with a UTC offset, {RANGE_TEXT}."}
DATE = {"type": "string", "pattern": DATE_PATTERN, "description": f"ISO 8601 date (YYYY-MM-DD), {RANGE_TEXT}."}
HASH = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
NULLABLE_TIME = {"anyOf": [TIME, {"type": "null"}]}
_ANCHOR_PART = r"[a-z_]+:[0-9]{1,18}:[0-9a-f]{64}"
ANCHOR_PATTERN = rf"^{_ANCHOR_PART}(,{_ANCHOR_PART})*$"
REASON_CODES = {
    "not_medically_necessary": "The record does not show the requested level of care is medically necessary.",
    "lower_level_of_care": "A lower level of care or another setting meets the patient's needs.",
    "insufficient_documentation": "Documentation needed to decide was requested and not supplied.",
    "not_a_covered_benefit": "The service is not a covered benefit of the plan.",
    "other": "Another reason, stated in the text.",
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: list[str], properties: dict, **extra) -> dict:
    return {"type": "object", "required": required, "properties": properties, **extra}


ACTOR = _object(["key", "name"], {"key": {"type": "string"}, "name": {"type": "string"}},
                additionalProperties=False, description="The API key (its public id and name) that acted.")
AUDIT = _object(["seq", "hash", "prev_hash"], {"seq": {"type": "integer", "minimum": 1}, "hash": HASH,
                                                "prev_hash": HASH}, additionalProperties=False,
                description="Position in the append-only hash chain: hash = sha256(prev_hash + canonical row).")
RULES = _object(["version", "digest"], {"version": {"type": "string"}, "digest": {"type": "string"}})
OUTCOME = {"enum": ["approve", "pend", "alternative_setting"]}
URGENCY = {"enum": ["standard", "expedited"],
           "description": "CMS-0057-F: a pended case is due within 7 calendar days (standard) or 72 hours (expedited)."}
SUMMARY = {
    "review_id": {"type": "string"}, "record_id": {"type": "string"}, "received_at": TIME,
    "submitted_by": _ref("Actor"), "review_type": {"enum": ["admission", "continued_stay", "discharge", "day_of_care"]},
    "outcome": OUTCOME, "requested": {"type": "string"}, "urgency": URGENCY, "due_at": NULLABLE_TIME,
    "rules": _ref("Rules"),
}
COUNTS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}

SERVICE_SCHEMAS = {
    "Problem": _object(["type", "title", "status"], {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": ["object", "string"]},
                   "description": "Each invalid field (with its JSON path) or each rule-file error."},
    }, description="RFC 9457 problem details."),
    "Actor": ACTOR, "Audit": AUDIT, "Rules": RULES,
    "DeterminationRequest": {
        **_object(["decision"], {
            "decision": {"enum": ["approve", "deny"]},
            "reason_code": {"enum": list(REASON_CODES),
                            "description": "; ".join(f"{k}: {v}" for k, v in REASON_CODES.items())},
            "text": {"type": "string", "minLength": 1, "maxLength": 4000,
                     "description": "The physician's specific reason, in words (CMS-0057-F)."},
        }, additionalProperties=False),
        "if": {"properties": {"decision": {"const": "deny"}}},
        "then": {"required": ["reason_code", "text"], "properties": {"text": {"pattern": r"\S"}}},
    },
    "Determination": _object(
        ["determination_id", "review_id", "decision", "reason_code", "text", "physician", "decided_at", "on_time",
         "audit"], {
            "determination_id": {"type": "string"}, "review_id": {"type": "string"},
            "decision": {"enum": ["approve", "deny"]},
            "reason_code": {"anyOf": [{"enum": list(REASON_CODES)}, {"type": "null"}]},
            "text": {"type": ["string", "null"]}, "physician": _ref("Actor"), "decided_at": TIME,
            "on_time": {"type": ["boolean", "null"], "description": "Decided by the due time (null: nothing was due)."},
            "audit": _ref("Audit")}, additionalProperties=False),
    "ReviewSummary": _object(list(SUMMARY) + ["physician_decision"], {
        **SUMMARY, "physician_decision": {"enum": ["approve", "deny", None]}}, additionalProperties=False),
    "ReviewList": _object(["items", "next_cursor"], {
        "items": {"type": "array", "items": _ref("ReviewSummary")},
        "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next (older) page."}},
        additionalProperties=False),
    "StoredReview": _object(list(SUMMARY) + ["record", "decision", "audit", "determination"], {
        **SUMMARY, "record": _ref("Admission"), "decision": _ref("Decision"), "audit": _ref("Audit"),
        "determination": {"anyOf": [_ref("Determination"), {"type": "null"}]}}, additionalProperties=False),
    "WorklistItem": _object(list(SUMMARY) + ["overdue", "seconds_left"], {
        **SUMMARY, "overdue": {"type": "boolean"}, "seconds_left": {"type": "integer"}}, additionalProperties=False),
    "Worklist": _object(["now", "open", "overdue", "items"], {
        "now": TIME, "open": {"type": "integer", "minimum": 0}, "overdue": {"type": "integer", "minimum": 0},
        "items": {"type": "array", "items": _ref("WorklistItem")}}, additionalProperties=False),
    "Stats": _object(["reviews", "worklist", "determinations", "agreement"], {
        "reviews": _object(["total", "by_outcome"], {"total": {"type": "integer"}, "by_outcome": COUNTS}),
        "worklist": _object(["open", "overdue"], {"open": {"type": "integer"}, "overdue": {"type": "integer"}}),
        "determinations": _object(["total", "approve", "deny", "on_time", "by_engine_outcome"], {
            "total": {"type": "integer"}, "approve": {"type": "integer"}, "deny": {"type": "integer"},
            "on_time": {"type": "integer", "description": "Determinations made by the due time of a pended review."},
            "by_engine_outcome": {"type": "object", "additionalProperties": COUNTS}}),
        "agreement": _object(["compared", "agreed", "rate", "undetermined", "by_finding"], {
            "compared": {"type": "integer"}, "agreed": {"type": "integer"},
            "rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "undetermined": {"type": "integer",
                             "description": "Determinations where the criteria could not judge the requested level."},
            "by_finding": {"type": "object", "additionalProperties": COUNTS}},
            description="The engine's finding on the requested level (met or waived / not met) against the "
                        "physician's approve / deny; unknown findings are counted apart.")}),
    "Health": _object(["status", "rules"], {
        "status": {"const": "ok"}, "rules": RULES,
        "behind": {"const": True, "description": "Present while this process could not yet load the newest "
                                                 "accepted rule library; it serves the last one it has and retries."},
        "reload": _object(["ok", "at"], {"ok": {"type": "boolean"}, "at": TIME}, additionalProperties=False,
                          description="The last reload attempt on any process: accepted or not, and when. "
                                      "The reasons are for rules_admin (GET /v1/admin/reloads).")},
        additionalProperties=False),
    "ReloadLog": _object(["serving", "behind", "items"], {
        "serving": {"type": "string"}, "behind": {"type": "boolean"},
        "items": {"type": "array", "items": _object(
            ["seq", "at", "kind", "ok", "digest", "errors", "by", "hash"], {
                "seq": {"type": "integer", "minimum": 1}, "at": TIME, "kind": {"enum": ["reload", "startup"]},
                "ok": {"type": "boolean"}, "digest": {"type": ["string", "null"]},
                "errors": {"type": "array", "items": {"type": "string"}}, "by": _ref("Actor"), "hash": HASH},
            additionalProperties=False)}}, additionalProperties=False,
        description="Reload attempts, newest first: accepted libraries (whose files every process loads) and "
                    "refused ones with their reasons."),
    "Rulesets": _object(["version", "digest", "rulesets"], {
        "version": {"type": "string"}, "digest": {"type": "string"},
        "rulesets": {"type": "array", "items": _object(["id", "version", "title", "criteria"], {
            "id": {"type": "string"}, "version": {"type": "string"}, "title": {"type": "string"},
            "source": {"type": ["string", "null"]}, "file": {"type": ["string", "null"]},
            "criteria": {"type": "array", "items": _object(["id", "group", "text", "source"], {
                "id": {"type": "string"}, "group": {"type": "string"}, "text": {"type": "string"},
                "source": {"type": ["string", "null"]}})}})}}),
    "Reload": _object(["status", "digest", "at", "seq"], {
        "status": {"const": "reloaded"}, "digest": {"type": "string"}, "at": TIME,
        "seq": {"type": "integer", "minimum": 1, "description": "The reload's place in the reload log."}}),
    "AuditReport": _object(["ok", "counts", "heads", "anchor", "problems"], {
        "ok": {"type": "boolean"}, "counts": COUNTS,
        "anchor": {"type": "string", "description": "Each chain's end as chain:seq:hash, comma-separated. Keep it "
                                                    "outside the database and pass it back as expect_head: a "
                                                    "later verification then finds rows cut from a tail."},
        "heads": {"type": "object", "additionalProperties": {"anyOf": [HASH, {"type": "null"}]}},
        "problems": {"type": "array", "items": _object(["table", "seq", "problem"], {
            "table": {"type": "string"}, "seq": {"type": "integer"}, "problem": {"type": "string"}})}}),
}

PROBLEM_TEXT = {400: "Invalid request: each error names the field", 401: "No valid API key",
                403: "The key's role may not do this", 404: "Not found", 409: "Conflict",
                413: "Body over the size limit", 415: "Not application/json", 422: "Refused"}
SUCCESS_TEXT = {200: "OK", 201: "Created"}


def _param(name, schema, description, where="query", required=False):
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            "description": description}


REVIEW_ID = _param("review_id", {"type": "string", "minLength": 1, "maxLength": 40}, "The decision's review_id.",
                   "path")
LIST_PARAMS = [
    _param("outcome", OUTCOME, "Only this engine outcome."),
    _param("record_id", {"type": "string", "minLength": 1, "maxLength": 200}, "Only this submitter's stay id."),
    _param("urgency", URGENCY, "Only this urgency."),
    _param("status", {"enum": ["open", "decided"]},
           "open: pended and awaiting a physician; decided: has a determination."),
    _param("since", TIME, "Received at or after."), _param("until", TIME, "Received before."),
    _param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "Page size."),
    _param("cursor", {"type": "string", "pattern": "^[0-9]{1,18}$"}, "next_cursor of the previous page."),
]

# (Flask endpoint, method, OpenAPI path, roles or None for public, operation fields, {status: schema or None})
OPERATIONS = [
    ("create_review", "post", "/v1/reviews", ("reviewer",), {
        "summary": "Review one admission record", "operationId": "createReview",
        "description": "Validates the record, judges it on the serving rules, stores the review (committed "
                       "before the answer) and answers the decision. A pended review joins the worklist, due "
                       "by its urgency. The decision is never a denial.",
        "parameters": [_param("urgency", {**URGENCY, "default": "standard"}, "How soon a pend must be decided."),
                       _param("as_of", DATE, "Judge the stay by the rules in effect on this day (default: its "
                                             "arrival date), e.g. a past stay under today's rules."),
                       _param("by_day", {"enum": ["true", "false"], "default": "false"},
                              "Also judge every day of care of the stay (24 h each from arrival, up to the discharge) "
                              "and report where the supported level rises or falls: the decision's by_day.")],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("AdmissionSubmission")}}},
    }, {200: "Decision", 400: None, 401: None, 403: None, 413: None, 415: None}),
    ("list_reviews", "get", "/v1/reviews", ("reviewer", "physician"), {
        "summary": "List stored reviews, newest first", "operationId": "listReviews", "parameters": LIST_PARAMS,
    }, {200: "ReviewList", 400: None, 401: None, 403: None}),
    ("get_review", "get", "/v1/reviews/{review_id}", ("reviewer", "physician"), {
        "summary": "One stored review: record, decision, audit position and any determination",
        "operationId": "getReview", "parameters": [REVIEW_ID],
    }, {200: "StoredReview", 401: None, 403: None, 404: None}),
    ("create_determination", "post", "/v1/reviews/{review_id}/determination", ("physician",), {
        "summary": "A physician's determination on a review", "operationId": "createDetermination",
        "description": "Approve, or deny with a reason code and the reason in words. Stored beside the engine's "
                       "decision, never over it; one per review.",
        "parameters": [REVIEW_ID],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("DeterminationRequest")}}},
    }, {201: "Determination", 400: None, 401: None, 403: None, 404: None, 409: None, 413: None, 415: None}),
    ("worklist", "get", "/v1/worklist", ("reviewer", "physician"), {
        "summary": "Pended reviews awaiting a physician, the soonest due first", "operationId": "getWorklist",
        "parameters": [_param("urgency", URGENCY, "Only this urgency."),
                       _param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}, "At most.")],
    }, {200: "Worklist", 400: None, 401: None, 403: None}),
    ("stats", "get", "/v1/stats", ROLES, {
        "summary": "Reviews by outcome, the worklist, and engine-physician agreement", "operationId": "getStats",
    }, {200: "Stats", 401: None, 403: None}),
    ("audit_verify", "get", "/v1/audit/verify", ROLES, {
        "summary": "Walk the audit hash chains and report any break", "operationId": "verifyAudit",
        "description": "Checks reviews, determinations, API keys and rule reloads: each row's hash, each link, "
                       "each chain's end against its recorded head and, with expect_head, against an anchor "
                       "kept elsewhere (an earlier report's anchor, or the heads the logs show).",
        "parameters": [_param("expect_head", {"type": "string", "maxLength": 1000, "pattern": ANCHOR_PATTERN},
                              "An earlier anchor (chain:seq:hash, comma-separated): each chain must still reach "
                              "that row with that hash.")],
    }, {200: "AuditReport", 400: None, 401: None, 403: None}),
    ("list_rulesets", "get", "/v1/rulesets", None, {
        "summary": "The rule sets serving, with criteria and sources (public, as CMS-4201-F asks)",
        "operationId": "listRulesets",
    }, {200: "Rulesets"}),
    ("reload_rules", "post", "/v1/admin/reload", ("rules_admin",), {
        "summary": "Re-read the rule library; the candidate serves only if it loads and its tests pass",
        "operationId": "reloadRules",
    }, {200: "Reload", 401: None, 403: None, 422: None}),
    ("list_reloads", "get", "/v1/admin/reloads", ("rules_admin",), {
        "summary": "The reload log: accepted and refused reloads, with the reasons", "operationId": "listReloads",
    }, {200: "ReloadLog", 401: None, 403: None}),
    ("healthz", "get", "/healthz", None, {
        "summary": "Liveness, the serving rules, whether the last reload was accepted", "operationId": "getHealth",
    }, {200: "Health"}),
    *FHIR_OPERATIONS,
]
EXTRA_PATHS = {
    "/metrics": {"get": {"summary": "Prometheus metrics", "operationId": "getMetrics", "responses": {
        "200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    "/openapi.json": {"get": {"summary": "This document", "operationId": "getOpenAPI", "responses": {
        "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
}
ROLE_TEXT = {None: "Public."}


def _imported(name: str, prefix: str) -> dict[str, dict]:
    """``schemas/<name>.schema.json`` as components: the schema itself and each of its ``$defs``."""
    doc = copy.deepcopy(engine_schemas.schema(name))
    for key in ("$schema", "$id"):
        doc.pop(key, None)
    defs = doc.pop("$defs", {})
    out = {prefix: doc, **{f"{prefix}_{k}": v for k, v in defs.items()}}

    def rewrite(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                node["$ref"] = f"#/components/schemas/{prefix}_{ref[len('#/$defs/'):]}"
            for v in node.values():
                rewrite(v)
        elif isinstance(node, list):
            for v in node:
                rewrite(v)

    rewrite(out)
    return out


def _submission() -> dict:
    """What POST /v1/reviews takes: a record as hospital systems send it, read through the intake.

    Only what leaves nothing to judge is refused; every other value the intake cannot read as ``Admission``
    describes it is set aside and named in the decision's ``data_notices``, so the request schema holds the
    essentials alone and lets the rest be as it comes.
    """
    def ref(name: str) -> dict:
        return {"$ref": f"#/components/schemas/Admission_{name}"}

    admission = engine_schemas.schema("admission")["properties"]
    return {
        "type": "object", "required": ["id", "patient", "encounter"],
        "description": "An admission record as a hospital system writes it. It is read as the Admission schema "
                       "describes; a value that cannot be read so (an ICD-9 code, a unit as the laboratory writes "
                       "it, a null, a value outside its plausible range, an unknown field) is set aside with a "
                       "data notice in the decision and counts as unknown. A record without these essentials is "
                       "refused (400).",
        "properties": {
            "id": admission["id"],
            # A null is read as not given, as everywhere in a submission: here, the default (admission).
            "review_type": {**admission["review_type"], "enum": [*admission["review_type"]["enum"], None]},
            # Without an age or a level (or with a null: not given) the stay is reviewed and pends, naming them.
            "patient": {"type": "object", "properties": {"age": {"anyOf": [
                admission["patient"]["properties"]["age"], {"type": "null"}]}}},
            # Without a line of business (or coverage, or a null: not given) too: the stay pends, naming it.
            "coverage": {"type": ["object", "null"], "properties": {
                "line_of_business": admission["coverage"]["properties"]["line_of_business"]}},
            "encounter": {"type": "object", "required": ["arrival_time"], "properties": {
                "arrival_time": ref("time"), "requested_level": {"anyOf": [ref("level"), {"type": "null"}]}}},
        },
    }


def _responses(statuses: dict) -> dict:
    out = {}
    for status, schema in statuses.items():
        if schema is None:
            out[str(status)] = {"description": PROBLEM_TEXT[status],
                                "content": {"application/problem+json": {"schema": _ref("Problem")}}}
        elif isinstance(schema, tuple):  # (media type, component): a FHIR resource, or its OperationOutcome
            media, component = schema
            out[str(status)] = {"description": SUCCESS_TEXT.get(status) or PROBLEM_TEXT[status],
                                "content": {media: {"schema": _ref(component)}}}
        else:
            out[str(status)] = {"description": "OK" if status == 200 else "Created",
                                "content": {"application/json": {"schema": _ref(schema)}}}
            if status == 401:
                out[str(status)]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return out


@lru_cache(maxsize=1)
def document() -> dict:
    """The whole OpenAPI 3.1 document (built once; treat it as read-only)."""
    components = {**_imported("admission", "Admission"), **_imported("decision", "Decision"), **SERVICE_SCHEMAS,
                  **FHIR_SCHEMAS}
    # The service takes only plausible dates (ur_service.inputs): say so where the record's times are defined.
    components["Admission_time"] = {**components["Admission_time"], "pattern": TIME_PATTERN,
                                    "description": f"ISO 8601 date and time with a UTC offset, {RANGE_TEXT}."}
    components["Admission_date"] = {**components["Admission_date"], "pattern": DATE_PATTERN,
                                    "description": f"ISO 8601 date, {RANGE_TEXT}."}
    components["AdmissionSubmission"] = _submission()
    paths: dict[str, dict] = {}
    for _endpoint, method, path, roles, fields, statuses in OPERATIONS:
        op = {**fields, "responses": _responses(statuses)}
        if roles:
            op["security"] = [{"apiKey": []}]
            op["description"] = (op.get("description", "") + f"\n\nRoles: {', '.join(roles)}.").strip()
        else:
            op["security"] = []
        if fields["operationId"] == "createReview":
            op["responses"]["200"]["links"] = {
                "GetReview": {"operationId": "getReview", "parameters": {"review_id": "$response.body#/review_id"}},
                "DecideReview": {"operationId": "createDetermination",
                                 "parameters": {"review_id": "$response.body#/review_id"}}}
        paths.setdefault(path, {})[method] = op
    paths.update(EXTRA_PATHS)
    for e in fhir_common.ENDPOINTS:
        op = paths.setdefault(e.path, {})[e.method] = _fhir_operation(e)
        if e.body is not None:  # a named component, as every request body of the document is
            components[f"{op['operationId'][0].upper()}{op['operationId'][1:]}Body"] = e.body
    components["FhirResource"] = {"type": "object", "required": ["resourceType"],
                                  "properties": {"resourceType": {"type": "string"}},
                                  "description": "A FHIR R4 resource (checked by the FHIR model library)."}
    return {
        "openapi": "3.1.0",
        "info": {"title": "ur-engine review service", "version": "1",
                 "description": "Open, explainable utilization review. Answers approve, pend or alternative "
                                "setting, never a denial: only a physician denies (POST a determination). "
                                "Errors are application/problem+json (RFC 9457).",
                 "license": {"name": "MIT", "identifier": "MIT"}},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {"apiKey": {
            "type": "http", "scheme": "bearer",
            "description": "An API key from `ur keys create --role ROLE`: `Authorization: Bearer ur_…`."}}},
    }


def _fhir_operation(e: fhir_common.FhirEndpoint) -> dict:
    """A FHIR endpoint's operation: FHIR JSON in and out; the service's own 401, 403 and 413 are problems."""
    name = e.endpoint.rsplit(".", 1)[-1]
    responses = {str(status): {"description": text, "content": {fhir_common.FHIR_JSON: {"schema": _ref(
        "FhirResource")}}} for status, text in e.statuses.items()}
    if e.method == "post":
        responses.update(_responses({413: None}))
    op: dict = {"summary": e.summary, "operationId": "fhir" + "".join(w.title() for w in name.split("_")),
                "tags": ["FHIR"], "responses": responses}
    if e.description:
        op["description"] = e.description
    if e.parameters:
        op["parameters"] = list(e.parameters)
    if e.body is not None:
        body = _ref(f"{op['operationId'][0].upper()}{op['operationId'][1:]}Body")
        op["requestBody"] = {"required": True, "content": {fhir_common.FHIR_JSON: {"schema": body},
                                                             "application/json": {"schema": body}}}
    if e.roles:
        responses.update(_responses({401: None, 403: None}))
        responses["401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        op["security"] = [{"apiKey": []}]
        op["description"] = (op.get("description", "") + f"\n\nRoles: {', '.join(e.roles)}.").strip()
    else:
        op["security"] = []
    return op


def operation(endpoint: str) -> tuple[str, str, dict] | None:
    """(method, path, operation) of a Flask endpoint, or None for one the document does not describe."""
    for name, method, path, *_ in OPERATIONS:
        if name == endpoint:
            return method, path, document()["paths"][path][method]
    return None


@lru_cache(maxsize=None)
def validator(component: str):
    """A fast validator (jsonschema-rs) for one component, with the document's components in reach."""
    return jsonschema_rs.validator_for({"$ref": f"#/components/schemas/{component}",
                                        "components": document()["components"]})


@lru_cache(maxsize=None)
def explaining_validator(component: str) -> Draft202012Validator:
    """The same schema in python-jsonschema, whose errors carry paths for problem documents."""
    return Draft202012Validator({"$ref": f"#/components/schemas/{component}", "components": document()["components"]})


def body_errors(component: str, data) -> list[dict]:
    """Every error of ``data`` against ``component``, each with its JSON path; [] when valid."""
    if validator(component).is_valid(data):
        return []
    return [{"path": engine_schemas.json_path(e.absolute_path), "message": e.message}
            for e in sorted(explaining_validator(component).iter_errors(data), key=lambda e: list(map(str, e.path)))]


def query_args(endpoint: str, args) -> tuple[dict, list[dict]]:
    """The endpoint's query parameters from ``args``, typed and checked: (values, errors)."""
    _, _, op = operation(endpoint)
    values, errors = {}, []
    for p in op.get("parameters", []):
        if p["in"] != "query":
            continue
        name, schema = p["name"], p["schema"]
        raw = args.getlist(name)
        if not raw:
            if "default" in schema:
                values[name] = schema["default"]
            continue
        value: object = raw[-1]
        if schema.get("type") == "integer":
            value = int(value) if re.fullmatch(r"[+-]?[0-9]{1,18}", value) else value
        for e in Draft202012Validator(schema).iter_errors(value):
            errors.append({"parameter": name, "message": e.message})
        if len(raw) > 1:
            errors.append({"parameter": name, "message": "give it once"})
        values[name] = value
    return values, errors


def response_schema(endpoint: str, status: int) -> str | None:
    """The component a response of ``endpoint`` with ``status`` must match (Problem for errors)."""
    found = operation(endpoint)
    if found is None:
        return None
    resp = found[2]["responses"].get(str(status))
    if resp is None:
        return None
    (content,) = resp["content"].values()
    return content["schema"]["$ref"].rsplit("/", 1)[1]


def response_media(endpoint: str, status: int) -> str | None:
    """The media type a response of ``endpoint`` with ``status`` must have (application/fhir+json for FHIR)."""
    found = operation(endpoint)
    resp = found[2]["responses"].get(str(status)) if found else None
    return next(iter(resp["content"])) if resp else None
