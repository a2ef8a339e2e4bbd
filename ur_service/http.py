"""Small HTTP helpers shared by the JSON API and the web pages."""

from __future__ import annotations

import orjson
from flask import Response

from .inputs import clip, clip_errors

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str | None = None, **extra) -> Response:
    """An RFC 9457 problem document; its texts quote at most a short piece of any bad value."""
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = clip(detail)
    if isinstance(extra.get("errors"), list):
        extra["errors"] = clip_errors(extra["errors"])
    body.update(extra)
    return Response(orjson.dumps(body), status=status, mimetype=PROBLEM)


def json_response(body, status: int = 200, raw: bytes | None = None) -> Response:
    """JSON with orjson; ``raw`` sends bytes that are JSON already (a stored decision)."""
    return Response(raw if raw is not None else orjson.dumps(body), status=status, mimetype="application/json")
