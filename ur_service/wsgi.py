"""The WSGI app for gunicorn, configured from the environment.

    UR_DATABASE_URL         the audit store (default sqlite:///ur-audit.db in the working directory)
    UR_RULES_DIR            a rule library directory (default: the rules shipped with ur-engine)
    UR_MAX_CONTENT_LENGTH   request body limit in bytes (default 1 MiB)
    UR_LOG_LEVEL            INFO by default
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
    }


app = create_app(config_from_env())
