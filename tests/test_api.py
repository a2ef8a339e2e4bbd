"""The review API: decisions, problem+json errors with the field path, limits, health and rule sets."""

from __future__ import annotations

import json

from conftest import make_record, obs


def test_post_review_returns_the_decision(client):
    res = client.post("/v1/reviews", json=make_record(observations=[obs("8867-4", 150)],
                                                       treatments=[{"type": "iv_fluids"}]))
    assert res.status_code == 200
    body = res.get_json()
    assert (body["outcome"], body["supported"], body["review_action"]) == ("approve", "inpatient", "A1")
    assert body["record_id"] == "stay-test" and body["review_id"]


def test_invalid_record_is_a_400_problem_naming_the_field(client):
    res = client.post("/v1/reviews", json=make_record(coverage={"line_of_business": "medicar"}))
    assert res.status_code == 400 and res.mimetype == "application/problem+json"
    body = res.get_json()
    assert body["errors"][0]["path"] == "$.coverage.line_of_business"
    assert body["errors"][0]["suggestion"] == "medicare"


def test_malformed_json_is_a_400_problem(client):
    res = client.post("/v1/reviews", data='{"id": ', content_type="application/json")
    assert res.status_code == 400 and res.get_json()["errors"][0]["path"] == "$"


def test_wrong_content_type_is_a_415(client):
    res = client.post("/v1/reviews", data="id=1", content_type="application/x-www-form-urlencoded")
    assert res.status_code == 415 and res.mimetype == "application/problem+json"


def test_body_over_the_limit_is_a_413(client):
    big = make_record(observations=[obs("8867-4", 80, i % 600) for i in range(3000)])
    res = client.post("/v1/reviews", data=json.dumps(big), content_type="application/json")
    assert res.status_code == 413 and "bytes" in res.get_json()["detail"]


def test_unknown_route_is_a_404_problem(client):
    res = client.get("/v1/nothing")
    assert res.status_code == 404 and res.mimetype == "application/problem+json"


def test_healthz_names_the_rule_digest(client, app):
    body = client.get("/healthz").get_json()
    lib = app.extensions["ur_engine"].library
    assert body == {"status": "ok", "rules": {"version": lib.version, "digest": lib.digest}}


def test_rulesets_lists_criteria_with_sources(client):
    body = client.get("/v1/rulesets").get_json()
    adult = next(r for r in body["rulesets"] if r["id"] == "adult-admission")
    assert adult["levels"] == ["inpatient", "observation"]
    assert all(c["source"] for c in adult["criteria"])
