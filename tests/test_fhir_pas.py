"""Da Vinci PAS: a prior-authorization request Bundle becomes a reviewable stay (its arrival, requested level and
age read from what the request says, and what it leaves out pending the review, named), and a decision becomes a
PAS ClaimResponse."""

from __future__ import annotations

import pytest
from conftest import make_record, obs
from pas_support import (
    POS,
    claim,
    corpus_requests,
    encounter,
    load,
    patient,
    request,
    review_actions,
    septic_request,
)

from ur_engine.intake.fhir_files import bundle_items
from ur_engine.intake.normalise import admit, review

X12_1365 = "https://codesystem.x12.org/005010/1365"
X12_1525 = "https://codesystem.x12.org/005010/1525"
NUBC = "https://www.nubc.org/CodeSystem/RevenueCodes"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"


def stay(doc: dict) -> dict:
    items = list(bundle_items(doc, "request.json"))
    assert [i.error for i in items] == [None]
    return items[0].record


def notice_at(rec: dict, where: str) -> dict:
    return next(n for n in rec["data_notices"] if n["where"] == where)


# --- 1. intake: arrival, requested level, age -----------------------------------------------------------------

ARRIVALS = [
    # (what the request says, the arrival read, where the notice points — None: no notice, the Encounter says it)
    ({"encounter": {"period": {"start": "2026-03-02T08:10:00-05:00"}}}, "2026-03-02T08:10:00-05:00", None),
    ({"encounter": {"period": {"start": "2026-03-03"}}}, "2026-03-03T00:00:00+00:00", "Encounter/enc-1.period.start"),
    ({"supportingInfo": [{"sequence": 1, "category": {"coding": [{"code": "admissionDates"}]},
                          "timingPeriod": {"start": "2026-03-04", "end": "2026-03-06"}}], "item": [{"sequence": 1}]},
     "2026-03-04T00:00:00+00:00", "Claim/req-1.supportingInfo[0].timing[x]"),
    ({"item": [{"sequence": 1, "servicedDate": "2026-03-05"}]}, "2026-03-05T00:00:00+00:00",
     "Claim/req-1.item[0].servicedDate"),
    ({"item": [{"sequence": 1, "servicedPeriod": {"start": "2026-03-06T07:00:00+00:00"}}]},
     "2026-03-06T07:00:00+00:00", "Claim/req-1.item[0].servicedPeriod.start"),
    ({"item": [{"sequence": 1}]}, "2026-03-02T09:30:00+00:00", "Claim/req-1.created"),
    ({"item": None, "created": "2026-03-07"}, "2026-03-07T00:00:00+00:00", "Claim/req-1.created"),
]


@pytest.mark.parametrize("says, arrival, where", ARRIVALS)
def test_a_pas_stay_arrives_when_the_encounter_else_the_request_says_and_a_notice_names_the_stand_in(says, arrival,
                                                                                                    where):
    extra = []
    if "encounter" in says:
        says = dict(says)
        extra.append(encounter(**says.pop("encounter")))
        says["extension"] = [{"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-Claim.encounter",
                              "valueReference": {"reference": "Encounter/enc-1"}}]
    rec = stay(request(*extra, **says))
    assert rec["encounter"]["arrival_time"] == arrival
    mapped = [n for n in rec.get("data_notices", []) if "arrival time is taken from" in n["why"]]
    if where is None:
        assert mapped == []
    else:
        assert [(n["where"], n["kind"]) for n in mapped] == [(where, "mapped")]
        assert ("00:00 UTC" in mapped[0]["why"]) == arrival.endswith("T00:00:00+00:00")


def _item(**codes) -> dict:
    item = {"sequence": 1, "servicedDate": "2026-03-02"}
    for element, (system, code) in codes.items():
        concept = {"coding": [{"system": system, "code": code}]}
        if element == "requestType":
            item["extension"] = [{"url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
                                         "extension-serviceItemRequestType", "valueCodeableConcept": concept}]
        else:
            item[element] = concept
    return item


LEVELS = [
    # the mapping table of docs/inputs.md, row by row
    ({"requestType": (X12_1525, "AR")}, "inpatient"),
    ({"category": (X12_1365, "48")}, "inpatient"),
    ({"productOrService": (X12_1365, "48")}, "inpatient"),
    ({"category": (X12_1365, "50")}, "outpatient"),
    ({"locationCodeableConcept": (POS, "21")}, "inpatient"),
    ({"locationCodeableConcept": (POS, "22")}, "outpatient"),
    ({"productOrService": (HCPCS, "G0378")}, "observation"),
    ({"revenue": (NUBC, "0762")}, "observation"),
    ({"revenue": (NUBC, "0206")}, "intermediate"),
    ({"revenue": (NUBC, "0214")}, "intermediate"),
    ({"revenue": (NUBC, "0200")}, "critical"),
    ({"revenue": (NUBC, "0211")}, "critical"),
    ({"revenue": (NUBC, "0120")}, "inpatient"),
    # the most specific code first: observation hours billed at an outpatient place of service are observation
    ({"productOrService": (HCPCS, "G0378"), "locationCodeableConcept": (POS, "22")}, "observation"),
    # codes that name a service, not where it is given, tell no level (home health care, X12 service type 42, asks
    # for a post-acute setting instead: tests/test_pas_home_health.py)
    ({"productOrService": (HCPCS, "33510")}, None),
    ({"category": (X12_1365, "3"), "locationCodeableConcept": (POS, "11")}, None),
]


@pytest.mark.parametrize("codes, level", LEVELS)
def test_the_requested_level_is_read_from_the_items_codes(codes, level):
    rec = stay(request(item=[_item(**codes)]))
    assert rec["encounter"].get("requested_level") == level
    if level is None:
        assert "no requested level of care" in notice_at(rec, "Claim/req-1.item")["why"]


def test_the_encounter_class_names_the_level_before_the_items():
    enc = encounter(**{"class": {"code": "OBSENC"}}, period={"start": "2026-03-02T09:40:00+00:00"})
    rec = stay(request(enc, extension=[{"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-Claim.encounter",
                                        "valueReference": {"reference": "Encounter/enc-1"}}]))
    assert rec["encounter"]["requested_level"] == "observation"


@pytest.mark.parametrize("born, age", [("1959-05-01", 66), ("1959-03-02", 67), ("1959-03-03", 66),
                                       ("2010-01-01", 16)])
def test_the_age_is_whole_years_from_the_birth_date_to_the_arrival(born, age):
    assert stay(request(with_patient=patient(birthDate=born)))["patient"]["age"] == age


def test_an_inpatient_request_meeting_the_criteria_is_approved(engine):
    decision = review(engine, stay(septic_request()))
    assert (decision.outcome, decision.requested, decision.review_action) == ("approve", "inpatient", "A1")


UNKNOWN = [
    # (what the request leaves out, what the decision names missing: the basics, then what the criteria may still
    # need once they are known — for critical care, ventilation and vasopressors; an adult's criteria being met,
    # nothing that every age would need)
    ({"with_patient": patient(birthDate=None)}, ["age"]),
    ({"item": [{"sequence": 1, "servicedDate": "2026-03-02"}]},
     ["requested_level", "treatment.mechanical_ventilation", "perioperative.ventilation_under_24h",
      "treatment.vasopressor"]),
    ({"with_patient": patient(birthDate=None), "item": [{"sequence": 1}]},
     ["age", "requested_level", "treatment.mechanical_ventilation"]),
]


@pytest.mark.parametrize("leaves_out, missing", UNKNOWN)
def test_a_request_without_a_birth_date_or_a_level_pends_naming_them_never_an_error(engine, leaves_out, missing):
    rec = stay(septic_request(**leaves_out))  # criteria met: only the unknown basics stop it
    decision = review(engine, rec)
    assert (decision.outcome, decision.review_action, decision.missing) == ("pend", "A4", missing)
    assert decision.recommended is None and "physician review" in decision.reasons[0]
    words = [w["text"] for w in decision.missing_info]
    assert ("Patient's age at arrival (the birth date): it decides which criteria apply" in words) == ("age" in missing)


@pytest.mark.parametrize("leaves_out, path", [({"patient": {}}, "$.patient.age"),
                                               ({"encounter": {"arrival_time": "2026-03-02T09:40:00Z"}},
                                                "$.encounter.requested_level")])
def test_a_json_record_leaving_out_age_or_level_pends_with_a_notice(engine, leaves_out, path):
    rec = {**make_record(), **leaves_out}  # the section replaced, not merged
    decision = review(engine, rec)
    assert (decision.outcome, decision.review_action) == ("pend", "A4")
    assert path in [n.where for n in decision.data_notices]


@pytest.mark.parametrize("bad, path", [({"patient": {"age": -3}}, "$.patient.age"),
                                       ({"encounter": {"requested_level": "inpatiant"}}, "$.encounter.requested_level")])
def test_an_age_or_level_given_wrong_is_still_an_error_naming_the_field(library, bad, path):
    from ur_engine.errors import RecordErrors

    with pytest.raises(RecordErrors) as caught:
        admit(make_record(**bad), library.facts)
    assert path in [e.path for e in caught.value.errors]


@pytest.mark.parametrize("path", corpus_requests(), ids=lambda p: p.name)
def test_every_corpus_request_is_a_reviewable_stay(engine, path):
    decision = review(engine, stay(load(path)))
    assert decision.outcome in ("approve", "pend", "alternative_setting")
    assert decision.review_action in ("A1", "A4")


# --- 2. decision → PAS ClaimResponse --------------------------------------------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ur_engine.output.claim_response import (  # noqa: E402
    Determination,
    PasRequest,
    claim_response,
    response_bundle,
)

CREATED = "2026-03-02T10:00:00+00:00"


def answer(engine, doc: dict, determination: Determination | None = None) -> tuple[dict, dict]:
    """(decision, ClaimResponse) of a request Bundle."""
    decision = review(engine, stay(doc)).to_dict()
    return decision, respond(engine, decision, determination, doc["entry"][0]["resource"])


def respond(engine, decision: dict, determination: Determination | None = None, asked: dict | None = None) -> dict:
    return claim_response(decision, CREATED, PasRequest.of_claim(asked or claim()), facts=engine.library.facts,
                          determination=determination)


def observation_only(engine) -> tuple[dict, dict]:
    """A stay asked for as inpatient whose criteria support observation: a tachycardia, nothing given for it (a
    record declaring its treatments complete: a FHIR request cannot say that no treatment was given)."""
    decision = review(engine, make_record(observations=[obs("8867-4", 150)])).to_dict()
    return decision, respond(engine, decision)


def valid(resource: dict) -> dict:
    from fhir.resources.R4B import get_fhir_model_class

    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


SCREENS = [
    # (how the stay is screened, outcome, review action, reason code)
    (lambda engine: answer(engine, septic_request()), "approve", "A1", "criteria-met"),
    (observation_only, "alternative_setting", "A4", "alternative-setting"),
    (lambda engine: answer(engine, septic_request(with_patient=patient(birthDate=None))), "pend", "A4",
     "information-missing"),
]


@pytest.mark.parametrize("screen, outcome, action, reason", SCREENS, ids=[s[1] for s in SCREENS])
def test_each_item_carries_the_review_action_of_the_screen(engine, screen, outcome, action, reason):
    decision, response = screen(engine)
    assert decision["outcome"] == outcome
    valid(response)
    assert review_actions(response) == [action]  # one item asked about, one adjudication
    adjudication = response["item"][0]["adjudication"][0]
    assert adjudication["category"]["coding"][0]["code"] == "submitted"
    assert adjudication["reason"]["coding"][0]["code"] == reason
    assert response["identifier"] == claim()["identifier"]  # the Claim's, echoed
    assert response["request"] == {"reference": "Claim/req-1"}
    assert ("preAuthRef" in response) == (action == "A1")


def test_an_alternative_setting_is_pended_with_the_recommended_setting_stated(engine):
    decision, response = observation_only(engine)
    assert decision["recommended"] == "observation"
    assert response["disposition"] == ("Pended for physician review: the criteria support observation rather than "
                                       "acute inpatient care; recommended setting: observation")
    assert response["processNote"][0]["text"] == response["disposition"]


def test_the_criteria_trail_and_the_rule_version_are_notes_in_words(engine):
    decision, response = answer(engine, septic_request())
    notes = [n["text"] for n in response["processNote"]]
    pulse = next(n for n in notes if n.startswith("SI-PULSE"))
    assert pulse.startswith("SI-PULSE (adult-admission) — met: Pulse below 50 or above 140")
    assert "Heart rate, highest in the first 24 h after arrival: 150 /min (at 2026-03-02T09:45:00+00:00)" in pulse
    assert "Source: 405 IAC 5-33-1" in pulse
    assert "heart_rate.max" not in " ".join(notes)  # fact names are for machines
    assert notes[-1].startswith(f"Rules: version {decision['rules']['version']} ")
    assert response["item"][0]["noteNumber"] == list(range(1, len(notes) + 1))


def test_what_is_still_missing_is_asked_for_in_a_communication_request(engine):
    _, response = answer(engine, septic_request(with_patient=patient(birthDate=None)))
    asked = response["contained"][0]
    assert asked["resourceType"] == "CommunicationRequest"
    assert response["communicationRequest"] == [{"reference": "#missing-information"}]
    assert [p["contentString"] for p in asked["payload"]] == [
        "Please send: Patient's age at arrival (the birth date): it decides which criteria apply"]
    assert asked["about"] == [{"reference": "Claim/req-1"}] and asked["subject"] == {"reference": "Patient/p1"}


def test_an_approval_asks_for_nothing(engine):
    _, response = answer(engine, septic_request())
    assert "contained" not in response and "communicationRequest" not in response


def test_a_request_without_items_is_adjudicated_as_a_whole(engine):
    _, response = answer(engine, septic_request(item=None))
    assert "item" not in response and review_actions(response) == ["A4"]  # no level asked for: pended


def test_a_response_bundle_puts_the_claim_response_first_and_echoes_the_transaction(engine):
    doc = septic_request()
    _, response = answer(engine, doc)
    out = valid(response_bundle(response, CREATED, "https://ur.example/fhir/", doc["identifier"],
                                also=((doc["entry"][1]["fullUrl"], doc["entry"][1]["resource"]),)))
    assert out["type"] == "collection" and out["identifier"] == doc["identifier"]
    assert out["entry"][0]["fullUrl"] == f"https://ur.example/fhir/ClaimResponse/{response['id']}"
    assert [e["resource"]["resourceType"] for e in out["entry"]] == ["ClaimResponse", "Patient"]


@pytest.mark.parametrize("action", ["A3", "A6", "A1", "A2"])
def test_a_physicians_determination_alone_gives_its_action(engine, action):
    who = Determination(action, "2026-03-03T08:00:00+00:00", physician="Dr Rivera", reason="not_medically_necessary",
                        text="Observation suffices")
    _, response = answer(engine, septic_request(), determination=who)
    assert review_actions(valid(response)) == [action]
    assert response["extension"][1]["extension"][0] == {"url": "wasHumanReviewedFlag", "valueBoolean": True}
    assert "Observation suffices" in response["disposition"]


@pytest.mark.parametrize("action", ["A4", "A5", "", "deny"])
def test_a_determination_cannot_carry_anything_but_a_physicians_action(action):
    with pytest.raises(ValueError):
        Determination(action, "2026-03-03T08:00:00+00:00")


decisions = st.fixed_dictionaries({
    "review_id": st.from_regex(r"[0-9A-Z]{26}", fullmatch=True), "record_id": st.text(min_size=1, max_size=20),
    "review_type": st.sampled_from(["admission", "continued_stay", "discharge"]),
    "outcome": st.sampled_from(["approve", "pend", "alternative_setting"]),
    "requested": st.sampled_from([None, "inpatient", "observation", "snf"]),
    "recommended": st.sampled_from([None, "observation", "home_health"]),
    # whatever a stored or hand-made decision claims its action is, the response is worked out afresh
    "review_action": st.sampled_from(["A1", "A3", "A4", "A6", "", "deny"]),
    "reasons": st.lists(st.text(max_size=40), max_size=3),
    "missing": st.lists(st.sampled_from(["age", "heart_rate.max"]), max_size=2),
    "missing_info": st.lists(st.fixed_dictionaries({"facts": st.just(["age"]), "text": st.text(min_size=1,
                                                                                                max_size=30)}),
                             max_size=2),
    "criteria": st.just([]), "rules": st.just({"version": "2026.11.0", "digest": "sha256:0", "rulesets": {}}),
})


@given(decision=decisions, items=st.lists(st.integers(1, 9), max_size=3, unique=True))
def test_no_screen_ever_yields_a_not_certified_or_modified_action(decision, items):
    response = claim_response(decision, CREATED, PasRequest(claim_id="c1", items=tuple(items)))
    actions = review_actions(response)
    assert actions == [("A1" if decision["outcome"] == "approve" else "A4")] * max(len(items), 1)


# --- 4. ur batch --format fhir ----------------------------------------------------------------------------------

def test_batch_writes_bulk_ndjson_claim_responses_one_per_stay_and_outcomes_for_the_rest(runner, tmp_path):
    import json as _json

    from fhir.resources.R4B.claimresponse import ClaimResponse
    from fhir.resources.R4B.operationoutcome import OperationOutcome
    from pas_support import CORPUS, PAS_RI

    from ur_engine.cli import main

    inputs = [str(p) for p in sorted((CORPUS / "synthea").glob("*.json*"))] + \
        [str(p) for p in corpus_requests()] + [str(PAS_RI / "bundle-minimal.json")]  # a searchset: nothing to review
    out = tmp_path / "ClaimResponse.ndjson"
    res = runner.invoke(main, ["batch", *inputs, "--out", str(out), "--workers", "1", "--format", "fhir"])
    assert res.exit_code == 2, res.output  # the searchset's error line, as in every batch
    decisions = [_json.loads(x) for x in (tmp_path / "ClaimResponse.ndjson.decisions.ndjson").read_text().splitlines()]
    responses = [_json.loads(x) for x in out.read_text().splitlines()]
    reviewed = [d for d in decisions if d["outcome"] != "error"]
    assert len(reviewed) == 3 + len(corpus_requests()) and len(responses) == len(reviewed)
    for decision, response in zip(reviewed, responses):  # in input order
        ClaimResponse.model_validate(response)
        assert response["id"] == decision["review_id"]
        assert response["request"]["identifier"]["value"] == decision["record_id"]
        assert review_actions(response) == [{"approve": "A1"}.get(decision["outcome"], "A4")]
    outcomes = [_json.loads(x) for x in (tmp_path / "ClaimResponse.OperationOutcome.ndjson").read_text().splitlines()]
    assert len(outcomes) == 1 and "nothing to review" in OperationOutcome.model_validate(outcomes[0]).issue[0].diagnostics
    assert (tmp_path / "ClaimResponse.ndjson.summary.json").exists()
    again = runner.invoke(main, ["batch", *inputs, "--out", str(out), "--workers", "1", "--format", "fhir"])
    assert again.exit_code == 2 and "exists" in again.output  # never overwritten without --resume
