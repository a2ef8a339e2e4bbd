"""Server-rendered pages for reviewers and physicians, served by the same app as the JSON API.

    /ui/login          paste an API key; it is kept in an HttpOnly, SameSite=Strict cookie
    /ui/               submit an admission (paste JSON or fill the short form)
    /ui/reviews/<id>   the verdict in one sentence (or the physician's determination once recorded), the levels with
                       the clinical finding apart from the payment status, charts of the labs and vital signs that
                       decided, the criteria met first by rule set with their evidence in words; a physician decides
    /ui/reviews        recent reviews (?record_id= one stay's)
    /ui/worklist       what waits for a person: why, what is missing, the level supported; filters; duplicates
    /ui/rules          the rule browser (public) with a search;  /ui/rules/<id>  one rule set, thresholds in words
    /docs              the API reference from the OpenAPI document

Words, charts and the pages' view of a decision live in words.py, charts.py and web_views.py.

No JavaScript is needed. Every form carries a CSRF token (Flask-WTF) tied to the browser's session cookie, and a
post without a valid one is refused; posts naming another origin are refused as well, on top of the SameSite
cookies. Failed sign-ins are counted per client address in the store, so the limit holds across workers.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import orjson
from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from ur_engine.errors import RecordError

from . import openapi, reviews, web_views, words
from .auth import authenticate
from .inputs import clip_errors
from .store import Conflict, NotFound

blueprint = Blueprint("web", __name__, template_folder="templates")
csrf = CSRFProtect()  # checks only the web pages' posts (below): the JSON API takes bearer keys, not cookies
COOKIE = "ur_key"
LEVELS = ("critical", "intermediate", "inpatient", "observation", "outpatient")
OPEN_OUTCOMES = ("pend", "alternative_setting")  # what waits for a person: the engine approved the rest
URGENCIES = ("standard", "expedited")
VITALS = [  # (form field, LOINC, unit, label)
    ("heart_rate", "8867-4", "/min", "Heart rate (/min)"),
    ("systolic", "8480-6", "mm[Hg]", "Systolic BP (mm Hg)"),
    ("resp_rate", "9279-1", "/min", "Respiratory rate (/min)"),
    ("spo2", "59408-5", "%", "SpO₂ (%)"),
    ("temperature", "8310-5", "Cel", "Temperature (°C)"),
]
TREATMENTS = ("iv_fluids", "iv_antibiotic", "iv_medication", "oxygen", "telemetry", "vasopressor",
              "mechanical_ventilation", "icu_care")


def rulesets_view(library) -> dict:
    """The serving rule sets with their criteria and sources (also ``GET /v1/rulesets``)."""
    return {
        "version": library.version, "digest": library.digest,
        "rulesets": [{
            "id": rs.id, "version": rs.version, "title": rs.title, "source": rs.source, "file": rs.file,
            "effective": {"from": rs.effective_from and rs.effective_from.isoformat(),
                          "to": rs.effective_to and rs.effective_to.isoformat()},
            "levels": sorted(rs.levels), "requires": sorted(rs.requires),
            "criteria": [{"id": c.id, "group": c.group, "text": c.text, "source": c.source} for c in rs.criteria],
        } for rs in library.rulesets],
    }


def _store():
    return current_app.extensions["ur_store"]


def _library():
    return current_app.extensions["ur_engine"].library


def _actor():
    key = request.cookies.get(COOKIE)
    return authenticate(_store(), key) if key else None


def page(*roles: str):
    """Decorator: a signed-in key of one of ``roles``; else the login page (or 403 for the wrong role)."""

    def wrap(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            actor = _actor()
            if actor is None:
                return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
            g.actor = actor
            if actor.role not in roles:
                text = f"This page needs the role {' or '.join(roles)}; you are {actor.role}."
                return render_template("message.html", title="Not allowed", text=text), 403
            return view(*args, **kwargs)

        return guarded

    return wrap


@blueprint.before_request
def same_origin_posts():
    if request.method == "POST" and request.path.startswith("/ui/"):
        # Browsers send Origin on cross-site POSTs; it must name this host. Then the form's CSRF token.
        origin = request.headers.get("Origin") or request.headers.get("Referer")
        if origin and urlsplit(origin).netloc != request.host:
            return render_template("message.html", title="Refused", text="Cross-site form posts are refused."), 403
        csrf.protect()
    return None


@blueprint.app_errorhandler(CSRFError)
def csrf_refused(exc: CSRFError):
    text = "This form did not come from this site, or it has expired: open the page again and resend it."
    return render_template("message.html", title="Refused", text=text), 400


@blueprint.app_context_processor
def common():
    return {"actor": g.get("actor") or (_actor() if request.cookies.get(COOKIE) else None)}


@blueprint.get("/")
def home():
    return redirect(url_for("web.submit_page"))


@blueprint.route("/ui/login", methods=["GET", "POST"])
def login():
    next_url = request.values.get("next") or url_for("web.submit_page")
    if not next_url.startswith("/") or next_url.startswith("//"):
        next_url = url_for("web.submit_page")  # never redirect off-site
    if request.method == "GET":
        return render_template("login.html", next=next_url, error=None)
    limit, window = current_app.config["LOGIN_FAILURES"]
    client = request.remote_addr or "unknown"
    store = _store()
    if store.login_failures(client, datetime.now(timezone.utc) - timedelta(seconds=window)) >= limit:
        error = f"Too many failed sign-ins from this address; try again in {window // 60} minutes."
        res = current_app.make_response((render_template("login.html", next=next_url, error=error), 429))
        res.headers["Retry-After"] = str(window)
        return res
    key = request.form.get("key", "").strip()
    actor = authenticate(store, key)
    if actor is None:
        store.add_login_failure(client, keep=timedelta(seconds=window))
        return render_template("login.html", next=next_url, error="That key is unknown or revoked."), 401
    if next_url.rstrip("/") == url_for("web.submit_page").rstrip("/") and actor.role == "physician":
        next_url = url_for("web.worklist_page")
    res = redirect(next_url)
    res.set_cookie(COOKIE, key, httponly=True, samesite="Strict", secure=request.is_secure, path="/")
    return res


@blueprint.post("/ui/logout")
def logout():
    res = redirect(url_for("web.login"))
    res.delete_cookie(COOKIE, path="/")
    return res


@blueprint.get("/ui/")
@page("reviewer")
def submit_page():
    return render_template("submit.html", vitals=VITALS, treatments=TREATMENTS, levels=LEVELS, errors=None,
                           pasted="", form={})


def record_from_form(form) -> dict:
    """The short form as an admission record; lists not marked complete are sent as incomplete."""
    arrival = form.get("arrival_time", "").strip()
    if arrival and len(arrival) == 16:  # datetime-local gives minutes and no offset: taken as UTC
        arrival += ":00Z"
    record: dict = {
        "id": form.get("id", "").strip(), "review_type": "admission",
        "patient": {"age": _number(form.get("age"))},
        "coverage": {"line_of_business": form.get("line_of_business", "")},
        "encounter": {"requested_level": form.get("requested_level", ""), "arrival_time": arrival},
        "observations": [], "treatments": [{"type": t} for t in TREATMENTS if form.get(f"t_{t}")],
    }
    if form.get("sex"):
        record["patient"]["sex"] = form["sex"]
    if form.get("expected_midnights", "").strip():
        record["encounter"]["expected_midnights"] = _number(form["expected_midnights"])
    for field, code, unit, _ in VITALS:
        if form.get(field, "").strip():
            record["observations"].append({"code": code, "value": _number(form[field]), "unit": unit, "time": arrival})
    if form.get("diagnosis", "").strip():
        record["diagnoses"] = [{"code": form["diagnosis"].strip(), "system": "icd10cm", "principal": True}]
    if not form.get("complete"):
        record["incomplete"] = ["observations", "treatments"]
    return record


def _number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text  # left as text, so validation names the field
    return int(value) if value.is_integer() else value


@blueprint.post("/ui/reviews")
@page("reviewer")
def submit_review():
    pasted = request.form.get("record", "")
    urgency = request.form.get("urgency", "standard")
    if urgency not in ("standard", "expedited"):
        urgency = "standard"
    body = pasted if request.form.get("mode") == "json" else record_from_form(request.form)
    try:
        decision = reviews.submit(current_app, body, g.actor, urgency)
    except RecordError as exc:
        errors = clip_errors([e.as_dict() for e in getattr(exc, "errors", [exc])])
        return render_template("submit.html", vitals=VITALS, treatments=TREATMENTS, levels=LEVELS, errors=errors,
                               pasted=pasted, form=request.form), 400
    return redirect(url_for("web.review_page", review_id=decision["review_id"]))


@blueprint.get("/ui/reviews")
@page("reviewer", "physician")
def reviews_page():
    outcome = request.args.get("outcome") or None
    record_id = request.args.get("record_id") or None
    rows, _ = _store().list_reviews(outcome=outcome if outcome in ("approve", "pend", "alternative_setting") else None,
                                    record_id=record_id, limit=100)
    return render_template("reviews.html", items=[reviews.list_item(r) for r in rows], outcome=outcome,
                           record_id=record_id)


@blueprint.get("/ui/reviews/<review_id>")
@page("reviewer", "physician")
def review_page(review_id):
    found = _store().get_review(review_id)
    if found is None:
        return render_template("message.html", title="Not found", text="No review with that id."), 404
    return _review(reviews.stored(*found))


def _review(r: dict, errors: dict | None = None, form=None, status: int = 200):
    others, _ = _store().list_reviews(record_id=r["record_id"], limit=20)
    view = web_views.review_view(r, _library(), others)
    return render_template("review.html", r=r, v=view, reasons=openapi.REASON_CODES, errors=errors,
                           form=form or {}), status


def determination_errors(form) -> dict[str, str]:
    """The form's mistakes in words, each keyed by the field it belongs beside."""
    errors: dict[str, str] = {}
    decision = form.get("decision", "")
    if decision not in ("approve", "deny"):
        errors["decision"] = "Choose approve or deny."
    reason = form.get("reason_code", "").strip()
    if reason and reason not in openapi.REASON_CODES:
        errors["reason_code"] = "Choose a reason from the list."
    if decision == "deny":
        if not reason:
            errors["reason_code"] = "A denial needs a reason: choose the one that applies."
        if not form.get("text", "").strip():
            errors["text"] = ("A denial needs the reason in words, specific to this patient; the provider "
                              "receives it (CMS-0057-F).")
    if len(form.get("text", "")) > 4000:
        errors["text"] = "Keep the reason under 4,000 characters."
    return errors


@blueprint.post("/ui/reviews/<review_id>/determination")
@page("physician")
def determination_form(review_id):
    body = {"decision": request.form.get("decision", "")}
    for name in ("reason_code", "text"):
        if request.form.get(name, "").strip():
            body[name] = request.form[name].strip()
    errors = determination_errors(request.form)
    if not errors and openapi.body_errors("DeterminationRequest", body):  # the API's schema has the last word
        errors = {"form": "This determination could not be read: " + "; ".join(
            e["message"] for e in openapi.body_errors("DeterminationRequest", body))}
    if not errors:
        try:
            reviews.decide(_store(), review_id, body, g.actor)
            return redirect(url_for("web.review_page", review_id=review_id))
        except NotFound:
            return render_template("message.html", title="Not found", text="No review with that id."), 404
        except Conflict:
            errors = {"form": "This review has a determination already: it is shown above."}
    found = _store().get_review(review_id)
    if found is None:
        return render_template("message.html", title="Not found", text="No review with that id."), 404
    return _review(reviews.stored(*found), errors, request.form, 400)


@blueprint.get("/ui/worklist")
@page("reviewer", "physician")
def worklist_page():
    """Reviews awaiting a person, each with why it waits, what is missing and the level the criteria support;
    filtered by outcome, urgency, requested or supported level; a stay submitted more than once is flagged."""
    f = {k: request.args.get(k, "") for k in ("outcome", "urgency", "level", "supported")}
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and int(page) > 0 else 1
    store, library = _store(), _library()
    query = {"outcomes": (f["outcome"],) if f["outcome"] in OPEN_OUTCOMES else OPEN_OUTCOMES,
             "urgency": f["urgency"] if f["urgency"] in URGENCIES else None,
             "requested": f["level"] if f["level"] in words.LEVELS else None}
    rows, more = _worklist_page(store, query, f["supported"], page)
    counts = store.record_counts(row["record_id"] for row, _ in rows)
    now = datetime.now(timezone.utc)
    items = [{**web_views.triage(row, decision, library, now), "submitted": counts.get(row["record_id"], 1)}
             for row, decision in rows]
    shown = {k: v for k, v in f.items() if v}
    pages = {"first": (page - 1) * WORKLIST_PAGE + 1, "last": (page - 1) * WORKLIST_PAGE + len(items),
             "previous": url_for("web.worklist_page", **shown, page=page - 1) if page > 1 else None,
             "next": url_for("web.worklist_page", **shown, page=page + 1) if more else None, "size": WORKLIST_PAGE}
    return render_template("worklist.html", w=reviews.worklist(store, limit=1), items=items, f=f, pages=pages,
                           levels=words.LEVELS, outcomes=OPEN_OUTCOMES)


WORKLIST_PAGE = 100  # rows a worklist page shows


def _worklist_page(store, query: dict, supported: str, page: int) -> tuple[list[tuple[dict, dict]], bool]:
    """(row, decision) of one page of the worklist, and whether another page follows. The supported level is in
    each decision rather than a column of its own: filtered by it, the rows before the page are read to find it."""
    start = (page - 1) * WORKLIST_PAGE
    if not supported:
        rows = store.open_reviews(**query, limit=WORKLIST_PAGE + 1, offset=start)
        return [(row, orjson.loads(row.pop("decision"))) for row in rows[:WORKLIST_PAGE]], len(rows) > WORKLIST_PAGE
    out: list[tuple[dict, dict]] = []
    matched, offset, chunk = 0, 0, 500
    while True:
        rows = store.open_reviews(**query, limit=chunk, offset=offset)
        for row in rows:
            decision = orjson.loads(row.pop("decision"))
            if (decision.get("supported") or "none") != supported:
                continue
            matched += 1
            if matched <= start:
                continue
            if len(out) == WORKLIST_PAGE:
                return out, True
            out.append((row, decision))
        if len(rows) < chunk:
            return out, False
        offset += chunk


@blueprint.get("/ui/rules")
def rules_page():
    """The rule sets serving, and a search over criteria ids, texts and sources (public, as CMS-4201-F asks)."""
    library = _library()
    query = request.args.get("q", "").strip()[:200]
    return render_template("rules.html", lib=rulesets_view(library), q=query,
                           hits=web_views.search(library, query) if query else None)


@blueprint.get("/ui/rules/<ruleset_id>")
def ruleset_page(ruleset_id):
    library = _library()
    found = [web_views.ruleset_page(rs, library) for rs in library.rulesets if rs.id == ruleset_id]
    if not found:
        return render_template("message.html", title="Not found", text="No rule set with that id."), 404
    return render_template("ruleset.html", versions=found, lib=library)


@blueprint.get("/docs")
def docs_page():
    doc = openapi.document()
    return render_template("docs.html", doc=doc, schemas=sorted(doc["components"]["schemas"]),
                           dumps=lambda v: orjson.dumps(v, option=orjson.OPT_INDENT_2).decode())


@blueprint.app_template_filter("when")
def when(text: str | None) -> str:
    """``2026-03-02T09:40:00.000Z`` → ``2026-03-02 09:40 UTC``."""
    if not text:
        return "—"
    return text[:10] + " " + text[11:16] + " UTC"


@blueprint.app_template_filter("level")
def level_words(name: str | None) -> str:
    """``home_health`` → ``home health``, ``snf`` → ``skilled nursing facility``."""
    return words.level(name)


@blueprint.app_template_filter("left")
def left(seconds: int) -> str:
    sign, seconds = ("overdue by " if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86400)
    return sign + (f"{days} d {rest // 3600} h" if days else f"{rest // 3600} h {rest % 3600 // 60} min")


@blueprint.app_template_filter("value")
def value(v) -> str:
    """Evidence as the JSON says it, with null read as unknown (not Python's True / None)."""
    if v is None:
        return "unknown"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
