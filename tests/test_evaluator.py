"""durable-rules agrees with the reference evaluator, holds no state between records, and is thread-safe."""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter

import durable_rules_engine as _dr

import pytest
from hypothesis import HealthCheck, given, settings

from ur_engine import Engine, Source, load
from ur_engine.evaluation.compiler import number
from ur_engine.evaluation.evaluator import DurableEvaluator, ReferenceEvaluator, RulesetResult
from ur_engine.intake.rule_files import read_sources
from conftest import RULES, examples, make_record, obs
from strategies import fact_values, records

RULESETS = [p.stem for p in sorted(RULES.glob("*.yaml")) if p.name != "facts.yaml" and not p.name.startswith(".")]
PROPERTY = settings(max_examples=examples(1500), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def evaluators(library):
    durable = DurableEvaluator(library)
    yield durable, ReferenceEvaluator(library)
    durable.close()


def _ruleset(library, file_stem):
    return next(rs for rs in library.rulesets if rs.file == f"{file_stem}.yaml")


@pytest.mark.parametrize("file_stem", RULESETS)
def test_durable_rules_agrees_with_the_reference_on_random_facts(library, evaluators, file_stem):
    rs = _ruleset(library, file_stem)
    durable, reference = evaluators

    @PROPERTY
    @given(fact_values(library, rs))
    def agree(values):
        assert durable.evaluate(rs.key, values) == reference.evaluate(rs.key, values)

    agree()


@pytest.mark.parametrize("file_stem", RULESETS)
def test_durable_rules_agrees_with_the_reference_on_random_records(library, engine, reference_engine, file_stem):
    rs = _ruleset(library, file_stem)

    @settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records(library, rs))
    def agree(record):
        a = engine.review(record, review_id="x").to_dict()
        b = reference_engine.review(record, review_id="x").to_dict()
        assert a == b
        assert rs.id in a["rules"]["rulesets"]

    agree()


def test_same_record_gives_the_same_decision_and_never_a_denial(library, engine):
    @settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records(library))
    def stable(record):
        first, second = (engine.review(record, review_id="same").to_dict() for _ in range(2))
        assert first == second
        assert first["outcome"] in {"approve", "pend", "alternative_setting"}
        assert first["review_action"] == ("A1" if first["outcome"] == "approve" else "A4")

    stable()


def test_thousands_of_records_leave_no_state_in_the_engine(engine):
    # durable-rules allows 1,024 live sessions per ruleset; each review must leave nothing behind.
    recs = [make_record(id=f"s{i}", observations=[obs("8867-4", 40 + i % 150)]) for i in range(3000)]
    first = [engine.review(r, review_id="x").to_dict() for r in recs]
    assert [engine.review(r, review_id="x").to_dict() for r in recs[:300]] == first[:300]
    for handle, _ in engine.evaluator._bundles:
        assert json.loads(_dr.get_facts(handle, "0")) == []


def test_a_record_that_matches_no_rule_is_all_unknown_without_error(library, evaluators):
    durable, reference = evaluators
    result = durable.evaluate("adult-admission@2026.11.0", {})
    assert set(result.criteria.values()) == {None}
    assert result == reference.evaluate("adult-admission@2026.11.0", {})


def test_comparison_nodes_have_no_not_met_rule_and_are_not_met_only_on_every_input_given(library, evaluators):
    from ur_engine import conditions as c
    from ur_engine.evaluation.compiler import plan, to_durable

    rs = _ruleset(library, "adult-admission")
    stage = to_durable([plan(rs)])
    rules = json.loads(stage.definition)
    for i, (_, cid) in enumerate(stage.nodes):
        expr = next(cr.condition for cr in rs.criteria if cr.id == cid)
        simple = isinstance(expr, c.Leaf) or (isinstance(expr, c.Any) and
                                               all(isinstance(x, c.Leaf) for x in expr.items))
        assert (f"n{i}" not in rules) == simple == (i in stage.two_valued), cid
    durable, reference = evaluators
    # SI-PULSE: any of heart_rate.min < 50, heart_rate.max > 140
    for values, status in [({"heart_rate.min": 60, "heart_rate.max": 100}, False),
                           ({"heart_rate.min": 60}, None),
                           ({"heart_rate.max": 150}, True)]:
        got = durable.evaluate(rs.key, values)
        assert got.criteria["SI-PULSE"] is status
        assert got == reference.evaluate(rs.key, values)


def test_threads_share_one_engine_without_wrong_results(engine):
    recs = [make_record(id=f"t{i}", observations=[obs("8867-4", 30 + (i * 7) % 160)],
                        treatments=[{"type": "iv_fluids"}] if i % 3 else []) for i in range(240)]
    expected = [engine.review(r, review_id="x").to_dict() for r in recs]
    got: dict[int, list] = {}

    def work(k):
        got[k] = [engine.review(r, review_id="x").to_dict() for r in recs]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(got[k] == expected for k in range(6))


def test_threads_meeting_each_rule_set_for_the_first_time_at_once_get_each_its_own_results(library):
    # Each rule set's patterns are kept under its own number: two rule sets first met by two threads at the same
    # moment must not draw the same one, or one is handed the other's results.
    # Rule sets with as many criteria as another: given no facts, their patterns of results are alike.
    sizes = Counter(len(rs.criteria) for rs in library.rulesets)
    alike = [rs.key for rs in library.rulesets if sizes[len(rs.criteria)] > 1]
    assert len(alike) >= 2
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can
    try:
        for _ in range(100):
            evaluator = DurableEvaluator(library)
            start = threading.Barrier(len(alike))
            got: dict[str, RulesetResult] = {}

            def first(key):
                start.wait()
                got[key] = evaluator.evaluate_many([key], {})[key]

            threads = [threading.Thread(target=first, args=(key,)) for key in alike]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(got) == sorted(alike)
            assert all(r.ruleset == key for key, r in got.items())
            evaluator.close()
    finally:
        sys.setswitchinterval(interval)


def test_evaluators_release_their_rulesets(library):
    for _ in range(40):
        DurableEvaluator(library).close()
    with Engine(library) as e:
        assert e.review(make_record(observations=[obs("8867-4", 150)])).outcome == "alternative_setting"


@pytest.mark.parametrize("x, text", [(1e-05, "0.00001"), (1e16, "10000000000000000"), (2.5, "2.5"), (7, "7"),
                                     (True, "1")])
def test_numbers_are_never_sent_in_exponent_form(x, text):
    assert number(x) == text


def test_tiny_thresholds_and_values_compare_correctly_in_durable_rules(library):
    rule = """\
ruleset: tiny
version: 1.0.0
title: Tiny numbers
source: test fixture
criteria:
  - {id: TINY-LT, group: g, text: below a tiny bound, source: fixture, fact: troponin_i.max, lt: 0.00001}
levels: {observation: g}
"""
    lib = load([*read_sources(RULES), Source("tiny.yaml", rule)])
    durable, reference = DurableEvaluator(lib), ReferenceEvaluator(lib)
    try:
        for value, expected in [(0.000001, True), (0.00001, False), (1e-07, True), (3.0, False)]:
            facts = {"troponin_i.max": value}
            assert durable.evaluate("tiny@1.0.0", facts).criteria["TINY-LT"] is expected
            assert reference.evaluate("tiny@1.0.0", facts).criteria["TINY-LT"] is expected
    finally:
        durable.close()
