"""Da Vinci PAS requests for home health care are post-acute reviews: the PAS guide's homecare examples, and any
request whose items ask for X12 service type 42 Home Health Care or that carries the home health care information
extension, are judged by the home-health rule set (42 CFR 409.42, 424.22) as a discharge review of the setting
home_health — never pended for a hospital level of care. What the request states of the patient's function is
read; what it does not state is asked for, in words."""

from __future__ import annotations

import copy
import json

import pytest
from pas_support import PAS_IG, PAS_RI, RI_REQUESTS, load, request, review_actions

from ur_engine.intake.fhir_files import bundle_items
from ur_engine.intake.normalise import review

SUBMIT = "/fhir/Claim/$submit"
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
HOME_HEALTH_INFO = PAS + "extension-homeHealthCareInformation"
X12_1365 = "https://codesystem.x12.org/005010/1365"
X12_1525 = "https://codesystem.x12.org/005010/1525"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
INFO = "https://ur-engine.org/fhir/CodeSystem/review-information"
FINDING = "https://ur-engine.org/fhir/CodeSystem/finding"
SKILLED_NEED = "https://ur-engine.org/fhir/CodeSystem/skilled-need"
HOMECARE = ("homecare-request-bundle.json", "homecare-update-request-bundle.json")
HOME_HEALTH_FACTS = {"homebound", "skilled_need", "face_to_face_before_start_of_care"}


def records(doc: dict) -> list[dict]:
    items = list(bundle_items(doc, "request.json"))
    assert [i.error for i in items] == [None] * len(items)
    return [i.record for i in items]


def resource(doc: dict, rtype: str, rid: str | None = None) -> dict:
    return next(e["resource"] for e in doc["entry"]
                if e["resource"]["resourceType"] == rtype and (rid is None or e["resource"]["id"] == rid))


def info(n: int, kind: str, **value) -> dict:
    return {"sequence": n, "category": {"coding": [{"system": INFO, "code": kind}]}, **value}


def stated(homebound=True, need="intermittent", seen="2026-03-05", related=True) -> list[dict]:
    """The patient's function as a request states it: homebound, how often skilled care is needed, the date of the
    face-to-face encounter, and whether that encounter was about the reason for home health."""
    out = []
    if homebound is not None:
        out.append(info(len(out) + 1, "homebound", valueBoolean=homebound))
    if need is not None:
        out.append(info(len(out) + 1, "skilled-need", code={"coding": [{"system": SKILLED_NEED, "code": need}]}))
    if seen is not None:
        out.append(info(len(out) + 1, "face-to-face", timingDate=seen))
    if related is not None:
        out.append(info(len(out) + 1, "finding", valueBoolean=related,
                        code={"coding": [{"system": FINDING, "code": "face_to_face_related_to_home_health"}]}))
    return out


def medicare_homecare(supporting: list[dict] | None = None, start: str = "2026-03-10",
                      name: str = "homecare-request-bundle.json") -> dict:
    """The guide's homecare request as a Medicare beneficiary born in 1950 would send it in March 2026 (the example
    gives no birth date and no line of business, and dates from 2005, before the rules in effect)."""
    doc = copy.deepcopy(load(PAS_IG / name))
    asked = resource(doc, "Claim")  # the request (or the update: the first Claim of the Bundle)
    asked["created"] = "2026-03-02T11:01:00-05:00"
    for ext in asked.get("extension", []):
        if ext["url"] == HOME_HEALTH_INFO:
            next(s for s in ext["extension"] if s["url"] == "date")["valueDate"] = start
    if supporting:
        asked["supportingInfo"] = supporting
    resource(doc, "Patient")["birthDate"] = "1950-04-01"
    resource(doc, "Coverage")["type"] = {"coding": [{"system": "https://nahdo.org/sopt", "code": "1"}]}  # Medicare
    return doc


def decide(engine, doc: dict):
    return review(engine, records(doc)[0])


# --- the guide's homecare examples, as they are ------------------------------------------------------------------

@pytest.mark.parametrize("name", HOMECARE)
def test_pas_homecare_request_is_reviewed_as_home_health(engine, name):
    rec = records(load(PAS_IG / name))[0]
    assert rec["review_type"] == "discharge"
    assert rec["discharge_plan"]["requested_setting"] == "home_health"
    assert "requested_level" not in rec["encounter"]
    assert not any("no requested level of care" in n["why"] for n in rec.get("data_notices", []))
    decision = review(engine, rec).to_dict()
    assert (decision["review_type"], decision["requested"], decision["outcome"], decision["review_action"]) == \
        ("discharge", "home_health", "pend", "A4")
    # What the example lacks — a birth date — is what it pends for; never a level of care.
    assert decision["missing"] == ["age", "line_of_business"]  # the Coverage names no plan type


def test_the_homecare_start_date_is_the_planned_start_of_care_and_the_update_names_none():
    first = records(load(PAS_IG / "homecare-request-bundle.json"))[0]
    assert first["discharge_plan"] == {"requested_setting": "home_health", "planned_date": "2005-05-02"}
    # The update replaces the request and does not repeat the home health start date: the start is unknown.
    update = records(load(PAS_IG / "homecare-update-request-bundle.json"))[0]
    assert update["discharge_plan"] == {"requested_setting": "home_health"}
    assert any(n["why"].startswith("no start of care") for n in update["data_notices"])
    # A post-acute review is made when the request is: arrival and review at Claim.created.
    assert first["encounter"] == {"arrival_time": "2019-07-20T11:01:00+05:00", "review_time": "2019-07-20T11:01:00+05:00"}
    assert "function" not in first and "findings" not in first  # the example states none: unknown, not false


# --- which requests are home health ------------------------------------------------------------------------------

def _hh_item(**elements) -> dict:
    item = {"sequence": 1, "productOrService": {"coding": [{"system": HCPCS, "code": "G0154"}]},
            "servicedDate": "2026-03-09"}
    item.update(elements)
    return item


CATEGORY_42 = {"coding": [{"system": X12_1365, "code": "42", "display": "Home Health Care"}]}


@pytest.mark.parametrize("why, changes, setting", [
    ("an item's category is X12 service type 42 Home Health Care", {"item": [_hh_item(category=CATEGORY_42)]},
     "home_health"),
    ("an item's service is X12 service type 42", {"item": [_hh_item(productOrService=CATEGORY_42)]}, "home_health"),
    ("the Claim carries the home health care information extension",
     {"item": [_hh_item()], "extension": [{"url": HOME_HEALTH_INFO, "extension": [
         {"url": "prognosis", "valueCodeableConcept": {"coding": [{"system": "https://codesystem.x12.org/005010/923",
                                                                    "code": "1"}]}},
         {"url": "date", "valueDate": "2026-03-12"}]}]}, "home_health"),
    ("a skilled nursing visit (G0154) alone: home health or hospice", {"item": [_hh_item()]}, None),
    ("a place of service 12 Home alone: equipment and visits are given at home too",
     {"item": [_hh_item(locationCodeableConcept={"coding": [{"system": POS, "code": "12"}]})]}, None),
    ("home health asked for beside an inpatient stay: the stay is reviewed",
     {"item": [_hh_item(category=CATEGORY_42), _hh_item(sequence=2, locationCodeableConcept={
         "coding": [{"system": POS, "code": "21"}]})]}, None),
    ("the only home health item is cancelled", {"item": [_hh_item(category=CATEGORY_42, extension=[
        {"url": PAS + "extension-certificationType",
         "valueCodeableConcept": {"coding": [{"system": "https://codesystem.x12.org/005010/1322", "code": "3"}]}}])]},
     None),
], ids=lambda v: v if isinstance(v, str) else None)
def test_a_request_is_a_home_health_review_only_when_it_asks_for_home_health(why, changes, setting):
    rec = records(request(**changes))[0]
    if setting is None:
        assert rec["review_type"] == "admission" and "discharge_plan" not in rec
    else:
        assert rec["review_type"] == "discharge"
        assert rec["discharge_plan"]["requested_setting"] == setting
        from_extension = "extension" in changes
        assert rec["discharge_plan"]["planned_date"] == ("2026-03-12" if from_extension else "2026-03-09")
        # a stand-in for the start of care is said in a notice; the home health start date is the start of care
        stand_ins = [n["where"] for n in rec["data_notices"] if n["why"].startswith("the planned start of care")]
        assert stand_ins == ([] if from_extension else ["Claim/req-1.item[0].servicedDate"])


def test_an_inpatient_pas_request_is_unchanged(engine):
    rec = records(load(PAS_IG / "surgical-request-bundle.json"))[0]
    assert rec["review_type"] == "admission" and "discharge_plan" not in rec
    assert rec["encounter"]["requested_level"] == "inpatient"


@pytest.mark.parametrize("name", RI_REQUESTS)
def test_the_reference_implementations_requests_are_not_home_health(name):
    # bundle-items asks for G0154 and B4184 like the guide's homecare example, but names no service type or home
    # health information: it stays an admission review pending its level.
    for rec in records(load(PAS_RI / name)):
        assert rec["review_type"] == "admission" and "discharge_plan" not in rec


# --- what the request states of the patient's function ---------------------------------------------------------------

@pytest.mark.parametrize("name", HOMECARE)
def test_a_medicare_homecare_request_stating_nothing_of_the_patient_asks_for_the_home_health_criteria(engine, name):
    decision = decide(engine, medicare_homecare(name=name)).to_dict()
    assert (decision["review_type"], decision["requested"], decision["outcome"]) == ("discharge", "home_health", "pend")
    assert "post-acute-home-health" in decision["rules"]["rulesets"]
    assert HOME_HEALTH_FACTS <= set(decision["missing"]) and "requested_level" not in decision["missing"]
    assert "Confined to the home (homebound)" in [w["text"] for w in decision["missing_info"]]


def test_the_function_a_homecare_request_states_is_read():
    rec = records(medicare_homecare(stated()))[0]
    assert rec["function"] == {"homebound": True, "skilled_need": "intermittent", "face_to_face_date": "2026-03-05"}
    assert rec["findings"] == {"face_to_face_related_to_home_health": True}
    assert rec["coverage"]["line_of_business"] == "medicare" and rec["patient"]["age"] == 75


def test_a_homebound_patient_needing_intermittent_nursing_seen_face_to_face_is_approved_for_home_health(engine):
    decision = decide(engine, medicare_homecare(stated())).to_dict()
    assert (decision["outcome"], decision["requested"], decision["supported"], decision["review_action"]) == \
        ("approve", "home_health", "home_health", "A1")
    assert "post-acute-home-health" in decision["rules"]["rulesets"]
    met = {c["id"] for c in decision["criteria"] if c["status"] == "met"}
    assert {"HH-HOMEBOUND", "HH-INTERMITTENT-NURSING", "HH-F2F-TIMING", "HH-F2F-RELATED"} <= met


@pytest.mark.parametrize("left_out, missing", [
    ("homebound", "homebound"),
    ("need", "skilled_need"),
    ("seen", "face_to_face_before_start_of_care"),
])
def test_what_a_homecare_request_does_not_state_pends_naming_it(engine, left_out, missing):
    decision = decide(engine, medicare_homecare(stated(**{left_out: None}))).to_dict()
    assert (decision["outcome"], decision["requested"]) == ("pend", "home_health")
    assert "post-acute-home-health" in decision["rules"]["rulesets"]
    assert missing in decision["missing"] and "requested_level" not in decision["missing"]


def test_a_face_to_face_encounter_long_before_the_start_of_care_is_not_met(engine):
    decision = decide(engine, medicare_homecare(stated(seen="2025-10-01"))).to_dict()  # 160 days before
    assert decision["outcome"] == "pend"
    assert next(c["status"] for c in decision["criteria"] if c["id"] == "HH-F2F-TIMING") == "not_met"


@pytest.mark.parametrize("bad, where", [
    (info(1, "homebound", valueString="yes"), "supportingInfo[0].valueBoolean"),
    (info(1, "skilled-need", code={"coding": [{"system": SKILLED_NEED, "code": "weekly"}]}), "supportingInfo[0].code"),
    (info(1, "face-to-face"), "supportingInfo[0].timing[x]"),
    (info(1, "mobility", valueBoolean=True), "supportingInfo[0].category"),
])
def test_a_statement_that_cannot_be_read_is_set_aside_with_a_notice_and_stays_unknown(bad, where):
    rec = records(medicare_homecare([bad]))[0]
    assert "function" not in rec
    assert any(n["where"] == f"Claim/HomecareAuthorizationExample.{where}" for n in rec["data_notices"])


# --- through the API ----------------------------------------------------------------------------------------------

def _submit(client, doc: dict) -> dict:
    res = client.post(SUBMIT, data=json.dumps(doc), content_type="application/fhir+json")
    assert res.status_code == 200, res.get_data(as_text=True)[:2000]
    return res.get_json()["entry"][0]["resource"]


def test_a_submitted_homecare_request_is_pended_asking_for_the_home_health_information(client):
    response = _submit(client, medicare_homecare())
    assert set(review_actions(response)) == {"A4"}
    asked = next(r for r in response["contained"] if r["resourceType"] == "CommunicationRequest")
    payload = " ".join(p["contentString"] for p in asked["payload"])
    assert "homebound" in payload and "face-to-face" in payload.lower() and "skilled" in payload.lower()
    assert "Level of care requested" not in payload


def test_the_guides_homecare_example_submitted_asks_for_what_it_lacks_not_a_level(client):
    response = _submit(client, load(PAS_IG / "homecare-request-bundle.json"))
    assert set(review_actions(response)) == {"A4"}
    asked = next(r for r in response["contained"] if r["resourceType"] == "CommunicationRequest")
    assert [p["contentString"] for p in asked["payload"]] == [
        "Please send: Patient's age at arrival (the birth date): it decides which criteria apply",
        "Please send: Coverage: the line of business (Medicare, Medicaid, commercial…): it decides which payment "
        "rules apply"]


def test_a_submitted_homecare_request_stating_what_the_rules_need_is_certified(client):
    response = _submit(client, medicare_homecare(stated()))
    assert set(review_actions(response)) == {"A1"}
    assert "contained" not in response

