"""durable-rules, wrapped once: the only module that talks to the engine.

Uses the low-level ``durable_rules_engine`` API, not the stock ``Host``: one long-lived session per ruleset,
each record asserted as a fact, its actions drained, then the fact retracted. So no session leaks (never
``delete_state``), no ``MessageNotHandledException`` when nothing matches (a status code instead), no timer
threads. The engine is process-global and not thread-safe: one lock serialises every call.

``ReferenceEvaluator`` evaluates the same plans in plain Python; tests check that both agree.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import durable_rules_engine as _dr

from ur_engine import conditions
from ur_engine.conditions import Scalar
from ur_engine.errors import CompileError, EvaluationError
from ur_engine.evaluation.compiler import (
    DurableStage,
    Node,
    Plan,
    bundles,
    encode_booleans,
    encode_fact,
    plan,
    to_durable,
)
from ur_engine.rules.library import Library

_LOCK = threading.Lock()
_NAMES = itertools.count()
K = TypeVar("K")  # what a stage's inputs are keyed by: fact names, or the rule indexes of the stage before


@dataclass
class RulesetResult:
    """Three-valued results of one rule set: True met, False not met, None unknown."""

    ruleset: str  # RuleSet.key
    criteria: dict[str, bool | None]
    groups: dict[str, bool | None]
    levels: dict[str, bool | None]
    requires: dict[str, bool | None]


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


class ReferenceEvaluator:
    """The same plans, evaluated in plain Python (three-valued)."""

    def __init__(self, library: Library) -> None:
        self.plans = {rs.key: plan(rs) for rs in library.rulesets}

    def evaluate(self, key: str, facts: Mapping[str, Scalar], waived: frozenset[str] = frozenset()) -> RulesetResult:
        p = self.plans[key]
        values, outputs = facts, []
        for stage in p.stages:
            out = {name: conditions.evaluate(expr, values) for name, expr in stage.nodes}
            outputs.append(out)
            known: dict[str, Scalar] = {k: v for k, v in out.items() if v is not None}
            known.update((cid, True) for cid in waived if cid in known or cid in out)
            values = known
        return _result(p, outputs)

    def evaluate_many(self, keys: Sequence[str], facts: Mapping[str, Scalar],
                      waived: frozenset[str] = frozenset()) -> dict[str, RulesetResult]:
        return {k: self.evaluate(k, facts, waived) for k in keys}

    def close(self) -> None:
        pass


class DurableEvaluator:
    """Evaluates plans inside durable-rules. Safe to share between the threads of one process.

    Rule sets are compiled together in bundles (one durable-rules ruleset per stage and bundle), so a record
    costs three assertions per bundle however many of its rule sets apply.
    """

    def __init__(self, library: Library) -> None:
        self.plans: dict[str, Plan] = {rs.key: plan(rs) for rs in library.rulesets}
        self._bundles: list[_Bundle] = []
        self._bundle_of: dict[str, int] = {}
        self._ids = itertools.count()
        self._routes: dict[tuple[tuple[str, ...], frozenset[str]], _Route] = {}
        handles: list[int] = []
        try:
            for b, members in enumerate(bundles(list(self.plans.values()))):
                ds0, ds1, ds2 = to_durable(members, 0), to_durable(members, 1), to_durable(members, 2)
                self._bundles.append(((_create(ds0, handles), ds0), (_create(ds1, handles), ds1),
                                      (_create(ds2, handles), ds2)))
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
        outs = []
        with _LOCK:
            i = next(self._ids)
            for (h0, head0, inputs, two0), (h1, head1, on1, off1, two1), (h2, head2, on2, off2, two2), waive \
                    in route.work:
                met = _not_met(_run(h0, i, encode_fact(i, head0, inputs, facts)), two0, facts)
                given = {**met, **waive} if waive else met
                groups = _not_met(_run(h1, i, encode_booleans(i, head1, on1, off1, given)), two1, given)
                tops = _not_met(_run(h2, i, encode_booleans(i, head2, on2, off2, groups)), two2, groups)
                outs.append((met, groups, tops))
        results = {}
        for k, b, crit, group, levels, requires in route.results:
            met, groups, tops = outs[b]
            results[k] = RulesetResult(k, {name: met.get(n) for n, name in crit},
                                       {name: groups.get(n) for n, name in group},
                                       {name: tops.get(n) for n, name in levels},
                                       {name: tops.get(n) for n, name in requires})
        return results

    def _route(self, keys: tuple[str, ...], waived: frozenset[str]) -> _Route:
        by_bundle: dict[int, list[str]] = {}
        for k in keys:
            by_bundle.setdefault(self._bundle_of[k], []).append(k)
        work: list[_Work] = []
        for b, members in by_bundle.items():
            (h0, ds0), (h1, ds1), (h2, ds2) = self._bundles[b]
            # Stages report rule indexes; the next stage's fact keys are looked up by them.
            index0 = {node: i for i, node in enumerate(ds0.nodes)}
            waive = {index0[(k, cid)]: True for k in members for cid in waived if (k, cid) in index0}
            mine = frozenset(members)
            work.append(((h0, ds0.head(members), ds0.prefixes(tuple(members)), _two_valued_facts(ds0, mine)),
                         (h1, ds1.head(members), *_booleans(ds1, ds0), _two_valued(ds1, mine, ds0)),
                         (h2, ds2.head(members), *_booleans(ds2, ds1), _two_valued(ds2, mine, ds1)), waive))
        position = {b: i for i, b in enumerate(by_bundle)}
        results: list[_Results] = []
        for k in keys:
            b = self._bundle_of[k]
            crit, group, tops = (tuple((self._bundles[b][s][1].nodes.index((k, name)), name) for name, _ in stage.nodes)
                                 for s, stage in enumerate(self.plans[k].stages))
            results.append((k, position[b], crit, group,
                            tuple((n, name[6:]) for n, name in tops if name.startswith("level:")),
                            tuple((n, name[9:]) for n, name in tops if name.startswith("requires:"))))
        return _Route(tuple(work), tuple(results))

    def close(self) -> None:
        """Delete the engine's rulesets now (also done when the evaluator is garbage-collected)."""
        self._finalizer()


def _create(ds: DurableStage[str] | DurableStage[Node], handles: list[int]) -> int:
    with _LOCK:
        h: int = _dr.create_ruleset(f"ur{next(_NAMES)}", ds.definition)
    handles.append(h)
    return h


# The three stages of a bundle, each with its durable-rules handle.
_Bundle = tuple[tuple[int, DurableStage[str]], tuple[int, DurableStage[Node]], tuple[int, DurableStage[Node]]]
# (rule index, the inputs it reads) of nodes without a not-met rule: fact names, then rule indexes of the stage before.
_FactTwoValued = tuple[tuple[int, tuple[str, ...]], ...]
_TwoValued = tuple[tuple[int, tuple[int, ...]], ...]
# What a record needs of one bundle: (handle, markers, (fact, ',"k3":') pairs, two-valued nodes) for the criteria;
# (handle, markers, rule index -> ',"k3":1' and -> ',"k3":0', two-valued nodes) for groups and levels; then the
# waived criteria's rule indexes, met.
_Work = tuple[tuple[int, str, tuple[tuple[str, str], ...], _FactTwoValued],
              tuple[int, str, dict[int, str], dict[int, str], _TwoValued],
              tuple[int, str, dict[int, str], dict[int, str], _TwoValued], dict[int, bool]]
_Names = tuple[tuple[int, str], ...]  # (rule index, node name) pairs
# Where a rule set's results are: (key, bundle position in work, criteria, groups, levels, requires).
_Results = tuple[str, int, _Names, _Names, _Names, _Names]


@dataclass(frozen=True)
class _Route:
    """What one combination of rule sets (and waivers) needs, worked out once, not once per record."""

    work: tuple[_Work, ...]  # per bundle
    results: tuple[_Results, ...]  # per rule set


def _booleans(ds: DurableStage[Node], previous: DurableStage[str] | DurableStage[Node]) -> tuple[dict[int, str],
                                                                                                 dict[int, str]]:
    """Rule index in ``previous`` -> ',"k3":1' / ',"k3":0', its result as a field of a ``ds`` fact."""
    on, off = ds.booleans
    return ({i: on[node] for i, node in enumerate(previous.nodes) if node in on},
            {i: off[node] for i, node in enumerate(previous.nodes) if node in off})


def _two_valued_facts(ds: DurableStage[str], members: frozenset[str]) -> _FactTwoValued:
    """(rule index, the facts it reads) of the criteria of ``members`` without a not-met rule."""
    return tuple((n, needs) for n, needs in ds.two_valued.items() if ds.nodes[n][0] in members)


def _two_valued(ds: DurableStage[Node], members: frozenset[str],
                previous: DurableStage[str] | DurableStage[Node]) -> _TwoValued:
    """(rule index, its inputs) of the nodes of ``members`` without a not-met rule; the inputs are the previous
    stage's rule indexes, as its results are keyed."""
    index = {node: i for i, node in enumerate(previous.nodes)}
    return tuple((n, tuple(index[x] for x in needs)) for n, needs in ds.two_valued.items() if ds.nodes[n][0] in members)


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
