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
import urllib.error
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


def test_a_follower_loads_the_accepted_files_not_the_folder_as_it_is_later(rules_dir, tmp_path):
    """Two apps on one store stand for two workers: the second follows the digest the first accepted, even
    after the rule folder changed again without a reload."""
    db = f"sqlite:///{tmp_path}/audit.db"
    accepting = create_app({"RULES_DIR": str(rules_dir), "DATABASE_URL": db, "RELOAD_POLL_SECONDS": 0})
    following = create_app({"RULES_DIR": str(rules_dir), "DATABASE_URL": db, "RELOAD_POLL_SECONDS": 0})
    admin = {"Authorization": f"Bearer {create_key(accepting.extensions['ur_store'], 'rules_admin')}"}
    try:
        start = following.test_client().get("/healthz").get_json()["rules"]["digest"]
        _edit(rules_dir, "Only life support", "Only the life support")
        accepted = accepting.test_client().post("/v1/admin/reload", headers=admin).get_json()["digest"]
        _edit(rules_dir, "Only the life support", "Only the very life support")  # never reloaded
        assert accepted != start
        health = following.test_client().get("/healthz").get_json()
        assert health["rules"]["digest"] == accepted and "behind" not in health
        log = following.test_client().get("/v1/admin/reloads", headers=admin).get_json()
        assert [(i["kind"], i["ok"], i["digest"]) for i in log["items"]] == [("reload", True, accepted),
                                                                           ("startup", True, start)]
    finally:
        for app in (accepting, following):
            app.extensions["ur_engine"].close()
            app.extensions["ur_store"].close()


def test_a_follower_that_cannot_load_the_accepted_library_keeps_serving_retries_and_says_so(rules_dir, tmp_path):
    from sqlalchemy import text

    db = f"sqlite:///{tmp_path}/audit.db"
    accepting = create_app({"RULES_DIR": str(rules_dir), "DATABASE_URL": db, "RELOAD_POLL_SECONDS": 0})
    following = create_app({"RULES_DIR": str(rules_dir), "DATABASE_URL": db, "RELOAD_POLL_SECONDS": 0.05})
    store = accepting.extensions["ur_store"]
    admin = {"Authorization": f"Bearer {create_key(store, 'rules_admin')}"}
    client = following.test_client()
    try:
        start = client.get("/healthz").get_json()["rules"]["digest"]
        _edit(rules_dir, "Only life support", "Only the life support")
        accepted = accepting.test_client().post("/v1/admin/reload", headers=admin).get_json()["digest"]
        with store.engine.begin() as conn:  # the kept files no longer hash to the digest: they must not serve
            conn.execute(text("DROP TRIGGER rule_snapshots_no_update"))
            kept = conn.execute(text("SELECT files FROM rule_snapshots WHERE digest = :d"), {"d": accepted}).scalar()
            conn.execute(text("UPDATE rule_snapshots SET files = :f WHERE digest = :d"),
                         {"f": kept.replace("Only the life support", "Only a life support"), "d": accepted})
        time.sleep(0.06)
        health = client.get("/healthz").get_json()
        assert health["rules"]["digest"] == start and health["behind"] is True
        metrics = client.get("/metrics").get_data(as_text=True)
        assert "ur_rules_follow_behind 1.0" in metrics
        failures = next(x for x in metrics.splitlines() if x.startswith("ur_rules_follow_failures_total "))
        assert float(failures.split()[-1]) >= 1
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE rule_snapshots SET files = :f WHERE digest = :d"), {"f": kept, "d": accepted})
        deadline = time.monotonic() + 10
        while client.get("/healthz").get_json()["rules"]["digest"] != accepted and time.monotonic() < deadline:
            time.sleep(0.05)  # the retry comes after a growing delay
        health = client.get("/healthz").get_json()
        assert health["rules"]["digest"] == accepted and "behind" not in health
    finally:
        for app in (accepting, following):
            app.extensions["ur_engine"].close()
            app.extensions["ur_store"].close()


def test_every_gunicorn_worker_names_the_accepted_digest_within_2_s(rules_dir, tmp_path):
    """Edit, reload, edit again without reloading: the two workers serve only digests the log accepted, and
    from 2 s after the reload only the reloaded one; a broken reload afterwards shows on every worker."""
    from concurrent.futures import ThreadPoolExecutor

    from service_support import free_port, start_gunicorn
    from ur_engine.rules.library import digest
    from ur_service.store import Store

    db = f"sqlite:///{tmp_path}/audit.db"
    store = Store(db)
    admin = {"Authorization": f"Bearer {create_key(store, 'rules_admin')}"}
    reviewer = {"Authorization": f"Bearer {create_key(store, 'reviewer')}", "Content-Type": "application/json"}
    store.close()
    port = free_port()
    proc = start_gunicorn(db, port, tmp_path / "gunicorn.log", workers=2, UR_RULES_DIR=str(rules_dir))
    url = f"http://127.0.0.1:{port}"

    def call(path, method="GET", headers=None, body=None):
        req = urllib.request.Request(url + path, method=method, headers=headers or {}, data=body)
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                return res.status, json.load(res)
        except urllib.error.HTTPError as err:
            return err.code, json.load(err)

    pneumonia = rules_dir / "pneumonia.yaml"
    original = pneumonia.read_text()
    def serving(digest):
        """The workers (pids) that /metrics says serve ``digest``."""
        text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
        return [x for x in text.splitlines() if x.startswith(f'ur_rules_serving{{digest="{digest}"') and
                x.endswith(" 1.0")]

    try:
        start = call("/healthz")[1]["rules"]["digest"]
        deadline = time.monotonic() + 15  # the second worker may still be booting
        while len(serving(start)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(serving(start)) == 2  # each worker from its fork, the master not at all
        pneumonia.write_text(original.replace("Severe CAP, major criterion", "Severe CAP, a major criterion"))
        status, body = call("/v1/admin/reload", "POST", admin)
        reloaded = time.monotonic()
        assert status == 200, body
        accepted = body["digest"]
        pneumonia.write_text(original.replace("Severe CAP, major criterion", "Severe CAP, the major criterion"))
        never_reloaded = digest(read_sources(rules_dir))

        def hammer(i):
            seen = []
            while time.monotonic() - reloaded < 3.5:
                if i % 2:
                    _, body = call("/healthz")
                    seen.append((time.monotonic() - reloaded, body["rules"]["digest"]))
                else:
                    _, body = call("/v1/reviews", "POST", reviewer, json.dumps(RECORD).encode())
                    seen.append((time.monotonic() - reloaded, body["rules"]["digest"]))
            return seen

        with ThreadPoolExecutor(4) as pool:
            seen = [s for part in pool.map(hammer, range(4)) for s in part]
        digests = {d for _, d in seen}
        assert never_reloaded not in digests and digests <= {start, accepted}, digests
        stale = [t for t, d in seen if d != accepted]
        print(f"\n{len(seen)} responses; the last naming the old digest came {max(stale, default=0):.2f} s after the reload")
        late = {d for t, d in seen if t >= 2.0}
        assert late == {accepted}, [(round(t, 2), d[:15]) for t, d in seen if d != accepted]
        assert len(serving(accepted)) == 2 and serving(start) == []  # each worker, by its pid

        (rules_dir / "two-midnight.yaml").write_text("ruleset: [broken\n")
        assert call("/v1/admin/reload", "POST", admin)[0] == 422
        health = [call("/healthz")[1] for _ in range(12)]
        assert {h["rules"]["digest"] for h in health} == {accepted}
        assert all(h["reload"]["ok"] is False and "errors" not in h["reload"] for h in health)
    finally:
        load_stop(proc)


def load_stop(proc) -> None:
    import os

    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
