"""Replay historical stays under a baseline and a candidate rule library, and count what the edit changes.

>>> s = replay(open("stays.ndjson", "rb"), read_sources("rules"), read_sources("edited"))  # doctest: +SKIP
>>> s.changed, s.outcome_flips                                     # doctest: +SKIP
(412, {'pend→approve': 380, 'alternative_setting→approve': 32})

The core takes lines and Sources, never paths. Each stay is judged by whatever each library says for its
arrival date (rule sets are effective-dated), so no date override is needed.

A stay *changed* when anything of its decision differs; its *decision* changed when the outcome or the supported
level did. The rest changed only in the trail (which criteria were met, not met or unknown), and are counted
apart: they are what a reviewer reads, not what the stay is paid for. ``before``/``after`` total each outcome
under each library, and ``edits`` holds the diff of every criterion the edit touched.
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date

from ur_engine import record as records
from ur_engine.authoring.rulediff import Edit, edits
from ur_engine.decision import Decision
from ur_engine.engine import Engine
from ur_engine.errors import RecordError, ReplayWorkerError
from ur_engine.intake.normalise import admit
from ur_engine.rules.library import Library, Source, load

SAMPLES = 5  # record ids kept per flip or criterion: enough to open a few cases, small enough to merge
REVIEW_ID = "replay"  # a fixed review id: no ULID per decision, and the id plays no part in the comparison
ERROR = "error"  # the outcome when one library rejects a record the other accepts (facts.yaml edits)
ABSENT = "absent"  # the status of a criterion that only one version has
NONE = "none"  # the supported level when nothing is supported
TRAIL_ONLY = "trail only"  # the sample key of stays whose criteria changed but not their decision
LEVEL = "level "  # prefix of the sample key of a supported-level change
APPROVE = "approve"


@dataclass
class ReplaySummary:
    """What changes between the two libraries, counted over every record of the input."""

    baseline_digest: str
    candidate_digest: str
    total: int = 0  # non-blank input lines
    invalid: int = 0  # records both libraries reject (RecordError): counted, never dropped silently
    changed: int = 0  # records whose outcome, supported level or any criterion status differs
    outcome_flips: dict[str, int] = field(default_factory=dict)  # "approve→pend" -> records
    level_flips: dict[str, int] = field(default_factory=dict)  # supported level, "inpatient→none" -> records
    by_ruleset: dict[str, int] = field(default_factory=dict)  # rule set -> records whose criteria differ
    by_criterion: dict[str, dict[str, int]] = field(default_factory=dict)  # id -> {"met→not_met": n}
    samples: dict[str, list[str]] = field(default_factory=dict)  # flip key or criterion id -> record ids
    invalid_lines: list[int] = field(default_factory=list)  # the first SAMPLES invalid line numbers (1-based)
    seconds: float = 0.0  # wall-clock time of the whole replay, libraries and workers included
    decisions_changed: int = 0  # records whose outcome or supported level differs (or one library rejects)
    before: dict[str, int] = field(default_factory=dict)  # outcome -> records, under the baseline
    after: dict[str, int] = field(default_factory=dict)  # outcome -> records, under the candidate
    trail_by_criterion: dict[str, int] = field(default_factory=dict)  # id -> trail-only records it changed on
    edits: list[Edit] = field(default_factory=list)  # what the edit is: set once, never merged

    @property
    def per_second(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0

    @property
    def trail_only(self) -> int:
        """Records whose criteria changed while their outcome and supported level did not."""
        return self.changed - self.decisions_changed

    @property
    def judged(self) -> int:
        """Records at least one library could judge: what the approval rates are out of."""
        return self.total - self.invalid

    def approval_rate(self, side: str) -> float | None:
        """The share of judged records approved under the ``"before"`` or ``"after"`` library; None for none."""
        counts = self.before if side == "before" else self.after
        return counts.get(APPROVE, 0) / self.judged if self.judged else None

    def merge(self, other: "ReplaySummary") -> None:
        """Add a partial summary of other records of the same two libraries into this one."""
        if (other.baseline_digest, other.candidate_digest) != (self.baseline_digest, self.candidate_digest):
            raise ValueError("cannot merge replay summaries of different rule libraries")
        self.total += other.total
        self.invalid += other.invalid
        self.changed += other.changed
        self.decisions_changed += other.decisions_changed
        _add(self.before, other.before)
        _add(self.after, other.after)
        _add(self.trail_by_criterion, other.trail_by_criterion)
        _add(self.outcome_flips, other.outcome_flips)
        _add(self.level_flips, other.level_flips)
        _add(self.by_ruleset, other.by_ruleset)
        for cid, flips in other.by_criterion.items():
            _add(self.by_criterion.setdefault(cid, {}), flips)
        for key, ids in other.samples.items():
            self._sample(key, *ids)
        self.invalid_lines = sorted(self.invalid_lines + other.invalid_lines)[:SAMPLES]
        self.seconds += other.seconds

    def _sample(self, key: str, *ids: str) -> None:
        # The smallest ids, not the first seen: workers finish chunks in any order, and the summary must
        # not depend on the number of workers or the chunk size.
        self.samples[key] = sorted(set(self.samples.get(key, ())).union(ids))[:SAMPLES]

    def to_dict(self) -> dict:
        """Plain JSON-ready data, with ``per_second``, ``trail_only`` and the approval rates."""
        return {**asdict(self), "per_second": self.per_second, "trail_only": self.trail_only,
                "approval_rate": {"before": self.approval_rate("before"), "after": self.approval_rate("after")}}


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for key, n in counts.items():
        into[key] = into.get(key, 0) + n


class _Replayer:
    """Both engines of one process, and the comparison of their decisions on one line."""

    def __init__(self, baseline: Library, candidate: Library, as_of: date | None = None):
        self.engines = (Engine(baseline), Engine(candidate))
        self.as_of = as_of
        self.digests = (baseline.digest, candidate.digest)

    def summary(self) -> ReplaySummary:
        return ReplaySummary(*self.digests)

    def feed(self, s: ReplaySummary, number: int, line: str | bytes) -> None:
        if not line.strip():
            return  # as in `ur review`: blank lines are not records
        s.total += 1
        try:
            data = records.loads(line)  # read once; each library admits it by its own fact dictionary
        except RecordError:
            data = None
        old, new = (None, None) if data is None else (_review(e, data, self.as_of) for e in self.engines)
        if old is None and new is None:
            s.invalid += 1
            s.invalid_lines = sorted(s.invalid_lines + [number])[:SAMPLES]
        elif old is None or new is None:
            s.changed += 1
            s.decisions_changed += 1
            key = f"{old.outcome if old else ERROR}→{new.outcome if new else ERROR}"
            _add(s.before, {old.outcome if old else ERROR: 1})
            _add(s.after, {new.outcome if new else ERROR: 1})
            _add(s.outcome_flips, {key: 1})
            s._sample(key, next(d for d in (old, new) if d is not None).record_id)
        else:
            _add(s.before, {old.outcome: 1})
            _add(s.after, {new.outcome: 1})
            _compare(s, old, new)

    def close(self) -> None:
        for e in self.engines:
            e.close()


def _review(engine: Engine, data: object, as_of: date | None) -> Decision | None:
    try:
        return engine.review(admit(data, engine.library.facts), review_id=REVIEW_ID, as_of=as_of)
    except RecordError:  # nothing to judge in this record under this library
        return None


def _compare(s: ReplaySummary, old: Decision, new: Decision) -> None:
    rid = old.record_id
    before = {c.id: (c.ruleset, c.status) for c in old.criteria}
    after = {c.id: (c.ruleset, c.status) for c in new.criteria}
    rulesets: set[str] = set()
    moved: list[str] = []
    for cid in before.keys() | after.keys():
        rs_a, a = before.get(cid, (None, ABSENT))
        rs_b, b = after.get(cid, (None, ABSENT))
        if a != b:
            _add(s.by_criterion.setdefault(cid, {}), {f"{a}→{b}": 1})
            s._sample(cid, rid)
            rulesets.update(r for r in (rs_a, rs_b) if r)
            moved.append(cid)
    _add(s.by_ruleset, dict.fromkeys(rulesets, 1))
    if old.outcome != new.outcome:
        key = f"{old.outcome}→{new.outcome}"
        _add(s.outcome_flips, {key: 1})
        s._sample(key, rid)
    if old.supported != new.supported:
        key = f"{old.supported or NONE}→{new.supported or NONE}"
        _add(s.level_flips, {key: 1})
        s._sample(LEVEL + key, rid)
    if old.outcome != new.outcome or old.supported != new.supported:
        s.changed += 1
        s.decisions_changed += 1
    elif rulesets:
        s.changed += 1
        s._sample(TRAIL_ONLY, rid)
        _add(s.trail_by_criterion, dict.fromkeys(moved, 1))


def replay(lines: Iterable[str | bytes], baseline: list[Source], candidate: list[Source], workers: int = 1,
           chunk: int = 2000, as_of: date | None = None,
           progress: Callable[[int], object] | None = None) -> ReplaySummary:
    """Judge every line (an NDJSON admission record) under both libraries and count the differences.

    ``lines`` is read once, as a stream. Stays are judged by the rules in effect on their arrival date, or on
    ``as_of`` when given. ``progress(n)`` is called as each ``n`` more lines are done (for a progress bar).
    Raises RuleErrors when either library does not load.
    """
    if workers < 1 or chunk < 1:
        raise ValueError("workers and chunk must be at least 1")
    start = time.perf_counter()
    # Loaded here even when workers do the work: a broken library is reported once, before any process starts.
    libraries = load(baseline), load(candidate)
    if workers == 1:
        rp = _Replayer(*libraries, as_of)
        try:
            summary = rp.summary()
            done = number = 0
            for number, line in enumerate(lines, start=1):
                rp.feed(summary, number, line)
                if progress is not None and number - done >= 50:  # a bar, not a call per stay
                    progress(number - done)
                    done = number
            if progress is not None and number > done:
                progress(number - done)
        finally:
            rp.close()
    else:
        summary = ReplaySummary(libraries[0].digest, libraries[1].digest)
        _parallel(lines, baseline, candidate, workers, chunk, summary, as_of, progress)
    summary.edits = edits(baseline, candidate)
    summary.seconds = time.perf_counter() - start
    return summary


def _chunks(lines: Iterable[str | bytes], size: int) -> Iterator[tuple[int, list]]:
    it = iter(lines)
    first = 1
    while batch := list(itertools.islice(it, size)):
        yield first, batch
        first += len(batch)


def _parallel(lines, baseline, candidate, workers: int, chunk: int, summary: ReplaySummary, as_of,
              progress=None) -> None:
    # spawn, not fork: each worker starts with its own, empty durable-rules state (it is process-global and
    # guarded by a lock a forked child could inherit held), and it behaves the same on every platform.
    ctx = multiprocessing.get_context("spawn")
    # Pool's task thread pulls chunks as fast as it can; the window keeps at most two per worker in flight,
    # so memory stays bounded however long the input is.
    window, stop = threading.Semaphore(2 * workers), threading.Event()

    sizes: dict[int, int] = {}  # first line of a chunk in flight -> its number of lines

    def tasks():
        for task in _chunks(lines, chunk):
            sizes[task[0]] = len(task[1])
            window.acquire()
            if stop.is_set():
                return
            yield task

    pool = ctx.Pool(workers, _init_worker, (baseline, candidate, as_of))
    try:
        for first, part in pool.imap_unordered(_work, tasks()):
            summary.merge(part)
            window.release()
            if progress is not None:
                progress(sizes.pop(first))
        pool.close()
    except BaseException:
        stop.set()
        window.release()  # terminate() joins the task thread: it must not stay blocked on the window
        pool.terminate()
        raise
    finally:
        pool.join()


_WORKER: dict = {}  # this worker process's _Replayer, built once by the pool initializer


def _init_worker(baseline: list[Source], candidate: list[Source], as_of: date | None) -> None:
    try:
        _WORKER["replayer"] = _Replayer(load(baseline), load(candidate), as_of)
    except Exception as exc:  # a failing initializer makes Pool respawn workers forever: fail the tasks instead
        _WORKER["error"] = f"{type(exc).__name__}: {exc}"


def _work(task: tuple[int, list]) -> tuple[int, ReplaySummary]:
    if "error" in _WORKER:
        raise ReplayWorkerError(f"replay worker could not start: {_WORKER['error']}")
    rp: _Replayer = _WORKER["replayer"]
    started = time.perf_counter()
    summary = rp.summary()
    first, batch = task
    try:
        for number, line in enumerate(batch, start=first):
            rp.feed(summary, number, line)
    except Exception as exc:
        # Pool re-raises a worker's exception in the parent by pickling it; one whose __init__ does not take
        # its message (RecordErrors, RuleErrors) fails to unpickle there and hangs the pool: send a plain one.
        raise ReplayWorkerError(f"replay failed near line {number}: {type(exc).__name__}: {exc}") \
            from None
    summary.seconds = time.perf_counter() - started
    return first, summary
