"""The audit store on SQLite and on a real PostgreSQL: migrations, the hash chain, append-only, queries."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from conftest import make_record, obs
from service_support import db_url  # noqa: F401  (fixture)
from ur_service import auth, migrate
from ur_service.db import driver_write_transaction, write_transaction
from ur_service.store import (DETERMINATION_CHAIN, REVIEW_CHAIN, Actor, Conflict, NotFound, Store, _append,
                              _append_reviews, utc_text)
from ur_service.tables import metadata

ALICE = Actor("a1b2c3d4e5f6", "alice", "reviewer")
DR = Actor("f6e5d4c3b2a1", "dr-who", "physician")
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


@pytest.fixture()
def store(db_url):  # noqa: F811
    s = Store(db_url)
    yield s
    s.close()


def approved(engine):
    return engine.review(make_record(observations=[obs("8867-4", 150)], treatments=[{"type": "iv_fluids"}]))


def pended(engine, record_id="stay-pend"):
    return engine.review(make_record(id=record_id))


def add(store, engine, decision=None, **kw):
    d = (decision or approved(engine)).to_dict()
    return store.add_review(record=make_record(), decision=d, actor=ALICE, **kw)


def test_migrations_reach_head_and_match_the_tables(store):
    assert migrate.current(store.engine) == migrate.head()
    migrate.upgrade(store.engine)  # a second upgrade is a no-op
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_a_review_is_kept_with_record_decision_digest_who_and_when(store, engine):
    d = approved(engine)
    row = store.add_review(record=make_record(), decision=d.to_dict(), actor=ALICE, received=T0)
    found, det = store.get_review(d.review_id)
    assert det is None and found["hash"] == row["hash"] and found["seq"] == 1
    assert (found["actor_key"], found["actor_name"], found["received_at"]) == (ALICE.key_id, "alice",
                                                                               "2026-03-02T12:00:00.000Z")
    assert found["rule_digest"] == d.rules["digest"] and found["outcome"] == "approve"
    assert '"id":"stay-test"' in found["record"] and found["due_at"] is None
    assert store.get_review("nope") is None


def test_pended_reviews_are_due_in_72_hours_expedited_or_7_days_standard(store, engine):
    exp = store.add_review(record={}, decision=pended(engine).to_dict(), actor=ALICE, urgency="expedited", received=T0)
    std = store.add_review(record={}, decision=pended(engine).to_dict(), actor=ALICE, received=T0)
    assert exp["due_at"] == utc_text(T0 + timedelta(hours=72))
    assert std["due_at"] == utc_text(T0 + timedelta(days=7))


def test_the_chain_links_every_row_and_verifies(store, engine):
    rows = [add(store, engine) for _ in range(3)]
    assert rows[0]["prev_hash"] == "0" * 64
    assert [r["prev_hash"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]
    store.add_determination(rows[1]["review_id"], decision="approve", reason_code=None, text=None, actor=DR)
    report = store.verify()
    assert report["ok"] and report["counts"] == {"reviews": 3, "determinations": 1, "api_keys": 0, "rule_reloads": 0}
    assert report["heads"]["reviews"] == rows[-1]["hash"]


@pytest.mark.parametrize("statement", ["UPDATE reviews SET outcome = 'approve'", "DELETE FROM reviews"])
def test_the_database_refuses_to_change_or_remove_a_review(store, engine, statement):
    add(store, engine)
    with pytest.raises(DBAPIError, match="append-only"):
        with store.engine.begin() as conn:
            conn.execute(text(statement))
    assert store.verify()["ok"]


def _drop_guards(store):
    """What someone with the rights to the database could do first."""
    with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER reviews_append_only ON reviews"))
        else:
            conn.execute(text("DROP TRIGGER reviews_no_update"))
            conn.execute(text("DROP TRIGGER reviews_no_delete"))


def test_tampering_with_a_row_shows_in_the_chain(store, engine):
    rows = [add(store, engine) for _ in range(4)]
    _drop_guards(store)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE reviews SET outcome = 'pend' WHERE seq = 2"))
    report = store.verify()
    assert not report["ok"]
    assert report["problems"] == [{"table": "reviews", "seq": 2,
                                   "problem": "the row's content does not match its hash"}]
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM reviews WHERE seq = 3"))
    problems = store.verify()["problems"]
    assert {"table": "reviews", "seq": 4, "problem": "row 3 is missing"} in problems
    assert rows[3]["review_id"]


def test_concurrent_appends_from_several_connections_keep_one_chain(db_url, engine):  # noqa: F811
    stores = [Store(db_url), Store(db_url)]  # two pools, like two gunicorn workers
    decisions = [approved(engine).to_dict() for _ in range(40)]
    errors = []

    def work(i):
        try:
            for d in decisions[i::4]:
                stores[i % 2].add_review(record={}, decision=d, actor=ALICE)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = stores[0].verify()
    assert report["ok"] and report["counts"]["reviews"] == 40
    for s in stores:
        s.close()


def test_a_determination_sits_beside_the_decision_once(store, engine):
    d = pended(engine)
    store.add_review(record={}, decision=d.to_dict(), actor=ALICE)
    det = store.add_determination(d.review_id, decision="deny", reason_code="not_medically_necessary",
                                  text="No SI criterion met on review of the chart.", actor=DR)
    review, found = store.get_review(d.review_id)
    assert found["determination_id"] == det["determination_id"] and found["actor_name"] == "dr-who"
    assert review["outcome"] == "pend" and '"outcome":"pend"' in review["decision"]
    with pytest.raises(Conflict):
        store.add_determination(d.review_id, decision="approve", reason_code=None, text=None, actor=DR)
    with pytest.raises(NotFound):
        store.add_determination("01NOPE", decision="approve", reason_code=None, text=None, actor=DR)


def test_list_filters_and_pages_newest_first(store, engine):
    for i in range(5):
        add(store, engine, received=T0 + timedelta(hours=i))
    p = pended(engine, "stay-p")
    store.add_review(record={}, decision=p.to_dict(), actor=ALICE, received=T0 + timedelta(hours=9))
    rows, cursor = store.list_reviews(limit=4)
    assert [r["seq"] for r in rows] == [6, 5, 4, 3] and cursor == 3
    rows, cursor = store.list_reviews(limit=4, before=cursor)
    assert [r["seq"] for r in rows] == [2, 1] and cursor is None
    assert [r["record_id"] for r in store.list_reviews(outcome="pend")[0]] == ["stay-p"]
    assert [r["seq"] for r in store.list_reviews(status="open")[0]] == [6]
    window = {"since": utc_text(T0 + timedelta(hours=3)), "until": utc_text(T0 + timedelta(hours=5))}
    assert len(store.list_reviews(**window)[0]) == 2
    assert store.list_reviews(record_id="stay-p")[0][0]["determination"] is None


def test_worklist_is_the_undecided_pends_soonest_due_first_and_stats_compare(store, engine):
    ids = []
    for i, urgency in enumerate(["standard", "expedited", "standard"]):
        d = pended(engine, f"stay-{i}")
        store.add_review(record={}, decision=d.to_dict(), actor=ALICE, urgency=urgency,
                         received=T0 + timedelta(hours=i))
        ids.append(d.review_id)
    add(store, engine)
    rows, open_, overdue = store.worklist(now=T0 + timedelta(days=4))
    assert [r["review_id"] for r in rows] == [ids[1], ids[0], ids[2]] and (open_, overdue) == (3, 1)
    store.add_determination(ids[1], decision="deny", reason_code="other", text="x", actor=DR, decided=T0)
    rows, open_, _ = store.worklist(now=T0)
    assert [r["review_id"] for r in rows] == [ids[0], ids[2]] and open_ == 2
    stats = store.stats(now=T0)
    assert stats["by_outcome"] == {"pend": 3, "approve": 1}
    assert stats["determinations"] == [{"outcome": "pend", "finding": "not_met", "decision": "deny", "count": 1,
                                        "on_time": 1}]


def test_keys_are_stored_hashed_and_can_be_revoked(store):
    key = auth.create_key(store, "physician", "dr-who")
    key_id = key.split("_")[1]
    row = store.get_key(key_id)
    assert key not in str(row) and row["key_hash"] == auth.hash_key(key)
    assert auth.authenticate(store, key) == Actor(key_id, "dr-who", "physician")
    assert auth.authenticate(store, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert auth.authenticate(store, "garbage") is None
    assert store.revoke_key(key_id) and not store.revoke_key(key_id)
    assert auth.authenticate(store, key) is None
    with pytest.raises(ValueError, match="unknown role"):
        auth.create_key(store, "admin")


PAS_CLAIM = {"resourceType": "Claim", "id": "req-1", "use": "preauthorization",
             "identifier": [{"system": "urn:trnorg:1234567890", "value": "TRN-0001"}]}


def test_a_pas_request_is_kept_with_its_review_and_found_by_identifier_or_claim_id(store, engine):
    first = store.add_review(record=make_record(), decision=pended(engine).to_dict(), actor=ALICE,
                             pas_request={"claim": PAS_CLAIM, "bundle_identifier": {"value": "A12345"}})
    again = store.add_review(record=make_record(), decision=pended(engine).to_dict(), actor=ALICE,
                             pas_request={"claim": PAS_CLAIM, "bundle_identifier": None})
    plain = add(store, engine)
    assert store.pas_request(first["review_id"]) == {"claim": PAS_CLAIM, "bundle_identifier": {"value": "A12345"}}
    assert store.pas_request(plain["review_id"]) is None
    # the newest request of that identifier: a resubmission answers for it
    assert store.find_pas_request([("urn:trnorg:1234567890", "TRN-0001")]) == again["review_id"]
    assert store.find_pas_request([(None, "TRN-0001")]) == again["review_id"]
    assert store.find_pas_request([("urn:other", "TRN-0001")]) is None
    assert store.find_pas_request([("urn:other", "TRN-0001")], "req-1") == again["review_id"]
    assert store.find_pas_request([], "nope") is None


@pytest.mark.parametrize("statement", ["UPDATE pas_requests SET claim_id = 'x'", "DELETE FROM pas_requests"])
def test_the_database_refuses_to_change_or_remove_a_pas_request(store, engine, statement):
    store.add_review(record=make_record(), decision=pended(engine).to_dict(), actor=ALICE,
                     pas_request={"claim": PAS_CLAIM, "bundle_identifier": None})
    with pytest.raises(DBAPIError, match="append-only"):
        with store.engine.begin() as conn:
            conn.execute(text(statement))


FIXED_RECORD = {"id": "stay-pin", "encounter": {"start": "2026-03-01T08:00:00Z"}, "age": 71,
                "observations": [{"code": "8310-5", "value": 38.9, "time": "2026-03-01T09:00:00Z"}],
                "note": "é, \u2028 and \"quotes\""}


def _fixed_decision(review_id: str, outcome: str) -> dict:
    return {"review_id": review_id, "record_id": "stay-pin", "review_type": "admission", "outcome": outcome,
            "requested": "inpatient", "levels": {"inpatient": "met" if outcome == "approve" else "unknown"},
            "rules": {"version": "2026.1", "digest": "sha256:" + "ab" * 32},
            "trail": [{"criterion": "fever", "status": "met", "value": 38.9, "ratio": 0.25, "n": 3, "why": None}]}


def test_a_review_row_hashes_to_the_same_value_as_ever(store):
    """The chain hash of a stored review is pinned: whatever changes in how rows are written, the same review
    must hash alike, or every anchor kept outside the database stops matching."""
    first = store.add_review(record=FIXED_RECORD, decision=_fixed_decision("01HPIN00000000000000000001", "approve"),
                             actor=ALICE, received=T0)
    second = store.add_review(record=FIXED_RECORD, decision=_fixed_decision("01HPIN00000000000000000002", "pend"),
                              actor=ALICE, urgency="expedited", received=T0 + timedelta(seconds=1),
                              pas_request={"claim": PAS_CLAIM, "bundle_identifier": None})
    assert (first["seq"], first["prev_hash"]) == (1, "0" * 64)
    assert first["hash"] == "f3d844ee47935871e145c72bbac7011d90b453c9c67522b8b18958db0dd940ed"
    assert (second["seq"], second["prev_hash"]) == (2, first["hash"])
    assert second["hash"] == "2b79b5fe718711a8ba8fe40a60f0b62031965b8ddee5fbe03dc4b2060a8008c3"
    stored, _ = store.get_review("01HPIN00000000000000000002")
    assert {k: stored[k] for k in second if not k.startswith("_")} == {k: v for k, v in second.items()
                                                                      if not k.startswith("_")}
    assert store.verify()["ok"]


def following(decision: dict, earlier: str, review_id: str) -> dict:
    return {**decision, "review_id": review_id, "follows": {"review_id": earlier, "source": "QuestionnaireResponse/x"}}


def test_two_answers_to_one_questionnaire_sent_at_once_make_one_following_review(db_url, engine):  # noqa: F811
    stores = [Store(db_url), Store(db_url)]  # two pools, like two gunicorn workers
    first = add(stores[0], engine, pended(engine, record_id="stay-race"))
    decision = pended(engine, record_id="stay-race").to_dict()
    start, outcomes = threading.Barrier(2), {}

    def answer(i):
        start.wait()
        try:
            stores[i].add_review(record={}, decision=following(decision, first["review_id"], f"later-{i}"),
                                 actor=ALICE)
            outcomes[i] = "stored"
        except Conflict as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (won,) = [i for i, o in outcomes.items() if o == "stored"]
    (lost,) = [o for o in outcomes.values() if isinstance(o, Conflict)]
    assert lost.review_id == first["review_id"] and lost.followed_by == f"later-{won}"
    assert stores[0].followed_by(first["review_id"]) == f"later-{won}"
    assert stores[0].verify()["counts"]["reviews"] == 2
    for s in stores:
        s.close()


def test_answers_queued_together_in_one_transaction_still_make_one_following_review(store, engine):
    first = add(store, engine, pended(engine, record_id="stay-batch"))
    decision = pended(engine, record_id="stay-batch").to_dict()
    rows = [following(decision, first["review_id"], f"later-{i}") for i in range(2)]
    with pytest.raises(Conflict), driver_write_transaction(store.engine, REVIEW_CHAIN) as tx:
        _append_reviews(tx, [store_row(store, r) for r in rows])
    assert store.followed_by(first["review_id"]) is None  # the batch was refused whole, to be retried row by row


def store_row(store, decision):
    """The row add_review would queue, without queueing it."""
    captured = {}
    real = store.review_commits.submit
    store.review_commits.submit = lambda row: captured.setdefault("row", row)
    try:
        store.add_review(record={}, decision=decision, actor=ALICE)
    finally:
        store.review_commits.submit = real
    return captured["row"]


def test_a_review_a_physician_decided_meanwhile_is_not_followed(store, engine):
    first = add(store, engine, pended(engine, record_id="stay-decided"))
    store.add_determination(first["review_id"], decision="approve", reason_code=None, text=None, actor=DR)
    with pytest.raises(Conflict) as refused:
        store.add_review(record={}, decision=following(pended(engine).to_dict(), first["review_id"], "later"),
                         actor=ALICE)
    assert refused.value.followed_by is None
    assert store.get_review("later") is None


def test_an_answer_waits_for_a_determination_being_added_and_is_refused_once_it_is(db_url, engine):  # noqa: F811
    store = Store(db_url)
    first = add(store, engine, pended(engine, record_id="stay-crossing"))
    deciding, outcome = threading.Event(), {}

    def decide():  # a physician's determination, its transaction open a moment before it commits
        row = {"determination_id": "d-crossing", "review_id": first["review_id"], "decided_at": utc_text(T0),
               "actor_key": DR.key_id, "actor_name": DR.name, "decision": "approve", "reason_code": None,
               "text": None}
        with write_transaction(store.engine, DETERMINATION_CHAIN) as conn:
            _append(conn, "determinations", row)
            deciding.set()
            time.sleep(0.3)

    def answer():
        deciding.wait()
        try:
            store.add_review(record={}, decision=following(pended(engine).to_dict(), first["review_id"], "later"),
                             actor=ALICE)
            outcome["stored"] = True
        except Conflict as exc:
            outcome["refused"] = exc

    threads = [threading.Thread(target=decide), threading.Thread(target=answer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert "refused" in outcome and outcome["refused"].followed_by is None
    assert store.get_review("later") is None
    store.close()
