"""The web pages in a real headless Chromium (Playwright driving Debian's chromium), screenshots kept.

Screenshots go to test-artifacts/ (CI keeps them). Locally the test skips without Chromium; in CI it fails.
"""

from __future__ import annotations

import json
import os
import re
import threading

import pytest
from werkzeug.serving import make_server

from conftest import ROOT, auth, make_record
from service_support import CHROMIUM, need

ARTIFACTS = ROOT / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture()
def live(app):
    """The app on a loopback port (werkzeug, threaded)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture()
def browser():
    need(os.path.exists(CHROMIUM), f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def sign_in(page, base, key):
    page.goto(f"{base}/ui/login")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"), full_page=True)


def test_a_reviewer_submits_pasted_json_and_sees_every_criterion(app, live, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live}/ui/")
    assert "/ui/login" in page.url  # the pages need a key
    sign_in(page, live, app.config["TEST_KEYS"]["reviewer"])
    page.fill("[data-testid=record-json]", (ROOT / "examples" / "pneumonia.json").read_text())
    shot(page, "1-submit")
    page.click("[data-testid=submit-json]")
    page.wait_for_selector("[data-testid=outcome]")
    assert page.inner_text("[data-testid=outcome]") == "Approved: inpatient"
    assert page.get_attribute("[data-testid=outcome]", "data-outcome") == "approve"
    assert page.inner_text("[data-testid=verdict-text]").startswith("Inpatient approved: inpatient criteria met")
    met = page.locator("[data-testid=criteria-met] [data-criterion]")
    assert met.count() >= 2 and set(met.evaluate_all("rs => rs.map(r => r.dataset.status)")) == {"met"}
    rest = page.locator("[data-testid=criteria-rest] [data-criterion]")
    assert rest.count() > 5 and not rest.first.is_visible()  # folded until asked for
    assert set(rest.evaluate_all("rs => rs.map(r => r.dataset.status)")) <= {"not_met", "unknown"}
    bp = page.locator("[data-criterion=SI-BP]").first
    assert "Systolic blood pressure, lowest and highest in the first 24 h after arrival: 86 mm Hg at 2 Mar 10:10" \
        in bp.inner_text()
    assert "405 IAC 5-33-1" in bp.locator(".source").inner_text()
    assert "inpatient" in page.inner_text("[data-testid=levels]")
    shot(page, "2-review")


def test_a_medicare_observation_past_24_hours_shows_the_moon_notice(app, live, browser):
    page = browser.new_page()
    sign_in(page, live, app.config["TEST_KEYS"]["reviewer"])
    rec = make_record(coverage={"line_of_business": "medicare"},
                      encounter={"requested_level": "observation", "order_time": "2026-03-02T10:00:00Z",
                                 "review_time": "2026-03-03T16:00:00Z"})
    page.fill("[data-testid=record-json]", json.dumps(rec))
    page.click("[data-testid=submit-json]")
    page.wait_for_selector("[data-testid=outcome]")
    assert "MOON-DUE" in page.inner_text("[data-testid=notices]")
    shot(page, "2b-notice")


def test_a_bad_record_shows_each_error_with_its_path(app, live, browser):
    page = browser.new_page()
    sign_in(page, live, app.config["TEST_KEYS"]["reviewer"])
    bad = json.loads((ROOT / "examples" / "pneumonia.json").read_text())
    bad["coverage"]["line_of_business"] = "medicar"
    page.fill("[data-testid=record-json]", json.dumps(bad))
    page.click("[data-testid=submit-json]")
    errors = page.inner_text("[data-testid=errors]")
    assert "$.coverage.line_of_business" in errors and "medicare" in errors
    shot(page, "3-errors")


def test_the_short_form_then_a_physician_determination_heads_the_page(app, live, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, live, app.config["TEST_KEYS"]["reviewer"])
    page.click("details summary")
    page.fill("input[name=id]", "stay-form-1")
    page.fill("input[name=age]", "71")
    page.fill("input[name=arrival_time]", "2026-03-02T09:40")
    page.fill("input[name=heart_rate]", "88")
    page.click("[data-testid=submit-form]")
    page.wait_for_selector("[data-testid=outcome]")
    # vitals alone, lists incomplete: a physician decides
    assert page.get_attribute("[data-testid=outcome]", "data-outcome") == "pend"
    assert page.locator("[data-testid=criteria-rest] [data-status=unknown]").count() > 0

    page.click("text=Sign out")
    sign_in(page, live, app.config["TEST_KEYS"]["physician"])
    assert page.url.endswith("/ui/worklist")
    page.click("text=stay-form-1")
    page.check("input[name=decision][value=deny]")
    page.click("[data-testid=determination-form] button")  # no reason yet: refused, beside each field
    beside = page.locator("#reason_code + [data-testid=error-reason_code]")
    assert beside.inner_text() == "A denial needs a reason: choose the one that applies."
    assert "in words" in page.inner_text("#text + [data-testid=error-text]")
    assert "required property" not in page.content()
    assert "$" not in page.inner_text("[data-testid=determination-form]")
    assert page.is_checked("input[name=decision][value=deny]")  # what was chosen is kept
    shot(page, "6-determination-errors")
    page.select_option("select[name=reason_code]", "not_medically_necessary")
    page.fill("textarea[name=text]", "Heart rate normal; no severity criterion met on the chart.")
    page.click("[data-testid=determination-form] button")
    head = page.inner_text("[data-testid=verdict-text]")
    assert head.startswith("Physician determination: inpatient denied by test-physician on")
    assert page.inner_text("[data-testid=outcome]") == "Physician: denied"
    assert page.get_attribute("[data-testid=outcome]", "data-outcome") == "pend"  # the engine's decision is untouched
    assert "Pended: physician review" in page.inner_text("[data-testid=engine-verdict]")
    text = page.inner_text("[data-testid=determination]")
    assert "Denied" in text and "does not show the requested level of care is medically necessary" in text
    order = page.evaluate("""() => ['verdict', 'determination', 'levels'].map(
        id => document.querySelector(`[data-testid=${id}]`).getBoundingClientRect().top)""")
    assert order == sorted(order)  # the determination above the levels and criteria
    assert page.locator("[data-testid=determination-form]").count() == 0
    shot(page, "6-determination")

    page.goto(f"{live}/docs")
    assert page.locator("[data-testid=operation]").count() >= 12
    shot(page, "7-api-docs")


def csrf_token(web, path="/ui/login") -> str:
    """The token a page's form carries (the test client keeps the session cookie it belongs to)."""
    page = web.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_pages_refuse_the_wrong_role_and_cross_site_posts(app, client):
    web = app.test_client()
    web.set_cookie("ur_key", app.config["TEST_KEYS"]["rules_admin"])
    assert web.get("/ui/").status_code == 403
    web.set_cookie("ur_key", app.config["TEST_KEYS"]["reviewer"])
    res = web.post("/ui/reviews", data={"mode": "json", "record": json.dumps(make_record()),
                                        "csrf_token": csrf_token(web, "/ui/")},
                   headers={"Origin": "https://evil.example"})
    assert res.status_code == 403
    assert web.get("/ui/login?next=https://evil.example/x").status_code == 200
    res = web.post("/ui/login", data={"key": app.config["TEST_KEYS"]["reviewer"], "next": "//evil.example/",
                                      "csrf_token": csrf_token(web)})
    assert res.headers["Location"] == "/ui/"
    assert "HttpOnly" in res.headers["Set-Cookie"] and "SameSite=Strict" in res.headers["Set-Cookie"]
    assert client.get("/v1/reviews", headers={**auth(app, "reviewer"), "Cookie": "x=1"}).status_code == 200


@pytest.mark.parametrize("path,form", [
    ("/ui/login", {"key": "KEY"}),
    ("/ui/reviews", {"mode": "json", "record": json.dumps(make_record())}),
    ("/ui/logout", {}),
])
def test_a_form_post_without_its_csrf_token_is_refused(app, path, form):
    """No Origin, no Referer, a valid key in the cookie: without the page's token nothing happens."""
    web = app.test_client()
    web.set_cookie("ur_key", app.config["TEST_KEYS"]["reviewer"])
    data = {k: v.replace("KEY", app.config["TEST_KEYS"]["reviewer"]) for k, v in form.items()}
    res = web.post(path, data=data)
    assert res.status_code == 400 and "did not come from this site" in res.get_data(as_text=True)
    res = web.post(path, data={**data, "csrf_token": "forged"})
    assert res.status_code == 400
    assert web.get("/v1/reviews", headers=auth(app, "reviewer")).get_json()["items"] == []
    token = csrf_token(web, "/ui/" if path == "/ui/reviews" else "/ui/login")
    assert web.post(path, data={**data, "csrf_token": token}).status_code in (302, 303)


def test_the_session_holding_the_token_is_a_strict_httponly_cookie(app):
    cookie = app.test_client().get("/ui/login").headers["Set-Cookie"]
    assert cookie.startswith("session=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_a_token_from_another_session_is_refused(app):
    other = app.test_client()
    stolen = csrf_token(other)
    web = app.test_client()
    web.get("/ui/login")
    res = web.post("/ui/login", data={"key": app.config["TEST_KEYS"]["reviewer"], "csrf_token": stolen})
    assert res.status_code == 400


@pytest.mark.parametrize("path", ["/ui/login", "/ui/rules", "/ui/rules?q=sodium", "/ui/rules/adult-admission", "/docs",
                                  "/healthz", "/v1/rulesets"])
def test_every_page_forbids_framing_sniffing_and_foreign_content(app, path):
    res = app.test_client().get(path)
    csp = res.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "style-src 'self'" in csp
    assert res.headers["X-Content-Type-Options"] == "nosniff" and res.headers["X-Frame-Options"] == "DENY"
    assert res.headers["Referrer-Policy"] == "same-origin"
    assert "<style" not in res.get_data(as_text=True) and "style=" not in res.get_data(as_text=True)


def test_a_page_that_sets_its_own_policy_keeps_it_and_gets_the_other_headers(app):
    @app.get("/ui/own-policy")
    def own_policy():
        res = app.response_class("ok")
        res.headers["Content-Security-Policy"] = "default-src 'self'"
        return res

    res = app.test_client().get("/ui/own-policy")
    assert res.headers.getlist("Content-Security-Policy") == ["default-src 'self'"]
    assert res.headers["X-Frame-Options"] == "DENY" and res.headers["Referrer-Policy"] == "same-origin"


def test_a_signed_session_is_read_back_and_a_forged_or_absent_one_is_empty(app):
    @app.get("/ui/session-probe")
    def session_probe():
        from flask import session

        seen = session.get("n")
        session["n"] = (seen or 0) + 1
        return {"seen": seen}

    web = app.test_client()
    assert web.get("/ui/session-probe").get_json() == {"seen": None}
    assert web.get("/ui/session-probe").get_json() == {"seen": 1}  # the cookie the first answer set
    forged = app.test_client()
    forged.set_cookie("session", "eyJuIjo5OX0.forged.signature")
    assert forged.get("/ui/session-probe").get_json() == {"seen": None}
    api = app.test_client()
    res = api.get("/v1/rulesets")
    assert res.status_code == 200 and "Set-Cookie" not in res.headers


def test_failed_sign_ins_are_limited_per_address_across_workers(app, tmp_path):
    """Two apps on one store stand for two gunicorn workers: the count is the store's, not a process's."""
    from api import create_app

    app.config["LOGIN_FAILURES"] = (3, 600)
    other = create_app({"RULES_DIR": app.config["RULES_DIR"], "DATABASE_URL": app.config["DATABASE_URL"],
                        "LOGIN_FAILURES": (3, 600), "SECRET_KEY": app.config["SECRET_KEY"]})
    try:
        statuses = []
        for worker in (app, other, app, other):
            web = worker.test_client()
            statuses.append(web.post("/ui/login", data={"key": "ur_000000000000_" + "x" * 43,
                                                        "csrf_token": csrf_token(web)}).status_code)
        assert statuses == [401, 401, 401, 429]
        web = other.test_client()
        res = web.post("/ui/login", data={"key": app.config["TEST_KEYS"]["reviewer"], "csrf_token": csrf_token(web)})
        assert res.status_code == 429 and res.headers["Retry-After"] == "600"  # even the right key waits
        elsewhere = app.test_client()
        elsewhere.environ_base["REMOTE_ADDR"] = "10.0.0.7"
        res = elsewhere.post("/ui/login", data={"key": app.config["TEST_KEYS"]["reviewer"],
                                                "csrf_token": csrf_token(elsewhere)})
        assert res.status_code == 302  # another address is not held back
    finally:
        other.extensions["ur_engine"].close()
        other.extensions["ur_store"].close()


def test_behind_a_trusted_proxy_the_limit_counts_the_forwarded_address(tmp_path):
    from api import create_app
    from conftest import RULES

    app = create_app({"RULES_DIR": str(RULES), "DATABASE_URL": f"sqlite:///{tmp_path}/audit.db", "PROXIES": 1,
                      "LOGIN_FAILURES": (1, 600)})
    try:
        def attempt(forwarded):
            web = app.test_client()
            web.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded
            return web.post("/ui/login", data={"key": "wrong", "csrf_token": csrf_token(web)}).status_code

        assert [attempt("203.0.113.5"), attempt("203.0.113.5"), attempt("198.51.100.9")] == [401, 429, 401]
    finally:
        app.extensions["ur_engine"].close()
        app.extensions["ur_store"].close()


# An engine name where a person's words belong: `total_co2.min`, `score.curb65.lo`, `finding.active_bleeding`.
RAW_NAME = re.compile(r"\b[a-z][a-z0-9_]*\.(?:min|max|first|last|count|lo|hi)\b|\b(?:finding|treatment|score|dx|"
                      r"procedure)\.[a-z]")
# Every element's computed colours, as [r, g, b] triples (transparent ones left out).
COLOURS = """() => [...document.querySelectorAll('*')].flatMap(e => {
  const s = getComputedStyle(e);
  return [s.backgroundColor, s.color, s.borderLeftColor].filter(c => !c.endsWith(', 0)') && c !== 'transparent')
    .map(c => c.match(/\\d+/g).slice(0, 3).map(Number));
})"""


def submit_json(page, base, record):
    page.goto(f"{base}/ui/")
    page.fill("[data-testid=record-json]", json.dumps(record))
    page.click("[data-testid=submit-json]")
    page.wait_for_selector("[data-testid=verdict]")


def reddish(rgb) -> bool:
    r, g, b = rgb
    return r > 150 and r - g > 70 and r - b > 70


def test_a_pend_page_says_every_fact_in_words_and_nothing_in_red(app, live, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, live, app.config["TEST_KEYS"]["reviewer"])
    rec = make_record(observations=[{"code": "8867-4", "value": 88, "unit": "/min", "time": "2026-03-02T10:00:00Z"}],
                      findings={"active_bleeding": False}, complete=None)  # lists incomplete: much unknown
    submit_json(page, live, rec)
    assert page.get_attribute("[data-testid=outcome]", "data-outcome") == "pend"
    assert page.inner_text("[data-testid=outcome]") == "Pended: physician review"
    missing = page.inner_text("[data-testid=missing]")
    assert "Systolic blood pressure (lowest and highest) in the first 24 h after arrival" in missing
    page.click("[data-testid=criteria-rest] summary")
    text = page.evaluate("document.body.textContent")  # folded parts included
    assert "Active bleeding: documented absent" in text
    assert not RAW_NAME.findall(text), RAW_NAME.findall(text)[:10]
    assert not [c for c in page.evaluate(COLOURS) if reddish(c)]
    badge = page.eval_on_selector("[data-testid=outcome]", "e => getComputedStyle(e).backgroundColor")
    assert badge == "rgb(255, 240, 199)"  # amber: a person decides
    shot(page, "8-pend-in-words")


def test_a_stay_that_meets_inpatient_but_not_two_midnights_reads_observation_supported(app, live, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, live, app.config["TEST_KEYS"]["reviewer"])
    stay = json.loads((ROOT / "examples" / "admissions.ndjson").read_text().splitlines()[1])
    submit_json(page, live, stay)
    assert page.inner_text("[data-testid=verdict-text]") == (
        "Observation supported: inpatient criteria met, Medicare two-midnight benchmark and the Inpatient Only list "
        "not met — physician review for inpatient")
    inpatient = page.locator("[data-testid=levels] tr[data-level=inpatient] td")
    assert inpatient.nth(1).inner_text() == "met"  # the clinical finding …
    assert inpatient.nth(2).inner_text().endswith("not met")  # … apart from the payment status
    chart = page.locator("[data-testid=chart][data-fact=heart_rate] svg")
    assert chart.locator("circle.point").count() == 1
    assert sorted(chart.locator("line.threshold").evaluate_all("ls => ls.map(l => l.dataset.threshold)")) == \
        ["140", "50"]
    assert chart.locator("circle.point.beyond").count() == 1  # 44/min is below 50
    shot(page, "9-payment-pend")


@pytest.mark.parametrize("name,record", [
    ("pneumonia", json.loads((ROOT / "examples" / "pneumonia.json").read_text())),
    ("pend", make_record(observations=[{"code": "8867-4", "value": 88, "time": "2026-03-02T10:00:00Z"}],
                         complete=None)),
])
def test_the_decision_page_fits_a_phone(app, live, browser, name, record):
    page = browser.new_page(viewport={"width": 375, "height": 740}, device_scale_factor=1)
    sign_in(page, live, app.config["TEST_KEYS"]["reviewer"])
    submit_json(page, live, record)
    page.click("[data-testid=criteria-rest] summary")
    page.click("text=Admission record as submitted")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page is {width} px wide on a 375 px screen"
    shot(page, f"10-phone-{name}")


def stays():
    """A payment pend (expedited), an information pend sent twice, an alternative setting and an approval."""
    first = json.loads((ROOT / "examples" / "admissions.ndjson").read_text().splitlines()[1])  # two-midnight pend
    missing = make_record(id="stay-missing", observations=[{"code": "8867-4", "value": 88,
                                                            "time": "2026-03-02T10:00:00Z"}], complete=None)
    lower = make_record(id="stay-lower", observations=[{"code": "8867-4", "value": 150,
                                                        "time": "2026-03-02T10:00:00Z"}])
    approve = make_record(id="stay-approve", observations=[{"code": "2951-2", "value": 118,
                                                            "time": "2026-03-02T10:00:00Z"}],
                          treatments=[{"type": "iv_fluids"}])
    return [(first, "expedited"), (missing, "standard"), (missing, "standard"), (lower, "standard"),
            (approve, "standard")]


def test_the_worklist_triages_with_reasons_missing_information_levels_filters_and_duplicates(app, client, live,
                                                                                           browser):
    for record, urgency in stays():
        assert client.post(f"/v1/reviews?urgency={urgency}", json=record).status_code == 200
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, live, app.config["TEST_KEYS"]["reviewer"])
    page.goto(f"{live}/ui/worklist")
    rows = page.locator("[data-testid=worklist] tr[data-review]")
    listed = rows.evaluate_all("rs => rs.map(r => [r.cells[1].querySelector('a').textContent, r.dataset.outcome])")
    assert listed == [["stay-0002", "pend"], ["stay-missing", "pend"], ["stay-missing", "pend"],
                      ["stay-lower", "alternative_setting"]]  # soonest due first; the approval is not waiting
    payment = rows.nth(0)
    assert "Observation supported: inpatient criteria met, Medicare two-midnight" in payment.inner_text()
    assert payment.locator("[data-testid=supported]").inner_text() == "inpatient"
    gap = rows.nth(1)
    assert "Systolic blood pressure (lowest and highest) in the first 24 h after arrival" in \
        gap.locator("[data-testid=missing]").inner_text()
    assert gap.locator("[data-testid=supported]").inner_text() == "none"
    assert gap.locator("[data-testid=duplicate]").inner_text() == "duplicate: submitted 2 times"
    assert payment.locator("[data-testid=duplicate]").count() == 0
    assert rows.nth(3).locator("[data-testid=supported]").inner_text() == "observation"
    assert not RAW_NAME.findall(page.evaluate("document.body.textContent"))
    shot(page, "4-worklist")

    for query, expect in [("outcome=alternative_setting", ["stay-lower"]), ("urgency=expedited", ["stay-0002"]),
                          ("supported=none", ["stay-missing", "stay-missing"]),
                          ("level=observation", []), ("outcome=pend&supported=inpatient", ["stay-0002"])]:
        page.goto(f"{live}/ui/worklist?{query}")
        got = page.locator("[data-testid=worklist] tr[data-review] td:nth-child(2) > a:first-child").all_inner_texts()
        assert got == expect, query
    page.goto(f"{live}/ui/worklist")
    page.select_option("select[name=urgency]", "expedited")  # the form sets the same filters
    page.click("[data-testid=filters] button")
    assert "urgency=expedited" in page.url and page.locator("[data-testid=worklist] tr[data-review]").count() == 1

    page.goto(f"{live}/ui/worklist")
    page.click("[data-testid=duplicate] >> nth=0")
    assert page.locator("[data-testid=reviews] tr").count() == 3  # the header and both submissions
    page.click("[data-testid=reviews] a >> nth=0")
    assert "submitted more than once" in page.inner_text("[data-testid=duplicate]")

    phone = browser.new_page(viewport={"width": 375, "height": 740})
    sign_in(phone, live, app.config["TEST_KEYS"]["reviewer"])
    phone.goto(f"{live}/ui/worklist")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    shot(phone, "4b-worklist-phone")


def test_the_rule_browser_gives_each_rule_set_a_page_with_thresholds_sources_and_a_search(app, live, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live}/ui/rules")  # public: no key needed
    assert page.locator("[data-testid=ruleset]").count() == len(app.extensions["ur_engine"].library.rulesets)
    shot(page, "5-rules")
    page.fill("input[name=q]", "sodium 405 IAC")
    page.click("[data-testid=rule-search] button")
    assert "q=sodium+405+IAC" in page.url
    hits = page.locator("[data-testid=search-results] tr[data-criterion]")
    assert hits.evaluate_all("rs => rs.map(r => r.dataset.criterion)") == ["SI-SODIUM", "PED-SI-SODIUM"]
    shot(page, "5b-rules-search")
    hits.first.locator("a").click()
    assert page.url.endswith("/ui/rules/adult-admission#SI-SODIUM")
    sodium = page.locator("article#SI-SODIUM")
    assert "Sodium, lowest in the first 24 h after arrival: below 123 mmol/L" in sodium.inner_text()
    assert "Sodium, highest in the first 24 h after arrival: above 156 mmol/L" in sodium.inner_text()
    assert sodium.locator("[data-testid=source]").inner_text() == "Source: 405 IAC 5-33-1(1)(H)(i)"
    assert "inpatient: criteria met in (severity or severity with intensity) and intensity" in \
        page.inner_text("[data-testid=levels]")
    text = page.evaluate("document.body.textContent")
    assert "at or above 100 °F (37.8 °C)" in text  # SI-FEVER, in the unit of the rule and the one charted
    assert not RAW_NAME.findall(text), RAW_NAME.findall(text)[:5]
    shot(page, "5c-ruleset")

    page.goto(f"{live}/ui/rules/pneumonia")
    page.click("[data-testid=score] summary >> nth=0")
    assert "1 point: Age 65 years or more" in page.inner_text("[data-testid=score] >> nth=0")
    page.goto(f"{live}/ui/rules?q=no-such-criterion-anywhere")
    assert "No criterion holds every word" in page.inner_text("[data-testid=search-results]")
    assert page.goto(f"{live}/ui/rules/no-such-rule-set").status == 404

    phone = browser.new_page(viewport={"width": 375, "height": 740})
    for path in ("/ui/rules", "/ui/rules/adult-admission", "/ui/rules?q=pulse"):
        phone.goto(f"{live}{path}")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 375, path
    shot(phone, "5d-ruleset-phone")


def test_a_value_the_intake_set_aside_is_shown_in_words_on_the_review(app, client):
    rec = make_record(observations=[
        {"code": "8867-4", "value": 950, "unit": "/min", "time": "2026-03-02T10:00:00Z"},
        {"code": "8867-4", "value": 150, "unit": "/min", "time": "2026-03-02T11:00:00Z"}])
    review_id = client.post("/v1/reviews", json=rec).get_json()["review_id"]
    web = app.test_client()
    web.set_cookie("ur_key", app.config["TEST_KEYS"]["reviewer"])
    res = web.get(f"/ui/reviews/{review_id}")
    page = res.get_data(as_text=True)
    assert "<svg" in page and "style=" not in page and "<style" not in page and "<script" not in page
    assert "style-src 'self'" in res.headers["Content-Security-Policy"]  # the charts need no inline style
    notices = page[page.index('data-testid="data-notices"'):]
    assert "Heart rate (LOINC 8867-4) 950 /min: set aside, counted as unknown — outside the plausible range" \
        in notices


def test_a_stay_charted_over_two_days_shows_every_reading_against_the_threshold(app, live, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, live, app.config["TEST_KEYS"]["reviewer"])
    pulses = [(0, 128), (2, 146), (5, 152), (9, 138), (14, 121), (20, 112), (30, 98), (40, 90)]  # hours, /min
    rec = make_record(observations=[
        {"code": "8867-4", "value": v, "unit": "/min",
         "time": f"2026-03-{2 + (9 + h) // 24:02d}T{(9 + h) % 24:02d}:40:00Z"} for h, v in pulses],
        treatments=[{"type": "iv_fluids", "start": "2026-03-02T10:00:00Z"}])
    submit_json(page, live, rec)
    chart = page.locator("[data-testid=chart][data-fact=heart_rate] svg")
    values = chart.locator("circle.point").evaluate_all("cs => cs.map(c => Number(c.dataset.value))")
    assert values == [v for _, v in pulses]  # the whole stay, past the 24 h the criteria read
    assert chart.locator("circle.point.beyond").evaluate_all("cs => cs.map(c => Number(c.dataset.value))") == \
        [146, 152]
    assert chart.locator("line.threshold[data-threshold='140']").count() == 1
    assert chart.locator("polyline.series").get_attribute("points").count(",") == len(pulses)
    xs = chart.locator("circle.point").evaluate_all("cs => cs.map(c => Number(c.getAttribute('cx')))")
    assert xs == sorted(xs) and len(set(xs)) == len(xs)  # in time order, spread over the stay
    window = chart.locator("rect.window")
    assert float(window.get_attribute("x")) <= xs[0] and float(window.get_attribute("x")) + \
        float(window.get_attribute("width")) < xs[-1]  # the first 24 h shaded, the rest of the stay beyond it
    assert "LOINC 8867-4" in page.inner_text("[data-testid=chart][data-fact=heart_rate] figcaption")
    page.locator("[data-testid=charts]").screenshot(path=str(ARTIFACTS / "ui-11-chart.png"))


def test_a_stay_reviewed_day_by_day_shows_each_day_and_the_late_escalation_in_words(app, client, live, browser):
    from test_batch_by_day import LATE_ICU, RELAPSE

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, live, app.config["TEST_KEYS"]["reviewer"])
    review_id = client.post("/v1/reviews?by_day=true", json=LATE_ICU).get_json()["review_id"]
    page.goto(f"{live}/ui/reviews/{review_id}")
    section = page.locator("[data-testid=by-day]")
    assert "3 days of care, 24 h each from arrival, up to the discharge." in section.inner_text()
    days = page.locator("[data-testid=days] tr[data-day]")
    assert days.evaluate_all("rs => rs.map(r => [r.dataset.day, r.cells[1].textContent.trim(), "
                             "r.cells[2].textContent.trim()])") == [
        ["1", "2 Mar 09:40 – 3 Mar 09:40", "Inpatient"], ["2", "3 Mar 09:40 – 4 Mar 09:40", "Inpatient"],
        ["3", "4 Mar 09:40 – 4 Mar 21:40", "Critical care"]]
    change = page.locator("[data-testid=day-changes] li")
    assert change.count() == 1 and change.get_attribute("data-kind") == "escalation"
    assert ("Day 3 (4 Mar 09:40 – 4 Mar 21:40): the level the data supports rose from inpatient to critical care — "
            "newly met: Vasopressor infusion (aggressive hemodynamic intervention).") in change.inner_text()
    assert "CC-VASOPRESSOR" not in section.inner_text()  # criteria by their text, never their ids
    shot(page, "12-by-day")
    section.screenshot(path=str(ARTIFACTS / "ui-12-by-day-section.png"))

    # Down on day 2, up again on day 3; and on a phone the days stack rather than overflow.
    relapse = client.post("/v1/reviews?by_day=true", json=RELAPSE).get_json()["review_id"]
    phone = browser.new_page(viewport={"width": 375, "height": 740}, device_scale_factor=1)
    sign_in(phone, live, app.config["TEST_KEYS"]["reviewer"])
    phone.goto(f"{live}/ui/reviews/{relapse}")
    kinds = phone.locator("[data-testid=day-changes] li").evaluate_all("ls => ls.map(l => l.dataset.kind)")
    assert kinds == ["de-escalation", "escalation"]
    assert "no longer met: Invasive mechanical ventilation" in phone.inner_text("[data-testid=day-changes]")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    shot(phone, "12b-by-day-phone")

    plain = client.post("/v1/reviews", json=LATE_ICU).get_json()["review_id"]
    page.goto(f"{live}/ui/reviews/{plain}")
    assert page.locator("[data-testid=by-day]").count() == 0  # only a day-by-day review has the section
