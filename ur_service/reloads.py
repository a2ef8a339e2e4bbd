"""Rule reloads across processes: one worker accepts a library, every worker serves exactly that library.

An accepted library is logged in the store's ``rule_reloads`` chain with its files kept under its digest
(``rule_snapshots``), in the same transaction, before the accepting worker swaps to it. Every other process
(another gunicorn worker, another host) looks at the log at most every ``RELOAD_POLL_SECONDS`` and loads the
newest accepted library *from that snapshot*, checking that it hashes to the logged digest and passes its tests
— never from the rule folder, which may have changed again since. A process that cannot follow keeps serving
the library it has, retries with a growing delay, and says so in ``/metrics``
(``ur_rules_follow_behind``, ``ur_rules_follow_failures_total``). The library a process loads at startup is
logged too (kind ``startup``), so every digest a decision names is in the log with its files.

Refused reloads are logged as well, so ``/healthz`` on any worker tells that the last attempt failed and
when; the reasons (rule file and line) are for ``rules_admin`` only (``GET /v1/admin/reloads``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from . import logs, metrics
from .inputs import clip_errors
from .rules import ReloadResult, RuleService
from .store import Actor, Store

log = logs.get("rules")
STARTUP = Actor("-", "startup")
MAX_RETRY_SECONDS = 60.0


class Reloads:
    """One process's side of the reload log: accept from the folder, follow what others accepted."""

    def __init__(self, service: RuleService, store: Store, read_folder: Callable, poll_seconds: float):
        self.service, self.store, self.read_folder = service, store, read_folder
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._next_check = 0.0
        self._failures = 0
        self._pid: int | None = None  # the process whose gauges are set
        self.seq = 0  # the newest accepted log entry this process serves (or knows it need not load)

    def startup(self, sources) -> None:
        """Log the library this process starts with, unless the newest accepted entry is that library."""
        latest = self.store.latest_reload()
        digest = self.service.library.digest
        if latest is None or latest["digest"] != digest:
            latest = self.store.add_reload(ok=True, digest=digest, actor=STARTUP, files=sources, kind="startup")
            log.info("rules logged at startup", extra={"fields": {"digest": digest, "seq": latest["seq"],
                                                                  "hash": latest["hash"]}})
        self.seq = latest["seq"]

    def reload_from_folder(self, actor: Actor) -> tuple[ReloadResult, dict]:
        """Check the rule folder's library; if it passes, log it with its files, then serve it."""
        logged: dict = {}

        def accept(sources, digest):
            logged.update(self.store.add_reload(ok=True, digest=digest, actor=actor, files=sources))

        with self._lock:
            before = self.service.library.digest
            result = self.service.reload(self.read_folder, accept=accept)
            if result.ok:
                self.seq = logged["seq"]
                self._serving(before, result.digest)
            else:
                logged = self.store.add_reload(ok=False, digest=result.digest, actor=actor,
                                               errors=clip_errors(result.errors))
        log.info("rules reload", extra={"fields": {"ok": result.ok, "digest": result.digest, "key": actor.key_id,
                                                   "seq": logged["seq"], "hash": logged["hash"]}})
        return result, logged

    def announce(self) -> None:
        """Set this process's gauges (per pid under gunicorn): called in each worker after the fork, since the
        master that loaded the library serves nothing and a forked worker starts with no gauge values."""
        self._pid = os.getpid()
        self._serving(None, self.service.library.digest)
        self._behind(self.behind)

    def follow(self) -> None:
        """Load the newest accepted library if another process logged one since we last looked (cheap if not)."""
        if self._pid != os.getpid():
            self.announce()
        if time.monotonic() < self._next_check:
            return
        with self._lock:  # one thread loads; the others wait for it, then serve the library it loaded
            now = time.monotonic()
            if now < self._next_check:
                return
            self._next_check = now + self.poll_seconds
            try:
                latest = self.store.latest_reload()
            except SQLAlchemyError as exc:  # the store is unreachable: serve on, look again at the next poll
                log.warning("reload log unreadable", extra={"fields": {"error": type(exc).__name__}})
                return
            if latest is None or latest["seq"] <= self.seq:
                return
            before = self.service.library.digest
            if latest["digest"] == before:
                self.seq = latest["seq"]
                self._behind(False)
                return
            files = self.store.snapshot(latest["digest"])
            if files is None:
                result = ReloadResult(False, None, [f"no files were kept for {latest['digest']}"])
            else:
                result = self.service.reload(lambda: files, expect_digest=latest["digest"])
            fields = {"ok": result.ok, "digest": latest["digest"], "seq": latest["seq"]}
            if result.ok:
                self.seq, self._failures = latest["seq"], 0
                self._serving(before, result.digest)
                self._behind(False)
                log.info("rules reload followed", extra={"fields": fields})
                return
            self._failures += 1
            self._next_check = now + min(MAX_RETRY_SECONDS, self.poll_seconds * 2 ** self._failures)
            metrics.RULES_FOLLOW_FAILURES.inc()
            self._behind(True)
            log.error("rules reload not followed; serving the last library and retrying", extra={"fields": {
                **fields, "serving": before, "failures": self._failures, "errors": result.errors[:5]}})

    @property
    def behind(self) -> bool:
        return self._failures > 0

    def _serving(self, old: str | None, new: str) -> None:
        if old and old != new:
            metrics.RULES_SERVING.labels(old).set(0)
        metrics.RULES_SERVING.labels(new).set(1)

    @staticmethod
    def _behind(flag: bool) -> None:
        metrics.RULES_BEHIND.set(1 if flag else 0)

    def public_state(self) -> dict | None:
        """The last attempt, for ``/healthz``: whether it was accepted and when; never its reasons."""
        last = self.store.latest_reload(accepted=False)
        if last is None or last["kind"] == "startup":
            return None
        return {"ok": bool(last["ok"]), "at": last["at"]}


def entry(row: dict) -> dict:
    """A reload log row as ``GET /v1/admin/reloads`` shows it."""
    return {"seq": row["seq"], "at": row["at"], "kind": row["kind"], "ok": bool(row["ok"]),
            "digest": row["digest"] or None, "errors": json.loads(row["errors"]),
            "by": {"key": row["actor_key"], "name": row["actor_name"]}, "hash": row["hash"]}
