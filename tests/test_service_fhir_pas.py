"""Da Vinci PAS over HTTP: $submit, $inquire, the ClaimResponse read back, a physician's determination showing
through them, OperationOutcomes naming the element, the same keys and roles, and the CapabilityStatement."""

from __future__ import annotations

import json

import pytest
from conftest import auth, make_record
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.claimresponse import ClaimResponse
from pas_support import (
    claim,
    corpus_requests,
    copied,
    load,
    patient,
    request,
    review_actions,
    septic_request,
)

from ur_service import ROLES

FHIR = "application/fhir+json"
SUBMIT, INQUIRE = "/fhir/Claim/$submit", "/fhir/Claim/$inquire"


def post(client, path: str, body, status: int = 200, **kw):
    res = client.post(path, data=json.dumps(body), content_type=FHIR, **kw)
    assert res.status_code == status, res.get_data(as_text=True)[:2000]
    assert res.mimetype == FHIR
    return res.get_json()


def claim_response_of(bundle: dict) -> dict:
    Bundle.model_validate(bundle)
    first = bundle["entry"][0]["resource"]
    assert first["resourceType"] == "ClaimResponse"
    return first


@pytest.mark.parametrize("path", corpus_requests(), ids=lambda p: p.name)
def test_every_corpus_request_submitted_gets_a_valid_response_bundle_certified_or_pended(client, path):
    doc = load(path)
    out = post(client, SUBMIT, doc)
    response = claim_response_of(out)
    assert out["type"] == "collection"
    if "identifier" in doc:
        assert out["identifier"] == doc["identifier"]  # the submitter's transaction id, echoed
    asked = doc["entry"][0]["resource"]
    assert response["identifier"] == asked.get("identifier", response["identifier"])
    assert response["request"] == {"reference": f"Claim/{asked['id']}"}
    assert set(review_actions(response)) <= {"A1", "A4"} and review_actions(response)
    assert len(response.get("item", [])) == len(asked.get("item", []))
    # read back and inquired about: still the engine's action, no physician having decided
    read = client.get(f"/fhir/ClaimResponse/{response['id']}").get_json()
    inquired = claim_response_of(post(client, INQUIRE, asked))
    assert review_actions(read) == review_actions(inquired) == review_actions(response)


def test_a_request_meeting_the_criteria_is_certified_and_stored_as_a_review(app, client):
    response = claim_response_of(post(client, SUBMIT, septic_request()))
    assert review_actions(response) == ["A1"] and response["preAuthRef"] == response["id"]
    stored = client.get(f"/v1/reviews/{response['id']}").get_json()
    assert stored["decision"]["outcome"] == "approve" and stored["record"]["id"] == "req-1"
    assert stored["audit"]["seq"] == 1


def test_a_stat_request_is_due_as_an_expedited_review(client):
    doc = septic_request(with_patient=patient(birthDate=None), priority={"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "stat"}]})
    response = claim_response_of(post(client, SUBMIT, doc))
    assert client.get(f"/v1/reviews/{response['id']}").get_json()["urgency"] == "expedited"


def _malformed(change) -> dict:
    doc = copied(septic_request())
    change(doc, doc["entry"][0]["resource"])
    return doc


MALFORMED = [
    # (what is wrong, the body, the element the OperationOutcome names)
    ("a Claim alone", claim(), "Bundle"),
    ("no entries", {"resourceType": "Bundle", "type": "collection"}, "Bundle.entry"),
    ("the Patient first", _malformed(lambda d, c: d["entry"].reverse()), "Bundle.entry[0].resource"),
    ("an item's sequence in words", _malformed(lambda d, c: c["item"][0].update(sequence="one")),
     "Bundle.entry[0].resource.item[0].sequence"),
    ("no patient", _malformed(lambda d, c: c.pop("patient")), "Bundle.entry[0].resource.patient"),
    ("a 13th month", _malformed(lambda d, c: c.update(created="2026-13-01")), "Bundle.entry[0].resource.created"),
    ("a claim, not a request", _malformed(lambda d, c: c.update(use="claim")), "Bundle.entry[0].resource.use"),
]


@pytest.mark.parametrize("what, body, element", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_request_gets_an_operation_outcome_naming_the_element(app, client, what, body, element):
    outcome = post(client, SUBMIT, body, 400)
    assert outcome["resourceType"] == "OperationOutcome"
    assert element in [x for issue in outcome["issue"] for x in issue.get("expression", [])]
    assert client.get("/v1/reviews").get_json()["items"] == []  # nothing stored


def test_a_body_that_is_not_json_or_not_fhir_json_is_refused_in_fhir(client):
    res = client.post(SUBMIT, data="{not json", content_type=FHIR)
    assert res.status_code == 400 and res.get_json()["issue"][0]["code"] == "structure"
    res = client.post(SUBMIT, data="<Bundle/>", content_type="application/xml")
    assert res.status_code == 415 and res.get_json()["resourceType"] == "OperationOutcome"


ACCESS = [(SUBMIT, "post", ("reviewer",)), (INQUIRE, "post", ("reviewer", "physician")),
          ("/fhir/ClaimResponse/01NOTTHERE", "get", ("reviewer", "physician"))]


@pytest.mark.parametrize("path, method, roles", ACCESS)
def test_the_fhir_endpoints_take_the_same_keys_and_roles(app, path, method, roles):
    client = app.test_client()
    kw = {"data": json.dumps(septic_request()), "content_type": FHIR} if method == "post" else {}
    assert client.open(path, method=method.upper(), **kw).status_code == 401
    for role in ROLES:
        status = client.open(path, method=method.upper(), headers=auth(app, role), **kw).status_code
        assert (status == 403) == (role not in roles), (role, status)


def _inquiry(identifier: list, claim_id: str = "inquiry-1") -> dict:
    """A PAS inquiry Bundle: a Claim of its own id naming the earlier request by its identifier."""
    return request(id=claim_id, identifier=identifier)


def test_an_inquiry_finds_the_request_by_its_identifier_and_shows_a_physicians_determination(app, client):
    submitted = claim_response_of(post(client, SUBMIT, septic_request(with_patient=patient(birthDate=None))))
    review_id = submitted["id"]
    assert review_actions(submitted) == ["A4"]
    physician = auth(app, "physician")
    found = claim_response_of(post(client, INQUIRE, _inquiry(claim()["identifier"]), headers=physician))
    assert found["id"] == review_id and review_actions(found) == ["A4"]
    assert found["extension"][1]["extension"][0]["valueBoolean"] is False  # not yet reviewed by a person

    res = client.post(f"/v1/reviews/{review_id}/determination", headers=physician,
                      json={"decision": "deny", "reason_code": "insufficient_documentation",
                            "text": "No birth date nor clinical notes after two requests"})
    assert res.status_code == 201, res.get_json()
    after = claim_response_of(post(client, INQUIRE, _inquiry(claim()["identifier"]), headers=physician))
    read = client.get(f"/fhir/ClaimResponse/{review_id}", headers=physician)
    assert read.status_code == 200 and read.mimetype == FHIR
    for shown in (after, read.get_json()):
        ClaimResponse.model_validate(shown)
        assert review_actions(shown) == ["A3"]
        assert shown["extension"][1]["extension"][0] == {"url": "wasHumanReviewedFlag", "valueBoolean": True}
        assert "No birth date nor clinical notes" in shown["disposition"]


def test_a_physicians_approval_certifies_a_pended_request(app, client):
    review_id = claim_response_of(post(client, SUBMIT, septic_request(item=None)))["id"]
    physician = auth(app, "physician")
    assert client.post(f"/v1/reviews/{review_id}/determination", headers=physician,
                       json={"decision": "approve"}).status_code == 201
    assert review_actions(client.get(f"/fhir/ClaimResponse/{review_id}").get_json()) == ["A1"]


def test_an_inquiry_by_the_claim_id_alone_and_one_matching_nothing(client):
    review_id = claim_response_of(post(client, SUBMIT, septic_request()))["id"]
    bare = {"resourceType": "Claim", "id": "req-1", "status": "active", "use": "preauthorization"}
    assert claim_response_of(post(client, INQUIRE, bare))["id"] == review_id
    missing = post(client, INQUIRE, _inquiry([{"system": "urn:trnorg:1234567890", "value": "NOPE"}], "x"), 404)
    assert missing["issue"][0]["code"] == "not-found"
    assert missing["issue"][0]["expression"] == ["Bundle.entry[0].resource.identifier"]


@pytest.mark.parametrize("outcome_of", ["approve", "pend"])
def test_a_review_submitted_as_json_reads_back_as_a_claim_response_too(client, outcome_of):
    from conftest import obs

    record = make_record(observations=[obs("8867-4", 150)], treatments=[{"type": "iv_fluids"}]) \
        if outcome_of == "approve" else make_record(id="stay-pend")
    decision = client.post("/v1/reviews", json=record).get_json()
    shown = client.get(f"/fhir/ClaimResponse/{decision['review_id']}").get_json()
    ClaimResponse.model_validate(shown)
    assert review_actions(shown) == [{"approve": "A1", "pend": "A4"}[decision["outcome"]]]
    assert shown["request"]["identifier"]["value"] == record["id"]
    assert client.get("/fhir/ClaimResponse/01NOTTHERE").status_code == 404


def test_the_capability_statement_lists_every_fhir_endpoint(app):
    from ur_service.fhir_common import ENDPOINTS

    res = app.test_client().get("/fhir/metadata")  # public, as FHIR servers' metadata is
    assert res.status_code == 200 and res.mimetype == FHIR
    statement = res.get_json()
    CapabilityStatement.model_validate(statement)
    offered = {(r["type"], x.get("name") or x.get("code")) for r in statement["rest"][0]["resource"]
               for x in r.get("operation", []) + r.get("interaction", [])}
    assert offered >= {("Claim", "submit"), ("Claim", "inquire"), ("ClaimResponse", "read")}
    assert offered == {(e.resource, e.operation or e.interaction) for e in ENDPOINTS if e.resource}
    doc = app.test_client().get("/openapi.json").get_json()
    assert {e.path for e in ENDPOINTS} <= set(doc["paths"])
    # each registered endpoint is the route it says it is
    routes = {r.endpoint: (r.rule.replace("<review_id>", "{review_id}"), r.methods) for r in app.url_map.iter_rules()}
    for e in ENDPOINTS:
        assert routes[e.endpoint][0] == e.path and e.method.upper() in routes[e.endpoint][1], e.endpoint


def test_the_pas_guides_inquiry_example_finds_its_homecare_request(app, client):
    from pas_support import PAS_IG

    submitted = claim_response_of(post(client, SUBMIT, load(PAS_IG / "homecare-request-bundle.json")))
    assert review_actions(submitted) == ["A4", "A4"]  # home health is no level of hospital care: pended
    inquiry = load(PAS_IG / "inquiry-bundle.json")  # another Claim id, the same identifier 111099
    out = post(client, INQUIRE, inquiry, headers=auth(app, "physician"))
    found = claim_response_of(out)
    assert found["id"] == submitted["id"] and found["request"] == {"reference": "Claim/HomecareAuthorizationExample"}
    assert out["identifier"] == inquiry["identifier"]  # the inquiry's transaction id
    assert [i["itemSequence"] for i in found["item"]] == [1, 2]


def test_the_response_repeats_the_requesters_patient_as_it_was_sent(client):
    # Not as the FHIR model would write it back (a lastUpdated of .455-04:00 came back as .455000-04:00).
    doc = septic_request()
    doc["entry"][1]["resource"]["meta"] = {"versionId": "1", "lastUpdated": "2019-04-08T09:24:47.455-04:00"}
    out = post(client, SUBMIT, doc)
    sent = {e["fullUrl"]: e["resource"] for e in doc["entry"]}
    repeated = [e for e in out["entry"][1:] if e["resource"]["resourceType"] == "Patient"]
    assert repeated and all(e["resource"] == sent[e["fullUrl"]] for e in repeated)

