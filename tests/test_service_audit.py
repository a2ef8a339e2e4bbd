"""The anchored audit trail, on SQLite and on a real PostgreSQL: a cut tail, a changed key role or a rewritten
reload shows in verification, and API keys change only by new rows."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from conftest import make_record
from service_support import db_url  # noqa: F401  (fixture)
from ur_engine.rules.library import Source
from ur_service import auth, migrate
from ur_service.store import Actor, Store, parse_anchor

ALICE = Actor("a1b2c3d4e5f6", "alice", "reviewer")
ADMIN = Actor("0a0b0c0d0e0f", "rules-admin", "rules_admin")


@pytest.fixture()
def store(db_url):  # noqa: F811
    s = Store(db_url)
    yield s
    s.close()


def add_review(store, engine):
    decision = engine.review(make_record()).to_dict()
    return store.add_review(record=make_record(), decision=decision, actor=ALICE)


def drop_guards(store, table: str) -> None:
    """What someone with the rights to the database could do first: drop the append-only triggers."""
    with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"DROP TRIGGER {table}_append_only ON {table}"))
        else:
            conn.execute(text(f"DROP TRIGGER {table}_no_update"))
            conn.execute(text(f"DROP TRIGGER {table}_no_delete"))


def problems(report) -> list[tuple[str, str]]:
    return [(p["table"], p["problem"]) for p in report["problems"]]


def test_deleting_the_last_review_is_found_by_the_recorded_head(store, engine):
    for _ in range(3):
        add_review(store, engine)
    assert store.verify()["ok"]
    drop_guards(store, "reviews")
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM reviews WHERE seq = 3"))
    report = store.verify()
    assert not report["ok"]
    assert ("reviews", "the chain ends at row 2 but its recorded head is row 3: rows were cut from its tail"
            ) in problems(report)


def test_a_tail_cut_together_with_its_recorded_head_is_found_by_the_outside_anchor(store, engine):
    for _ in range(3):
        add_review(store, engine)
    anchor = store.verify()["anchor"]  # kept outside the database (exported, or read from the logs)
    drop_guards(store, "reviews")
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM reviews WHERE seq = 3"))
        row2 = conn.execute(text("SELECT hash FROM reviews WHERE seq = 2")).scalar()
        conn.execute(text("UPDATE audit_heads SET seq = 2, hash = :h WHERE chain = 'reviews'"), {"h": row2})
    assert store.verify()["ok"]  # the database alone is consistent again…
    report = store.verify(parse_anchor(anchor))
    assert not report["ok"]  # …but not with what was kept outside it
    assert problems(report) == [("reviews", "the anchor names row 3 but the chain ends at row 2: rows were cut "
                                            "from its tail")]


def test_an_anchor_that_is_still_reached_verifies_and_a_wrong_hash_does_not(store, engine):
    add_review(store, engine)
    anchor = store.verify()["anchor"]
    add_review(store, engine)  # the chain may grow past an anchor
    assert store.verify(parse_anchor(anchor))["ok"]
    forged = parse_anchor(anchor)
    forged["reviews"] = (1, "f" * 64)
    assert problems(store.verify(forged)) == [("reviews", "row 1 does not match the anchor's hash")]


def test_a_role_change_and_a_revocation_are_new_rows(store):
    key = auth.create_key(store, "reviewer", "alice")
    key_id = key.split("_")[1]
    assert store.set_role(key_id, "physician", by="ops")
    assert auth.authenticate(store, key) == Actor(key_id, "alice", "physician")
    assert store.revoke_key(key_id) and not store.set_role(key_id, "rules_admin")
    assert auth.authenticate(store, key) is None
    with store.engine.connect() as conn:
        events = conn.execute(text("SELECT event, role, revoked_at IS NOT NULL FROM api_keys ORDER BY seq")).all()
    assert [tuple(e) for e in events] == [("created", "reviewer", False), ("role_changed", "physician", False),
                                          ("revoked", "physician", True)]
    assert store.verify()["ok"] and store.verify()["counts"]["api_keys"] == 3


@pytest.mark.parametrize("statement", ["UPDATE api_keys SET role = 'rules_admin'", "DELETE FROM api_keys",
                                       "UPDATE rule_reloads SET digest = 'x'", "DELETE FROM rule_reloads",
                                       "UPDATE rule_snapshots SET files = '[]'"])
def test_the_database_refuses_to_change_keys_and_reloads(store, statement):
    auth.create_key(store, "reviewer")
    store.add_reload(ok=True, digest="sha256:x", actor=ADMIN, files=[Source("a.yaml", "x")])
    with pytest.raises(DBAPIError, match="append-only"):
        with store.engine.begin() as conn:
            conn.execute(text(statement))


def test_a_role_changed_in_the_database_breaks_the_chain(store):
    key = auth.create_key(store, "reviewer", "mallory")
    drop_guards(store, "api_keys")
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE api_keys SET role = 'rules_admin'"))
    assert auth.authenticate(store, key).role == "rules_admin"  # the change works…
    report = store.verify()
    assert not report["ok"]  # …and shows
    assert ("api_keys", "the row's content does not match its hash") in problems(report)


def test_a_rewritten_reload_or_snapshot_breaks_verification(store):
    files = [Source("a.yaml", "ruleset: a\n")]
    from ur_engine.rules.library import digest

    store.add_reload(ok=True, digest=digest(files), actor=ADMIN, files=files)
    assert store.verify()["ok"]
    drop_guards(store, "rule_snapshots")
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE rule_snapshots SET files = :f"), {"f": json.dumps([["a.yaml", "ruleset: b\n"]])})
    assert [p["table"] for p in store.verify()["problems"]] == ["rule_snapshots"]
    drop_guards(store, "rule_reloads")
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM rule_reloads"))
    assert ("rule_reloads", "the chain ends at row 0 but its recorded head is row 1: rows were cut from its tail"
            ) in problems(store.verify())


def test_keys_and_reloads_from_before_the_chains_are_carried_into_them(db_url):  # noqa: F811
    s = Store(db_url, upgrade=False)
    migrate.upgrade(s.engine, "0002")
    with s.engine.begin() as conn:
        conn.execute(text("INSERT INTO api_keys VALUES ('aaaaaaaaaaaa', 'old', 'reviewer', :h, "
                          "'2026-11-30T10:00:00.000Z', '2026-12-01T10:00:00.000Z')"), {"h": "1" * 64})
        conn.execute(text("INSERT INTO api_keys VALUES ('bbbbbbbbbbbb', 'kept', 'physician', :h, "
                          "'2026-11-30T11:00:00.000Z', NULL)"), {"h": "2" * 64})
        conn.execute(text("INSERT INTO rule_reloads VALUES (1, '2026-12-01T09:00:00.000Z', 'sha256:old', "
                          "'cccccccccccc', 'admin')"))
    migrate.upgrade(s.engine)
    report = s.verify()
    assert report["ok"], report["problems"]
    assert report["counts"]["api_keys"] == 3 and report["counts"]["rule_reloads"] == 1
    assert s.get_key("aaaaaaaaaaaa")["revoked_at"] == "2026-12-01T10:00:00.000Z"
    assert s.get_key("bbbbbbbbbbbb")["role"] == "physician" and s.get_key("bbbbbbbbbbbb")["revoked_at"] is None
    assert s.latest_reload()["digest"] == "sha256:old"
    s.set_role("bbbbbbbbbbbb", "reviewer")
    migrate.downgrade(s.engine, "0002")  # and back: each key as it stands now
    with s.engine.connect() as conn:
        rows = conn.execute(text("SELECT key_id, role, revoked_at IS NOT NULL FROM api_keys ORDER BY key_id")).all()
        assert [tuple(r) for r in rows] == [("aaaaaaaaaaaa", "reviewer", True), ("bbbbbbbbbbbb", "reviewer", False)]
        assert conn.execute(text("SELECT digest FROM rule_reloads")).scalars().all() == ["sha256:old"]
    migrate.upgrade(s.engine)
    assert s.verify()["ok"]
    s.close()


def test_verify_over_http_takes_an_anchor_and_refuses_a_malformed_one(app, client):
    client.post("/v1/reviews", json=make_record())
    report = client.get("/v1/audit/verify").get_json()
    assert report["ok"] and set(parse_anchor(report["anchor"])) == {"reviews", "determinations", "api_keys",
                                                                    "rule_reloads"}
    assert client.get("/v1/audit/verify", query_string={"expect_head": report["anchor"]}).get_json()["ok"]
    ahead = report["anchor"].replace("reviews:1:", "reviews:2:")
    late = client.get("/v1/audit/verify", query_string={"expect_head": ahead}).get_json()
    assert not late["ok"] and late["problems"][0]["table"] == "reviews"
    bad = client.get("/v1/audit/verify", query_string={"expect_head": "reviews:1:nothex"})
    assert bad.status_code == 400 and bad.get_json()["errors"][0]["parameter"] == "expect_head"


def test_the_audit_commands_print_the_anchor_and_find_a_cut_tail(db_url, engine, runner):  # noqa: F811
    from ur_service.cli import audit

    store = Store(db_url)
    for _ in range(2):
        add_review(store, engine)
    head = runner.invoke(audit, ["head", "--database", db_url])
    assert head.exit_code == 0 and head.output.startswith("reviews:2:")
    assert runner.invoke(audit, ["verify", "--database", db_url, "--expect-head", head.output.strip()]).exit_code == 0
    drop_guards(store, "reviews")
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM reviews WHERE seq = 2"))
        conn.execute(text("DELETE FROM audit_heads WHERE chain = 'reviews'"))
    store.close()
    cut = runner.invoke(audit, ["verify", "--database", db_url, "--expect-head", head.output.strip()])
    assert cut.exit_code == 1 and "the anchor names row 2 but the chain ends at row 1" in cut.output
