"""Broken rule files: every error at once, each with file, line, column and a did-you-mean."""

from __future__ import annotations

import shutil
import textwrap

import pytest

from ur_engine import RuleErrors, load_library, record
from conftest import RULES

GOOD = """\
ruleset: demo
version: 2026.1.0
title: Demo rule set
source: test fixture
effective: {from: 2026-01-01}
criteria:
  - id: DEMO-PULSE
    group: severity
    text: Pulse over 140
    source: 405 IAC 5-33-1(1)(B)
    fact: heart_rate.max
    gt: 140
levels:
  observation: severity
"""


@pytest.fixture()
def rules_dir(tmp_path):
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def errors_of(rules_dir, name: str, text: str):
    (rules_dir / name).write_text(textwrap.dedent(text))
    with pytest.raises(RuleErrors) as info:
        load_library(rules_dir)
    return info.value.errors


def test_the_default_library_loads(library):
    assert {rs.id for rs in library.rulesets} >= {"adult-admission", "critical-care", "two-midnight", "observation"}


def test_a_good_file_loads(rules_dir):
    (rules_dir / "demo.yaml").write_text(GOOD)
    assert "demo" in {rs.id for rs in load_library(rules_dir).rulesets}


@pytest.mark.parametrize("old, new, code, line, column, suggestion", [
    ("fact: heart_rate.max", "fact: heart_rat.max", "UR020", 11, 11, "heart_rate.max"),
    ("gt: 140", "gtt: 140", "UR021", 12, 5, "gt"),
    ("observation: severity", "observation: severty", "UR030", 14, 16, "severity"),
    ("version: 2026.1.0", "version: 2026.1", "UR004", 2, 10, None),
    ("title: Demo rule set", "titel: Demo rule set", "UR004", 3, 1, "title"),
    ("gt: 140", "gt: fast", "UR023", 12, 9, None),
    ("observation: severity", "observaton: severity", "UR004", 14, 3, "observation"),
], ids=["unknown-fact", "unknown-operator", "unknown-group", "bad-version", "misspelt-key", "wrong-type",
        "unknown-level"])
def test_each_error_names_file_line_column_and_suggestion(rules_dir, old, new, code, line, column, suggestion):
    errors = errors_of(rules_dir, "demo.yaml", GOOD.replace(old, new))
    e = errors[0]
    assert (e.file, e.code, e.line, e.column, e.suggestion) == ("demo.yaml", code, line, column, suggestion), str(e)
    assert str(e).startswith(f"demo.yaml:{line}:{column} {code} ")


def test_all_errors_are_reported_together_across_files(rules_dir):
    (rules_dir / "other.yaml").write_text(GOOD.replace("ruleset: demo", "ruleset: other")
                                          .replace("DEMO-PULSE", "OTHER-PULSE").replace("gt: 140", "gtt: 1"))
    errors = errors_of(rules_dir, "demo.yaml", GOOD.replace("heart_rate.max", "heart_rat.max")
                       .replace("observation: severity", "observation: severty"))
    assert [(e.file, e.code) for e in errors] == [("demo.yaml", "UR020"), ("demo.yaml", "UR030"),
                                                  ("other.yaml", "UR021")]


def test_yaml_syntax_error_has_its_line(rules_dir):
    errors = errors_of(rules_dir, "demo.yaml", GOOD.replace("gt: 140", "gt: [140"))
    assert errors[0].code == "UR001" and errors[0].line >= 12


def test_duplicate_keys_are_errors_not_overwrites(rules_dir):
    errors = errors_of(rules_dir, "demo.yaml", GOOD.replace("    gt: 140", "    gt: 140\n    gt: 150"))
    assert any(e.code == "UR002" and e.line == 13 for e in errors)


def test_criterion_ids_are_unique_across_the_library(rules_dir):
    errors = errors_of(rules_dir, "demo.yaml", GOOD.replace("DEMO-PULSE", "SI-PULSE"))
    assert any(e.code == "UR010" and "rule set adult-admission" in e.message for e in errors)


def test_a_criterion_that_multiplies_out_is_refused(rules_dir):
    anys = "\n".join("      - any: [" + ", ".join(f"{{fact: heart_rate.max, gt: {i * 10 + j}}}" for j in range(4))
                     + "]" for i in range(4))
    text = GOOD.replace("    fact: heart_rate.max\n    gt: 140\n", "    all:\n" + anys + "\n")
    errors = errors_of(rules_dir, "demo.yaml", text)
    assert errors[0].code == "UR050" and errors[0].rule_id == "DEMO-PULSE"


def test_unknown_valueset_is_reported_in_facts_yaml(rules_dir):
    facts = (rules_dir / "facts.yaml").read_text().replace("valueset: inpatient-only", "valueset: inpatient-onli")
    (rules_dir / "facts.yaml").write_text(facts)
    with pytest.raises(RuleErrors) as info:
        load_library(rules_dir)
    e = info.value.errors[0]
    assert (e.file, e.code, e.suggestion) == ("facts.yaml", "UR040", "inpatient-only")


def test_rule_test_record_errors_point_into_the_test(rules_dir):
    text = GOOD + textwrap.dedent("""\
        tests:
          - name: bad record
            record: {encounter: {requested_level: inpatiant}}
            expect: {outcome: approve}
        """)
    errors = errors_of(rules_dir, "demo.yaml", text)
    assert errors[0].code == "UR060" and errors[0].line == 17 and errors[0].suggestion == "inpatient"


@pytest.mark.parametrize("record_yaml, column, message", [
    ("{patient: 70}", 23, "expected object, got 70"),
    ("{encounter: [arrived]}", 25, 'expected object, got ["arrived"]'),
    ("{coverage: medicare}", 24, 'expected object, got "medicare"'),
    ("{encounter: {requested_level: inpatient, arrival_time: 20260105}}", 68, "expected string, got 20260105"),
])
def test_a_rule_test_record_part_of_the_wrong_type_is_reported_not_a_crash(rules_dir, record_yaml, column, message):
    text = GOOD + textwrap.dedent(f"""\
        tests:
          - name: malformed record
            record: {record_yaml}
            expect: {{outcome: approve}}
        """)
    errors = errors_of(rules_dir, "demo.yaml", text)
    assert all(e.code == "UR060" for e in errors)
    assert any((e.line, e.column) == (17, column) and e.message.endswith(message) for e in errors), errors


def test_a_list_as_a_mapping_key_is_a_yaml_error_with_its_line(rules_dir):
    errors = errors_of(rules_dir, "demo.yaml", GOOD.replace("levels:\n", "? [a, b]\n: 1\nlevels:\n"))
    assert errors[0].code == "UR001" and errors[0].line == 13 and "key" in errors[0].message


def test_a_rule_tests_expect_is_read_once_into_its_expectation(rules_dir):
    text = GOOD + textwrap.dedent("""\
        tests:
          - name: slow pulse
            record: {encounter: {requested_level: inpatient}}
            expect: {outcome: pend, level: null, not_met: [DEMO-PULSE], missing: [heart_rate.max]}
          - name: no level asked
            record: {encounter: {requested_level: inpatient}}
            expect: {not_met: [DEMO-PULSE]}
        """)
    (rules_dir / "demo.yaml").write_text(text)
    demo = next(rs for rs in load_library(rules_dir).rulesets if rs.id == "demo")
    asked, unasked = (t.expect for t in demo.tests)
    assert (asked.outcome, asked.checks_level, asked.level, asked.not_met, asked.missing) == \
        ("pend", True, None, ("DEMO-PULSE",), ("heart_rate.max",))
    assert (unasked.outcome, unasked.checks_level, unasked.met) == (None, False, ())


def test_digest_changes_with_any_file(rules_dir, library):
    (rules_dir / "demo.yaml").write_text(GOOD)
    assert load_library(rules_dir).digest != library.digest


def _versions(rules_dir, first_to: str, second_from: str):
    text = GOOD.replace("effective: {from: 2026-01-01}", f"effective: {{from: 2026-01-01, to: {first_to}}}")
    (rules_dir / "demo.yaml").write_text(text)
    (rules_dir / "demo-v2.yaml").write_text(
        GOOD.replace("version: 2026.1.0", "version: 2026.7.0").replace("gt: 140", "gt: 120")
        .replace("effective: {from: 2026-01-01}", f"effective: {{from: {second_from}}}"))


def test_versions_of_a_rule_set_with_disjoint_dates_judge_stays_by_arrival(rules_dir):
    from ur_engine import Engine
    from conftest import make_record, obs

    _versions(rules_dir, "2026-06-30", "2026-07-01")
    with Engine(load_library(rules_dir)) as engine:
        march = make_record(observations=[obs("8867-4", 130)])
        august = make_record(encounter={"arrival_time": "2026-08-02T09:40:00Z"},
                             observations=[{"code": "8867-4", "value": 130, "time": "2026-08-02T10:00:00Z"}])
        status = lambda d: next(c.status for c in d.criteria if c.id == "DEMO-PULSE")  # noqa: E731
        assert status(engine.review(march)) == "not_met"
        assert engine.review(march).rules["rulesets"]["demo"] == "2026.1.0"
        assert status(engine.review(august)) == "met"
        assert engine.review(august).rules["rulesets"]["demo"] == "2026.7.0"
        from datetime import date
        assert status(engine.review(august, as_of=date(2026, 3, 1))) == "not_met"


def test_a_rule_set_gated_by_an_effective_dated_code_set_applies_only_on_its_dates(rules_dir):
    from conftest import make_record

    (rules_dir / "valuesets" / "demo-dx.yaml").write_text(textwrap.dedent("""\
        valueset: demo-dx
        title: Demo diagnoses (test fixture)
        source: test fixture
        system: icd10cm
        match: prefix
        codes:
          - {code: J18, text: "Pneumonia", from: 2026-06-01}
          - {code: J44, text: "COPD"}
        """))
    (rules_dir / "demo.yaml").write_text(GOOD.replace("effective: {from: 2026-01-01}",
                                                      "effective: {from: 2026-01-01}\napplies: {diagnoses: [demo-dx]}"))
    library = load_library(rules_dir)

    def gated(day: str, code: str) -> bool:
        stay = record.parse(make_record(encounter={"arrival_time": f"{day}T09:40:00Z"},
                                        diagnoses=[{"code": code, "principal": True}]))
        return "demo" in {rs.id for rs in library.applicable(stay)}

    # The same code asked again on another day: a dated set is not answered from the first day's answer.
    assert [gated("2026-03-02", "J18.9"), gated("2026-07-02", "J18.9"), gated("2026-03-02", "J18.9")] == \
        [False, True, False]
    assert gated("2026-03-02", "J44.1") and not gated("2026-07-02", "I10")


def test_overlapping_versions_of_a_rule_set_are_an_error(rules_dir):
    _versions(rules_dir, "2026-07-31", "2026-07-01")
    with pytest.raises(RuleErrors) as info:
        load_library(rules_dir)
    assert [e.code for e in info.value.errors] == ["UR011"]


PLAN_OVERRIDE = """\
ruleset: plan-demo
version: 2026.1.0
title: Plan-level override (test fixture)
source: test fixture 2026
effective: {from: 2026-01-01}
applies: {review_type: admission, plan: [plan-7]}
waives: [TMN-BENCHMARK]
criteria:
  - id: PLAN-DEMO-TELEMETRY
    group: plan_intensity
    text: Telemetry is an intensity criterion for this plan
    source: test fixture 2026
    fact: treatment.frequent_vital_signs
    is: true
levels:
  observation: plan_intensity
"""


def test_a_plan_rule_set_waives_a_base_criterion_and_adds_its_own(rules_dir):
    from ur_engine import Engine
    from conftest import make_record, obs

    (rules_dir / "plan-demo.yaml").write_text(PLAN_OVERRIDE)
    with Engine(load_library(rules_dir)) as engine:
        base = dict(coverage={"line_of_business": "medicare_advantage", "plan": "plan-7"},
                    encounter={"expected_midnights": 1}, observations=[obs("8867-4", 150)],
                    treatments=[{"type": "iv_fluids"}])
        waived = engine.review(make_record(**base))
        status = {c.id: c.status for c in waived.criteria}
        assert status["TMN-BENCHMARK"] == "waived" and waived.outcome == "approve"
        other = engine.review(make_record(**{**base, "coverage": {"line_of_business": "medicare_advantage",
                                                                    "plan": "plan-8"}}))
        assert {c.id: c.status for c in other.criteria}["TMN-BENCHMARK"] == "not_met"
        assert (other.outcome, other.supported) == ("pend", "inpatient")  # the benchmark decides payment only
        assert "PLAN-DEMO-TELEMETRY" not in {c.id for c in other.criteria}


def test_waiving_an_unknown_criterion_is_an_error(rules_dir):
    (rules_dir / "plan-demo.yaml").write_text(PLAN_OVERRIDE.replace("[TMN-BENCHMARK]", "[TMN-BENCHMARKS]"))
    with pytest.raises(RuleErrors) as info:
        load_library(rules_dir)
    e = info.value.errors[0]
    assert (e.code, e.suggestion, e.line) == ("UR031", "TMN-BENCHMARK", 7)


@pytest.mark.parametrize("threshold, unit", [("37.8", "[degF]"), ("1200", "/min")])
def test_a_threshold_outside_its_facts_plausible_range_names_the_unit(rules_dir, threshold, unit):
    fact = "temperature.max" if unit == "[degF]" else "heart_rate.max"
    text = GOOD.replace("fact: heart_rate.max", f"fact: {fact}").replace("gt: 140", f"gt: {threshold}")
    [e] = errors_of(rules_dir, "demo.yaml", text)
    assert (e.code, e.line, e.column) == ("UR025", 12, 9)  # at the threshold itself
    assert unit in e.message and threshold in e.message
