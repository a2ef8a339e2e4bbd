"""Da Vinci PAS request Bundles for the tests: a Claim asking for a stay, with what an EHR sends beside it.

``request()`` builds one; keyword arguments replace the Claim's elements (None removes one), and ``clinical`` adds
resources (Observations, MedicationAdministrations…) as the request's supporting data.
"""

from __future__ import annotations

import copy
import json

from conftest import ROOT

CORPUS = ROOT / "tests" / "data" / "fhir"
PAS_RI = CORPUS / "pas-ri"
PAS_IG = CORPUS / "pas-ig"
# The request Bundles of the PAS reference implementation (their first entry is the Claim), and every request
# Bundle of the PAS IG's Examples.fsh, translated by hand into JSON (aliases, slices and extension names resolved).
RI_REQUESTS = ("bundle-request.json", "bundle-items.json", "bundle-prior-auth.json", "bundle-with-only-claim.json")
IG_REQUESTS = ("surgical-request-bundle.json", "homecare-request-bundle.json", "homecare-update-request-bundle.json",
               "referral-request-bundle.json", "medical-services-request-bundle.json")

X12_306 = "https://codesystem.x12.org/005010/306"
REVIEW_ACTION = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewAction"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
LOINC = "http://loinc.org"


def corpus_requests() -> list:
    return [PAS_RI / n for n in RI_REQUESTS] + [PAS_IG / n for n in IG_REQUESTS]


def load(path) -> dict:
    return json.loads(path.read_text())


def claim(**changes) -> dict:
    c = {
        "resourceType": "Claim", "id": "req-1", "status": "active", "use": "preauthorization",
        "identifier": [{"system": "urn:trnorg:1234567890", "value": "TRN-0001"}],
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional"}]},
        "patient": {"reference": "Patient/p1"}, "created": "2026-03-02T09:30:00+00:00",
        "insurer": {"reference": "Organization/payer"}, "provider": {"reference": "Organization/hospital"},
        "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cv1"}}],
        "item": [{"sequence": 1,
                  "productOrService": {"coding": [{"system": "https://codesystem.x12.org/005010/1365", "code": "48"}]},
                  "servicedDate": "2026-03-02",
                  "locationCodeableConcept": {"coding": [{"system": POS, "code": "21"}]}}],
    }
    for key, value in changes.items():
        if value is None:
            c.pop(key, None)
        else:
            c[key] = value
    return c


def patient(**changes) -> dict:
    return {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1959-05-01", **changes}


def coverage() -> dict:
    return {"resourceType": "Coverage", "id": "cv1", "status": "active", "beneficiary": {"reference": "Patient/p1"},
            "payor": [{"reference": "Organization/payer"}],
            "type": {"coding": [{"system": "https://nahdo.org/sopt", "code": "5"}]}}  # private insurance


def encounter(**changes) -> dict:
    return {"resourceType": "Encounter", "id": "enc-1", "status": "planned",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": "Patient/p1"}, **changes}


def vital(oid: str, loinc: str, value: float, unit: str, when: str = "2026-03-02T09:45:00+00:00") -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": loinc}]}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}


def iv_medication(mid: str = "ma1", when: str = "2026-03-02T10:15:00+00:00") -> dict:
    return {"resourceType": "MedicationAdministration", "id": mid, "status": "completed",
            "medicationCodeableConcept": {"text": "ceftriaxone"}, "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": when,
            "dosage": {"route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]}}}


def request(*clinical: dict, with_patient: dict | None = None, **claim_changes) -> dict:
    """A PAS request Bundle: the Claim first, then its patient, coverage and the clinical resources given."""
    resources = [claim(**claim_changes), with_patient or patient(), coverage(), *clinical]
    return {"resourceType": "Bundle", "type": "collection",
            "identifier": {"system": "http://example.org/SUBMITTER_TRANSACTION_IDENTIFIER", "value": "A12345"},
            "timestamp": "2026-03-02T09:30:00+00:00",
            "entry": [{"fullUrl": f"http://example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r}
                      for r in resources]}


def septic_request(**claim_changes) -> dict:
    """An inpatient request whose supporting data meet the adult admission criteria: pulse 150, IV antibiotics."""
    return request(vital("hr", "8867-4", 150, "/min"), iv_medication(), **claim_changes)


def review_actions(claim_response: dict) -> list[str]:
    """Every X12 306 review action code in a ClaimResponse, header and items."""
    found = []
    for adjudications in [claim_response.get("adjudication", [])] + \
            [i.get("adjudication", []) for i in claim_response.get("item", [])]:
        for adj in adjudications:
            for ext in adj.get("extension", []):
                if ext["url"] == REVIEW_ACTION:
                    for sub in ext["extension"]:
                        if sub["url"] == "code":
                            found += [c["code"] for c in sub["valueCodeableConcept"]["coding"]]
    return found


def copied(doc: dict) -> dict:
    return copy.deepcopy(doc)
