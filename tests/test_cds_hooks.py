"""CRD over CDS Hooks 2.0: discovery, and the admission screen's card at encounter-start and order-sign.

The hook requests are built from the Bulk Data test export (tests/data/fhir): each prefetch holds the resources an
EHR would send for the encounter. Responses are checked against the CDS Hooks 2.0 shapes written down in
schemas/cds-hooks.schema.json, and what is produced in FHIR against the FHIR model library.
"""

from __future__ import annotations

import copy
import json
from urllib.parse import urlsplit

import pytest
from strategies import json_paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.servicerequest import ServiceRequest
from jsonschema import Draft202012Validator

from conftest import ROOT, examples, make_record, obs
from ur_engine import schemas
from ur_engine.output.cds_card import COVERAGE_INFORMATION

DATA = ROOT / "tests" / "data" / "fhir"
START = "/cds-services/ur-admission-encounter-start"
SIGN = "/cds-services/ur-admission-order-sign"
REQUESTED_LEVEL = "https://ur-engine.org/fhir/StructureDefinition/requested-level"


def shape(name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": schemas.schema("cds-hooks")["$defs"]})


def resources(rtype: str) -> list[dict]:
    return [json.loads(line) for path in sorted(DATA.glob(f"{rtype}*.ndjson"))
            for line in path.read_text().splitlines() if line.strip()]


def searchset(found: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in found]}


def hook_request(encounter_id: str, hook: str = "encounter-start") -> dict:
    """What an EHR sends at the start of ``encounter_id``: the context, and the prefetch the service asks for."""
    enc = next(e for e in resources("Encounter") if e["id"] == encounter_id)
    patient = enc["subject"]["reference"]

    def linked(rtype: str, key: str = "encounter") -> dict:
        return searchset([r for r in resources(rtype) if (r.get(key) or {}).get("reference") == f"Encounter/{encounter_id}"])

    return {"hook": hook, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/example", "patientId": patient.split("/")[1], "encounterId": encounter_id},
            "prefetch": {
                "patient": next(p for p in resources("Patient") if f"Patient/{p['id']}" == patient),
                "encounter": enc,
                "coverage": searchset([c for c in resources("Coverage") if c["beneficiary"]["reference"] == patient]),
                "conditions": linked("Condition"), "observations": linked("Observation"),
                "procedures": linked("Procedure"), "medications": linked("MedicationAdministration", "context")}}


def admission_order(level: str | None) -> dict:
    order = {"resourceType": "ServiceRequest", "id": "admit-1", "status": "draft", "intent": "order",
             "code": {"text": "Admit to hospital"}, "subject": {"reference": "Patient/p1"},
             "encounter": {"reference": "Encounter/enc-pna"}}
    if level:
        order["extension"] = [{"url": REQUESTED_LEVEL, "valueCode": level}]
    return order


def order_sign_request(level: str | None) -> dict:
    """The pneumonia stay while still in the emergency department, an inpatient admission order being signed."""
    body = hook_request("enc-pna", "order-sign")
    emergency = copy.deepcopy(body["prefetch"]["encounter"])
    emergency["class"] = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"}
    body["prefetch"]["encounter"] = emergency
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                                      "entry": [{"resource": admission_order(level)}]}
    return body


def screened(client, path: str, body: dict) -> dict:
    res = client.post(path, json=body)
    assert res.status_code == 200, res.get_json()
    answer = res.get_json()
    assert list(shape("response").iter_errors(answer)) == []
    return answer


def coverage_information(resource: dict) -> dict[str, object]:
    (ext,) = [e for e in resource["extension"] if e["url"] == COVERAGE_INFORMATION]
    return {part["url"]: next(v for k, v in part.items() if k.startswith("value")) for part in ext["extension"]}


def test_discovery_lists_the_two_hooks_in_the_cds_hooks_shape(app):
    res = app.test_client().get("/cds-services")  # public, as an EHR reads it when it registers the service
    assert res.status_code == 200
    body = res.get_json()
    assert list(shape("discovery").iter_errors(body)) == []
    hooks = {s["id"]: s["hook"] for s in body["services"]}
    assert hooks == {"ur-admission-encounter-start": "encounter-start", "ur-admission-order-sign": "order-sign"}
    for service in body["services"]:
        assert service["prefetch"]["encounter"] == "Encounter/{{context.encounterId}}"
        assert service["prefetch"]["coverage"].startswith("Coverage?patient={{context.patientId}}")


def test_pneumonia_with_low_blood_pressure_on_iv_medication_is_certified_at_encounter_start(client):
    answer = screened(client, START, hook_request("enc-pna"))
    (card,) = answer["cards"]
    assert card["indicator"] == "info"
    assert card["summary"] == "Inpatient admission: the criteria support it — certified, no further documentation needed"
    assert "- Intravenous medication or fluid replacement (not tube feeding) (405 IAC 5-33-1(2)(A))" in card["detail"]
    assert "links" not in card  # nothing to document
    (action,) = answer["systemActions"]
    assert action["type"] == "update" and action["resource"]["id"] == "enc-pna"
    Encounter.model_validate(action["resource"])
    info = coverage_information(action["resource"])
    assert info["covered"] == "covered" and info["coverage"] == {"reference": "Coverage/cov1"}
    assert {"date", "coverage-assertion-id"} <= set(info)


def test_an_observation_stay_without_vital_signs_pends_and_the_card_links_its_questionnaire(app, client):
    answer = screened(client, START, hook_request("enc-cp"))
    (card,) = answer["cards"]
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Observation stay: ") and "documentation needed" in card["summary"]
    assert "- Heart rate (lowest and highest) in the first 24 h after arrival" in card["detail"]
    (link,) = card["links"]
    assert link["type"] == "absolute"
    info = coverage_information(answer["systemActions"][0]["resource"])
    assert info["covered"] == "conditional" and info["doc-needed"] == "clinical" and info["info-needed"] == "OTH"
    assert info["questionnaire"] == link["url"]
    assert "Heart rate (lowest and highest)" in info["reason"]["text"]
    url = urlsplit(link["url"])
    res = client.get(f"{url.path}?{url.query}")
    assert res.status_code == 200
    q = res.get_json()
    Questionnaire.model_validate(q)
    heart = next(i for i in q["item"] if i["linkId"] == "heart_rate")
    assert heart["code"][0]["code"] == "8867-4"
    assert q["url"] == link["url"]  # the canonical the coverage information names
    # A DTR client asks for the package by that canonical.
    body = {"resourceType": "Parameters", "parameter": [{"name": "questionnaire", "valueCanonical": link["url"]}]}
    res = client.post("/fhir/Questionnaire/$questionnaire-package", json=body,
                      headers={"Content-Type": "application/fhir+json"})
    assert res.status_code == 200
    (package,) = res.get_json()["parameter"]
    assert package["resource"]["entry"][0]["resource"]["item"] == q["item"]
    assert client.get("/v1/reviews").get_json()["items"] == []  # a screen is not a stored review


def test_an_inpatient_admission_order_signed_in_the_emergency_department_is_screened_as_inpatient(client):
    answer = screened(client, SIGN, order_sign_request("inpatient"))
    assert answer["cards"][0]["summary"].startswith("Inpatient admission: the criteria support it")
    (action,) = answer["systemActions"]
    assert action["resource"]["resourceType"] == "ServiceRequest" and action["resource"]["id"] == "admit-1"
    ServiceRequest.model_validate(action["resource"])
    assert coverage_information(action["resource"])["covered"] == "covered"


@pytest.mark.parametrize("encounter", ["enc-pna", "enc-cp", "enc-nocov"])
def test_no_card_ever_denies_or_says_not_covered(client, encounter):
    text = json.dumps(screened(client, START, hook_request(encounter))).lower()
    assert "deny" not in text.replace("never denies", "") and "denied" not in text and "not-covered" not in text


def bad(change):
    body = hook_request("enc-pna")
    change(body)
    return body


@pytest.mark.parametrize("path,body,where", [
    (START, bad(lambda b: b["context"].pop("encounterId")), "$.context"),
    (START, bad(lambda b: b.update(hook="order-sign")), "$.hook"),
    (START, bad(lambda b: b["prefetch"].pop("encounter")), "$.prefetch.encounter"),
    (START, bad(lambda b: b.pop("hookInstance")), "$"),
    (START, bad(lambda b: b["context"].update(userId="Nurse/1")), "$.context.userId"),
    (SIGN, hook_request("enc-pna", "order-sign"), "$.context"),  # no draftOrders
    (START, bad(lambda b: b["prefetch"]["encounter"]["period"].update(start="2026-03-02")), "$.prefetch.encounter"),
    # The Da Vinci reference implementation's own hook call: an STU3 order-review, a hook this service does not take.
    (SIGN, json.loads((DATA / "pas-ri" / "cds-hook-order-review.json").read_text()), "$.hook"),
])
def test_a_hook_request_that_cannot_be_screened_is_400_saying_where(client, path, body, where):
    res = client.post(path, json=body)
    assert res.status_code == 400 and res.mimetype == "application/problem+json"
    assert where in [e["path"] for e in res.get_json()["errors"]], res.get_json()


def test_a_patient_without_a_birth_date_gets_a_card_asking_for_the_age_not_an_error(client):
    answer = screened(client, START, bad(lambda b: b["prefetch"]["patient"].pop("birthDate")))
    card = answer["cards"][0]
    assert card["indicator"] != "critical" and "age" in json.dumps(card).lower()


@pytest.mark.parametrize("path,body", [
    (SIGN, order_sign_request(None)),  # a draft order that asks for no level of care: not an admission order
    (START, bad(lambda b: b["prefetch"]["encounter"].update(
        {"class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"}}))),
])
def test_a_hook_with_nothing_for_an_admission_screen_gets_no_card(client, path, body):
    assert screened(client, path, body) == {"cards": []}


def test_a_lab_order_signed_beside_the_admission_order_is_left_alone(client):
    body = order_sign_request("inpatient")
    lab = {"resourceType": "ServiceRequest", "id": "lactate-1", "status": "draft", "intent": "order",
           "code": {"coding": [{"system": "http://loinc.org", "code": "2524-7"}]}, "subject": {"reference": "Patient/p1"}}
    body["context"]["draftOrders"]["entry"].append({"resource": lab})
    answer = screened(client, SIGN, body)
    assert [a["resource"]["id"] for a in answer["systemActions"]] == ["admit-1"]


def test_an_unknown_service_is_404_and_a_body_not_json_is_415(client):
    assert client.post("/cds-services/no-such-service", json=hook_request("enc-pna")).status_code == 404
    assert client.post(START, data="hook", content_type="text/plain").status_code == 415


def test_the_hook_needs_a_reviewer_key(app):
    anonymous = app.test_client()
    assert anonymous.post(START, json=hook_request("enc-pna")).status_code == 401


@pytest.mark.parametrize("name,indicator", [("cds-hook-encounter-start.json", "info"),
                                            ("cds-hook-encounter-start-pend.json", "warning")])
def test_the_example_hook_requests_screen_as_the_bench_expects(client, name, indicator):
    body = json.loads((ROOT / "examples" / name).read_text())
    assert screened(client, START, body)["cards"][0]["indicator"] == indicator


PNEUMONIA = json.loads((ROOT / "examples" / "cds-hook-encounter-start.json").read_text())
PLACES = sorted(json_paths(PNEUMONIA), key=str)
ODD = [None, "", "x", 0, -1, 1.5, True, [], {}, [None], {"a": 1}, "2020-13-45", "9" * 300, {"reference": 3},
       [{"resourceType": 7}], {"resourceType": None}, {"resourceType": "Bundle", "entry": "none"}]


def _put(doc, path, value) -> None:
    node = doc
    for key in path[:-1]:
        if isinstance(node, dict) and key in node or isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return
    if isinstance(node, dict) or isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node):
        node[path[-1]] = copy.deepcopy(value)  # never one object in two places


@settings(max_examples=examples(300), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(PLACES), st.sampled_from(ODD)), min_size=1, max_size=3))
def test_an_odd_value_anywhere_in_a_hook_request_gets_a_card_or_a_400_never_a_server_error(client, changes):
    body = copy.deepcopy(PNEUMONIA)
    for path, value in changes:
        _put(body, path, value)
    res = client.post(START, json=body)
    assert res.status_code in (200, 400), (changes, res.get_json())
    answer = res.get_json()
    if res.status_code == 200:
        assert list(shape("response").iter_errors(answer)) == []
        assert "not-covered" not in json.dumps(answer)
    else:
        assert answer["errors"] and all(e["path"].startswith("$") for e in answer["errors"])


def test_a_stay_the_criteria_support_at_a_lower_level_is_conditional_and_names_it(engine):
    from ur_engine.intake.normalise import review
    from ur_engine.output.cds_card import card, coverage_information

    decision = review(engine, make_record(observations=[obs("8867-4", 150)])).to_dict()  # severe, no intensity
    assert decision["outcome"] == "alternative_setting"
    shown = card(decision, label="ur-engine")
    assert shown["summary"] == ("Inpatient admission: the criteria support observation stay instead; a physician "
                                "reviews the request") and shown["indicator"] == "warning"
    assert list(shape("card").iter_errors(shown)) == []
    parts = {p["url"]: p for p in coverage_information(decision, coverage="Coverage/c", date="2026-03-02",
                                                       assertion_id="a1")["extension"]}
    assert parts["covered"]["valueCode"] == "conditional" and parts["info-needed"]["valueCode"] == "OTH"
    assert "doc-needed" not in parts and "questionnaire" not in parts  # nothing to document: a physician's call
    assert "observation" in parts["reason"]["valueCodeableConcept"]["text"]
