"""Batch review of historical stays: one output line per input record, in input order, resumable.

Worker processes each build the engine once, read their own blocks of NDJSON input (other inputs are sent to
them item by item) and review them into spool files beside the output; the parent appends those files to the
output in input order, chunk by chunk. A run killed at any point (even ``kill -9``) and started again with
``resume=True`` drops a torn last line, skips the records already written and appends the rest: every record
appears exactly once. ``OUT.state.json`` ties the output to its inputs and rule digest.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import shutil
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

import orjson

from ur_engine import record as records
from ur_engine.batch.escalations import DayChanges
from ur_engine.decision import Trail
from ur_engine.engine import Engine
from ur_engine.errors import (
    OutputExistsError,
    RecordError,
    ResumeMismatchError,
    UnreadableRecordError,
    UrError,
)
from ur_engine.intake.normalise import admit
from ur_engine.intake.readers import Item, ndjson_segments, read_items, read_segment
from ur_engine.rules.library import Library, Source, load
from ur_engine.stay_days import review_by_day

STATE_VERSION = 3
# Duplicated record ids the summary names, in input order; all of them are counted. A file sent twice has as
# many duplicates as records: naming them all would grow the parent with the input.
DUPLICATES_NAMED = 20
# Records reviewed between two writes, in this process or in a worker (whose task, a chunk or a block of lines, is
# larger, to send fewer tasks). The lines of the records reviewed are held until written: 50 against 500 lowered
# the peak RSS of one process over 100,000 stays from 131 to 121 MiB at the same speed.
WRITE_EVERY = 50
RESUMED_IDS = 10_000  # ids of the lines a resumed run finds, handed to the duplicate check this many at a time
_NUMBERS = re.compile(r"\d+(\.\d+)?")
T = TypeVar("T")


@dataclass(frozen=True)
class ReviewOptions:
    """How each record is judged and written: the evaluator, strict intake (reject any invalid field), the day
    whose rules apply (None: each stay's arrival), and the trail's form (compact: ids by status and each fact
    once, rebuilt in full by ``ur expand``)."""

    evaluator: str = "durable"
    strict: bool = False
    as_of: date | None = None
    trail: Trail = "compact"
    by_day: bool = False  # also judge each day of care (stay_days)

    def state(self) -> dict:
        return {"evaluator": self.evaluator, "strict": self.strict,
                "as_of": self.as_of.isoformat() if self.as_of else None, "trail": self.trail, "by_day": self.by_day}


@dataclass
class BatchSummary:
    """Counts over every output line: outcomes, levels, criteria not met, pend reasons, length of stay, and what
    the intake set aside, mapped or could not read."""

    total: int = 0
    errors: int = 0
    outcomes: Counter = field(default_factory=Counter)
    requested_vs_supported: Counter = field(default_factory=Counter)  # "inpatient→observation"
    by_ruleset: dict = field(default_factory=dict)  # ruleset -> Counter of outcomes
    not_met: Counter = field(default_factory=Counter)  # criterion id -> records where it was not met
    pend_reasons: Counter = field(default_factory=Counter)
    midnights: Counter = field(default_factory=Counter)  # "expected 2, actual 1"
    set_aside: Counter = field(default_factory=Counter)  # reason (numbers as #) -> values set aside
    mapped: Counter = field(default_factory=Counter)  # code system -> codes read through a map
    unread: Counter = field(default_factory=Counter)  # code system -> codes kept but read by no rule
    with_notices: int = 0  # decisions with at least one data notice
    skipped: Counter = field(default_factory=Counter)  # visits that are not hospital stays, never reviewed
    duplicates: list = field(default_factory=list)  # the first DUPLICATES_NAMED: [record id, first position, times]
    duplicate_count: int = 0  # record ids seen more than once, all of them
    days: DayChanges = field(default_factory=DayChanges)  # escalations, when the stays were judged day by day
    seconds: float = 0.0
    # (record id, position) of this part's lines, for the parent's duplicate check; never written out
    ids: list = field(default_factory=list, repr=False)

    def add(self, d: dict) -> None:
        """Count one output line (a decision or an error line)."""
        self.total += 1
        if isinstance(d.get("record_id"), str):
            self.ids.append((d["record_id"], str(d.get("position"))))
        if d.get("outcome") == "error":
            self.errors += 1
            self.outcomes["error"] += 1
            return
        outcome = d["outcome"]
        self.outcomes[outcome] += 1
        self.requested_vs_supported[f"{d['requested']}→{d['supported'] or 'none'}"] += 1
        for rs in d["rules"]["rulesets"]:
            counts = self.by_ruleset.get(rs)
            if counts is None:
                counts = self.by_ruleset[rs] = Counter()
            counts[outcome] += 1
        if "trail" in d:
            self.not_met.update(d["trail"].get("not_met", ()))
        else:
            self.not_met.update([c["id"] for c in d["criteria"] if c["status"] == "not_met"])
        if outcome == "pend":
            for r in d["reasons"]:
                # Reasons that list a record's missing facts are grouped by their stem.
                self.pend_reasons[_reason_stem(r)] += 1
        if d.get("by_day") is not None:
            self.days.add(d.get("record_id"), d["by_day"])
        stay = d.get("stay")
        if stay:
            self.midnights[f"expected {stay.get('expected')}, actual {stay.get('actual')}"] += 1
        notices = d.get("data_notices")
        if notices:
            self.with_notices += 1
            for n in notices:
                kind, count = n["kind"], n.get("count", 1)
                if kind in ("set_aside", "disputed"):  # values the rules did not use
                    self.set_aside[_NUMBERS.sub("#", n["why"])] += count
                else:
                    (self.mapped if kind == "mapped" else self.unread)[n.get("system", "other")] += count

    def merge(self, other: "BatchSummary") -> None:
        self.total += other.total
        self.errors += other.errors
        self.with_notices += other.with_notices
        for name in ("outcomes", "requested_vs_supported", "not_met", "pend_reasons", "midnights", "set_aside",
                     "mapped", "unread"):
            getattr(self, name).update(getattr(other, name))
        for rs, counts in other.by_ruleset.items():
            self.by_ruleset.setdefault(rs, Counter()).update(counts)
        self.days.merge(other.days)

    def to_dict(self) -> dict:
        d = {
            "total": self.total, "errors": self.errors,
            "stays_reviewed": self.total - self.errors, "visits_skipped": dict(self.skipped.most_common()),
            "outcomes": dict(self.outcomes),
            "requested_vs_supported": dict(self.requested_vs_supported.most_common()),
            "by_ruleset": {k: dict(v) for k, v in sorted(self.by_ruleset.items())},
            "criteria_not_met": dict(self.not_met.most_common(50)),
            "pend_reasons": dict(self.pend_reasons.most_common(50)),
            "length_of_stay": dict(self.midnights.most_common(50)),
            "intake": {"decisions_with_notices": self.with_notices,
                       "values_set_aside": dict(self.set_aside.most_common()),
                       "codes_mapped": dict(self.mapped.most_common()),
                       "codes_unread": dict(self.unread.most_common())},
            "duplicate_record_ids": {"count": self.duplicate_count, "first": self.duplicates[:DUPLICATES_NAMED]},
            "seconds": round(self.seconds, 3),
            "per_second": round(self.total / self.seconds, 1) if self.seconds else None,
        }
        if self.days.stays:  # only a day-by-day run has any: other summaries keep their shape
            d["by_day"] = self.days.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BatchSummary":
        s = cls(total=d["total"], errors=d["errors"], outcomes=Counter(d["outcomes"]),
                requested_vs_supported=Counter(d["requested_vs_supported"]),
                by_ruleset={k: Counter(v) for k, v in d["by_ruleset"].items()},
                not_met=Counter(d["criteria_not_met"]), pend_reasons=Counter(d["pend_reasons"]),
                midnights=Counter(d["length_of_stay"]), seconds=d.get("seconds") or 0.0)
        intake = d.get("intake", {})
        s.with_notices = intake.get("decisions_with_notices", 0)
        s.set_aside, s.mapped = Counter(intake.get("values_set_aside", {})), Counter(intake.get("codes_mapped", {}))
        s.unread = Counter(intake.get("codes_unread", {}))
        if "by_day" in d:
            s.days = DayChanges.from_dict(d["by_day"])
        return s


def _reason_stem(reason: str) -> str:
    for marker in ("Not enough information to judge", "could not be judged"):
        if marker in reason:
            return reason.split(":")[0]
    return reason



def _fingerprint(paths: list[str], digest: str, options: ReviewOptions) -> dict:
    files = []
    for p in paths:
        st = os.stat(p)
        files.append({"path": os.path.abspath(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return {"version": STATE_VERSION, "inputs": files, "rules_digest": digest, "options": options.state()}


class _Duplicates:
    """Record ids seen in this run, on disk (a million ids must not grow the parent's memory): which came twice.

    Ids come in input order; each keeps the ordinal of its first line, since positions ("f.ndjson:10") do not
    sort as text in input order."""

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self.path, self.db = path, sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("CREATE TABLE ids (id TEXT PRIMARY KEY, n INTEGER, first TEXT, seen INTEGER) WITHOUT ROWID")
        self.added = 0

    def add(self, ids: list[tuple[str, str]]) -> None:
        start, self.added = self.added, self.added + len(ids)
        self.db.executemany("INSERT INTO ids VALUES (?, ?, ?, 1) ON CONFLICT(id) DO UPDATE SET seen = seen + 1",
                            [(rid, start + n, first) for n, (rid, first) in enumerate(ids)])

    def found(self, named: int) -> tuple[int, list[list]]:
        """How many ids came more than once, and the first ``named`` of them: [id, first position, times]."""
        (count,) = self.db.execute("SELECT count(*) FROM ids WHERE seen > 1").fetchone()
        rows = self.db.execute("SELECT id, first, seen FROM ids WHERE seen > 1 ORDER BY n LIMIT ?",
                               (named,)).fetchall()
        self.db.close()
        self.path.unlink(missing_ok=True)
        return count, [list(r) for r in rows]


def _done_lines(out: Path) -> int:
    """Complete lines already in ``out``; a torn last line (a kill mid-write) is cut off."""
    if not out.exists():
        return 0
    count, good_end = 0, 0
    with out.open("rb") as f:
        pos = 0
        for line in f:
            pos += len(line)
            if line.endswith(b"\n"):
                count += 1
                good_end = pos
    if good_end != out.stat().st_size:
        with out.open("r+b") as f:
            f.truncate(good_end)
    return count


def run_batch(paths: list[str], out: str, sources: list[Source], workers: int | None = None,
              resume: bool = False, chunk: int = 500, progress: Callable[[int], None] | None = None,
              evaluator: str = "durable", strict: bool = False, as_of: date | None = None,
              trail: Trail = "compact", by_day: bool = False) -> BatchSummary:
    """Review every record of ``paths`` into ``out`` (NDJSON) and write ``out.summary.json``.

    ``as_of`` judges every stay by the rules in effect that day (history replayed under today's rules, or the
    rules of a past day); ``strict`` rejects a record with any invalid field instead of setting the field aside;
    ``trail="full"`` writes every criterion's text, source and evidence on each line.
    """
    out_path = Path(out)
    workers = workers or os.cpu_count() or 1
    options = ReviewOptions(evaluator, strict, as_of, trail, by_day)
    with _Workers(workers, options) as pool:
        library = load(sources)  # refuse broken rules before any record is read
        pool.start(library)
        return _run(paths, out_path, library, pool, resume, chunk, progress, options)


def _run(paths: list[str], out_path: Path, library: Library, pool: "_Workers", resume: bool, chunk: int,
         progress: Callable[[int], None] | None, options: ReviewOptions) -> BatchSummary:
    state_path = out_path.with_name(out_path.name + ".state.json")
    summary_path = out_path.with_name(out_path.name + ".summary.json")
    state = _fingerprint(paths, library.digest, options)
    summary = BatchSummary()
    seen = _Duplicates(out_path.with_name(f".{out_path.name}.ids"))
    skip = 0
    if resume and state_path.exists():
        previous = json.loads(state_path.read_text())
        if previous != state:
            raise ResumeMismatchError("inputs or rules changed since the run being resumed; "
                                      "start afresh without --resume", file=str(state_path))
        skip = _done_lines(out_path)
        with out_path.open("rb") as f:
            for line in f:
                summary.add(orjson.loads(line))
                if len(summary.ids) >= RESUMED_IDS:  # a million lines' ids must not be held at once
                    seen.add(summary.ids)
                    summary.ids.clear()
        seen.add(summary.ids)
        summary.ids.clear()
    elif out_path.exists() and out_path.stat().st_size and not resume:
        raise OutputExistsError(f"{out_path} exists: pass --resume to continue it, or remove it",
                                file=str(out_path))
    else:
        out_path.write_bytes(b"")
    state_path.write_text(json.dumps(state, indent=1))
    start = time.perf_counter()
    # Workers spool their chunks to files beside the output; the parent only appends each file in order.
    spool = out_path.with_name(f".{out_path.name}.spool")
    shutil.rmtree(spool, ignore_errors=True)  # chunks of a killed run: their records are reviewed again
    # Not O_APPEND: the kernel copies spooled chunks into a file opened for append only through user space.
    with out_path.open("r+b") as f:
        f.seek(0, os.SEEK_END)
        for lines, part in _review_chunks(paths, skip, library, pool, chunk, options, spool, summary.skipped):
            if isinstance(lines, bytes):
                f.write(lines)
            else:
                _append(lines, f)
            f.flush()
            seen.add(part.ids)
            part.ids.clear()
            summary.merge(part)
            if progress:
                progress(part.total)
    shutil.rmtree(spool, ignore_errors=True)
    summary.duplicate_count, summary.duplicates = seen.found(DUPLICATES_NAMED)
    summary.seconds = time.perf_counter() - start
    summary_path.write_text(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return summary


def _skip(items: Iterator[Item], n: int) -> Iterator[Item]:
    for _ in range(n):
        if next(items, None) is None:
            return iter(())
    return items


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _append(path: Path, f) -> None:
    """Append the spooled chunk ``path`` to the open output ``f``, then remove it; the kernel copies the bytes."""
    f.flush()
    with path.open("rb") as src:
        size, done = os.fstat(src.fileno()).st_size, 0
        try:
            while done < size:
                sent = os.sendfile(f.fileno(), src.fileno(), done, size - done)
                if not sent:
                    break
                done += sent
        except (AttributeError, OSError):  # no sendfile between files here: copy through user space
            pass
        if done < size:
            src.seek(done)
            shutil.copyfileobj(src, f, 1 << 20)
    f.seek(0, os.SEEK_END)
    path.unlink()


def _review_chunks(paths: list[str], skip: int, library: Library, pool: "_Workers", chunk: int,
                   options: ReviewOptions, spool: Path, skipped: Counter[str]):
    """(lines, counts) per chunk in input order: the lines as bytes, or as the spool file that holds them.

    ``skipped`` receives the visits the inputs hold that are not hospital stays (FHIR encounters by class).
    """
    items = read_items(paths)
    if pool.pool is None:  # one worker: this process
        with Engine(library, options.evaluator) as engine:
            for batch in _chunks(_skip(items, skip), min(chunk, WRITE_EVERY)):
                yield _review(engine, batch, options)
        skipped.update(items.skipped)
        return
    # NDJSON files go to the workers as (offset, length) segments that each worker reads itself; other inputs
    # are parsed here and sent item by item. Either way the parent stays light: it is a third process on
    # as many cores as workers.
    segments = ndjson_segments(paths, skip)
    spool.mkdir()
    # At most 2 chunks per worker in flight: the input is read at the speed it is reviewed.
    slots = threading.BoundedSemaphore(2 * pool.size)

    def feed(tasks: Iterable[T]) -> Iterator[tuple[str, T]]:
        for n, task in enumerate(tasks):
            slots.acquire()
            yield str(spool / f"{n}.ndjson"), task

    if segments is not None:
        results = pool.pool.imap(_work_segment, feed(segments))
    else:
        # Plain tuples pickle in C; dataclass instances go through copyreg.
        results = pool.pool.imap(_work, feed([(i.position, i.raw, i.record, i.error, i.record_id) for i in batch]
                                             for batch in _chunks(_skip(items, skip), chunk)))
    for result in results:
        slots.release()
        yield result
    skipped.update(items.skipped)


class _Workers:
    """The worker processes of a batch (none for one worker: the batch runs in this process).

    They start before the rules are loaded here, so their imports overlap that load; each then receives the
    loaded library (~0.2 MB pickled, read in ~3 ms) rather than loading the sources again (~0.4 s of YAML).
    """

    def __init__(self, size: int, options: ReviewOptions):
        self.size, self.pool = size, None
        if size > 1:
            ctx = mp.get_context("spawn")  # durable-rules is process-global: each worker starts clean
            self._handoff = ctx.SimpleQueue()
            self.pool = ctx.Pool(size, initializer=_init_worker, initargs=(self._handoff, options))

    def start(self, library: Library) -> None:
        if self.pool is not None:
            for _ in range(self.size):
                self._handoff.put(library)

    def __enter__(self) -> "_Workers":
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


_ENGINE: Engine | None = None
_OPTIONS = ReviewOptions()


def _init_worker(handoff, options: ReviewOptions) -> None:
    global _ENGINE, _OPTIONS
    _ENGINE, _OPTIONS = Engine(handoff.get(), options.evaluator), options


def _work(task: tuple[str, list[tuple]]) -> tuple[Path, BatchSummary]:
    """Review a chunk of items into its spool file: megabytes of lines never cross the pipe to the parent."""
    path, batch = task
    return _spool(path, [Item(*fields) for fields in batch])


def _work_segment(task: tuple[str, tuple]) -> tuple[Path, BatchSummary]:
    """Read a segment of an NDJSON input, review it into its spool file."""
    path, segment = task
    return _spool(path, read_segment(*segment))


def _spool(path: str, items: list[Item]) -> tuple[Path, BatchSummary]:
    if _ENGINE is None:
        raise RuntimeError("a batch worker reviews only once _init_worker has given it the library")
    part = BatchSummary()
    with open(path, "wb") as f:
        for batch in _chunks(items, WRITE_EVERY):
            lines, done = _review(_ENGINE, batch, _OPTIONS)
            f.write(lines)
            part.merge(done)
            part.ids += done.ids
    return Path(path), part


def _review(engine: Engine, batch: list[Item], options: ReviewOptions) -> tuple[bytes, BatchSummary]:
    """The output lines of a chunk, as one bytes object (one object to send back and write), and their counts."""
    lines, part = [], BatchSummary()
    for item in batch:
        d = _one(engine, item, options)
        part.add(d)
        lines.append(orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE))
    return b"".join(lines), part


def _stay(enc) -> dict:
    """Expected and actual midnights, for the length-of-stay report (actual only once discharged).

    ``enc`` is the record's parsed ``Encounter`` (its times already read) or its JSON object.
    """
    if isinstance(enc, dict):
        enc = records.Encounter(datetime.fromisoformat(enc["arrival_time"]),
                                expected_midnights=enc.get("expected_midnights"),
                                discharge_time=datetime.fromisoformat(enc["discharge_time"])
                                if enc.get("discharge_time") else None)
    actual = None
    if enc.discharge_time is not None:
        arrival = enc.arrival_time
        actual = max(0, (enc.discharge_time.astimezone(arrival.tzinfo).date() - arrival.date()).days)
    return {"expected": enc.expected_midnights, "actual": actual}


def _one(engine: Engine, item: Item, options: ReviewOptions) -> dict:
    data = item.record
    try:
        if item.error is not None:
            raise item.error
        if data is None:
            if item.raw is None:
                raise UnreadableRecordError("the input gave no record here", path="$")
            data = records.loads(item.raw)
        adm = admit(data, engine.library.facts, strict=options.strict)
        d = (review_by_day(engine, adm, as_of=options.as_of) if options.by_day else
             engine.review(adm, as_of=options.as_of)).to_dict(options.trail)
        d["position"] = item.position
        d["stay"] = _stay(adm.encounter)
        return d
    except RecordError as exc:
        rid = data.get("id") if isinstance(data, dict) else item.record_id
        return {"record_id": rid if isinstance(rid, str) else None, "position": item.position,
                "outcome": "error", "errors": [e.as_dict() for e in getattr(exc, "errors", [exc])]}
    except UrError as exc:  # an engine failure on one record must not stop the batch
        return {"record_id": None, "position": item.position, "outcome": "error", "errors": [exc.as_dict()]}
