"""The review service's JSON API: roles, the audit store behind it, the worklist, stats, metrics and logs."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import datetime, timedelta, timezone

import pytest

from conftest import ROOT, auth, make_record, obs
from ur_service import ROLES, logs, openapi

APPROVE = make_record(observations=[obs("8867-4", 150)], treatments=[{"type": "iv_fluids"}])
PEND = make_record(id="stay-pend")
ROUTES = [(name, method, path.replace("{review_id}", "01ABC"), roles)
          for name, method, path, roles, *_ in openapi.OPERATIONS if roles]


def submit(client, record, **kw):
    res = client.post("/v1/reviews", json=record, **kw)
    assert res.status_code == 200, res.get_json()
    return res.get_json()


@pytest.mark.parametrize("name,method,path,roles", ROUTES, ids=[r[0] for r in ROUTES])
def test_every_protected_endpoint_is_401_without_a_key_and_403_for_other_roles(app, name, method, path, roles):
    client = app.test_client()
    res = client.open(path, method=method.upper(), json={})
    assert res.status_code == 401 and res.mimetype == "application/problem+json"
    assert res.headers["WWW-Authenticate"].startswith("Bearer")
    unknown = {"Authorization": "Bearer ur_000000000000_" + "x" * 43}
    res = client.open(path, method=method.upper(), json={}, headers=unknown)
    assert res.status_code == 401
    for role in set(ROLES) - set(roles):
        res = client.open(path, method=method.upper(), json={}, headers=auth(app, role))
        assert res.status_code == 403, (role, res.get_json())
    for role in roles:
        assert client.open(path, method=method.upper(), json={}, headers=auth(app, role)).status_code not in (401, 403)


def test_public_endpoints_need_no_key(app):
    client = app.test_client()
    for path in ("/healthz", "/v1/rulesets", "/openapi.json", "/metrics", "/docs", "/ui/rules"):
        assert client.get(path).status_code == 200, path


def test_a_review_is_stored_before_it_is_answered_and_can_be_read_back(app, client):
    decision = submit(client, APPROVE)
    res = client.get(f"/v1/reviews/{decision['review_id']}", headers=auth(app, "physician"))
    body = res.get_json()
    assert res.status_code == 200 and body["decision"] == decision and body["record"] == APPROVE
    assert body["submitted_by"]["name"] == "test-reviewer" and body["received_at"].endswith("Z")
    assert body["rules"]["digest"] == decision["rules"]["digest"] and body["audit"]["seq"] == 1
    assert body["determination"] is None and body["due_at"] is None
    assert client.get("/v1/reviews/01NOTTHERE").status_code == 404


def test_an_invalid_record_is_not_stored(app, client):
    res = client.post("/v1/reviews", json=make_record(coverage={"line_of_business": "medicar"}))
    assert res.status_code == 400
    assert client.get("/v1/reviews").get_json()["items"] == []


def test_the_list_filters_and_pages(client):
    ids = [submit(client, APPROVE)["review_id"] for _ in range(3)]
    pend = submit(client, PEND, query_string={"urgency": "expedited"})
    page = client.get("/v1/reviews?limit=2").get_json()
    assert [i["review_id"] for i in page["items"]] == [pend["review_id"], ids[2]] and page["next_cursor"]
    rest = client.get(f"/v1/reviews?limit=2&cursor={page['next_cursor']}").get_json()
    assert [i["review_id"] for i in rest["items"]] == ids[1::-1] and rest["next_cursor"] is None
    assert [i["record_id"] for i in client.get("/v1/reviews?outcome=pend").get_json()["items"]] == ["stay-pend"]
    assert len(client.get("/v1/reviews?status=open&urgency=expedited").get_json()["items"]) == 1
    soon = (datetime.now(timezone.utc) + timedelta(days=300)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert client.get(f"/v1/reviews?since={soon}").get_json()["items"] == []
    for bad in ("limit=0", "limit=x", "outcome=deny", "since=yesterday", "since=2026-13-45T00:00:00Z", "cursor=-1"):
        res = client.get(f"/v1/reviews?{bad}")
        assert res.status_code == 400 and res.get_json()["errors"][0]["parameter"] == bad.split("=")[0], bad


def test_a_physician_determination_sits_beside_the_decision(app, client):
    pend = submit(client, PEND)
    worklist = client.get("/v1/worklist").get_json()
    assert worklist["open"] == 1 and worklist["items"][0]["review_id"] == pend["review_id"]
    assert 0 < worklist["items"][0]["seconds_left"] <= 7 * 86400 and not worklist["items"][0]["overdue"]
    url = f"/v1/reviews/{pend['review_id']}/determination"
    doctor = auth(app, "physician")
    res = client.post(url, json={"decision": "deny", "reason_code": "not_medically_necessary"}, headers=doctor)
    assert res.status_code == 400 and res.get_json()["errors"][0]["path"] == "$"
    res = client.post(url, json={"decision": "deny", "reason_code": "nope", "text": "x"}, headers=doctor)
    assert res.status_code == 400 and res.get_json()["errors"][0]["path"] == "$.reason_code"
    assert client.post(url, data="x", content_type="text/plain", headers=doctor).status_code == 415
    det = client.post(url, json={"decision": "deny", "reason_code": "not_medically_necessary",
                                 "text": "Vitals normal; no IV therapy."}, headers=doctor)
    assert det.status_code == 201
    body = det.get_json()
    assert body["physician"]["name"] == "test-physician" and body["on_time"] is True
    again = client.post(url, json={"decision": "approve"}, headers=doctor)
    assert again.status_code == 409
    stored = client.get(f"/v1/reviews/{pend['review_id']}").get_json()
    assert stored["decision"] == pend and stored["determination"] == body  # the engine's answer is untouched
    assert client.get("/v1/worklist").get_json()["open"] == 0
    res = client.post("/v1/reviews/01NOPE/determination", json={"decision": "approve"}, headers=doctor)
    assert res.status_code == 404


def test_stats_report_outcomes_and_agreement(app, client):
    doctor = auth(app, "physician")
    approved, pended = submit(client, APPROVE), [submit(client, PEND) for _ in range(3)]
    client.post(f"/v1/reviews/{approved['review_id']}/determination", json={"decision": "approve"}, headers=doctor)
    client.post(f"/v1/reviews/{pended[0]['review_id']}/determination",
                json={"decision": "deny", "reason_code": "other", "text": "no"}, headers=doctor)
    client.post(f"/v1/reviews/{pended[1]['review_id']}/determination", json={"decision": "approve"}, headers=doctor)
    stats = client.get("/v1/stats", headers=auth(app, "rules_admin")).get_json()
    assert stats["reviews"] == {"total": 4, "by_outcome": {"approve": 1, "pend": 3}}
    assert stats["worklist"] == {"open": 1, "overdue": 0}
    assert stats["determinations"]["total"] == 3 and stats["determinations"]["on_time"] == 2
    assert stats["determinations"]["by_engine_outcome"] == {"approve": {"approve": 1, "deny": 0},
                                                            "pend": {"approve": 1, "deny": 1}}
    # approve on met agrees, deny on not met agrees, approve on not met disagrees.
    assert stats["agreement"]["compared"] == 3 and stats["agreement"]["agreed"] == 2
    assert stats["agreement"]["rate"] == pytest.approx(0.6667)


def test_audit_verify_reports_an_intact_chain(client):
    submit(client, APPROVE)
    body = client.get("/v1/audit/verify").get_json()
    assert body["ok"] and body["counts"] == {"reviews": 1, "determinations": 0, "api_keys": 3, "rule_reloads": 1}
    assert client.get("/v1/audit/verify", query_string={"expect_head": body["anchor"]}).get_json()["ok"]


def test_metrics_count_reviews_by_outcome_with_a_latency_histogram(client):
    def count(text, outcome):
        line = next((x for x in text.splitlines() if x.startswith(f'ur_reviews_total{{outcome="{outcome}"}}')), None)
        return float(line.split()[-1]) if line else 0.0

    before = client.get("/metrics").get_data(as_text=True)
    submit(client, APPROVE)
    submit(client, PEND)
    res = client.get("/metrics")
    text = res.get_data(as_text=True)
    assert res.mimetype == "text/plain"
    assert count(text, "approve") == count(before, "approve") + 1 and count(text, "pend") == count(before, "pend") + 1
    assert "ur_review_duration_seconds_bucket{le=" in text and "ur_worklist_open 1.0" in text
    assert 'ur_http_request_duration_seconds_count{method="POST",route="/v1/reviews"}' in text


def test_logs_are_json_lines_without_patient_data(app, client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger(logs.LOGGER)
    logger.addHandler(handler)
    try:
        record = make_record(id="MRN-778899", patient={"age": 87, "sex": "male"},
                             observations=[obs("8867-4", 173)], treatments=[{"type": "iv_fluids"}])
        submit(client, record)
        client.post("/v1/reviews", json={**record, "patient": {"age": "eighty-seven-x"}})
        client.get("/v1/reviews?record_id=MRN-778899")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert {x["msg"] for x in lines} >= {"request", "review stored"}
    assert all({"ts", "level", "logger", "msg"} <= set(x) for x in lines)
    # Only these fields are ever logged: ids, routes, statuses, timings, chain positions.
    allowed = {"ts", "level", "logger", "msg", "request_id", "method", "route", "status", "ms", "key", "review_id",
               "outcome", "urgency", "rules", "seq", "hash", "error", "stack", "paths", "ok", "digest", "wanted",
               "decision", "reason_code"}
    assert all(set(x) <= allowed for x in lines), [set(x) - allowed for x in lines]
    text = stream.getvalue()
    for secret in ("MRN-778899", "eighty-seven", '"male"'):
        assert secret not in text, secret
    assert not [v for x in lines for k, v in x.items() if k not in ("ms", "seq", "status") and v in (87, 173)]


def test_unsupported_methods_are_405_problems_with_allow(client):
    res = client.delete("/v1/reviews")
    assert res.status_code == 405 and res.mimetype == "application/problem+json"
    assert "POST" in res.headers["Allow"]


def test_the_openapi_document_describes_every_route(app, client):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"] == "3.1.0" and doc["components"]["schemas"]["Admission"]["required"]
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static",) or rule.endpoint.startswith("web."):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)  # Flask's <review_id> is OpenAPI's {review_id}
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, path) in documented, (method, path)
    assert "POST /v1/reviews" in client.get("/docs").get_data(as_text=True)


def test_the_openapi_document_is_valid_openapi_3_1():
    from schemathesis.openapi import from_dict

    schema = from_dict(openapi.document())
    assert len(list(schema.get_all_operations())) >= 12


def test_a_response_that_breaks_its_schema_is_caught_in_strict_mode(app, client, monkeypatch):
    from ur_service import reviews

    monkeypatch.setattr(reviews, "stats", lambda store: {"reviews": "many"})
    res = client.get("/v1/stats")
    assert res.status_code == 500 and res.get_json()["title"] == "Response does not match its schema"


def test_the_readme_example_is_approved_over_http(client):
    decision = submit(client, json.loads((ROOT / "examples" / "pneumonia.json").read_text()))
    assert decision["outcome"] == "approve"


def test_a_reload_accepted_by_one_process_reaches_the_others(tmp_path):
    """Two apps on one store stand for two gunicorn workers: a reload through one is followed by the other."""
    import shutil

    from api import create_app
    from conftest import RULES

    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    config = {"RULES_DIR": str(rules), "DATABASE_URL": f"sqlite:///{tmp_path}/audit.db", "RELOAD_POLL_SECONDS": 0}
    one, two = create_app(config), create_app(config)
    from ur_service.auth import create_key

    admin = {"Authorization": f"Bearer {create_key(one.extensions['ur_store'], 'rules_admin')}"}
    before = two.test_client().get("/healthz").get_json()["rules"]["digest"]
    path = rules / "critical-care.yaml"
    path.write_text(path.read_text().replace("Only life support", "Only the life support"))
    res = one.test_client().post("/v1/admin/reload", headers=admin)
    assert res.status_code == 200
    after = res.get_json()["digest"]
    assert after != before
    assert two.test_client().get("/healthz").get_json()["rules"]["digest"] == after
    for app in (one, two):
        app.extensions["ur_engine"].close()
        app.extensions["ur_store"].close()


def test_the_development_servers_request_lines_lose_their_query_string():
    coloured = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"%s" %s %s',
                                 ("\x1b[31m\x1b[1mGET /v1/reviews?record_id=MRN-1 HTTP/1.1\x1b[0m", "401", "-"), None)
    logs.DropQueryString().filter(coloured)
    assert "MRN-1" not in coloured.getMessage() and "GET /v1/reviews HTTP/1.1" in coloured.getMessage()
    line = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"%s" %s %s',
                             ("GET /v1/reviews?record_id=MRN-1 HTTP/1.1", "200", "-"), None)
    logs.DropQueryString().filter(line)
    assert line.getMessage() == '"GET /v1/reviews HTTP/1.1" 200 -'
