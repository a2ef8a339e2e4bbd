"""The FHIR and CDS Hooks endpoints in the OpenAPI document: DTR's questionnaires and answers, CRD's hook services.

Kept apart from ``openapi`` (which imports it) so the FHIR endpoints are described in one place. A response given as
``(media type, component)`` is not JSON of the service's own: FHIR resources are ``application/fhir+json`` and
their errors OperationOutcomes; the CDS Hooks bodies follow ``schemas/cds-hooks.schema.json``.
"""

from __future__ import annotations

from ur_engine import schemas as engine_schemas

FHIR = "application/fhir+json"
OUTCOME = (FHIR, "OperationOutcome")


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _resource(rtype: str, description: str, **properties) -> dict:
    return {"type": "object", "required": ["resourceType"], "description": description,
            "properties": {"resourceType": {"const": rtype}, **properties}}


def _cds_schemas() -> dict:
    """The CDS Hooks 2.0 shapes (``schemas/cds-hooks.schema.json``), their ``$defs`` as components."""
    return {f"CdsHooks_{name}": _rewrite(node) for name, node in engine_schemas.schema("cds-hooks")["$defs"].items()}


def _rewrite(node):
    if isinstance(node, dict):
        return {k: (f"#/components/schemas/CdsHooks_{v[len('#/$defs/'):]}" if k == "$ref" and isinstance(v, str)
                    and v.startswith("#/$defs/") else _rewrite(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite(v) for v in node]
    return node


FHIR_SCHEMAS = {
    **_cds_schemas(),
    "OperationOutcome": _resource("OperationOutcome", "FHIR R4 OperationOutcome: each issue names the element "
                                  "(expression, a FHIRPath) and what is wrong with it (diagnostics).",
                                  issue={"type": "array", "minItems": 1, "items": {
                                      "type": "object", "required": ["severity", "code"], "properties": {
                                          "severity": {"type": "string"}, "code": {"type": "string"},
                                          "diagnostics": {"type": "string"},
                                          "expression": {"type": "array", "items": {"type": "string"}}}}}),
    "Questionnaire": _resource("Questionnaire", "FHIR R4 Questionnaire (checked by the FHIR model library).",
                               item={"type": "array", "items": {"type": "object", "required": ["linkId", "type"]}}),
    "QuestionnairePackage": _resource(
        "Parameters", "DTR $questionnaire-package output: a PackageBundle holding the Questionnaire and a "
                      "QuestionnaireResponse in progress, pre-filled from the chart.",
        parameter={"type": "array", "minItems": 1, "items": {"type": "object", "required": ["name"]}}),
    "QuestionnairePackageInput": _resource(
        "Parameters", "DTR $questionnaire-package input: parameters 'questionnaire' (valueCanonical) name the "
                      "questionnaires; 'coverage' and 'order' may come too.",
        parameter={"type": "array", "minItems": 1, "items": {"type": "object", "required": ["name"]}}),
    "QuestionnaireResponse": {
        **_resource("QuestionnaireResponse", "FHIR R4 QuestionnaireResponse to a review's questionnaire, completed.",
                    status={"enum": ["completed", "amended"]},
                    questionnaire={"type": "string", "description": "…/fhir/Questionnaire/review-{review_id}"},
                    item={"type": "array", "items": {"type": "object", "required": ["linkId"]}}),
        "required": ["resourceType", "status", "questionnaire"]},
}

_REVIEW_ID = {"name": "review_id", "in": "path", "required": True,
              "schema": {"type": "string", "minLength": 1, "maxLength": 40}, "description": "The decision's review_id."}

# As openapi.OPERATIONS: (Flask endpoint, method, path, roles, operation fields, {status: schema})
FHIR_OPERATIONS = [
    ("fhir_dtr.get_questionnaire", "get", "/fhir/Questionnaire/review-{review_id}", ("reviewer", "physician"), {
        "summary": "DTR: the questionnaire of what a review still needs", "operationId": "getReviewQuestionnaire",
        "description": "One item per piece of missing information, in the rule library's words (LOINC code, unit "
                       "and time window on each reading), then what the chart gives for the criteria still unknown.",
        "parameters": [_REVIEW_ID],
    }, {200: (FHIR, "Questionnaire"), 401: None, 403: None, 404: OUTCOME}),
    ("fhir_dtr.questionnaire_package", "get", "/fhir/Questionnaire/review-{review_id}/$questionnaire-package",
     ("reviewer", "physician"), {
        "summary": "DTR: the questionnaire package, pre-filled from the chart",
        "operationId": "getReviewQuestionnairePackage",
        "description": "The shape of DTR's $questionnaire-package output: Parameters with a PackageBundle holding "
                       "the Questionnaire and a QuestionnaireResponse in progress with the chart's values.",
        "parameters": [_REVIEW_ID],
    }, {200: (FHIR, "QuestionnairePackage"), 401: None, 403: None, 404: OUTCOME}),
    ("fhir_dtr.questionnaire_packages", "post", "/fhir/Questionnaire/$questionnaire-package",
     ("reviewer", "physician"), {
        "summary": "DTR $questionnaire-package: the packages of the questionnaires named by canonical",
        "operationId": "questionnairePackages",
        "description": "Takes DTR's input Parameters; each parameter 'questionnaire' gets a PackageBundle: a "
                       "review's (valueCanonical …/fhir/Questionnaire/review-{review_id}) with its Questionnaire "
                       "and a QuestionnaireResponse in progress pre-filled from the chart; a CDS Hooks card's "
                       "(…/fhir/Questionnaire/documentation?fact=…) with its Questionnaire alone. Coverage and "
                       "order inputs are accepted and not needed.",
        "requestBody": {"required": True, "content": {FHIR: {"schema": _ref("QuestionnairePackageInput")}}},
    }, {200: (FHIR, "QuestionnairePackage"), 400: OUTCOME, 401: None, 403: None, 404: OUTCOME, 413: None,
        415: OUTCOME}),
    ("fhir_dtr.documentation_questionnaire", "get", "/fhir/Questionnaire/documentation", ("reviewer", "physician"), {
        "summary": "DTR: a questionnaire for facts named by the caller (the one a CDS Hooks card links to)",
        "operationId": "getDocumentationQuestionnaire",
        "parameters": [
            {"name": "fact", "in": "query", "required": True, "style": "form", "explode": True,
             "schema": {"type": "array", "minItems": 1, "maxItems": 100,
                        "items": {"type": "string", "minLength": 1, "maxLength": 2000}},
             "description": "Fact names (heart_rate.max, finding.active_bleeding), repeated or comma-separated."},
            {"name": "review_type", "in": "query", "required": False,
             "schema": {"enum": ["admission", "continued_stay", "discharge"], "default": "admission"},
             "description": "The review whose time window the questions name."}],
    }, {200: (FHIR, "Questionnaire"), 400: OUTCOME, 401: None, 403: None}),
    ("fhir_dtr.answer", "post", "/fhir/QuestionnaireResponse", ("reviewer",), {
        "summary": "DTR: answers to a review's questionnaire; the stay is reviewed again with them",
        "operationId": "answerQuestionnaire",
        "description": "Adds each answer to the review's record, naming this response as its source, and reviews "
                       "the stay again: a new review that follows the first, stored before the answer. The new "
                       "decision names the answers as evidence. Never a denial. A review a physician has decided, "
                       "or one answered already, is not answered again (409).",
        "requestBody": {"required": True, "content": {FHIR: {"schema": _ref("QuestionnaireResponse")}}},
    }, {201: "Decision", 400: OUTCOME, 401: None, 403: None, 404: OUTCOME, 409: OUTCOME, 413: None,
        415: OUTCOME}),
    ("fhir_cds.discovery", "get", "/cds-services", None, {
        "summary": "CDS Hooks discovery: the admission screen's services, their hooks and prefetch templates",
        "operationId": "discoverCdsServices",
    }, {200: "CdsHooks_discovery"}),
    ("fhir_cds.call", "post", "/cds-services/{service_id}", ("reviewer",), {
        "summary": "CRD over CDS Hooks: screen the stay of an encounter-start or order-sign hook",
        "operationId": "callCdsService",
        "description": "Reads the prefetched Patient, Encounter, Coverage, Conditions, Observations, Procedures and "
                       "MedicationAdministrations (and the draft orders) through the FHIR intake, screens the stay "
                       "on the serving rules without storing it, and answers a card: the outcome in words, the "
                       "documentation still needed and a link to its questionnaire, and a system action putting Da "
                       "Vinci CRD coverage information on the order or encounter. Never a denial.",
        "parameters": [{"name": "service_id", "in": "path", "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 100},
                        "description": "A service id from GET /cds-services."}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("CdsHooks_request")}}},
    }, {200: "CdsHooks_response", 400: None, 401: None, 403: None, 404: None, 413: None, 415: None}),
]
