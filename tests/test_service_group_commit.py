"""Group commit: reviews submitted together share one transaction, yet none is answered before its row is in.

On SQLite and on a real PostgreSQL. A commit is held open (an event on the store's engine, the slow disk a
busy server sees) until the other submissions have queued behind it, so the batching is certain, not timing.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from conftest import auth, make_record, obs
from service_support import db_url, fresh_postgres_database  # noqa: F401  (fixture)
from ur_service.store import Actor, Store

pytestmark = pytest.mark.slow  # a PostgreSQL server and threads
ALICE = Actor("a1b2c3d4e5f6", "alice", "reviewer")
APPROVE = make_record(observations=[obs("8867-4", 150)], treatments=[{"type": "iv_fluids"}])


def wait_until(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the submissions to queue"
        time.sleep(0.005)


class HeldCommit:
    """Holds the store's first review transaction, its rows in and not yet committed, until ``queued`` more rows
    wait; counts commits and early answers."""

    def __init__(self, store: Store, queued: int, answered: list):
        self.store, self.queued, self.answered = store, queued, answered
        self.commits = 0
        self.holding = threading.Event()
        self.answered_while_held: list = []
        commits = store.review_commits
        transaction = commits.transaction

        @contextmanager
        def held():
            with transaction() as conn:
                yield conn
                self.commits += 1  # the body is done: what follows runs just before the commit
                if self.commits == 1:
                    self.holding.set()
                    wait_until(lambda: commits.waiting >= self.queued)
                    self.answered_while_held = list(self.answered)

        commits.transaction = held


def submit_in_order(n: int, store: Store, held: HeldCommit, submit) -> tuple[list, list]:
    """Start ``n`` submitting threads one at a time, each after the last has queued; returns (answers, errors)
    with answers in the order each thread finished."""
    answered, errors = [], []

    def work(i):
        try:
            answered.append((i, submit(i)))
        except Exception as exc:  # surfaced by the caller
            errors.append((i, exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for i, t in enumerate(threads):
        t.start()
        if i == 0:  # the leader: in its transaction (held) before anyone else queues
            assert held.holding.wait(30)
        else:
            wait_until(lambda: store.review_commits.waiting >= i)
    for t in threads:
        t.join(timeout=60)
    return answered, errors


def decision_for(engine, i: int) -> dict:
    return engine.review(make_record(id=f"stay-{i:02d}", observations=[obs("8867-4", 150)],
                                     treatments=[{"type": "iv_fluids"}])).to_dict()


def test_reviews_waiting_together_share_one_commit_chained_in_the_order_they_came(db_url, engine):  # noqa: F811
    store = Store(db_url)
    decisions = [decision_for(engine, i) for i in range(8)]
    answered: list = []
    held = HeldCommit(store, queued=7, answered=answered)
    got, errors = submit_in_order(8, store, held, lambda i: store.add_review(record={}, decision=decisions[i], actor=ALICE))
    answered.extend(got)
    assert errors == []
    assert held.answered_while_held == []  # nobody was answered while the leader's commit was held
    assert held.commits == 2 and store.review_commits.batches == 2  # the leader alone, then the 7 queued behind
    other = Store(db_url, upgrade=False)  # another pool: what another process sees
    rows = [other.get_review(d["review_id"])[0] for d in decisions]
    assert [r["seq"] for r in rows] == list(range(1, 9))  # chained in the order the threads queued
    assert [r["record_id"] for r in rows] == [f"stay-{i:02d}" for i in range(8)]
    assert {i: row["seq"] for i, row in got} == {i: i + 1 for i in range(8)}
    report = other.verify()
    assert report["ok"] and report["counts"]["reviews"] == 8
    other.close()
    store.close()


def test_a_bad_row_in_a_shared_commit_fails_only_its_own_request(db_url, engine):  # noqa: F811
    store = Store(db_url)
    first = decision_for(engine, 0)
    store.add_review(record={}, decision=first, actor=ALICE)
    decisions = [decision_for(engine, i) for i in range(1, 5)]
    decisions.insert(2, first)  # the same review id again: the unique constraint refuses it
    held = HeldCommit(store, queued=4, answered=[])
    got, errors = submit_in_order(5, store, held, lambda i: store.add_review(record={}, decision=decisions[i], actor=ALICE))
    assert [i for i, _ in errors] == [2] and isinstance(errors[0][1], IntegrityError)
    assert sorted(i for i, _ in got) == [0, 1, 3, 4]
    assert store.review_commits.batches == 1 + 1 + 3  # the first, the leader, then the three good rows one by one
    report = store.verify()
    assert report["ok"] and report["counts"]["reviews"] == 5
    assert all(store.get_review(d["review_id"]) is not None for d in decisions)
    store.close()


def test_concurrent_reviews_through_the_api_are_each_stored_before_their_answer(app):
    other = Store(app.config["DATABASE_URL"], upgrade=False)  # reads as another process would
    headers = auth(app, "reviewer")
    missing_at_answer, statuses = [], []

    def client(n):
        c = app.test_client()
        for _ in range(n):
            res = c.post("/v1/reviews", json=APPROVE, headers=headers)
            statuses.append(res.status_code)
            if res.status_code == 200 and other.get_review(res.get_json()["review_id"]) is None:
                missing_at_answer.append(res.get_json()["review_id"])

    threads = [threading.Thread(target=client, args=(10,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert statuses == [200] * 60 and missing_at_answer == []
    report = other.verify()
    assert report["ok"] and report["counts"]["reviews"] == 60
    other.close()


def test_sqlite_writers_in_other_processes_queue_on_the_writer_lock_file(tmp_path, engine):
    """Another process holding ``<database>-writer`` makes writes wait, and lets them go the moment it lets go;
    the reviews that queued meanwhile all go in the one transaction that follows."""
    db = tmp_path / "audit.db"
    store = Store(f"sqlite:///{db}")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
                               "print('held', flush=True); sys.stdin.readline()", f"{db}-writer"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    decisions = [decision_for(engine, i) for i in range(5)]
    try:
        assert holder.stdout.readline().strip() == "held"
        writers = [threading.Thread(target=store.add_review, kwargs={"record": {}, "decision": d, "actor": ALICE})
                   for d in decisions]
        for w in writers:
            w.start()
        wait_until(lambda: store.review_commits.waiting == 5)
        time.sleep(0.3)
        assert store.review_commits.batches == 0 and all(w.is_alive() for w in writers)  # queued behind it
        holder.stdin.write("\n")
        holder.stdin.flush()
        for w in writers:
            w.join(timeout=30)
    finally:
        holder.kill()
        holder.wait()
    assert store.review_commits.batches == 1
    assert store.verify()["counts"]["reviews"] == 5
    store.close()


@pytest.fixture()
def postgres_url():
    yield from fresh_postgres_database()


def test_a_connection_dropped_inside_a_review_fails_that_review_alone_and_the_store_goes_on(postgres_url, engine):
    """The server ends the review's own connection before it commits: that review fails with SQLAlchemy's
    OperationalError, the dead connection leaves the pool, and the next review is stored on a fresh one."""
    store = Store(postgres_url)
    transaction = store.review_commits.transaction
    dropped = []

    @contextmanager
    def dropping():
        with transaction() as tx:
            yield tx
            if not dropped:
                dropped.append(tx.run("SELECT pg_backend_pid()").fetchone()[0])
                with store.engine.connect() as other:  # as an administrator or a failover would
                    other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped[0]})

    store.review_commits.transaction = dropping
    first, second = decision_for(engine, 0), decision_for(engine, 1)
    with pytest.raises(OperationalError) as failed:
        store.add_review(record={}, decision=first, actor=ALICE)
    assert failed.value.connection_invalidated
    stored = store.add_review(record={}, decision=second, actor=ALICE)
    assert stored["seq"] == 1 and store.get_review(first["review_id"]) is None
    report = store.verify()
    assert report["ok"] and report["counts"]["reviews"] == 1
    store.close()
