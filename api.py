"""The review service over HTTP: ``create_app(config)`` builds the Flask app (see ``ur_service/app.py``).

    POST /v1/reviews                          reviewer     one admission record → its decision, stored first
    GET  /v1/reviews, /v1/reviews/{id}        reviewer, physician   the audit store, filtered
    POST /v1/reviews/{id}/determination       physician    approve, or deny with a reason; beside the decision
    GET  /v1/worklist                         reviewer, physician   pended reviews, the soonest due first
    GET  /v1/stats, /v1/audit/verify          any key      outcomes, agreement; the hash chains checked
    POST /v1/admin/reload                     rules_admin  re-read the rule directory (serves only if it passes)
    GET  /v1/rulesets, /healthz, /metrics, /openapi.json, /docs, /ui/…   public (the web pages ask for a key)

The app lives in the ``ur_service`` package so that gunicorn (``ur_service.wsgi``) and ``import api`` always run
the same code: an editable install also copies this file into site-packages, where an old copy could
otherwise shadow the repository's.
"""

from ur_service.app import DEFAULTS, create_app

__all__ = ["DEFAULTS", "create_app"]
