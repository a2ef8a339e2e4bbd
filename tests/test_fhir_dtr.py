"""DTR, open: a pended review's questionnaire, pre-filled from the chart, answered, and the stay reviewed again."""

from __future__ import annotations

import json

import pytest
from strategies import json_paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from fhir.resources.R4B.parameters import Parameters
from fhir.resources.R4B.questionnaire import Questionnaire

from conftest import ROOT, RULES, auth, examples, make_record, obs
from service_support import db_url  # noqa: F401  (fixture)
from ur_engine.errors import RecordErrors
from ur_engine.intake.answers import add_answers, read_response
from ur_engine.output.questionnaire import questionnaire

FHIR = "application/fhir+json"
# IV fluids (intensity met), a normal pulse, a systolic pressure without its diastolic, no labs: the observations
# sent are not the whole chart, so sodium and the rest are unknown and the stay pends for them.
PENDS = make_record(id="stay-dtr", treatments=[{"type": "iv_fluids", "start": "2026-03-02T10:00:00Z"}],
                    observations=[obs("8867-4", 95), obs("8480-6", 120, minutes=40)],
                    complete=["diagnoses", "procedures", "treatments"])
SODIUM_TIME = "2026-03-02T11:00:00Z"


def pended(client) -> dict:
    res = client.post("/v1/reviews", json=PENDS)
    assert res.status_code == 200
    decision = res.get_json()
    assert decision["outcome"] == "pend" and "sodium.min" in decision["missing"]
    return decision


def package(client, review_id: str) -> tuple[dict, dict]:
    res = client.get(f"/fhir/Questionnaire/review-{review_id}/$questionnaire-package")
    assert res.status_code == 200 and res.mimetype == FHIR
    body = res.get_json()
    Parameters.model_validate(body)
    (param,) = body["parameter"]
    assert param["name"] == "PackageBundle"
    q, response = (e["resource"] for e in param["resource"]["entry"])
    return q, response


def answer(item_id: str, value, unit: str, time: str) -> dict:
    return {"linkId": item_id, "item": [
        {"linkId": f"{item_id}.value", "answer": [{"valueQuantity": {"value": value, "code": unit,
                                                                       "system": "http://unitsofmeasure.org"}}]},
        {"linkId": f"{item_id}.time", "answer": [{"valueDateTime": time}]}]}


def test_answering_the_questionnaire_of_a_pended_stay_with_a_low_sodium_approves_it(client, app):
    first = pended(client)
    q, response = package(client, first["review_id"])
    sodium = next(i for i in q["item"] if i["linkId"] == "sodium")
    assert sodium["text"] == "Sodium (lowest and highest) in the first 24 h after arrival"
    assert {"system": "http://loinc.org", "code": "2951-2", "display": "Sodium"} in sodium["code"]
    assert sodium["item"][0]["extension"][0]["valueCoding"]["code"] == "mmol/L"
    # What the chart says for a criterion still unknown is pre-filled: the systolic pressure beside the missing
    # diastolic one.
    systolic = next(i for i in q["item"] if i["linkId"] == "systolic_bp")
    assert systolic["item"][0]["text"] == "Systolic blood pressure (mm Hg)"
    prefilled = {i["linkId"]: i for i in response["item"]}
    assert prefilled["systolic_bp"]["item"][0]["answer"][0]["valueQuantity"]["value"] == 120
    assert response["status"] == "in-progress" and response["questionnaire"].startswith(q["url"] + "|")

    response = {**response, "id": "qr-sodium", "status": "completed",
                "item": [*response["item"], answer("sodium", 120, "mmol/L", SODIUM_TIME)]}
    res = client.post("/fhir/QuestionnaireResponse", json=response, headers={"Content-Type": FHIR})
    assert res.status_code == 201, res.get_json()
    second = res.get_json()
    assert second["outcome"] == "approve" and second["review_action"] == "A1"
    assert second["follows"] == {"review_id": first["review_id"], "source": "QuestionnaireResponse/qr-sodium"}
    met = {c["id"]: c for c in second["criteria"] if c["status"] == "met"}
    assert met["SI-SODIUM"]["evidence"][0] == {"fact": "sodium.min", "value": 120, "time": SODIUM_TIME,
                                               "source": "QuestionnaireResponse/qr-sodium"}
    assert "source" not in met["IS-IV"]["evidence"][0]  # the chart's own evidence stays the chart's

    stored = client.get(res.headers["Location"]).get_json()
    assert stored["decision"] == second
    systolic = [o for o in stored["record"]["observations"] if o["code"] == "8480-6"]
    assert systolic == [obs("8480-6", 120, minutes=40)]  # the pre-filled reading sent back is not a new one
    assert client.get(f"/v1/reviews/{first['review_id']}").get_json()["decision"]["outcome"] == "pend"
    web = app.test_client()  # the reviewer's page shows where each value came from
    web.set_cookie("ur_key", app.config["TEST_KEYS"]["reviewer"])
    page = web.get(f"/ui/reviews/{second['review_id']}").get_data(as_text=True)
    assert "from QuestionnaireResponse/qr-sodium" in page
    assert f'href="/ui/reviews/{first["review_id"]}"' in page  # and which review it follows
    # The pend is closed: answered, it left the worklist, and the approval needs no physician.
    assert client.get("/v1/worklist").get_json()["open"] == 0
    assert client.get("/v1/reviews?status=open").get_json()["items"] == []


def test_a_review_answered_already_or_decided_by_a_physician_is_not_answered_again(app, client):
    first = pended(client)
    _, response = package(client, first["review_id"])
    body = {**response, "status": "completed", "item": [answer("sodium", 140, "mmol/L", SODIUM_TIME)]}
    second = client.post("/fhir/QuestionnaireResponse", json=body, headers={"Content-Type": FHIR}).get_json()
    res = client.post("/fhir/QuestionnaireResponse", json=body, headers={"Content-Type": FHIR})
    assert res.status_code == 409 and second["review_id"] in res.get_json()["issue"][0]["diagnostics"]
    decided = client.post(f"/v1/reviews/{second['review_id']}/determination", headers=auth(app, "physician"),
                          json={"decision": "approve"})
    assert decided.status_code == 201
    body["questionnaire"] = body["questionnaire"].replace(first["review_id"], second["review_id"])
    res = client.post("/fhir/QuestionnaireResponse", json=body, headers={"Content-Type": FHIR})
    assert res.status_code == 409 and "a physician has decided" in res.get_json()["issue"][0]["diagnostics"]


def test_an_answer_that_loses_the_race_to_another_is_refused_by_the_store(app, client, monkeypatch):
    first = pended(client)
    _, response = package(client, first["review_id"])
    body = {**response, "status": "completed", "item": [answer("sodium", 140, "mmol/L", SODIUM_TIME)]}
    second = client.post("/fhir/QuestionnaireResponse", json=body, headers={"Content-Type": FHIR}).get_json()
    # As if this answer's early check ran before the first answer was committed: the store's own check refuses it.
    monkeypatch.setattr(app.extensions["ur_store"], "followed_by", lambda review_id: None)
    res = client.post("/fhir/QuestionnaireResponse", json=body, headers={"Content-Type": FHIR})
    assert res.status_code == 409
    assert f"answer the questionnaire of review {second['review_id']}" in res.get_json()["issue"][0]["diagnostics"]
    reviews = client.get(f"/v1/reviews?record_id={PENDS['id']}").get_json()["items"]
    assert len(reviews) == 2  # the stay's reviews never fork


def test_answers_that_still_leave_the_stay_pended_move_the_pend_to_the_new_review(client):
    first = pended(client)
    q, response = package(client, first["review_id"])
    normal = answer("sodium", 140, "mmol/L", SODIUM_TIME)  # known now, and not abnormal: others still missing
    res = client.post("/fhir/QuestionnaireResponse", json={**response, "status": "completed", "item": [normal]},
                      headers={"Content-Type": FHIR})
    second = res.get_json()
    assert res.status_code == 201 and second["outcome"] == "pend" and "sodium.min" not in second["missing"]
    assert second["follows"]["source"].startswith("QuestionnaireResponse/")
    worklist = client.get("/v1/worklist").get_json()
    assert [i["review_id"] for i in worklist["items"]] == [second["review_id"]]


def test_a_dtr_client_asks_for_the_package_by_the_questionnaires_canonical(client):
    first = pended(client)
    canonical = f"http://localhost/fhir/Questionnaire/review-{first['review_id']}"
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "coverage", "resource": {"resourceType": "Coverage", "status": "active"}},
        {"name": "questionnaire", "valueCanonical": canonical}]}
    res = client.post("/fhir/Questionnaire/$questionnaire-package", json=body, headers={"Content-Type": FHIR})
    assert res.status_code == 200 and res.mimetype == FHIR
    (param,) = Parameters.model_validate(res.get_json()).parameter
    q = param.resource.entry[0].resource
    assert param.name == "PackageBundle" and q.url == canonical and q.item[0].linkId
    body["parameter"][1]["valueCanonical"] = "http://elsewhere.example/Questionnaire/x"
    res = client.post("/fhir/Questionnaire/$questionnaire-package", json=body, headers={"Content-Type": FHIR})
    assert res.status_code == 400
    assert res.get_json()["issue"][0]["expression"] == ["Parameters.parameter[1].valueCanonical"]


def test_the_questionnaire_is_a_fhir_questionnaire_of_the_missing_information(client):
    first = pended(client)
    res = client.get(f"/fhir/Questionnaire/review-{first['review_id']}", headers={"Authorization": auth(
        client.application, "physician")["Authorization"]})
    assert res.status_code == 200 and res.mimetype == FHIR
    q = res.get_json()
    Questionnaire.model_validate(q)
    asked = [i["text"] for i in q["item"][:len(first["missing_info"])]]
    assert asked == [m["text"] for m in first["missing_info"]]
    bleeding = next(i for i in q["item"] if i["linkId"] == "finding.active_bleeding")
    assert bleeding["type"] == "boolean"


@pytest.mark.parametrize("change,status,where", [
    ({"status": "in-progress"}, 400, "QuestionnaireResponse.status"),
    ({"questionnaire": "http://elsewhere.example/Questionnaire/abc"}, 400, "QuestionnaireResponse.questionnaire"),
    ({"item": [answer("sodium", "many", "mmol/L", SODIUM_TIME)]}, 400,
     "QuestionnaireResponse.item[0].item[0].answer[0].valueQuantity.value"),
    ({"item": [answer("sodium", 120, "mmol/L", "2026-03-02")]}, 400,
     "QuestionnaireResponse.item[0].item[1].answer[0].valueDateTime"),
    ({"item": [{"linkId": "shoe_size", "answer": [{"valueDecimal": 9}]}]}, 400, "QuestionnaireResponse.item[0].linkId"),
    ({"resourceType": "Patient"}, 400, "QuestionnaireResponse.resourceType"),
])
def test_an_answer_that_cannot_be_read_is_refused_naming_the_element_and_nothing_is_stored(client, change, status,
                                                                                           where):
    first = pended(client)
    q, _ = package(client, first["review_id"])
    body = {"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": q["url"],
            "item": [answer("sodium", 120, "mmol/L", SODIUM_TIME)], **change}
    res = client.post("/fhir/QuestionnaireResponse", json=body, headers={"Content-Type": FHIR})
    assert res.status_code == status and res.mimetype == FHIR
    issue = res.get_json()["issue"][0]
    assert issue["severity"] == "error" and issue["expression"] == [where]
    assert len(client.get("/v1/reviews").get_json()["items"]) == 1


def test_the_reference_implementations_dtr_response_is_refused_naming_each_element_fhir_does_not_have(client):
    """The Da Vinci PAS reference implementation's DTR response writes ``"integer": "99"`` where FHIR has
    ``valueInteger``: read through the FHIR model library, each such answer is named, and it is not guessed at."""
    body = json.loads((ROOT / "tests" / "data" / "fhir" / "pas-ri" / "questionnaireresponse-dtr.json").read_text())
    res = client.post("/fhir/QuestionnaireResponse", json=body, headers={"Content-Type": FHIR})
    assert res.status_code == 400
    issues = res.get_json()["issue"]
    assert issues[0]["expression"] == ["QuestionnaireResponse.item[3].item[1].answer[0].integer"]
    assert len(issues) == 5 and all(i["expression"][0].endswith(".answer[0].integer") for i in issues)


    def mended(node):  # as the reference implementation meant it: valueInteger, a number
        if isinstance(node, dict):
            return {("valueInteger" if k == "integer" else k): (int(v) if k == "integer" else mended(v))
                    for k, v in node.items()}
        return [mended(v) for v in node] if isinstance(node, list) else node

    res = client.post("/fhir/QuestionnaireResponse", json=mended(body), headers={"Content-Type": FHIR})
    assert res.status_code == 400  # valid FHIR now, but it answers the reference implementation's questionnaire
    assert res.get_json()["issue"][0]["expression"] == ["QuestionnaireResponse.questionnaire"]


def test_answers_to_a_review_that_does_not_exist_are_404(client):
    body = {"resourceType": "QuestionnaireResponse", "status": "completed",
            "questionnaire": "http://localhost/fhir/Questionnaire/review-01NOSUCHREVIEW"}
    res = client.post("/fhir/QuestionnaireResponse", json=body, headers={"Content-Type": FHIR})
    assert res.status_code == 404 and res.get_json()["issue"][0]["code"] == "not-found"


def test_a_physician_reads_the_questionnaire_but_only_a_reviewer_answers_it(app, client):
    first = pended(client)
    physician = auth(app, "physician")
    assert client.get(f"/fhir/Questionnaire/review-{first['review_id']}", headers=physician).status_code == 200
    body = {"resourceType": "QuestionnaireResponse", "status": "completed",
            "questionnaire": f"http://localhost/fhir/Questionnaire/review-{first['review_id']}"}
    assert client.post("/fhir/QuestionnaireResponse", json=body, headers=physician).status_code == 403


def test_the_documentation_questionnaire_asks_for_named_facts_in_the_librarys_words(client):
    res = client.get("/fhir/Questionnaire/documentation?fact=lactate.max&fact=finding.active_bleeding")
    assert res.status_code == 200
    items = {i["linkId"]: i for i in res.get_json()["item"]}
    assert items["lactate"]["text"] == "Lactate (highest) in the first 24 h after arrival"
    assert items["finding.active_bleeding"]["type"] == "boolean"
    res = client.get("/fhir/Questionnaire/documentation?fact=lactate.maxx")
    assert res.status_code == 400 and "lactate.maxx" in res.get_json()["issue"][0]["diagnostics"]
    res = client.get("/fhir/Questionnaire/documentation?fact=lactate.max&review_type=readmission")
    assert res.status_code == 400 and res.get_json()["issue"][0]["expression"] == ["review_type"]


@pytest.fixture()
def store_app(db_url):  # noqa: F811
    """The service on each audit store (SQLite, then a real PostgreSQL): closing a pend is a query of the store."""
    from api import create_app
    from ur_service.auth import create_key

    app = create_app({"TESTING": True, "RULES_DIR": str(RULES), "DATABASE_URL": db_url,
                      "RESPONSE_VALIDATION": "strict"})
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {create_key(app.extensions['ur_store'], 'reviewer')}"
    yield client
    app.extensions["ur_engine"].close()
    app.extensions["ur_store"].close()


def test_an_answered_pend_leaves_the_worklist_on_each_store(store_app):
    client = store_app
    first = pended(client)
    other = client.post("/v1/reviews", json={**PENDS, "id": "stay-other"}).get_json()  # another stay stays open
    _, response = package(client, first["review_id"])
    res = client.post("/fhir/QuestionnaireResponse", headers={"Content-Type": FHIR}, json={
        **response, "status": "completed", "item": [answer("sodium", 120, "mmol/L", SODIUM_TIME)]})
    assert res.status_code == 201 and res.get_json()["outcome"] == "approve"
    worklist = client.get("/v1/worklist").get_json()
    assert [i["review_id"] for i in worklist["items"]] == [other["review_id"]] and worklist["open"] == 1
    assert client.get("/v1/stats").get_json()["worklist"]["open"] == 1


# --- the intake of answers, on its own -------------------------------------------------------------------------

def response_with(*items) -> dict:
    return {"resourceType": "QuestionnaireResponse", "status": "completed", "item": list(items)}


@pytest.mark.parametrize("item,added", [
    (answer("temperature_oral", 101.5, "[degF]", SODIUM_TIME),
     {"code": "8310-5", "value": 101.5, "unit": "[degF]", "time": SODIUM_TIME, "method": "oral", "source": "QR/1"}),
    (answer("spo2_room_air", 86, "%", SODIUM_TIME),
     {"code": "59408-5", "value": 86, "unit": "%", "time": SODIUM_TIME, "o2_device": "room_air", "source": "QR/1"}),
    (answer("arterial_ph", 7.21, "[pH]", SODIUM_TIME),
     {"code": "2744-1", "value": 7.21, "unit": "[pH]", "time": SODIUM_TIME, "source": "QR/1"}),
    ({**answer("lactate", 15, "mmol/L", SODIUM_TIME), "item": [
        {"linkId": "lactate.value", "answer": [{"valueQuantity": {"value": 15, "comparator": ">", "code": "mmol/L"}}]},
        {"linkId": "lactate.time", "answer": [{"valueDateTime": SODIUM_TIME}]}]},
     {"code": "2524-7", "value": 15, "unit": "mmol/L", "comparator": ">", "time": SODIUM_TIME, "source": "QR/1"}),
])
def test_a_reading_is_added_with_what_its_fact_reads_it_by(library, item, added):
    record = make_record(observations=None, complete=["diagnoses"])
    out = add_answers(record, read_response(response_with(item)), library.facts, "QR/1")
    assert out["observations"] == [added]
    assert "observations" in out["incomplete"]  # the rest of the chart's readings are still unknown
    assert record == make_record(observations=None, complete=["diagnoses"])  # the stored record is not touched


def test_a_finding_answered_names_its_source_and_one_the_chart_already_had_does_not(library):
    record = make_record(findings={"active_bleeding": False})
    out = add_answers(record, read_response(response_with(
        {"linkId": "finding.active_bleeding", "answer": [{"valueBoolean": False}]},
        {"linkId": "finding.ecg_acute_ischemia", "answer": [{"valueBoolean": True}]})), library.facts, "QR/2")
    assert out["findings"] == {"active_bleeding": False, "ecg_acute_ischemia": True}
    assert out["sources"] == {"findings.ecg_acute_ischemia": "QR/2"}


def test_a_treatment_answered_is_added_with_its_start(library):
    item = {"linkId": "treatment.vasopressor", "item": [
        {"linkId": "treatment.vasopressor.type",
         "answer": [{"valueCoding": {"code": "vasopressor"}}]},
        {"linkId": "treatment.vasopressor.start", "answer": [{"valueDateTime": SODIUM_TIME}]}]}
    out = add_answers(make_record(), read_response(response_with(item)), library.facts, "QR/3")
    assert out["treatments"] == [{"type": "vasopressor", "start": SODIUM_TIME, "source": "QR/3"}]


def test_a_questionnaire_of_nothing_missing_says_so(library):
    q = questionnaire({"missing_info": [], "criteria": []}, library, qid="review-x", url="http://x/Questionnaire/x",
                      title="Documentation")
    assert [i["type"] for i in q["item"]] == ["display"]


def test_a_response_still_in_progress_is_not_reviewed():
    with pytest.raises(RecordErrors) as caught:
        read_response({**response_with(), "status": "in-progress"})
    assert caught.value.errors[0].path == "QuestionnaireResponse.status"


ANSWERED = {"resourceType": "QuestionnaireResponse", "id": "qr-fuzz", "status": "completed",
            "questionnaire": "http://localhost/fhir/Questionnaire/review-REVIEW",
            "item": [answer("sodium", 120, "mmol/L", SODIUM_TIME), answer("temperature_oral", 101.5, "[degF]", SODIUM_TIME),
                     {"linkId": "finding.active_bleeding", "answer": [{"valueBoolean": True}]},
                     {"linkId": "treatment.vasopressor", "item": [
                         {"linkId": "treatment.vasopressor.type", "answer": [{"valueCoding": {"code": "vasopressor"}}]},
                         {"linkId": "treatment.vasopressor.start", "answer": [{"valueDateTime": SODIUM_TIME}]}]}]}
PLACES = sorted((p for p in json_paths(ANSWERED) if p != ("questionnaire",)), key=str)
ODD = [None, "", "x", 0, -1, 1.5, True, [], {}, [None], {"a": 1}, "2020-13-45", "9" * 300, {"valueQuantity": "x"},
       [{"linkId": 7}], {"linkId": None, "item": "none"}, {"valueDateTime": "2026-03-02T11:00:00"}]


@settings(max_examples=examples(200), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(PLACES), st.sampled_from(ODD)), min_size=1, max_size=3))
def test_an_odd_value_anywhere_in_the_answers_gets_a_review_or_an_outcome_naming_it(client, changes):
    open_ = client.get("/v1/reviews?status=open&record_id=stay-dtr").get_json()["items"]  # the stay's open pend
    review_id = open_[0]["review_id"] if open_ else pended(client)["review_id"]
    body = json.loads(json.dumps(ANSWERED).replace("review-REVIEW", f"review-{review_id}"))
    for path, value in changes:
        node = body
        for key in path[:-1]:
            ok = isinstance(node, dict) and key in node or isinstance(node, list) and key < len(node)
            node = node[key] if ok else None
            if node is None or isinstance(node, (str, int, float)):
                break
        if isinstance(node, dict) or isinstance(node, list) and path[-1] < len(node):
            node[path[-1]] = json.loads(json.dumps(value))
    res = client.post("/fhir/QuestionnaireResponse", json=body, headers={"Content-Type": FHIR})
    assert res.status_code in (201, 400), (changes, res.get_json())
    if res.status_code == 400:
        issues = res.get_json()["issue"]
        assert issues and all(i["expression"][0].startswith("QuestionnaireResponse") for i in issues if "expression" in i)
    else:
        assert res.get_json()["follows"]["review_id"] == review_id


def test_a_chart_reading_at_the_same_time_as_an_answer_stays_the_charts(engine, library):
    from ur_engine.intake.normalise import review
    from ur_engine.output.questionnaire import name_sources

    chart = make_record(observations=[obs("8867-4", 150, minutes=30)], treatments=[{"type": "iv_fluids"}],
                        complete=["diagnoses", "procedures", "treatments"])
    same_time = {"linkId": "heart_rate", "item": [
        {"linkId": "heart_rate.value", "answer": [{"valueQuantity": {"value": 88, "code": "/min"}}]},
        {"linkId": "heart_rate.time", "answer": [{"valueDateTime": obs("8867-4", 0, minutes=30)["time"]}]}]}
    merged = add_answers(chart, read_response(response_with(same_time)), library.facts, "QR/9")
    decision = name_sources(review(engine, merged).to_dict(), merged, library.facts)
    pulse = next(c for c in decision["criteria"] if c["id"] == "SI-PULSE")["evidence"]
    assert {e["fact"]: e.get("source") for e in pulse} == {"heart_rate.min": "QR/9", "heart_rate.max": None}


def test_a_field_answered_sets_it_in_the_record_naming_its_source(library):
    item = {"linkId": "expected_midnights", "answer": [{"valueDecimal": 2}]}
    out = add_answers(make_record(), read_response(response_with(item)), library.facts, "QR/4")
    assert out["encounter"]["expected_midnights"] == 2
    assert out["sources"] == {"encounter.expected_midnights": "QR/4"}


def test_a_finding_the_chart_gives_for_an_unknown_criterion_is_pre_filled(client):
    record = {**PENDS, "id": "stay-co2", "findings": {"chronic_co2_abnormality": False}}
    decision = client.post("/v1/reviews", json=record).get_json()
    assert "total_co2.min" in decision["missing"]  # SI-CO2 is unknown: its CO2 is missing, its finding is not
    q, response = package(client, decision["review_id"])
    asked = {i["linkId"]: i for i in q["item"]}
    assert asked["finding.chronic_co2_abnormality"]["type"] == "boolean"
    answers = {i["linkId"]: i["answer"] for i in response["item"] if "answer" in i}
    assert answers["finding.chronic_co2_abnormality"] == [{"valueBoolean": False}]
