"""What the JSON API and the web pages share: submit a review, and turn stored rows into API objects."""

from __future__ import annotations

import time
from datetime import date, datetime, timezone

import orjson

from ur_engine.intake.normalise import admit, review
from ur_engine.output.questionnaire import has_sources, name_sources
from ur_engine.stay_days import review_by_day

from . import inputs, logs, metrics
from .store import Actor, Store, utc_text

log = logs.get("audit")
AGREES = {("met", "approve"), ("waived", "approve"), ("not_met", "deny")}


def submit(app, body: bytes | str | dict, actor: Actor, urgency: str = "standard",
           as_of: date | None = None, pas_request: dict | None = None, by_day: bool = False,
           follows: dict | None = None) -> dict:
    """Judge one record on the serving rules and store the review; committed when this returns.

    Raises ``RecordError`` (with JSON paths) for a record with nothing to judge; nothing is stored then. The
    service's own checks (strict JSON, plausible encounter dates) come first; then the intake sets aside any
    other value it cannot read, with a notice in the decision, so one bad value never loses the stay.
    ``pas_request``: the Da Vinci PAS request the record was read from, stored with the review.
    ``follows`` links a re-review to the review it follows (``review_id``, and the ``source`` of what was added).
    """
    started = time.perf_counter()
    data = body if isinstance(body, dict) else inputs.loads(body)
    if isinstance(data, dict):  # the stay's own times; an observation's bad time is the intake's to set aside
        inputs.check_record_times({"encounter": data.get("encounter")})
    service = app.extensions["ur_engine"]
    with service.engine() as engine, service.turn:
        if by_day:
            decision = review_by_day(engine, admit(data, engine.library.facts), as_of=as_of).to_dict()
        else:
            decision = review(engine, data, as_of=as_of).to_dict()
        facts = engine.library.facts
    if isinstance(data, dict) and has_sources(data):  # values from answers, not the chart: say so in the trail
        name_sources(decision, data, facts)
    if follows:
        decision["follows"] = follows
    row = app.extensions["ur_store"].add_review(record=data, decision=decision, actor=actor, urgency=urgency,
                                                pas_request=pas_request)
    metrics.reviewed(decision["outcome"], time.perf_counter() - started)
    # Ids, outcome and chain position only: the hash logged here also anchors the chain outside the database.
    log.info("review stored", extra={"fields": {
        "review_id": row["review_id"], "outcome": row["outcome"], "urgency": urgency, "key": actor.key_id,
        "rules": row["rule_digest"], "seq": row["seq"], "hash": row["hash"]}})
    return decision


def decide(store: Store, review_id: str, body: dict, actor: Actor) -> dict:
    """Store a physician's determination (raises NotFound / Conflict); returns its API object."""
    det = store.add_determination(review_id, decision=body["decision"], reason_code=body.get("reason_code"),
                                  text=body.get("text"), actor=actor)
    metrics.DETERMINATIONS.labels(body["decision"]).inc()
    log.info("determination stored", extra={"fields": {
        "review_id": review_id, "decision": body["decision"], "reason_code": body.get("reason_code"),
        "key": actor.key_id, "seq": det["seq"], "hash": det["hash"]}})
    review, _ = store.get_review(review_id)
    return determination(det, review)


def _actor(row: dict) -> dict:
    return {"key": row["actor_key"], "name": row["actor_name"]}


def summary(row: dict) -> dict:
    return {"review_id": row["review_id"], "record_id": row["record_id"], "received_at": row["received_at"],
            "submitted_by": _actor(row), "review_type": row["review_type"], "outcome": row["outcome"],
            "requested": row["requested"], "urgency": row["urgency"], "due_at": row["due_at"],
            "rules": {"version": row["rule_version"], "digest": row["rule_digest"]}}


def list_item(row: dict) -> dict:
    return {**summary(row), "physician_decision": row.get("determination")}


def determination(det: dict, review: dict) -> dict:
    due = review["due_at"]
    return {"determination_id": det["determination_id"], "review_id": det["review_id"],
            "decision": det["decision"], "reason_code": det["reason_code"], "text": det["text"],
            "physician": _actor(det), "decided_at": det["decided_at"],
            "on_time": (det["decided_at"] <= due) if due else None,
            "audit": {"seq": det["seq"], "hash": det["hash"], "prev_hash": det["prev_hash"]}}


def stored(review: dict, det: dict | None) -> dict:
    return {**summary(review), "record": orjson.loads(review["record"]), "decision": orjson.loads(review["decision"]),
            "audit": {"seq": review["seq"], "hash": review["hash"], "prev_hash": review["prev_hash"]},
            "determination": determination(det, review) if det else None}


def worklist_item(row: dict, now: datetime) -> dict:
    due = datetime.fromisoformat(row["due_at"].replace("Z", "+00:00"))
    left = int((due - now).total_seconds())
    return {**summary(row), "overdue": left < 0, "seconds_left": left}


def worklist(store: Store, urgency: str | None = None, limit: int = 100, now: datetime | None = None) -> dict:
    now = now or datetime.now(timezone.utc)
    rows, open_, overdue = store.worklist(urgency=urgency, limit=limit, now=now)
    return {"now": utc_text(now), "open": open_, "overdue": overdue, "items": [worklist_item(r, now) for r in rows]}


def stats(store: Store) -> dict:
    """Agreement compares the criteria's finding on the requested level with the physician's decision."""
    raw = store.stats()
    dets = raw["determinations"]
    by_engine: dict[str, dict[str, int]] = {}
    by_finding: dict[str, dict[str, int]] = {}
    for d in dets:
        for table, key in ((by_engine, d["outcome"]), (by_finding, d["finding"])):
            cell = table.setdefault(key, {"approve": 0, "deny": 0})
            cell[d["decision"]] += d["count"]
    compared = sum(d["count"] for d in dets if d["finding"] in ("met", "waived", "not_met"))
    agreed = sum(d["count"] for d in dets if (d["finding"], d["decision"]) in AGREES)
    total = sum(d["count"] for d in dets)
    return {
        "reviews": {"total": sum(raw["by_outcome"].values()), "by_outcome": raw["by_outcome"]},
        "worklist": {"open": raw["open"], "overdue": raw["overdue"]},
        "determinations": {"total": total, "approve": sum(d["count"] for d in dets if d["decision"] == "approve"),
                           "deny": sum(d["count"] for d in dets if d["decision"] == "deny"),
                           "on_time": sum(d["on_time"] for d in dets), "by_engine_outcome": by_engine},
        "agreement": {"compared": compared, "agreed": agreed, "rate": round(agreed / compared, 4) if compared else None,
                      "undetermined": total - compared, "by_finding": by_finding},
    }
