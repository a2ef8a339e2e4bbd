"""The store's side of the triage worklist, on SQLite and on a real PostgreSQL: what waits for a person, with
its decision, and how often each stay was submitted."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from conftest import make_record, obs
from service_support import db_url  # noqa: F401  (the fixture: SQLite, then PostgreSQL)
from ur_engine.intake.normalise import review
from ur_service.store import Actor, Store

NURSE = Actor(key_id="k1", name="nurse", role="reviewer")
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def test_open_reviews_wait_pended_first_by_due_time_with_their_decisions(db_url, engine):  # noqa: F811
    store = Store(db_url)
    try:
        def add(record, urgency="standard", minutes=0):
            decision = review(engine, record).to_dict()
            store.add_review(record=record, decision=decision, actor=NURSE, urgency=urgency,
                             received=T0 + timedelta(minutes=minutes))
            return decision

        lower = add(make_record(id="stay-lower", observations=[obs("8867-4", 150)]))
        pend = add(make_record(id="stay-pend", observations=[obs("8867-4", 88)], complete=None), minutes=1)
        urgent = add(make_record(id="stay-urgent", observations=[obs("8867-4", 88)], complete=None), "expedited", 2)
        add(make_record(id="stay-pend", observations=[obs("8867-4", 88)], complete=None), minutes=3)
        add(make_record(id="stay-ok", observations=[obs("2951-2", 118)], treatments=[{"type": "iv_fluids"}]))
        assert (lower["outcome"], pend["outcome"], urgent["outcome"]) == ("alternative_setting", "pend", "pend")

        rows = store.open_reviews()
        assert [r["record_id"] for r in rows] == ["stay-urgent", "stay-pend", "stay-pend", "stay-lower"]
        assert '"missing_info"' in rows[0]["decision"]  # the triage columns come from the decision
        assert [r["record_id"] for r in store.open_reviews(outcomes=("alternative_setting",))] == ["stay-lower"]
        assert [r["record_id"] for r in store.open_reviews(urgency="expedited")] == ["stay-urgent"]
        assert store.open_reviews(requested="observation") == []
        assert store.record_counts(["stay-pend", "stay-lower", "stay-none"]) == {"stay-pend": 2, "stay-lower": 1}
        assert store.record_counts([]) == {}
    finally:
        store.close()
