"""The review API over HTTP: parse the request, make one library call, format the answer.

    POST /v1/reviews        one admission record → its decision
    GET  /v1/rulesets       the rule sets loaded, with versions and sources
    POST /v1/admin/reload   re-read the rule directory; the candidate serves only if it loads and its tests pass
    GET  /healthz           liveness, the rule library's version and digest, and the last reload's result

Errors are ``application/problem+json`` (RFC 9457) and name the record field by its JSON path.
"""

from __future__ import annotations

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from ur_engine import record as records
from ur_engine.errors import RecordError
from ur_engine.io import default_sources, read_sources
from ur_engine.service import RuleService

DEFAULTS = {
    "RULES_DIR": None,  # None: the default rule library
    "EVALUATOR": "durable",
    "MAX_CONTENT_LENGTH": 1024 * 1024,  # bytes; larger bodies get 413
}


def problem(status: int, title: str, detail: str | None = None, **extra) -> Response:
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")


def create_app(config: dict | None = None) -> Flask:
    """Build the app; ``config`` overrides ``DEFAULTS`` (RULES_DIR, EVALUATOR, MAX_CONTENT_LENGTH)."""
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config.update({k: v for k, v in (config or {}).items() if v is not None or k not in DEFAULTS})
    app.json.sort_keys = False
    rules_dir = app.config["RULES_DIR"]

    def sources():
        return read_sources(rules_dir) if rules_dir else default_sources()

    service = RuleService(sources(), app.config["EVALUATOR"])
    app.extensions["ur_engine"] = service

    @app.post("/v1/reviews")
    def create_review():
        if not (request.mimetype == "application/json" or request.mimetype.endswith("+json")):
            return problem(415, "Unsupported Media Type", "send the admission record as application/json")
        try:
            data = records.loads(request.get_data())
            with service.engine() as engine:
                decision = engine.review(data)
        except RecordError as exc:
            errors = [e.as_dict() for e in getattr(exc, "errors", [exc])]
            return problem(400, "Invalid admission record", str(exc), errors=errors)
        return app.json.response(decision.to_dict())

    @app.get("/v1/rulesets")
    def list_rulesets():
        library = service.library
        return {
            "version": library.version, "digest": library.digest,
            "rulesets": [{
                "id": rs.id, "version": rs.version, "title": rs.title, "source": rs.source, "file": rs.file,
                "effective": {"from": rs.effective_from and rs.effective_from.isoformat(),
                              "to": rs.effective_to and rs.effective_to.isoformat()},
                "levels": sorted(rs.levels), "requires": sorted(rs.requires),
                "criteria": [{"id": c.id, "group": c.group, "text": c.text, "source": c.source}
                             for c in rs.criteria],
            } for rs in library.rulesets],
        }

    @app.post("/v1/admin/reload")
    def reload_rules():
        result = service.reload(sources)
        if not result.ok:
            return problem(422, "Candidate rules refused", "the last good rule library is still serving",
                           errors=result.errors, serving=service.library.digest)
        return {"status": "reloaded", "digest": result.digest, "at": result.at}

    @app.get("/healthz")
    def healthz():
        library = service.library
        body = {"status": "ok", "rules": {"version": library.version, "digest": library.digest}}
        last = service.last_reload
        if last is not None:
            body["reload"] = {"ok": last.ok, "at": last.at, "digest": last.digest, "errors": last.errors}
        return body

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        detail = exc.description
        if exc.code == 413:
            detail = f"the body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        return problem(exc.code or 500, exc.name, detail)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("unhandled error")  # the record itself is never logged
        return problem(500, "Internal Server Error", "the review could not be completed")

    return app
