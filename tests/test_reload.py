"""Hot reload: a candidate serves only after it loads and passes its tests; requests never fail meanwhile."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from api import create_app
from ur_engine.intake.rule_files import read_sources
from ur_service.auth import create_key
from conftest import ROOT, RULES, make_record, obs
from test_cli import _free_port

RECORD = make_record(observations=[obs("8867-4", 150)], treatments=[{"type": "iv_fluids"}])


@pytest.fixture()
def rules_dir(tmp_path):
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def _app(rules_dir, tmp_path):
    """The service on ``rules_dir`` with a throwaway store; returns it with reviewer and rules_admin headers."""
    app = create_app({"RULES_DIR": str(rules_dir), "DATABASE_URL": f"sqlite:///{tmp_path}/audit.db"})
    store = app.extensions["ur_store"]
    return app, {role: {"Authorization": f"Bearer {create_key(store, role)}"} for role in ("reviewer", "rules_admin")}


def _edit(rules_dir, old: str, new: str) -> None:
    path = rules_dir / "critical-care.yaml"
    path.write_text(path.read_text().replace(old, new))


def test_reloads_under_continuous_requests_never_fail_one(rules_dir, tmp_path):
    app, headers = _app(rules_dir, tmp_path)
    service = app.extensions["ur_engine"]
    original = (rules_dir / "critical-care.yaml").read_text()
    first = service.library.digest
    _edit(rules_dir, "Only life support", "Only the life support")
    second = service.reload(lambda: read_sources(rules_dir)).digest
    (rules_dir / "critical-care.yaml").write_text(original)
    assert service.reload(lambda: read_sources(rules_dir)).digest == first

    stop = threading.Event()
    seen: list[tuple[int, str | None]] = []

    def hammer():
        client = app.test_client()
        while not stop.is_set():
            res = client.post("/v1/reviews", json=RECORD, headers=headers["reviewer"])
            body = res.get_json()
            seen.append((res.status_code, body.get("rules", {}).get("digest")))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    admin = app.test_client()
    try:
        for i in range(6):
            if i % 2:
                (rules_dir / "critical-care.yaml").write_text(original)
            else:
                _edit(rules_dir, "Only life support", "Only the life support")
            res = admin.post("/v1/admin/reload", headers=headers["rules_admin"])
            assert res.status_code == 200, res.get_json()
            serving = admin.get("/healthz").get_json()["rules"]["digest"]
            (rules_dir / "two-midnight.yaml").write_text("ruleset: [broken\n")
            bad = admin.post("/v1/admin/reload", headers=headers["rules_admin"])
            assert bad.status_code == 422 and bad.get_json()["serving"] == serving
            health = admin.get("/healthz").get_json()
            assert health["rules"]["digest"] == serving and health["reload"]["ok"] is False
            assert set(health["reload"]) == {"ok", "at"}  # the reasons are for rules_admin only
            log = admin.get("/v1/admin/reloads", headers=headers["rules_admin"]).get_json()
            assert log["items"][0]["errors"][0].startswith("two-midnight.yaml:2:1 UR001")
            shutil.copy(RULES / "two-midnight.yaml", rules_dir / "two-midnight.yaml")
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
        service.close()
        app.extensions["ur_store"].close()
    assert len(seen) > 50
    assert {status for status, _ in seen} == {200}
    assert {digest for _, digest in seen} <= {first, second}
    assert {digest for _, digest in seen} == {first, second}


def test_a_candidate_whose_rule_tests_fail_is_refused(rules_dir, tmp_path):
    app, headers = _app(rules_dir, tmp_path)
    before = app.extensions["ur_engine"].library.digest
    _edit(rules_dir, "met: [CC-VENTILATION], not_met", "met: [CC-VASOPRESSOR], not_met")
    res = app.test_client().post("/v1/admin/reload", headers=headers["rules_admin"])
    body = res.get_json()
    assert res.status_code == 422 and "intubated patient supports critical care" in body["errors"][0]
    assert app.extensions["ur_engine"].library.digest == before
    app.extensions["ur_engine"].close()
    app.extensions["ur_store"].close()


def test_reload_needs_the_rules_admin_role(rules_dir, tmp_path):
    app, headers = _app(rules_dir, tmp_path)
    client = app.test_client()
    assert client.post("/v1/admin/reload").status_code == 401
    assert client.post("/v1/admin/reload", headers=headers["reviewer"]).status_code == 403
    assert client.post("/v1/admin/reload", headers=headers["rules_admin"]).status_code == 200
    app.extensions["ur_engine"].close()
    app.extensions["ur_store"].close()


def test_sighup_reloads_a_running_server(rules_dir, tmp_path):
    port = _free_port()
    env = {**os.environ, "UR_DATABASE_URL": f"sqlite:///{tmp_path}/audit.db"}
    proc = subprocess.Popen([sys.executable, "-m", "ur_engine.cli", "serve", "--port", str(port),
                             "--rules", str(rules_dir)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)

    def health():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as res:
            return json.load(res)

    try:
        for _ in range(100):
            try:
                before = health()["rules"]["digest"]
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("ur serve did not start")
        _edit(rules_dir, "Only life support", "Only the life support")
        proc.send_signal(signal.SIGHUP)
        for _ in range(100):
            body = health()
            if body.get("reload"):
                break
            time.sleep(0.1)
        assert body["reload"]["ok"] is True and body["rules"]["digest"] != before
    finally:
        proc.terminate()
        proc.wait(timeout=10)
