"""durable-rules, wrapped once: the only module that talks to the engine.

Uses the low-level ``durable_rules_engine`` API, not the stock ``Host``: one long-lived session per ruleset,
each record asserted as a fact, its actions drained, then the fact retracted. So no session leaks (never
``delete_state``), no ``MessageNotHandledException`` when nothing matches (a status code instead), no timer
threads. The engine is process-global and not thread-safe: one lock serialises every call.

``ReferenceEvaluator`` evaluates the same plans in plain Python; tests check that both agree. durable-rules judges
the criteria, over the record's facts; their groups, levels and gates, booleans over booleans, are judged in
Python from the criteria's results (a second and third round through durable-rules cost more than the rest).
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import durable_rules_engine as _dr

from ur_engine import conditions
from ur_engine.conditions import Scalar
from ur_engine.errors import CompileError, EvaluationError
from ur_engine.evaluation.compiler import (
    DurableStage,
    Plan,
    Stage,
    bundles,
    encode_fact,
    plan,
    to_durable,
)
from ur_engine.memo import Recent
from ur_engine.rules.library import Library

_LOCK = threading.Lock()
_NAMES = itertools.count()
K = TypeVar("K")  # what a stage's inputs are keyed by: fact names, or the rule indexes of the stage before


@dataclass
class RulesetResult:
    """Three-valued results of one rule set: True met, False not met, None unknown.

    The durable-rules evaluator hands every record that meets the same pattern the same object: read it, never
    change it (but for ``derived``)."""

    ruleset: str  # RuleSet.key
    criteria: dict[str, bool | None]
    groups: dict[str, bool | None]
    levels: dict[str, bool | None]
    requires: dict[str, bool | None]
    # What the decision works out from these results alone (its trail's ids, the parts of its reasons), kept
    # beside them: the results of one pattern are shared by every record that meets it (``_Upper``), so what is
    # kept here is worked out once per pattern instead of once per record.
    derived: dict[str, object] = field(default_factory=dict, compare=False, repr=False)


class Evaluator(Protocol):
    """What the engine asks of an evaluator: the durable-rules one, or the plain-Python reference of the same plans."""

    def evaluate_many(self, keys: Sequence[str], facts: Mapping[str, Scalar],
                      waived: frozenset[str] = frozenset()) -> dict[str, RulesetResult]: ...

    def close(self) -> None: ...


def _result(p: Plan, stage_outputs: list[dict[str, bool | None]]) -> RulesetResult:
    crit, groups, tops = stage_outputs
    return RulesetResult(
        p.ruleset, crit, groups,
        {k[6:]: v for k, v in tops.items() if k.startswith("level:")},
        {k[9:]: v for k, v in tops.items() if k.startswith("requires:")})


def _stages(stages: Sequence[Stage], values: Mapping[str, Scalar],
            waived: frozenset[str]) -> list[dict[str, bool | None]]:
    """Each stage's three-valued results on the one before; waived criteria count as met for the next stage."""
    outputs = []
    for stage in stages:
        out = {name: conditions.evaluate(expr, values) for name, expr in stage.nodes}
        outputs.append(out)
        known: dict[str, Scalar] = {k: v for k, v in out.items() if v is not None}
        known.update((cid, True) for cid in waived if cid in out)
        values = known
    return outputs


class ReferenceEvaluator:
    """The same plans, evaluated in plain Python (three-valued)."""

    def __init__(self, library: Library) -> None:
        self.plans = {rs.key: plan(rs) for rs in library.rulesets}

    def evaluate(self, key: str, facts: Mapping[str, Scalar], waived: frozenset[str] = frozenset()) -> RulesetResult:
        p = self.plans[key]
        return _result(p, _stages(p.stages, facts, waived))

    def evaluate_many(self, keys: Sequence[str], facts: Mapping[str, Scalar],
                      waived: frozenset[str] = frozenset()) -> dict[str, RulesetResult]:
        return {k: self.evaluate(k, facts, waived) for k in keys}

    def close(self) -> None:
        pass


# Patterns of rule sets' results an evaluator keeps at most, all rule sets together, the least recently used
# forgotten first: most of a long batch's patterns are the same few hundred per rule set, its long tail seen once,
# and a cache per rule set, each with its own bound, grew with the batch. The bound is reached early enough that a
# batch's peak memory does not keep rising after its first 100,000 stays: 4,096 filled only at about 150,000
# generated stays (peak 77.1–78.6 MiB at 100,000, 82.1 at 1,000,000); 3,072 peaked at 76.1–77.0 and 79.2, and
# worked out 7,777 patterns over 300,000 stays instead of 5,966, under 1 % of their time (2,048: 12,919).
PATTERNS_KEPT = 3072


_Seen = Recent[tuple[int, tuple[bool | None, ...]], RulesetResult]


class _Upper:
    """A rule set's groups, levels and gates from its criteria's results, for one set of waivers.

    They are booleans over a few dozen booleans, so plain Python judges them; and a batch meets the same few
    patterns of criteria results again and again (some thousands in 20,000 stays), so each pattern is judged
    once. The criteria themselves, over the record's facts, are durable-rules' to judge.
    """

    def __init__(self, p: Plan, waived: frozenset[str], seen: _Seen, n: int) -> None:
        self.plan, self.waived, self.n = p, waived, n
        self.names = tuple(name for name, _ in p.stages[0].nodes)
        self._seen = seen  # the evaluator's, for all its rule sets: (this one's number, pattern) -> its result

    def __call__(self, statuses: tuple[bool | None, ...]) -> RulesetResult:
        key = (self.n, statuses)
        found = self._seen.get(key)
        if found is None:
            crit = dict(zip(self.names, statuses))
            values: dict[str, Scalar] = {k: v for k, v in crit.items() if v is not None}
            values.update((cid, True) for cid in self.waived if cid in crit)
            found = _result(self.plan, [crit, *_stages(self.plan.stages[1:], values, self.waived)])
            self._seen.put(key, found)
        # One result for every record of this pattern: read, never written, by the decision, but for ``derived``.
        return found


class DurableEvaluator:
    """Evaluates the criteria of plans inside durable-rules. Safe to share between the threads of one process.

    Rule sets are compiled together in bundles (one durable-rules ruleset per bundle), so a record costs one
    assertion per bundle however many of its rule sets apply. Groups, levels and gates follow from the
    criteria's results (``_Upper``).
    """

    def __init__(self, library: Library) -> None:
        self.plans: dict[str, Plan] = {rs.key: plan(rs) for rs in library.rulesets}
        self._bundles: list[tuple[int, DurableStage]] = []
        self._bundle_of: dict[str, int] = {}
        self._ids = itertools.count()
        self._routes: dict[tuple[tuple[str, ...], frozenset[str]], _Route] = {}
        self._seen: _Seen = Recent(PATTERNS_KEPT)
        # (rule set, waivers) -> its _Upper, one for every combination it is part of: its patterns are its own
        self._uppers: dict[tuple[str, frozenset[str]], _Upper] = {}
        self._upper_numbers = itertools.count()
        handles: list[int] = []
        try:
            for b, members in enumerate(bundles(list(self.plans.values()))):
                ds = to_durable(members)
                self._bundles.append((_create(ds, handles), ds))
                self._bundle_of.update((p.ruleset, b) for p in members)
        except _dr.error as exc:
            _delete(handles)
            raise CompileError(f"durable-rules could not compile the rules: {exc}") from None
        self._handles = handles
        self._finalizer = weakref.finalize(self, _delete, handles)

    def evaluate(self, key: str, facts: Mapping[str, Scalar], waived: frozenset[str] = frozenset()) -> RulesetResult:
        return self.evaluate_many([key], facts, waived)[key]

    def evaluate_many(self, keys: Sequence[str], facts: Mapping[str, Scalar],
                      waived: frozenset[str] = frozenset()) -> dict[str, RulesetResult]:
        """Results of the rule sets ``keys`` (RuleSet.key) on one record's facts.

        ``waived`` criterion ids count as met for their groups and levels (a plan's waiver).
        """
        route = self._routes.get((tuple(keys), waived))
        if route is None:
            route = self._routes[(tuple(keys), waived)] = self._route(tuple(keys), waived)
        with _LOCK:
            i = next(self._ids)
            outs = [_not_met(_run(h, i, encode_fact(i, head, inputs, facts)), two, facts)
                    for h, head, inputs, two in route.work]
        results = {}
        for k, b, crit, upper in route.results:
            results[k] = upper(tuple(map(outs[b].get, crit)))
        return results

    def _route(self, keys: tuple[str, ...], waived: frozenset[str]) -> _Route:
        by_bundle: dict[int, list[str]] = {}
        for k in keys:
            by_bundle.setdefault(self._bundle_of[k], []).append(k)
        work: list[_Work] = []
        for b, members in by_bundle.items():
            h, ds = self._bundles[b]
            work.append((h, ds.head(members), ds.prefixes(tuple(members)), _two_valued_facts(ds, frozenset(members))))
        position = {b: i for i, b in enumerate(by_bundle)}
        results: list[_Results] = []
        for k in keys:
            b = self._bundle_of[k]
            p = self.plans[k]
            index = self._bundles[b][1].nodes.index
            results.append((k, position[b], tuple(index((k, name)) for name, _ in p.stages[0].nodes),
                            self._upper(p, waived)))
        return _Route(tuple(work), tuple(results))

    def _upper(self, p: Plan, waived: frozenset[str]) -> _Upper:
        upper = self._uppers.get((p.ruleset, waived))
        if upper is None:
            # Routes are built outside the lock: two threads may get here at once. Each draws its own number
            # (never two rule sets under one), and both keep whichever _Upper was stored first.
            upper = self._uppers.setdefault((p.ruleset, waived),
                                            _Upper(p, waived, self._seen, next(self._upper_numbers)))
        return upper

    def close(self) -> None:
        """Delete the engine's rulesets now (also done when the evaluator is garbage-collected)."""
        self._finalizer()


def _create(ds: DurableStage, handles: list[int]) -> int:
    with _LOCK:
        h: int = _dr.create_ruleset(f"ur{next(_NAMES)}", ds.definition)
    handles.append(h)
    return h


# (rule index, the facts it reads) of criteria without a not-met rule.
_FactTwoValued = tuple[tuple[int, tuple[str, ...]], ...]
# What a record needs of one bundle: its handle, the rule sets' markers, (fact, ',"k3":') pairs, and the
# two-valued criteria.
_Work = tuple[int, str, tuple[tuple[str, str], ...], _FactTwoValued]
# Where a rule set's results are: (key, bundle position in work, its criteria's rule indexes, the rest from them).
_Results = tuple[str, int, tuple[int, ...], _Upper]


@dataclass(frozen=True)
class _Route:
    """What one combination of rule sets (and waivers) needs, worked out once, not once per record."""

    work: tuple[_Work, ...]  # per bundle
    results: tuple[_Results, ...]  # per rule set


def _two_valued_facts(ds: DurableStage, members: frozenset[str]) -> _FactTwoValued:
    """(rule index, the facts it reads) of the criteria of ``members`` without a not-met rule."""
    return tuple((n, needs) for n, needs in ds.two_valued.items() if ds.nodes[n][0] in members)


def _not_met(out: dict[int, bool], two_valued: tuple[tuple[int, tuple[K, ...]], ...],
             given: Mapping[K, object]) -> dict[int, bool]:
    """``out`` with the nodes in ``two_valued`` that did not fire on inputs all ``given`` set not met."""
    for n, needs in two_valued:
        if n not in out:
            for x in needs:
                if given.get(x) is None:
                    break
            else:
                out[n] = False
    return out


def _run(handle: int, fact_id: int, body: str) -> dict[int, bool]:
    """Assert one fact, drain its activations into {rule index: met?}, retract it."""
    out: dict[int, bool] = {}
    try:
        status, state = _dr.assert_fact(handle, body)
        if status == 0:  # 1 means nothing matched: every node is unknown
            res = _dr.start_action_for_state(handle, state)
            msg = res[1] if res else None
            while msg:
                # '{"m3":{"m":{...}}}': rule m3 (node 3 met) or n3 (not met); one activation per $or branch.
                out[int(msg[3:msg.index('"', 3)])] = msg[2] == "m"
                msg = _dr.complete_and_start_action(handle, state)
    except BaseException as exc:
        try:
            _dr.retract_fact(handle, body)  # the whole fact: activations may be left undrained
        except _dr.error:
            pass  # the fact was never stored
        if isinstance(exc, _dr.error):
            raise EvaluationError(f"durable-rules failed on a ruleset stage: {exc}") from None
        raise
    # Every activation was drained and no rule joins facts, so nothing but the stored fact is left: the id
    # alone finds it, which spares durable-rules parsing the whole fact a second time (~3 µs a stage).
    _dr.retract_fact(handle, '{"id":"%d","sid":"0"}' % fact_id)
    return out


def _delete(handles: list[int]) -> None:
    with _LOCK:
        for h in handles:
            _dr.delete_ruleset(h)
        handles.clear()
