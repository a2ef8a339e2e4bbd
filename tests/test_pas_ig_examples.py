"""What the Da Vinci PAS guide's request examples ask of the intake: a Claim update is reviewed in place of the
request it replaces, an item the request cancels is not asked for, and a NUBC point of origin is an admit source."""

from __future__ import annotations

import pytest
from pas_support import POS, claim, encounter, request

from ur_engine.intake.fhir_files import bundle_items

PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
X12_1322 = "https://codesystem.x12.org/005010/1322"
CLAIM_ENCOUNTER = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Claim.encounter"


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
