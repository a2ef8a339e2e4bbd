"""The WSGI app for gunicorn, configured from the environment.

    UR_DATABASE_URL         the audit store (default sqlite:///ur-audit.db in the working directory)
    UR_RULES_DIR            a rule library directory (default: the rules shipped with ur-engine)
    UR_MAX_CONTENT_LENGTH   request body limit in bytes (default 1 MiB)
    UR_LOG_LEVEL            INFO by default
    UR_SECRET_KEY           signs the web session and its CSRF token (default: random at each start)
    UR_PROXIES              how many proxies in front to trust for the client's address and scheme (default 0)
    UR_RESPONSE_VALIDATION  check each response against the OpenAPI document: off (default), log or strict
"""

from __future__ import annotations

import os

from .app import create_app


def config_from_env() -> dict:
    env = os.environ
    return {
        "DATABASE_URL": env.get("UR_DATABASE_URL"),
        "RULES_DIR": env.get("UR_RULES_DIR"),
        "MAX_CONTENT_LENGTH": int(env["UR_MAX_CONTENT_LENGTH"]) if env.get("UR_MAX_CONTENT_LENGTH") else None,
        "LOG_LEVEL": env.get("UR_LOG_LEVEL"),
        "SECRET_KEY": env.get("UR_SECRET_KEY"),
        "PROXIES": int(env["UR_PROXIES"]) if env.get("UR_PROXIES") else None,
    }


app = create_app(config_from_env())
