"""What a careless or hostile client sends: dates at the ends of the calendar, keys given twice, huge bad values,
made-up HTTP methods. Each gets a 400 naming the field (never a 500), a short answer and bounded metrics."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from conftest import auth, make_record

SOON = (datetime.now(timezone.utc) + timedelta(days=300)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("encounter,field", [
    ({"arrival_time": "9999-12-31T23:59:59Z"}, "$.encounter.arrival_time"),
    ({"arrival_time": "9999-12-31T23:59:59-12:00"}, "$.encounter.arrival_time"),
    ({"arrival_time": "0001-01-01T00:00:00+14:00"}, "$.encounter.arrival_time"),
    ({"arrival_time": "0000-00-00T00:00Z"}, "$.encounter.arrival_time"),
    ({"arrival_time": "2099-03-02T09:40:00Z"}, "$.encounter.arrival_time"),
    ({"arrival_time": "1899-12-31T23:59:59Z"}, "$.encounter.arrival_time"),
    ({"order_time": "9999-12-31T23:59:59Z"}, "$.encounter.order_time"),
    ({"discharge_time": "2099-01-01T00:00:00Z"}, "$.encounter.discharge_time"),
], ids=["year-9999", "year-10000-in-utc", "year-1-east", "zero-date", "stay-in-2099", "before-1900", "order-9999",
        "discharge-2099"])
def test_an_implausible_admission_time_is_a_400_naming_the_field(client, encounter, field):
    res = client.post("/v1/reviews", json=make_record(encounter=encounter))
    body = res.get_json()
    assert res.status_code == 400, body
    assert field in [e["path"] for e in body["errors"]]
    assert client.get("/v1/reviews").get_json()["items"] == []  # nothing stored


def test_an_observation_time_out_of_range_is_set_aside_and_the_stay_still_reviewed(client):
    rec = make_record(observations=[{"code": "8867-4", "value": 150, "time": "2026-03-02T10:10:00Z"},
                                    {"code": "8867-4", "value": 150, "time": "9999-01-01T00:00:00Z"}])
    res = client.post("/v1/reviews", json=rec)
    assert res.status_code == 200, res.get_json()
    assert [n["where"] for n in res.get_json()["data_notices"]] == ["$.observations[1].time"]


def test_an_as_of_that_is_no_calendar_date_is_a_400_naming_it(client):
    res = client.post("/v1/reviews?as_of=1910-02-30", json=make_record())
    assert res.status_code == 400 and res.get_json()["errors"][0]["parameter"] == "as_of"


def test_as_of_judges_a_past_stay_by_the_rules_in_effect_that_day(client):
    old = make_record(encounter={"arrival_time": "2012-03-02T09:40:00Z"})
    assert client.post("/v1/reviews", json=old).get_json()["rules"]["rulesets"] == {}
    res = client.post("/v1/reviews?as_of=2026-12-01", json=old)
    assert res.status_code == 200 and "adult-admission" in res.get_json()["rules"]["rulesets"]


def test_a_stay_a_few_months_ahead_is_still_reviewed(client):
    res = client.post("/v1/reviews", json=make_record(encounter={"arrival_time": SOON}))
    assert res.status_code == 200, res.get_json()


@pytest.mark.parametrize("parameter,value", [
    ("since", "9999-12-31T23:59:59-12:00"), ("since", "0001-01-01T00:00:00+14:00"),
    ("until", "9999-12-31T23:59:59-12:00"), ("until", "0000-00-00T00:00Z"), ("since", "2099-01-01T00:00:00Z"),
])
def test_a_query_time_out_of_range_is_a_400_naming_the_parameter(client, parameter, value):
    res = client.get("/v1/reviews", query_string={parameter: value})
    assert res.status_code == 400, res.get_data(as_text=True)
    assert res.get_json()["errors"][0]["parameter"] == parameter


def test_the_document_refuses_the_impossible_zero_date():
    import re

    from ur_service import openapi

    components = openapi.document()["components"]["schemas"]
    for pattern in (components["Admission_time"]["pattern"], openapi.TIME["pattern"]):
        assert not re.search(pattern, "0000-00-00T00:00Z") and re.search(pattern, "2026-03-02T09:40:00Z")


@pytest.mark.parametrize("body,key,path", [
    ('{"id": "a", "patient": {"age": 67, "age": 30}}', "age", "$.patient.age"),
    ('{"id": "a", "id": "b"}', "id", "$.id"),
    ('{"observations": [{"code": "x", "code": "y"}]}', "code", "$.observations[0].code"),
])
def test_a_key_given_twice_is_a_400_naming_the_key(client, body, key, path):
    res = client.post("/v1/reviews", data=body, content_type="application/json")
    problem = res.get_json()
    assert res.status_code == 400, problem
    assert problem["errors"][0]["path"] == path and f"'{key}'" in problem["errors"][0]["message"]


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity"])
def test_a_number_json_cannot_carry_is_a_400(client, number):
    text = json.dumps(make_record()).replace('"age": 60', f'"age": {number}')
    res = client.post("/v1/reviews", data=text, content_type="application/json")
    assert res.status_code == 400 and res.get_json()["errors"][0]["path"] == "$"


def test_a_duplicated_record_field_is_never_stored_with_the_last_value(client):
    text = json.dumps(make_record(patient={"age": 67})).replace('"age": 67', '"age": 67, "age": 30')
    assert client.post("/v1/reviews", data=text, content_type="application/json").status_code == 400
    assert client.get("/v1/reviews").get_json()["items"] == []


def test_a_determination_with_a_key_given_twice_is_refused(app, client):
    review = client.post("/v1/reviews", json=make_record(id="stay-pend")).get_json()
    res = client.post(f"/v1/reviews/{review['review_id']}/determination", headers=auth(app, "physician"),
                      data='{"decision": "deny", "decision": "approve"}', content_type="application/json")
    assert res.status_code == 400 and "'decision'" in res.get_json()["errors"][0]["message"]


def test_a_huge_bad_value_is_quoted_only_in_part(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024
    huge = "x" * 990_000
    res = client.post("/v1/reviews", json=make_record(coverage={"line_of_business": huge}))
    assert res.status_code == 400
    assert len(res.get_data()) < 4000, len(res.get_data())
    message = res.get_json()["errors"][0]["message"]
    assert "x" * 200 in message and "x" * 201 not in message and "990000 characters" in message


def test_made_up_methods_share_one_metrics_label(client):
    for i in range(30):
        client.open("/healthz", method=f"BREW{i}")
    text = client.get("/metrics").get_data(as_text=True)
    methods = {line.split('method="')[1].split('"')[0] for line in text.splitlines()
               if line.startswith("ur_http_requests_total{")}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"} and "other" in methods


def _hours_after_arrival(hours: float) -> str:
    from datetime import datetime, timedelta, timezone

    return (datetime(2026, 3, 2, 9, 40, tzinfo=timezone.utc) + timedelta(hours=hours)).isoformat()


def test_by_day_reports_a_late_escalation_and_is_stored_with_the_review(client):
    at = _hours_after_arrival
    rec = make_record(encounter={"discharge_time": at(60)},
                      observations=[{"code": "8867-4", "value": 146, "time": at(1)},
                                    {"code": "8480-6", "value": 78, "time": at(52)}],
                      treatments=[{"type": "iv_antibiotic", "start": at(2)}, {"type": "vasopressor", "start": at(50)}])
    res = client.post("/v1/reviews?by_day=true", json=rec)
    assert res.status_code == 200, res.get_json()
    changes = res.get_json()["by_day"]["changes"]
    assert [(c["day"], c["kind"], c["to"]) for c in changes] == [(3, "escalation", "critical")]
    stored = client.get(res.headers["Location"]).get_json()
    assert stored["decision"]["by_day"]["changes"] == changes
    assert "by_day" not in client.post("/v1/reviews", json=rec).get_json()


def test_by_day_takes_true_or_false_only(client):
    res = client.post("/v1/reviews?by_day=yes", json=make_record())
    assert res.status_code == 400 and res.get_json()["errors"][0]["parameter"] == "by_day"


STAY_NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("encounter,named", [
    ({"discharge_time": "9999-01-01T00:00:00Z", "arrival_time": "1899-12-31T23:59:59Z",
      "requested_level": "inpatient", "order_time": "2026-13-01T00:00:00Z", "review_time": "2030-01-01T00:00:00+15:00"},
     [("$.encounter.discharge_time", "not a date and time from 1900 on"),
      ("$.encounter.arrival_time", "not a date and time from 1900 on"),
      ("$.encounter.order_time", "not a valid date and time"),
      ("$.encounter.review_time", "offset of at most 14 hours")]),
    ({"arrival_time": "2026-11-30T08:00:00", "order_time": "0000-00-00T00:00Z", "discharge_time": None,
      "unknown_field": "2099-01-01T00:00:00Z"},
     [("$.encounter.arrival_time", "has no UTC offset"), ("$.encounter.order_time", "not a valid date and time")]),
    ({"arrival_time": "2026-11-30T08:00:00Z", "discharge_time": "2026-12-02T08:00:00Z"}, []),
], ids=["four-bad-times", "no-offset-and-zero-date", "a-plausible-stay"])
def test_every_implausible_time_of_a_stay_is_named_in_the_order_given(encounter, named):
    from ur_engine.errors import RecordErrors
    from ur_service.inputs import check_record_times

    try:
        check_record_times({"encounter": encounter}, now=STAY_NOW)
        found = []
    except RecordErrors as exc:
        found = [(e.as_dict()["path"], e.as_dict()["message"]) for e in exc.errors]
    assert [path for path, _ in found] == [path for path, _ in named]
    assert all(why in message for (_, message), (_, why) in zip(found, named))
