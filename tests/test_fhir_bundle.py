"""FHIR Bundles → records: every Bundle type and reference kind, which encounters are stays, coverage, the
lenient reading that sets a bad value aside with a notice, and real Synthea and Da Vinci PAS data."""

from __future__ import annotations

import contextlib
import copy
import gzip
import json

import pytest
from conftest import ROOT, leaves, with_values
from hypothesis import given, settings
from hypothesis import strategies as st

from ur_engine import record
from ur_engine.intake.fhir_files import bundle_items
from ur_engine.intake.fhir_sections import KEEPS_COMPARATOR
from ur_engine.intake.readers import detect_format, read_items

FHIR = ROOT / "tests" / "data" / "fhir"
SYNTHEA = FHIR / "synthea"
PAS_RI = FHIR / "pas-ri"
PAS_SURGICAL = FHIR / "pas-ig" / "surgical-request-bundle.json"

PAT = "urn:uuid:0c8a4a1e-0000-4000-8000-000000000001"
ENC = "urn:uuid:0c8a4a1e-0000-4000-8000-000000000002"


def entry(resource: dict, full_url: str | None = None) -> dict:
    e = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
    if full_url:
        e["fullUrl"] = full_url
    return e


def patient(**changes) -> dict:
    return {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1959-05-01", **changes}


def encounter(**changes) -> dict:
    enc = {"resourceType": "Encounter", "id": "e1", "status": "in-progress",
           "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
           "subject": {"reference": "Patient/p1"}, "period": {"start": "2026-03-02T09:40:00Z"}}
    return {k: v for k, v in {**enc, **changes}.items() if v is not None}


def coverage(**changes) -> dict:
    return {"resourceType": "Coverage", "id": "cv1", "status": "active", "beneficiary": {"reference": "Patient/p1"},
            "payor": [{"display": "Acme Health"}],
            "type": {"coding": [{"system": "https://nahdo.org/sopt", "code": "1"}]}, **changes}


def observation(oid: str = "o1", **changes) -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final", "encounter": {"reference": "Encounter/e1"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "effectiveDateTime": "2026-03-02T09:45:00Z",
            "valueQuantity": {"value": 118, "unit": "beats/min", "system": "http://unitsofmeasure.org",
                              "code": "/min"}, **changes}


def bundle(*resources, kind: str = "collection") -> dict:
    return {"resourceType": "Bundle", "type": kind,
            "entry": [r if "resource" in r else entry(r) for r in resources]}


def stays(doc: dict) -> list:
    return list(bundle_items(doc, "test.json"))


def one(doc: dict) -> dict:
    items = stays(doc)
    assert [i.error for i in items] == [None]
    return items[0].record


# --- Bundle types and references ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["transaction", "collection", "searchset", "batch", "document"])
def test_every_bundle_type_gives_the_same_stay(kind):
    rec = one(bundle(patient(), coverage(), encounter(), observation(), kind=kind))
    assert (rec["id"], rec["patient"]["age"], rec["coverage"]["line_of_business"]) == ("e1", 66, "medicare")
    assert [o["code"] for o in rec["observations"]] == ["8867-4"]


def _referenced(kind: str) -> dict:
    """A Bundle whose Encounter names its patient, and whose Observation its Encounter, by a ``kind`` reference."""
    pat, enc, obs = patient(), encounter(), observation()
    pat_entry, enc_entry = entry(pat), entry(enc)
    if kind == "urn:uuid":
        pat_entry["fullUrl"], enc_entry["fullUrl"] = PAT, ENC
        del pat["id"], enc["id"]  # a transaction's new resources may have no id: the fullUrl names them
        enc["subject"], obs["encounter"] = {"reference": PAT}, {"reference": ENC}
    elif kind == "absolute":
        pat_entry["fullUrl"] = "https://ehr.example/fhir/Patient/p1"
        enc["subject"] = {"reference": "https://ehr.example/fhir/Patient/p1"}
        obs["encounter"] = {"reference": "https://ehr.example/fhir/Encounter/e1/_history/3"}
    elif kind == "contained":
        enc["contained"] = [{**pat, "id": "pat"}]
        enc["subject"] = {"reference": "#pat"}
        return bundle(enc_entry, obs)
    return bundle(pat_entry, enc_entry, obs)


@pytest.mark.parametrize("kind", ["relative", "urn:uuid", "absolute", "contained"])
def test_references_of_every_kind_are_resolved(kind):
    rec = one(_referenced(kind))
    assert rec["patient"] == {"age": 66, "sex": "female"}
    assert [o["value"] for o in rec["observations"]] == [118]
    assert rec["id"] == ("0c8a4a1e-0000-4000-8000-000000000002" if kind == "urn:uuid" else "e1")


# --- which encounters are stays -----------------------------------------------------------------------------

@pytest.mark.parametrize("cls, level", [("IMP", "inpatient"), ("ACUTE", "inpatient"), ("NONAC", "inpatient"),
                                        ("OBSENC", "observation"), ("SS", "observation")])
def test_hospital_stay_classes_are_reviewed_at_their_level(cls, level):
    rec = one(bundle(patient(), coverage(), encounter(**{"class": {"code": cls}})))
    assert rec["encounter"]["requested_level"] == level


@pytest.mark.parametrize("cls", ["AMB", "EMER", "VR", "HH", "FLD", "PRENC"])
def test_visits_that_are_not_hospital_stays_are_counted_and_never_reviewed(tmp_path, cls):
    doc = bundle(patient(), coverage(), encounter(id="visit", **{"class": {"code": cls}}), encounter(),
                 observation(encounter={"reference": "Encounter/visit"}))
    path = tmp_path / "b.json"
    path.write_text(json.dumps(doc))
    stream = read_items([str(path)])
    assert [i.record["id"] for i in stream] == ["e1"]
    assert sum(stream.skipped.values()) == 1 and f"class {cls}" in next(iter(stream.skipped))
    assert stream.ignored == {"Observation: its encounter is not a hospital stay": 1}


def test_what_belongs_to_a_visit_that_is_not_a_stay_is_left_out_unread(tmp_path, monkeypatch):
    # A patient's record holds years of visits: reading each of their resources through the model cost more than
    # all the rest. They are counted and left out unread, while the stay's own are read as before.
    from ur_engine.intake import fhir, fhir_model

    read_ids = []

    def counted(resource, where=""):
        read_ids.append(resource.get("id"))
        return real(resource, where)

    real = fhir_model.read
    monkeypatch.setattr(fhir_model, "read", counted)
    monkeypatch.setattr(fhir, "read", counted)
    bad_value = {"valueQuantity": {"value": "fast", "unit": "/min"}}
    bill = {"resourceType": "ExplanationOfBenefit", "id": "eob-visit", "status": "active", "use": "claim",
            "item": [{"sequence": 1, "encounter": [{"reference": "Encounter/visit"}]}]}
    billing_claim = {**bill, "resourceType": "Claim", "id": "claim-visit"}
    doc = bundle(patient(), coverage(), encounter(id="visit", **{"class": {"code": "AMB"}}), encounter(),
                 observation("o-visit", encounter={"reference": "Encounter/visit"}, **bad_value),
                 {"resourceType": "Condition", "id": "c-visit", "encounter": {"reference": "Encounter/visit"},
                  "code": "not a concept"}, bill, billing_claim,
                 observation("o-stay", **bad_value))
    path = tmp_path / "b.json"
    path.write_text(json.dumps(doc))
    stream = read_items([str(path)])
    [item] = list(stream)
    assert {n["where"] for n in item.record["data_notices"]} == {"Observation/o-stay.valueQuantity.value",
                                                                 "Observation/o-stay.value[x]"}
    assert stream.ignored == {"Observation: its encounter is not a hospital stay": 1,
                              "Condition: its encounter is not a hospital stay": 1}
    assert sorted(read_ids) == ["cv1", "e1", "o-stay", "p1"]  # not the visit, nor anything of it


def test_a_resource_of_the_stay_its_model_cannot_read_is_counted_and_left_out(tmp_path):
    broken = {"identifier": [7] * 60}  # more values to set aside than one resource may lose
    doc = bundle(patient(), coverage(), encounter(id="visit", **{"class": {"code": "AMB"}}), encounter(),
                 observation("o-visit", encounter={"reference": "Encounter/visit"}, **broken),
                 observation("o-stay", **broken), observation("o-good"))
    path = tmp_path / "b.json"
    path.write_text(json.dumps(doc))
    stream = read_items([str(path)])
    [item] = list(stream)
    assert [o["value"] for o in item.record["observations"]] == [118]
    assert stream.ignored == {"Observation: its encounter is not a hospital stay": 1, "Observation: unreadable": 1}
    assert stream.notices["the resource cannot be read as FHIR R4 Observation"] == 1


def test_a_stay_reads_its_billing_statement_for_the_payer_and_not_the_visits_ones():
    def bill(bid: str, visit: str, payer: str) -> dict:
        return {"resourceType": "ExplanationOfBenefit", "id": bid, "status": "active", "use": "claim",
                "type": {"coding": [{"code": "institutional"}]}, "patient": {"reference": "Patient/p1"},
                "created": "2026-03-09", "insurer": {"display": payer}, "provider": {"display": "General"},
                "outcome": "complete",
                "insurance": [{"focal": True, "coverage": {"display": payer}}],
                "item": [{"sequence": 1, "encounter": [{"reference": f"Encounter/{visit}"}],
                          "productOrService": {"text": "stay"}}]}
    doc = bundle(patient(), encounter(id="visit", **{"class": {"code": "AMB"}}), encounter(),
                 bill("eob-visit", "visit", "Medicaid"), bill("eob-stay", "e1", "Medicare"))
    assert one(doc)["coverage"] == {"line_of_business": "medicare"}


def test_our_extension_names_the_requested_level_over_the_class():
    ext = [{"url": "https://ur-engine.org/fhir/StructureDefinition/requested-level", "valueCode": "critical"}]
    rec = one(bundle(patient(), coverage(), encounter(extension=ext, **{"class": {"code": "EMER"}})))
    assert rec["encounter"]["requested_level"] == "critical"


@pytest.mark.parametrize("link", ["emergency part of the stay", "stay part of the emergency", "pre-admission"])
def test_an_emergency_visit_that_is_part_of_a_stay_stays_attached_to_it(link):
    emer = encounter(id="ed", period={"start": "2026-03-02T06:15:00Z", "end": "2026-03-02T09:40:00Z"},
                     **{"class": {"code": "EMER"}})
    stay = encounter()
    if link == "emergency part of the stay":
        emer["partOf"] = {"reference": "Encounter/e1"}
    elif link == "stay part of the emergency":
        stay["partOf"] = {"reference": "Encounter/ed"}
    else:
        ident = {"system": "https://ehr.example/visit", "value": "V-88"}
        emer["hospitalization"] = {"preAdmissionIdentifier": ident}
        stay["hospitalization"] = {"preAdmissionIdentifier": ident}
    doc = bundle(patient(), coverage(), emer, stay, observation("o-ed", encounter={"reference": "Encounter/ed"}))
    rec = one(doc)
    # Time in the emergency department counts toward the stay's midnights (42 CFR 412.3(d)(1)).
    assert rec["encounter"]["arrival_time"] == "2026-03-02T06:15:00+00:00"
    assert rec["encounter"]["admit_source"] == "emergency"
    assert [o["code"] for o in rec["observations"]] == ["8867-4"]


# --- coverage -----------------------------------------------------------------------------------------------

SOPT = "https://nahdo.org/sopt"


@pytest.mark.parametrize("coverages, lob, noticed", [
    ([coverage()], "medicare", False),
    ([coverage(type={"coding": [{"system": SOPT, "code": "111"}]})], "medicare_advantage", False),
    ([coverage(type={"coding": [{"system": SOPT, "code": "2"}]})], "medicaid", False),
    ([coverage(type={"coding": [{"code": "medicaid"}]})], "medicaid", False),
    # "order" as text, as some exports write it: the primary coverage is still the one of order 1
    ([coverage(id="second", order="2", type={"coding": [{"system": SOPT, "code": "2"}]}),
      coverage(id="first", order="1")], "medicare", False),
    ([coverage(id="second", order=2, type={"coding": [{"system": SOPT, "code": "2"}]}),
      coverage(id="bad", order="first")], "medicaid", True),  # a bad order is set aside: that one sorts last
    ([coverage(type={"text": "Medicaid managed care"})], "medicaid", False),
    ([coverage(type=None, payor=[{"display": "MEDICARE PART A"}])], "medicare", False),
    ([coverage(type=None, payor=[{"reference": "Organization/org"}]),
      {"resourceType": "Organization", "id": "org", "name": "State Medicaid Agency"}], "medicaid", False),
    ([coverage(type=None, **{"class": [{"type": {"coding": [{"code": "plan"}]}, "value": "Medicare Advantage HMO"}]})],
     "medicare_advantage", False),
    # a payer's own plan code says nothing of the line of business: unknown, and the review pends for it
    ([coverage(type={"coding": [{"system": "http://example.org/plans", "code": "GOLD"}]})], None, True),
    ([], None, True),  # no payer named anywhere: unknown, and the review pends for it
    ([coverage(status="cancelled")], None, True),
])
def test_coverage_gives_the_line_of_business_through_the_mapping_table(coverages, lob, noticed):
    rec = one(bundle(patient(), *coverages, encounter()))
    assert rec["coverage"].get("line_of_business") == lob
    assert bool(rec.get("data_notices")) is noticed


@pytest.mark.parametrize("insurance, contained, lob", [
    ({"coverage": {"display": "medicare"}}, None, "medicare"),
    ({"coverage": {"display": "private"}}, None, "commercial"),
    ({"coverage": {"reference": "#coverage"}},
     {"resourceType": "Coverage", "id": "coverage", "status": "active", "type": {"text": "medicaid"},
      "beneficiary": {"reference": "Patient/p1"}, "payor": [{"display": "medicaid"}]}, "medicaid"),
])
def test_a_claim_of_the_stay_names_the_payer_when_there_is_no_coverage(insurance, contained, lob):
    claim = {"resourceType": "ExplanationOfBenefit", "id": "eob", "status": "active", "use": "claim",
             "type": {"coding": [{"code": "institutional"}]}, "patient": {"reference": "Patient/p1"},
             "created": "2026-03-03T00:00:00Z", "insurer": {"display": "x"}, "provider": {"display": "x"},
             "outcome": "complete", "insurance": [{"focal": True, **insurance}],
             "item": [{"sequence": 1, "productOrService": {"text": "stay"}, "encounter": [{"reference": "Encounter/e1"}]}]}
    if contained:
        claim["contained"] = [contained]
    rec = one(bundle(patient(), encounter(), claim))
    assert rec["coverage"]["line_of_business"] == lob and "data_notices" not in rec


# --- lenient reading, notices, sections -------------------------------------------------------------------------

def test_a_value_the_model_rejects_is_set_aside_and_the_rest_of_the_resource_kept():
    bad = observation("o2", valueQuantity={"value": "abc", "unit": "/min"}, category="vital-signs")
    rec = one(bundle(patient(), coverage(), encounter(), observation(), bad))
    assert [o["value"] for o in rec["observations"]] == [118]
    where = {n["where"]: n for n in rec["data_notices"]}
    assert where["Observation/o2.valueQuantity.value"]["what"] == "abc"
    assert "FHIR R4 model" in where["Observation/o2.valueQuantity.value"]["why"]
    assert where["Observation/o2.category"]["what"] == "vital-signs"
    record.parse(rec)


def test_an_stu3_status_text_is_set_aside_and_the_condition_kept():
    cond = {"resourceType": "Condition", "id": "c1", "clinicalStatus": "active", "subject": {"reference": "Patient/p1"},
            "encounter": {"reference": "Encounter/e1"},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J18.9"}]}}
    rec = one(bundle(patient(), coverage(), encounter(), cond))
    assert rec["diagnoses"] == [{"code": "J18.9", "system": "icd10cm", "principal": False}]
    assert rec["data_notices"][0]["where"] == "Condition/c1.clinicalStatus"


def test_a_missing_required_element_is_read_as_unknown_with_a_notice():
    obs = observation()
    del obs["status"]  # required by FHIR R4
    rec = one(bundle(patient(), coverage(), encounter(), obs))
    assert [o["value"] for o in rec["observations"]] == [118]
    assert {"what": None, "where": "Observation/o1.status",
            "why": "required by FHIR R4 but missing: read as unknown"} in rec["data_notices"]


def test_a_choice_given_two_ways_is_unknown_and_the_rest_of_the_observation_kept():
    two = observation("o2", valueString="118", effectivePeriod={"start": "2026-03-02T09:50:00Z"})
    rec = one(bundle(patient(), coverage(), encounter(), observation(), two))
    assert [o["value"] for o in rec["observations"]] == [118]  # o2's value is unknown: neither is taken
    assert {n["where"] for n in rec["data_notices"]} == {
        "Observation/o2.valueQuantity", "Observation/o2.valueString", "Observation/o2.effectiveDateTime",
        "Observation/o2.effectivePeriod", "Observation/o2.value[x]"}


def test_a_required_choice_missing_is_read_as_unknown():
    given = {"resourceType": "MedicationAdministration", "id": "m1", "status": "completed",
             "subject": {"reference": "Patient/p1"}, "context": {"reference": "Encounter/e1"},
             "dosage": {"route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]}}}
    rec = one(bundle(patient(), coverage(), encounter(), given))
    assert rec["treatments"] == [{"type": "iv_medication"}]
    assert {n["where"] for n in rec["data_notices"]} == {"MedicationAdministration/m1.medication[x]",
                                                         "MedicationAdministration/m1.effective[x]"}


@pytest.mark.parametrize("conditions, diagnoses", [
    ([], []),  # no Condition for the stay: the section is there and empty
    ([{"text": "pneumonia, per the nurse"}], None),  # every Condition unreadable: unknown, so left out
    ([{"text": "pneumonia"}, {"coding": [{"system": "http://snomed.info/sct", "code": "233604007"}]}],
     [{"code": "233604007", "system": "snomed", "principal": False}]),
])
def test_a_section_emptied_because_every_entry_was_unreadable_is_left_out(conditions, diagnoses):
    other = {"resourceType": "Condition", "id": "other", "subject": {"reference": "Patient/p1"},
             "code": {"text": "another stay's"}, "encounter": {"reference": "Encounter/elsewhere"}}
    conds = [{"resourceType": "Condition", "id": f"c{i}", "subject": {"reference": "Patient/p1"}, "code": code,
              "encounter": {"reference": "Encounter/e1"}} for i, code in enumerate(conditions)]
    rec = one(bundle(patient(), coverage(), encounter(), other, *conds))
    assert rec.get("diagnoses") == diagnoses
    record.parse(rec)


def test_observations_keep_code_value_unit_as_written_and_time():
    rec = one(bundle(patient(), coverage(), encounter(),
                     observation(valueQuantity={"value": 86, "unit": "mm Hg"},
                                 code={"coding": [{"system": "http://loinc.org", "code": "8480-6"}]})))
    assert rec["observations"] == [{"code": "8480-6", "value": 86, "time": "2026-03-02T09:45:00+00:00",
                                    "unit": "mm Hg"}]


def test_a_value_with_a_comparator_is_kept_with_it_or_set_aside_never_read_as_exact():
    q = {"value": 0.01, "comparator": "<", "unit": "ng/mL"}
    rec = one(bundle(patient(), coverage(), encounter(), observation(valueQuantity=q)))
    if KEEPS_COMPARATOR:
        assert rec["observations"][0]["comparator"] == "<"
    else:
        assert rec.get("observations") is None  # its only observation set aside: unknown
        assert rec["data_notices"][0]["where"] == "Observation/o1.valueQuantity.comparator"


@pytest.mark.parametrize("value", [{"valueString": "sinus rhythm"},
                                   {"valueCodeableConcept": {"text": "positive"}}, {"valueBoolean": True}])
def test_non_numeric_observations_are_left_out_with_a_notice(value):
    obs = {k: v for k, v in observation(oid="o2", **value).items() if k != "valueQuantity"}
    rec = one(bundle(patient(), coverage(), encounter(), observation(), obs))
    assert len(rec["observations"]) == 1
    assert rec["data_notices"] == [{"what": next(iter(value.values())) if "valueCodeableConcept" not in value
                                    else "positive", "where": "Observation/o2.value[x]", "why": "not a numeric value"}]


def _fuzzable(doc: dict) -> list[tuple]:
    """Every element of every resource, except what makes an Encounter a stay (its id, class, level extension)."""
    keep = {"id", "class", "extension", "resourceType"}
    return [p for p in leaves(doc) if len(p) >= 4 and p[2] == "resource"
            and not (doc["entry"][p[1]]["resource"]["resourceType"] == "Encounter" and p[3] in keep)]


with gzip.open(SYNTHEA / "Dino_Barton_f24d7951.json.gz", "rt") as _f:
    DINO = json.load(_f)
DINO_PATHS = _fuzzable(DINO)
BAD_VALUES = [None, "", "x", 0, -1, 1.5, True, [], {}, [None], {"a": 1}, "2020-13-45", "9" * 300,
              {"reference": 3}, [{"resourceType": 7}], {"resourceType": None}]


@settings(max_examples=120, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.sampled_from(DINO_PATHS), st.sampled_from(BAD_VALUES)), min_size=1, max_size=3))
def test_a_bad_value_anywhere_never_loses_a_stay(changes):
    doc = with_values(DINO, changes)
    items = stays(doc)
    assert [i.record["id"] for i in items if i.record] == ["706e8981-b8d4-4392-90f3-fe423a74411a",
                                                         "58268da8-da8a-4be0-a591-22c00b8126e4"]
    for item in items:
        try:
            record.parse(item.record)
        except record.RecordErrors as exc:  # a field the record needs was set aside: a notice says which
            assert item.record.get("data_notices"), exc


def test_stays_come_in_source_order_whatever_resource_asks_for_them():
    claim = {"resourceType": "Claim", "id": "pa-1", "status": "active", "use": "preauthorization",
             "type": {"coding": [{"code": "institutional"}]}, "patient": {"reference": "Patient/p1"},
             "created": "2026-03-01T10:00:00Z", "provider": {"display": "x"}, "priority": {"coding": [{"code": "normal"}]},
             "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cv1"}}],
             "item": [{"sequence": 1, "productOrService": {"coding": [
                 {"system": "http://www.ama-assn.org/go/cpt", "code": "27447"}]},
                 "servicedDate": "2026-03-09"}]}
    items = stays(bundle(patient(), claim, coverage(), encounter()))
    assert [i.record["id"] for i in items] == ["pa-1", "e1"]
    assert items[0].record["procedures"] == [{"code": "27447", "system": "cpt", "status": "planned"}]
    assert items[0].record["coverage"] == {"line_of_business": "medicare"}


def test_a_bundle_without_stays_says_there_is_nothing_to_review():
    items = stays(bundle(patient(), coverage()))
    assert len(items) == 1 and "nothing to review" in items[0].error.message


# --- real data: Synthea, Da Vinci PAS -----------------------------------------------------------------------

def test_synthea_bundles_give_their_inpatient_stays_and_skip_their_visits():
    paths = sorted(str(p) for p in SYNTHEA.glob("*.json*"))
    assert [detect_format(p) for p in paths] == ["bundle", "bundle"]  # .json.gz and .json
    stream = read_items(paths)
    items = list(stream)
    assert [i.error for i in items] == [None, None, None]
    for item in items:
        record.parse(item.record)
    recent = next(i.record for i in items if i.record["id"] == "58268da8-da8a-4be0-a591-22c00b8126e4")
    assert recent["patient"] == {"age": 79, "sex": "male"}
    assert recent["coverage"] == {"line_of_business": "medicare"}  # from the stay's Claim: Synthea has no Coverage
    assert {o["code"] for o in recent["observations"]} >= {"2947-0", "6298-4", "38483-4"}  # blood twins, as sent
    assert recent["procedures"][0] == {"code": "433236007", "system": "snomed", "status": "completed",
                                       "display": "Transthoracic echocardiography",
                                       "time": "2021-02-27T15:24:23+00:00"}
    assert stream.skipped == {"Encounter class AMB: ambulatory visit, not a hospital stay": 4,
                              "Encounter class EMER: emergency visit, not a hospital stay": 3}


def _pas_requests() -> list:
    found = []
    for path in sorted(PAS_RI.glob("*.json")):
        doc = json.loads(path.read_text())
        first = (doc.get("entry") or [{}])[0].get("resource", {}) if doc.get("resourceType") == "Bundle" else {}
        if first.get("resourceType") == "Claim":
            found.append(path)
    return found


def test_the_pas_reference_implementation_has_request_bundles_to_read():
    assert [p.name for p in _pas_requests()] == ["bundle-items.json", "bundle-prior-auth.json", "bundle-request.json",
                                                 "bundle-with-only-claim.json", "claim-complete.json"]


@pytest.mark.parametrize("path", _pas_requests(), ids=lambda p: p.name)
def test_every_pas_reference_request_bundle_is_read_into_a_record(path):
    items = list(read_items([str(path)]))
    assert len(items) == 1 and items[0].error is None
    rec = items[0].record
    claim = json.loads(path.read_text())["entry"][0]["resource"]
    assert rec["id"] == claim["id"]
    # None of them names an admission or service date: the arrival is the day the request was made, and a notice
    # says so (the time of day is not guessed: 00:00 UTC, said too).
    assert rec["encounter"]["arrival_time"] == f"{claim['created'][:10]}T00:00:00+00:00"
    arrival = next(n for n in rec["data_notices"] if n["where"] == f"Claim/{claim['id']}.created")
    assert arrival["kind"] == "mapped" and "date without a time of day" in arrival["why"]


def test_pas_request_codes_of_every_system_are_kept():
    by_name = {p.name: read_items([str(p)]).__next__().record for p in _pas_requests()}
    assert by_name["bundle-request.json"]["diagnoses"] == [{"code": "410.90", "system": "icd9cm", "principal": True}]
    assert [d["code"] for d in by_name["bundle-prior-auth.json"]["diagnoses"]] == ["J44.9", "R09.02", "E11.21"]
    assert by_name["bundle-items.json"]["diagnoses"][0]["system"] == "snomed"
    # G0154 filed under the CPT system is a HCPCS Level II code by its form
    assert [(p["code"], p["system"], p["status"]) for p in by_name["bundle-items.json"]["procedures"]] == \
        [("G0154", "hcpcs", "planned"), ("B4184", "hcpcs", "planned")]


def test_a_pas_admission_review_request_asks_for_inpatient_care(library):
    rec = next(read_items([str(PAS_SURGICAL)])).record
    assert rec["id"] == "SurgicalEncounterExample"  # the Encounter the Claim asks about
    # Its Encounter's class is AMB, but the Claim asks for an admission review at an inpatient hospital.
    assert rec["encounter"]["requested_level"] == "inpatient"
    assert rec["diagnoses"] == [{"code": "C18.9", "system": "icd10cm", "principal": True}]
    proc = rec["procedures"][0]
    assert (proc["code"], proc["system"], proc["status"]) == ("33510", "cpt", "planned")
    stay = record.parse({**copy.deepcopy(rec), "patient": {"age": 70},
                         "encounter": {**rec["encounter"], "arrival_time": "2026-07-02T07:00:00Z"}})
    from datetime import date
    assert library.valuesets["inpatient-only"].contains(stay.procedures[0].code, date(2026, 7, 2))


# --- the commands --------------------------------------------------------------------------------------------

def test_ur_review_gives_one_decision_per_stay_of_a_bundle(runner, tmp_path):
    from ur_engine.cli import main

    path = tmp_path / "patient.json"
    with gzip.open(SYNTHEA / "Dino_Barton_f24d7951.json.gz", "rt") as f:
        path.write_text(f.read())
    res = runner.invoke(main, ["review", str(path)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.output.splitlines()]
    assert [d["record_id"] for d in lines] == ["706e8981-b8d4-4392-90f3-fe423a74411a",
                                               "58268da8-da8a-4be0-a591-22c00b8126e4"]
    assert all(d["outcome"] in ("approve", "pend", "alternative_setting") for d in lines)


def test_ur_review_pends_a_pas_request_naming_what_it_leaves_unknown(runner):
    from ur_engine.cli import main

    res = runner.invoke(main, ["review", str(PAS_RI / "bundle-request.json")])
    assert res.exit_code == 0, res.output
    line = json.loads(res.output.splitlines()[0])
    # No birth date and no level of care: reviewed all the same, pended for both, never refused nor guessed.
    assert (line["outcome"], line["review_action"], line["missing"]) == ("pend", "A4", ["age", "requested_level", "line_of_business"])
    assert line["requested"] is None and line["recommended"] is None
    assert "Patient's age" in line["reasons"][0] and "Level of care requested" in line["reasons"][0]
    assert any(n["where"] == "Patient/1.birthDate" for n in line["data_notices"])


def test_ur_batch_reads_gzip_bundles(runner, tmp_path):
    from ur_engine.cli import main

    out = tmp_path / "d.ndjson"
    res = runner.invoke(main, ["batch", str(SYNTHEA / "Dino_Barton_f24d7951.json.gz"),
                               str(SYNTHEA / "Trent_Jaskolski_75b8811d.json"), "--out", str(out), "--workers", "1"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3 and all(d["outcome"] != "error" for d in lines)


def test_the_corpus_figures_count_stays_skips_codes_and_notices():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_corpus", ROOT / "bench" / "corpus.py")
    corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus)
    figures = corpus.measure(corpus.inputs_of(SYNTHEA) + corpus.inputs_of(PAS_RI))
    # Every PAS request is a valid record now: what it leaves out (age, level) pends the review, not the record.
    assert (figures["stays"], figures["stays_valid"], figures["skipped_total"]) == (3 + 5, 3 + 5, 7)
    assert figures["codes"]["diagnoses"] == {"snomed": 5, "icd10cm": 3, "icd9cm": 1}
    assert figures["stays_invalid_by_field"] == {}
    assert figures["notices_in_records"]["no requested level of care"] == 5
    assert figures["notices_in_records"]["the arrival time is taken from the day the request was made"] == 5


def test_a_stay_with_thousands_of_values_set_aside_still_fits_the_contract(monkeypatch):
    from ur_engine.intake import fhir

    monkeypatch.setattr(fhir, "MAX_NOTICES", 5)
    texts = [observation(f"o{i}", valueString=f"reading {i}") for i in range(8)]
    for o in texts:
        del o["valueQuantity"]
    rec = one(bundle(patient(), coverage(), encounter(), observation(), *texts))
    assert len(rec["data_notices"]) == 5
    assert rec["data_notices"][-1] == {"what": 4, "where": "Encounter/e1",
                                       "why": "4 more values set aside; stream.notices counts them all"}
    record.parse(rec)


def test_ur_review_reads_a_one_line_bundle_on_standard_input(runner):
    from ur_engine.cli import main

    doc = bundle(patient(), coverage(), encounter(), encounter(id="visit", **{"class": {"code": "AMB"}}))
    res = runner.invoke(main, ["review", "-"], input=json.dumps(doc) + "\n")
    assert res.exit_code == 0, res.output
    assert [json.loads(line)["record_id"] for line in res.output.splitlines()] == ["e1"]


@contextlib.contextmanager
def _read_eagerly():
    """Every resource read through its model as it is added, as before reading was deferred."""
    from ur_engine.intake import fhir

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fhir, "DEFERRED", frozenset())
        mp.setattr(fhir, "_plain_visit", lambda raw: None)
        yield


ALL_PATHS = [p for p in leaves(DINO) if len(p) >= 4 and p[2] == "resource"]  # Encounters' class, links and all


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), st.sampled_from(BAD_VALUES + ["AMB", "IMP", "#e1"])),
                min_size=1, max_size=4))
def test_leaving_visits_unread_changes_no_record(changes):
    # What is left unread is decided on the raw resources: whatever they hold, the stays come out as they do when
    # every resource is read through its model first.
    doc = with_values(DINO, changes)
    deferred = [(i.position, i.record, i.error and i.error.as_dict()) for i in stays(copy.deepcopy(doc))]
    with _read_eagerly():
        eager = [(i.position, i.record, i.error and i.error.as_dict()) for i in stays(doc)]
    assert deferred == eager


def test_an_extension_without_its_url_is_set_aside_and_the_stay_still_comes():
    # FHIR requires an extension's url; without one the model could read nothing of the Encounter, and the stay
    # was lost for one bad element.
    rec = one(bundle(patient(), coverage(), encounter(extension=[{"valueCode": "inpatient"}]), observation()))
    assert rec["encounter"]["requested_level"] == "inpatient"  # from the class
    assert rec["data_notices"] == [{"what": '{"valueCode":"inpatient"}', "where": "Encounter/e1.extension[0]",
                                    "why": "its url, which FHIR R4 requires, is missing"}]
