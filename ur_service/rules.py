"""A rule library that can be replaced while it serves: check the candidate, run its tests, swap atomically.

A broken candidate never serves: the last good library stays, and the failure is kept for ``/healthz``.
An engine that was swapped out is closed only when the last review using it has finished.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ur_engine.authoring.testing import run_tests
from ur_engine.engine import Engine
from ur_engine.errors import RuleError, UrError
from ur_engine.rules.library import Source, load

from .locks import FifoLock


@dataclass
class ReloadResult:
    ok: bool
    digest: str | None
    errors: list[str] = field(default_factory=list)
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))


class RuleService:
    """Holds the serving engine; ``engine()`` lends it for one review, ``reload()`` replaces it."""

    def __init__(self, sources: list[Source], evaluator: str = "durable"):
        self._evaluator = evaluator
        self._lock = threading.Lock()
        self._swap = threading.Lock()  # one reload at a time
        self._users: dict[int, int] = {}
        self.turn = FifoLock()  # one review in the engine at a time, first come first served
        self._retired: dict[int, Engine] = {}
        self._current = Engine(load(sources), evaluator)
        self.last_reload: ReloadResult | None = None

    @property
    def library(self):
        return self._current.library

    @contextmanager
    def engine(self) -> Iterator[Engine]:
        with self._lock:
            engine = self._current
            self._users[id(engine)] = self._users.get(id(engine), 0) + 1
        try:
            yield engine
        finally:
            with self._lock:
                left = self._users[id(engine)] = self._users[id(engine)] - 1
                done = None
                if left == 0:
                    del self._users[id(engine)]
                    done = self._retired.pop(id(engine), None)
            if done is not None:
                done.close()

    def reload(self, read_sources: Callable[[], list[Source]],
               accept: Callable[[list[Source], str], object] | None = None,
               expect_digest: str | None = None) -> ReloadResult:
        """Load, check and test a candidate library; serve it only if all of that passes.

        ``accept(sources, digest)`` runs after the checks and before the swap (the store logs the library
        there, so nothing serves that was not logged); if it raises, the candidate is dropped. With
        ``expect_digest`` a candidate whose digest differs is refused.
        """
        with self._swap:
            result = self._try(read_sources, accept, expect_digest)
            self.last_reload = result
            return result

    def _try(self, read_sources, accept, expect_digest) -> ReloadResult:
        try:
            sources = read_sources()
            candidate = Engine(load(sources), self._evaluator)
        except RuleError as exc:
            return ReloadResult(False, None, [str(e) for e in getattr(exc, "errors", [exc])])
        except (UrError, OSError) as exc:
            return ReloadResult(False, None, [str(exc)])
        digest = candidate.library.digest
        if expect_digest is not None and digest != expect_digest:
            candidate.close()
            return ReloadResult(False, digest, [f"the files loaded hash to {digest}, not {expect_digest}"])
        failed = [o for o in run_tests(candidate, candidate.library) if not o.passed]
        if failed:
            candidate.close()
            return ReloadResult(False, digest,
                                [f"{o.test.file}:{o.test.line} test '{o.test.name}': {'; '.join(o.problems)}"
                                 for o in failed])
        if accept is not None:
            try:
                accept(sources, digest)
            except BaseException:
                candidate.close()
                raise
        with self._lock:
            old, self._current = self._current, candidate
            if self._users.get(id(old), 0):
                self._retired[id(old)] = old
                old = None
        if old is not None:
            old.close()
        return ReloadResult(True, candidate.library.digest)

    def close(self) -> None:
        with self._lock:
            engines = [self._current, *self._retired.values()]
            self._retired.clear()
        for e in engines:
            e.close()
