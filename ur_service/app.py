"""The review service app (``create_app``): parse the request, make one library call, format the answer.

    POST /v1/reviews                          reviewer     one admission record → its decision, stored first
    GET  /v1/reviews, /v1/reviews/{id}        reviewer, physician   the audit store, filtered
    POST /v1/reviews/{id}/determination       physician    approve, or deny with a reason; beside the decision
    GET  /v1/worklist                         reviewer, physician   pended reviews, the soonest due first
    GET  /v1/stats, /v1/audit/verify          any key      outcomes, agreement; the hash chains checked
    POST /v1/admin/reload                     rules_admin  re-read the rule directory (serves only if it passes)
    GET  /v1/admin/reloads                    rules_admin  the reload log, with the reasons of refused reloads
    GET  /v1/rulesets, /healthz, /metrics, /openapi.json, /docs, /ui/…   public (the web pages ask for a key)
    POST /fhir/Claim/$submit, /fhir/Claim/$inquire, GET /fhir/ClaimResponse/{id}, /fhir/metadata   Da Vinci PAS
                                              in FHIR (``fhir_pas``): the same reviews, answered as ClaimResponses
    GET  /fhir/Questionnaire/…, POST /fhir/QuestionnaireResponse   DTR: a pend's questionnaire, its answers (fhir_dtr)
    GET  /cds-services, POST /cds-services/{id}       CRD over CDS Hooks: the admission screen as a card (fhir_cds)

Errors are ``application/problem+json`` (RFC 9457); a bad record's errors name each field by its JSON path.
The OpenAPI document (``ur_service/openapi.py``) describes every endpoint and checks requests and responses.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from datetime import date

import orjson
from flask import Flask, g, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import HTTPException

from ur_engine.errors import RecordError
from ur_engine.intake.rule_files import default_sources, read_sources

from . import fhir_cds, fhir_dtr, fhir_pas, inputs, logs, metrics, openapi, reviews, web
from .auth import ROLES, require
from .db import DEFAULT_URL
from .http import json_response, problem
from .reloads import Reloads, entry
from .rules import RuleService
from .store import Conflict, NotFound, Store, parse_anchor, utc_text

DEFAULTS = {
    "RULES_DIR": None,  # None: the default rule library
    "EVALUATOR": "durable",
    "MAX_CONTENT_LENGTH": 1024 * 1024,  # bytes; larger bodies get 413
    "DATABASE_URL": None,  # None: $UR_DATABASE_URL, else sqlite:///ur-audit.db in the working directory
    # log | strict (a response breaking its schema becomes a 500) | off. None: $UR_RESPONSE_VALIDATION, else off:
    # the tests run strict (tests/conftest.py), and a production request need not pay ~45 µs to re-check them.
    "RESPONSE_VALIDATION": None,
    "LOG_LEVEL": "INFO",
    "RELOAD_POLL_SECONDS": 0.5,  # how often a process looks for a reload another process accepted
    "SECRET_KEY": None,  # signs the web session (its CSRF token); None: $UR_SECRET_KEY, else random per start
    "LOGIN_FAILURES": (10, 600),  # failed sign-ins allowed per client address, and in how many seconds
    "PROXIES": 0,  # proxies in front whose X-Forwarded-For/-Proto/-Host are trusted (the client's address)
}
# On every response: no framing (clickjacking), no MIME sniffing, nothing but this origin's style sheet and
# forms, and the Referer only within the site (Flask-WTF checks it on HTTPS posts).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
SECURITY_ITEMS = tuple(SECURITY_HEADERS.items())
SECURITY_LOWER = frozenset(name.lower() for name in SECURITY_HEADERS)
log = logs.get("http")


def create_app(config: dict | None = None) -> Flask:
    """Build the app; ``config`` overrides ``DEFAULTS``. Upgrades the audit store to the head migration."""
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config.update({k: v for k, v in (config or {}).items() if v is not None or k not in DEFAULTS})
    app.config["DATABASE_URL"] = app.config["DATABASE_URL"] or os.environ.get("UR_DATABASE_URL") or DEFAULT_URL
    checking = app.config["RESPONSE_VALIDATION"] or os.environ.get("UR_RESPONSE_VALIDATION") or "off"
    if checking not in ("log", "strict", "off"):
        raise ValueError(f"RESPONSE_VALIDATION (or $UR_RESPONSE_VALIDATION) is {checking!r}; "
                         "choose log, strict or off")
    app.config["RESPONSE_VALIDATION"] = checking
    # Under gunicorn the master builds the app (preload), so a random key is the same in every worker.
    app.config["SECRET_KEY"] = app.config["SECRET_KEY"] or os.environ.get("UR_SECRET_KEY") or secrets.token_hex(32)
    app.config["SESSION_COOKIE_SAMESITE"] = app.config["SESSION_COOKIE_SAMESITE"] or "Strict"  # the CSRF session
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # web.py checks the pages' posts only
    app.json.sort_keys = False
    app.session_interface = CookieSessions()
    if app.config["PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = app.config["PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    logs.setup(app.config["LOG_LEVEL"])
    rules_dir = app.config["RULES_DIR"]

    def sources():
        return read_sources(rules_dir) if rules_dir else default_sources()

    store = Store(app.config["DATABASE_URL"])
    app.extensions["ur_store"] = store
    try:
        initial = sources()
        service = RuleService(initial, app.config["EVALUATOR"])
    except Exception:
        store.close()
        raise
    app.extensions["ur_engine"] = service
    app.register_blueprint(web.blueprint)
    app.register_blueprint(fhir_pas.blueprint)
    app.register_blueprint(fhir_dtr.blueprint)
    app.register_blueprint(fhir_cds.blueprint)
    web.csrf.init_app(app)
    reloads = Reloads(service, store, sources, app.config["RELOAD_POLL_SECONDS"])
    app.extensions["ur_reloads"] = reloads
    reloads.startup(initial)
    # The chains' heads, in the log at every start: an outside record to verify a later state against.
    log.info("audit head", extra={"fields": {"anchor": store.head()}})

    @app.before_request
    def follow_reloads():
        """Serve the library another process (a gunicorn worker) accepted since we last looked."""
        reloads.follow()

    def json_body():
        """The request body as JSON, or a problem response (415 / 400)."""
        if not (request.mimetype == "application/json" or request.mimetype.endswith("+json")):
            return None, problem(415, "Unsupported Media Type", "send the body as application/json")
        try:
            return inputs.loads(request.get_data()), None
        except RecordError as exc:
            return None, problem(400, "Invalid JSON", str(exc), errors=_record_errors(exc))

    def query():
        values, errors = openapi.query_args(request.endpoint, request.args)
        return values, (problem(400, "Invalid query parameters", errors=errors) if errors else None)

    @app.post("/v1/reviews")
    @require("reviewer")
    def create_review():
        if not (request.mimetype == "application/json" or request.mimetype.endswith("+json")):
            return problem(415, "Unsupported Media Type", "send the admission record as application/json")
        args, bad = query()
        if bad:
            return bad
        try:
            as_of = date.fromisoformat(args["as_of"]) if args.get("as_of") else None
        except ValueError:  # the pattern lets 1910-02-30 through; the calendar does not
            return problem(400, "Invalid query parameters",
                           errors=[{"parameter": "as_of", "message": f"{args['as_of']!r} is not a date"}])
        try:
            decision = reviews.submit(app, request.get_data(), g.actor, args["urgency"], as_of,
                                      by_day=args["by_day"] == "true")
        except RecordError as exc:
            return problem(400, "Invalid admission record", str(exc), errors=_record_errors(exc))
        g.review_id = decision["review_id"]
        res = json_response(decision)
        res.headers["Location"] = f"/v1/reviews/{decision['review_id']}"
        return res

    @app.get("/v1/reviews")
    @require("reviewer", "physician")
    def list_reviews():
        args, bad = query()
        if bad:
            return bad
        bounds = {}
        for name in ("since", "until"):
            if name in args:
                try:
                    bounds[name] = utc_text(inputs.parse_time(args[name]))
                except ValueError as exc:
                    return problem(400, "Invalid query parameters", f"{name}: {exc}",
                                   errors=[{"parameter": name, "message": str(exc)}])
        rows, cursor = store.list_reviews(
            outcome=args.get("outcome"), record_id=args.get("record_id"), urgency=args.get("urgency"),
            status=args.get("status"), limit=args["limit"],
            before=int(args["cursor"]) if "cursor" in args else None, **bounds)
        return json_response({"items": [reviews.list_item(r) for r in rows],
                              "next_cursor": str(cursor) if cursor is not None else None})

    @app.get("/v1/reviews/<review_id>")
    @require("reviewer", "physician")
    def get_review(review_id):
        found = store.get_review(review_id)
        if found is None:
            return problem(404, "Not Found", "no review with that id")
        g.review_id = review_id
        return json_response(reviews.stored(*found))

    @app.post("/v1/reviews/<review_id>/determination")
    @require("physician")
    def create_determination(review_id):
        body, bad = json_body()
        if bad:
            return bad
        errors = openapi.body_errors("DeterminationRequest", body)
        if errors:
            return problem(400, "Invalid determination", "see errors", errors=errors)
        g.review_id = review_id
        try:
            return json_response(reviews.decide(store, review_id, body, g.actor), 201)
        except NotFound:
            return problem(404, "Not Found", "no review with that id")
        except Conflict:
            return problem(409, "Conflict", "this review has a determination already; it cannot be replaced")

    @app.get("/v1/worklist")
    @require("reviewer", "physician")
    def worklist():
        args, bad = query()
        if bad:
            return bad
        return json_response(reviews.worklist(store, args.get("urgency"), args["limit"]))

    @app.get("/v1/stats")
    @require(*ROLES)
    def stats():
        return json_response(reviews.stats(store))

    @app.get("/v1/audit/verify")
    @require(*ROLES)
    def audit_verify():
        args, bad = query()
        if bad:
            return bad
        try:
            expect = parse_anchor(args["expect_head"]) if "expect_head" in args else None
        except ValueError as exc:
            return problem(400, "Invalid query parameters", errors=[{"parameter": "expect_head", "message": str(exc)}])
        return json_response(store.verify(expect))

    @app.get("/v1/rulesets")
    def list_rulesets():
        return json_response(web.rulesets_view(service.library))

    @app.post("/v1/admin/reload")
    @require("rules_admin")
    def reload_rules():
        result, logged = reloads.reload_from_folder(g.actor)
        if not result.ok:
            return problem(422, "Candidate rules refused", "the last good rule library is still serving",
                           errors=result.errors, serving=service.library.digest)
        return {"status": "reloaded", "digest": result.digest, "at": logged["at"], "seq": logged["seq"]}

    @app.get("/v1/admin/reloads")
    @require("rules_admin")
    def list_reloads():
        return json_response({"serving": service.library.digest, "behind": reloads.behind,
                              "items": [entry(r) for r in store.reloads()]})

    @app.get("/healthz")
    def healthz():
        library = service.library
        body = {"status": "ok", "rules": {"version": library.version, "digest": library.digest}}
        if reloads.behind:
            body["behind"] = True
        last = reloads.public_state()
        if last is not None:
            body["reload"] = last
        return body

    @app.get("/metrics")
    def prometheus():
        text, mimetype = metrics.exposition(app)
        return app.response_class(text, mimetype=mimetype)

    @app.get("/openapi.json")
    def openapi_json():
        return json_response(openapi.document())

    @app.before_request
    def start_clock():
        g.started = time.perf_counter()
        g.request_id = request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex

    @app.after_request
    def check_and_log(res):
        if app.config["RESPONSE_VALIDATION"] != "off":
            res = _validate_response(app, res)
        # The request and g once each: every attribute read through Flask's proxies costs a context lookup.
        req, ctx = request._get_current_object(), g._get_current_object()
        route = req.url_rule.rule if req.url_rule else "unmatched"
        elapsed = time.perf_counter() - ctx.get("started", time.perf_counter())
        method = metrics.method_label(req.method)
        metrics.request_done(method, route, res.status_code, elapsed)
        actor = ctx.get("actor")
        # The route template, never the query string or body: no patient data reaches the log.
        log.info("request", extra={"fields": {
            "request_id": ctx.get("request_id"), "method": method, "route": route, "status": res.status_code,
            "ms": round(elapsed * 1000, 2), "key": actor.key_id if actor else None, "review_id": ctx.get("review_id")}})
        headers = res.headers
        headers["X-Request-ID"] = ctx.get("request_id", "")
        if SECURITY_LOWER.isdisjoint(name.lower() for name in headers.keys()):
            headers.extend(SECURITY_ITEMS)  # a third of the cost of four setdefaults, each a scan of the headers
        else:
            for name, value in SECURITY_ITEMS:
                headers.setdefault(name, value)
        return res

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        detail = exc.description
        if exc.code == 413:
            detail = f"the body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        res = problem(exc.code or 500, exc.name, detail)
        for name, value in exc.get_headers():  # e.g. Allow on a 405
            if name.lower() != "content-type":
                res.headers[name] = value
        return res

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.error("unhandled error", exc_info=exc, extra={"fields": {"request_id": g.get("request_id")}})
        return problem(500, "Internal Server Error", "the request could not be completed")

    return app


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, built only for a request that sends a session cookie: Flask sets up the
    signer on every request (~20 µs), yet only the web pages' forms use a session, never an API call. A request
    without the cookie gets the same new, empty session either way."""

    def open_session(self, app, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def _record_errors(exc: RecordError) -> list[dict]:
    return [e.as_dict() for e in getattr(exc, "errors", [exc])]


def _validate_response(app: Flask, res):
    """Check a JSON response against the document; in strict mode a mismatch becomes a 500."""
    if request.method in ("HEAD", "OPTIONS") or res.status_code >= 500 or request.endpoint is None:
        return res
    found = openapi.operation(request.endpoint)
    if found is None:
        return res
    component = openapi.response_schema(request.endpoint, res.status_code)
    errors: list = []
    if component is None:
        errors = [f"status {res.status_code} is not declared"]
    else:
        expected = openapi.response_media(request.endpoint, res.status_code)
        if res.mimetype != expected:
            errors = [f"content type {res.mimetype}, expected {expected}"]
        else:
            errors = openapi.body_errors(component, orjson.loads(res.get_data()))
    if not errors:
        return res
    # Paths only in the log: a schema error's message quotes the value, which may be patient data.
    log.error("response breaks its schema", extra={"fields": {
        "route": request.url_rule.rule, "status": res.status_code,
        "paths": [e["path"] if isinstance(e, dict) else e for e in errors[:10]]}})
    if app.config["RESPONSE_VALIDATION"] == "strict":
        return problem(500, "Response does not match its schema", errors=[str(e)[:300] for e in errors[:20]])
    return res
