"""Responses are checked against the OpenAPI document in the tests, not on every production request."""

from __future__ import annotations

import pytest

from conftest import RULES, auth
from ur_service import reviews


def build(tmp_path, monkeypatch, env: str | None, **config):
    from api import create_app
    from ur_service.auth import create_key

    if env is None:
        monkeypatch.delenv("UR_RESPONSE_VALIDATION", raising=False)
    else:
        monkeypatch.setenv("UR_RESPONSE_VALIDATION", env)
    app = create_app({"RULES_DIR": str(RULES), "DATABASE_URL": f"sqlite:///{tmp_path}/audit.db", **config})
    app.config["TEST_KEYS"] = {"reviewer": create_key(app.extensions["ur_store"], "reviewer")}
    return app


@pytest.mark.parametrize("env,config,checking,status", [
    (None, {}, "off", 200),  # production: the response goes out unchecked
    ("strict", {}, "strict", 500),  # how the tests run every service
    ("log", {}, "log", 200),  # logged, still answered
    ("strict", {"RESPONSE_VALIDATION": "off"}, "off", 200),  # the app's own setting wins
])
def test_response_checking_is_off_in_production_and_strict_in_the_tests(tmp_path, monkeypatch, env, config,
                                                                           checking, status):
    app = build(tmp_path, monkeypatch, env, **config)
    try:
        assert app.config["RESPONSE_VALIDATION"] == checking
        monkeypatch.setattr(reviews, "stats", lambda store: {"reviews": "many"})  # breaks the Stats schema
        assert app.test_client().get("/v1/stats", headers=auth(app, "reviewer")).status_code == status
    finally:
        app.extensions["ur_engine"].close()
        app.extensions["ur_store"].close()


def test_an_unknown_checking_mode_is_refused_by_name(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="UR_RESPONSE_VALIDATION.*'loud'"):
        build(tmp_path, monkeypatch, "loud")
