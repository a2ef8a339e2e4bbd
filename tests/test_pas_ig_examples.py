"""The Da Vinci PAS guide's own request examples (Examples.fsh, translated into tests/data/fhir/pas-ig/): each is
answered by $submit with a valid PAS response Bundle, each reads through the intake without an error, and what
each pends for is named. Also what reading them taught the intake: a Claim update is reviewed in place of the
request it replaces, an item the request cancels is not asked for, and a NUBC point of origin is an admit source."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle
from pas_support import IG_REQUESTS, PAS_IG, POS, claim, encounter, load, request, review_actions

from ur_engine.intake.fhir_files import bundle_items

SUBMIT = "/fhir/Claim/$submit"
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
X12_1322 = "https://codesystem.x12.org/005010/1322"
CLAIM_ENCOUNTER = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Claim.encounter"

# (example, the stay it is reviewed as, outcome, review action, what it pends for). None of the guide's examples
# gives the patient a birth date or the Coverage a type, so each pends for the age and the line of business; the
# surgical admission names a level of care (an admission review at an inpatient hospital), the two homecare
# requests a post-acute setting (home health: a discharge review, tests/test_pas_home_health.py) — a referral and
# an office visit name neither.
EXAMPLES = [
    ("surgical-request-bundle.json", "SurgicalEncounterExample", "pend", "A4", ["age", "line_of_business"]),
    ("homecare-request-bundle.json", "HomecareAuthorizationExample", "pend", "A4", ["age", "line_of_business"]),
    ("homecare-update-request-bundle.json", "HomecareAuthorizationUpdateExample", "pend", "A4",
     ["age", "line_of_business"]),
    ("referral-request-bundle.json", "ReferralAuthorizationExample", "pend", "A4",
     ["age", "requested_level", "line_of_business"]),
    ("medical-services-request-bundle.json", "MedicalServicesAuthorizationExample", "pend", "A4",
     ["age", "requested_level", "line_of_business"]),
]


def test_the_table_covers_every_ig_request_example():
    assert sorted(e[0] for e in EXAMPLES) == sorted(IG_REQUESTS)


@pytest.mark.parametrize("name, reviewed_as, outcome, action, missing", EXAMPLES, ids=lambda v: str(v))
def test_each_ig_request_example_submitted_is_answered_with_a_valid_pas_response(client, name, reviewed_as, outcome,
                                                                                 action, missing):
    doc = load(PAS_IG / name)
    res = client.post(SUBMIT, data=json.dumps(doc), content_type="application/fhir+json")
    assert res.status_code == 200, res.get_data(as_text=True)[:2000]
    out = res.get_json()
    Bundle.model_validate(out)
    response = out["entry"][0]["resource"]
    asked = doc["entry"][0]["resource"]
    assert response["resourceType"] == "ClaimResponse"
    assert out["identifier"] == doc["identifier"]
    assert response["identifier"] == asked["identifier"]  # the Claim's trace number, echoed
    assert response["request"] == {"reference": f"Claim/{asked['id']}"}
    assert set(review_actions(response)) == {action}
    assert len(response["item"]) == len(asked["item"])


@pytest.mark.parametrize("name, reviewed_as, outcome, action, missing", EXAMPLES, ids=lambda v: str(v))
def test_each_ig_request_example_reads_through_ur_review_without_an_error_line(runner, name, reviewed_as, outcome,
                                                                               action, missing):
    from ur_engine.cli import main

    res = runner.invoke(main, ["review", str(PAS_IG / name)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.output.splitlines()]
    assert [(d["record_id"], d["outcome"], d["review_action"], d["missing"]) for d in lines] == \
        [(reviewed_as, outcome, action, missing)]


def test_the_surgical_admission_example_is_an_inpatient_stay_transferred_from_a_nursing_facility():
    rec = next(bundle_items(load(PAS_IG / "surgical-request-bundle.json"), "surgical.json")).record
    # The Encounter's class is AMB, but the Claim asks for an admission review at an inpatient hospital.
    assert rec["encounter"] == {"arrival_time": "2020-07-02T00:00:00+00:00", "requested_level": "inpatient",
                                "admit_source": "transfer"}  # NUBC point of origin 5: from a SNF, ICF or ALF
    assert rec["diagnoses"] == [{"code": "C18.9", "system": "icd10cm", "principal": True}]
    assert rec["procedures"] == [{"code": "33510", "system": "cpt", "status": "planned",
                                  "display": "Under Venous Grafting Only for Coronary Artery Bypass"}]


# --- what the examples taught the intake -----------------------------------------------------------------------

def _records(doc: dict) -> list[dict]:
    items = list(bundle_items(doc, "request.json"))
    assert [i.error for i in items] == [None] * len(items)
    return [i.record for i in items]


def test_a_claim_update_is_reviewed_in_place_of_the_request_it_replaces():
    prior = claim(id="req-0", identifier=[{"system": "urn:trnorg:1234567890", "value": "TRN-0000"}])
    update = claim(related=[{"claim": {"reference": "Claim/req-0"},
                             "relationship": {"coding": [{"code": "prior"}]}}])
    doc = request(prior)  # the update first, then what it replaces, as the guide's update example sends it
    doc["entry"][0]["resource"] = update
    assert [r["id"] for r in _records(doc)] == ["req-1"]
    del update["related"]  # two requests of their own: two stays
    assert [r["id"] for r in _records(doc)] == ["req-1", "req-0"]


CANCELLED = [
    {"modifierExtension": [{"url": PAS + "modifierextension-infoCancelled", "valueBoolean": True}]},
    {"extension": [{"url": PAS + "extension-certificationType",
                    "valueCodeableConcept": {"coding": [{"system": X12_1322, "code": "3", "display": "Cancel"}]}}]},
]


@pytest.mark.parametrize("cancel", CANCELLED, ids=["flagged cancelled by an update", "certification type Cancel"])
def test_an_item_the_request_cancels_is_neither_a_planned_procedure_nor_its_level(cancel):
    hcpcs = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
    item = {"sequence": 1, "productOrService": {"coding": [{"system": hcpcs, "code": "33510"}]},
            "locationCodeableConcept": {"coding": [{"system": POS, "code": "21"}]}}
    rec = _records(request(item=[{**item, **cancel}]))[0]
    assert "requested_level" not in rec["encounter"]
    assert rec.get("procedures", []) == []
    assert {"what": "33510", "where": "Claim/req-1.item[0]",
            "why": "cancelled by the request: not a planned procedure"}.items() <= next(
        n for n in rec["data_notices"] if n["where"] == "Claim/req-1.item[0]").items()
    kept = _records(request(item=[item]))[0]  # the same item, not cancelled
    assert kept["encounter"]["requested_level"] == "inpatient" and kept["procedures"][0]["code"] == "33510"


@pytest.mark.parametrize("system, code, source", [
    ("https://www.nubc.org/CodeSystem/PointOfOrigin", "2", "clinic"),
    ("https://www.nubc.org/CodeSystem/PointOfOrigin", "4", "transfer"),
    ("https://www.nubc.org/CodeSystem/PointOfOrigin", "5", "transfer"),
    ("https://www.nubc.org/CodeSystem/PointOfOrigin", "E", "transfer"),
    ("https://www.nubc.org/CodeSystem/PointOfOrigin", "1", "other"),
    ("https://www.nubc.org/CodeSystem/PointOfOrigin", "9", None),  # information not available
    ("http://terminology.hl7.org/CodeSystem/admit-source", "emd", "emergency"),
    ("https://www.nubc.org/CodeSystem/PointOfOrigin", "emd", None),  # a code is read in its own system
])
def test_an_admission_source_is_read_from_the_nubc_point_of_origin_or_the_fhir_admit_source(system, code, source):
    enc = encounter(period={"start": "2026-03-02T09:40:00+00:00"},
                    hospitalization={"admitSource": {"coding": [{"system": system, "code": code}]}})
    rec = _records(request(enc, extension=[{"url": CLAIM_ENCOUNTER,
                                            "valueReference": {"reference": "Encounter/enc-1"}}]))[0]
    assert rec["encounter"].get("admit_source") == source
