"""The service's layout: small modules, its commands in `ur` (the engine never imports it: see test_architecture),
migrations at head."""

from __future__ import annotations


import pytest

from conftest import ROOT
from ur_service import ROLES

SERVICE = sorted((ROOT / "ur_service").rglob("*.py"))


@pytest.mark.parametrize("path", SERVICE, ids=lambda p: str(p.relative_to(ROOT)))
def test_service_module_stays_small(path):
    assert len(path.read_text().splitlines()) <= 600


def test_keys_create_offers_exactly_the_service_roles():
    from ur_service.cli import keys_create

    role = next(p for p in keys_create.params if p.name == "role")
    assert tuple(role.type.choices) == ROLES


def test_keys_commands_create_list_change_role_and_revoke(runner, tmp_path):
    from ur_engine.cli import main
    from ur_service.auth import authenticate
    from ur_service.store import Store

    db = ["--database", f"sqlite:///{tmp_path}/audit.db"]
    made = runner.invoke(main, ["keys", "create", "--role", "physician", "--name", "dr-who", *db])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    key_id = key.split("_")[1]
    listed = runner.invoke(main, ["keys", "list", *db])
    assert key_id in listed.stdout and "dr-who" in listed.stdout and key not in listed.stdout
    store = Store(f"sqlite:///{tmp_path}/audit.db")
    assert authenticate(store, key).role == "physician"
    assert runner.invoke(main, ["keys", "role", key_id, "reviewer", *db]).exit_code == 0  # a new row
    assert authenticate(store, key).role == "reviewer" and store.verify()["counts"]["api_keys"] == 2
    assert runner.invoke(main, ["keys", "revoke", key_id, *db]).exit_code == 0
    assert authenticate(store, key) is None
    assert runner.invoke(main, ["keys", "revoke", key_id, *db]).exit_code == 2
    store.close()


def test_a_store_of_the_first_revision_upgrades_to_head_with_its_reviews(tmp_path, engine):
    from conftest import make_record
    from ur_service import migrate
    from ur_service.store import Actor, Store

    from sqlalchemy import insert

    from ur_service.tables import reviews

    url = f"sqlite:///{tmp_path}/old.db"
    old = Store(url, upgrade=False)
    migrate.upgrade(old.engine, "0001")  # a store as the first release left it
    decision = engine.review(make_record()).to_dict()
    scratch = Store(f"sqlite:///{tmp_path}/scratch.db")  # the row as a review is stored (its columns are 0001's)
    row = scratch.add_review(record=make_record(), decision=decision, actor=Actor("a1b2c3d4e5f6", "alice"))
    scratch.close()
    with old.engine.begin() as conn:
        conn.execute(insert(reviews), row)
    old.close()
    new = Store(url)  # what create_app does at start
    assert migrate.current(new.engine) == migrate.head() != "0001"
    assert new.get_review(decision["review_id"]) is not None and new.verify()["ok"]
    new.close()
