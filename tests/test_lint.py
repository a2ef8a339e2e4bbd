"""The rule linter: for every code a rule file that it reports and one that it does not."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ur_engine import load_library
from ur_engine.authoring import lint as lint_module
from ur_engine.authoring.lint import CODES, Finding, lint
from ur_engine.cli import main
from ur_engine.errors import LintConfigError

RULES = Path(__file__).resolve().parents[1] / "rules"

# Findings of the default library that the rule authors have been told of; remove each one once fixed.

TESTS = """\
tests:
  - name: fast pulse
    record: {encounter: {requested_level: observation}, observations: [{code: 8867-4, value: 150}]}
    expect: {outcome: approve}
"""


def lib_with(tmp_path, text, name="demo.yaml", extra: dict | None = None):
    d = tmp_path / "rules"
    shutil.copytree(RULES, d)
    (d / name).write_text(textwrap.dedent(text))
    for other, body in (extra or {}).items():
        (d / other).write_text(textwrap.dedent(body))
    return load_library(d)


def demo(criteria: str, levels: str = "levels:\n  observation: severity\n", source: str = "405 IAC 5-33-1",
         tests: str = TESTS, more: str = "") -> str:
    """A rule file with the given criteria (YAML list items, unindented) and the rest filled in."""
    return (f"ruleset: demo\nversion: 2026.1.0\ntitle: Demo\nsource: {source}\neffective: {{from: 2026-01-01}}\n"
            f"criteria:\n{textwrap.indent(textwrap.dedent(criteria), '  ')}{levels}{more}{tests}")


def crit(cid: str, condition: str, group: str = "severity", source: str = "405 IAC 5-33-1(1)(B)",
         action: str = "") -> str:
    """One criterion; ``condition`` is YAML for its test, e.g. ``{fact: heart_rate.max, gt: 140}``."""
    entry = {"id": cid, "group": group, "text": cid, "source": source, **({"action": action} if action else {}),
             **yaml.safe_load(condition)}
    return yaml.safe_dump([entry], sort_keys=False, width=1000)


def findings(tmp_path, text, code, **kw) -> list[Finding]:
    return [f for f in lint(lib_with(tmp_path, text, **kw)) if f.code == code and f.file != "two-midnight.yaml"]


def ids(found) -> list[str]:
    return [f.rule_id for f in found]


# --- L001 never met ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("condition", [
    "all: [{fact: heart_rate.max, lt: 50}, {fact: heart_rate.max, gt: 60}]",
    "all: [{fact: heart_rate.max, lt: 50}, {fact: heart_rate.max, gte: 50}]",
    "all: [{fact: sex, eq: female}, {fact: sex, eq: male}]",
    "all: [{fact: sex, in: [female, other]}, {fact: sex, eq: male}]",
    "all: [{fact: heart_rate.max, eq: 70}, {fact: heart_rate.max, gt: 80}]",
    "all: [{fact: heart_rate.max, gt: 60}, {not: {fact: heart_rate.max, gt: 50}}]",
    "all: [{fact: treatment.oxygen, is: true}, {fact: treatment.oxygen, is: false}]",
    "any: [{all: [{fact: heart_rate.max, lt: 50}, {fact: heart_rate.max, gt: 60}]}, "
    "{all: [{fact: sex, eq: female}, {fact: sex, ne: female}]}]",
])
def test_L001_a_criterion_that_can_never_be_met(tmp_path, condition):
    found = findings(tmp_path, demo(crit("DEMO-A", condition)), "L001")
    assert ids(found) == ["DEMO-A"] and found[0].level == "error"
    # At the criterion (line 7) or at the clashing test below it, never before or past the criterion.
    assert "can never be met" in found[0].message and 7 <= found[0].line <= 7 + condition.count("fact:") * 2 + 6


def test_L001_points_at_the_test_that_clashes_not_at_the_criterion(tmp_path):
    text = demo("""\
        - id: DEMO-A
          group: severity
          text: Slow and fast at once
          source: 405 IAC 5-33-1(1)(B)
          all:
            - {fact: heart_rate.min, lt: 50}
            - {fact: respiratory_rate.max, gt: 30}
            - {fact: heart_rate.min, gt: 60}
        """)
    found = findings(tmp_path, text, "L001")
    line = text.splitlines()[found[0].line - 1]
    assert (found[0].line, line.strip()) == (14, "- {fact: heart_rate.min, gt: 60}")


def test_L003_points_at_the_bound_that_adds_nothing(tmp_path):
    text = demo("""\
        - id: DEMO-A
          group: severity
          text: Fast pulse
          source: 405 IAC 5-33-1(1)(B)
          any:
            - {fact: heart_rate.max, gt: 140}
            - {fact: respiratory_rate.max, gt: 30}
            - {fact: heart_rate.max, gt: 150}
        """)
    found = findings(tmp_path, text, "L003")
    assert text.splitlines()[found[0].line - 1].strip() == "- {fact: heart_rate.max, gt: 150}"


def test_L001_names_the_clash(tmp_path):
    found = findings(tmp_path, demo(crit("DEMO-A", "all: [{fact: heart_rate.max, lt: 50}, "
                                                   "{fact: heart_rate.max, gt: 60}]")), "L001")
    assert str(found[0]) == ("demo.yaml:14 L001 error: DEMO-A can never be met: heart_rate.max lt 50 and "
                             "heart_rate.max gt 60")


def test_L001_a_dead_part_of_a_criterion_that_can_be_met(tmp_path):
    cond = ("any: [{fact: respiratory_rate.max, gt: 30}, "
            "{all: [{fact: heart_rate.max, lt: 50}, {fact: heart_rate.max, gt: 60}]}]")
    found = findings(tmp_path, demo(crit("DEMO-A", cond)), "L001")
    assert ids(found) == ["DEMO-A"] and found[0].message.startswith("part of DEMO-A")


@pytest.mark.parametrize("condition", [
    "all: [{fact: heart_rate.max, gt: 50}, {fact: heart_rate.max, lt: 60}]",
    "all: [{fact: heart_rate.max, lte: 50}, {fact: heart_rate.max, gte: 50}]",
    "all: [{fact: heart_rate.min, lt: 50}, {fact: heart_rate.max, gt: 60}]",
    "all: [{fact: sex, in: [female, other]}, {fact: sex, ne: female}]",
    "all: [{fact: heart_rate.max, gt: 60}, {not: {fact: heart_rate.max, gt: 70}}]",
    "not: {all: [{fact: heart_rate.max, lt: 50}, {fact: heart_rate.max, gt: 60}]}",
])
def test_L001_not_reported_for_a_criterion_that_can_be_met(tmp_path, condition):
    assert findings(tmp_path, demo(crit("DEMO-A", condition)), "L001") == []


# --- L002 shadowed ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("a, b", [
    ("{fact: heart_rate.max, gt: 150}", "{fact: heart_rate.max, gt: 140}"),
    ("{fact: heart_rate.min, lt: 40}", "{fact: heart_rate.min, lt: 50}"),
    ("{fact: heart_rate.min, lt: 40}", "any: [{fact: heart_rate.min, lte: 40}, {fact: heart_rate.max, gt: 140}]"),
    ("any: [{fact: heart_rate.min, lt: 40}, {fact: heart_rate.max, gt: 160}]",
     "any: [{fact: heart_rate.min, lt: 50}, {fact: heart_rate.max, gt: 140}]"),
    ("all: [{fact: heart_rate.max, gt: 150}, {fact: treatment.oxygen, is: true}]", "{fact: heart_rate.max, gt: 140}"),
    ("{fact: sex, eq: female}", "{fact: sex, in: [female, other]}"),
])
def test_L002_a_criterion_met_whenever_it_is_shadows_it(tmp_path, a, b):
    found = findings(tmp_path, demo(crit("DEMO-A", a) + crit("DEMO-B", b)), "L002")
    assert ids(found) == ["DEMO-A"] and "shadowed by DEMO-B" in found[0].message
    assert found[0].level == "warning"


def test_L002_identical_conditions_are_reported_once_on_the_later(tmp_path):
    cond = "any: [{fact: heart_rate.min, lt: 50}, {fact: heart_rate.max, gt: 140}]"
    found = findings(tmp_path, demo(crit("DEMO-A", cond) + crit("DEMO-B", cond)), "L002")
    assert ids(found) == ["DEMO-B"] and "the same condition as DEMO-A" in found[0].message


@pytest.mark.parametrize("a, b, group_b, action_a", [
    ("{fact: heart_rate.max, gt: 150}", "{fact: heart_rate.max, gt: 140}", "other", ""),
    ("{fact: heart_rate.max, gt: 150}", "{fact: heart_rate.max, lt: 140}", "severity", ""),
    ("{fact: heart_rate.max, gt: 150}", "{fact: heart_rate.max, gt: 140}", "severity", "pend"),
    ("any: [{fact: heart_rate.min, lt: 40}, {fact: heart_rate.max, gt: 160}]",
     "{fact: heart_rate.min, lt: 50}", "severity", ""),
])
def test_L002_not_reported_across_groups_without_implication_or_for_a_pend(tmp_path, a, b, group_b, action_a):
    text = demo(crit("DEMO-A", a, action=action_a) + crit("DEMO-B", b, group=group_b),
                levels="levels:\n  observation: {any: [severity, other]}\n" if group_b == "other" else
                "levels:\n  observation: severity\n")
    assert findings(tmp_path, text, "L002") == []


# --- L003 overlapping ranges ------------------------------------------------------------------------------

@pytest.mark.parametrize("condition, extra", [
    ("any: [{fact: heart_rate.max, gt: 140}, {fact: heart_rate.max, gt: 150}]", "heart_rate.max gt 150"),
    ("any: [{fact: heart_rate.min, lte: 40}, {fact: heart_rate.min, lt: 50}]", "heart_rate.min lte 40"),
    ("all: [{fact: heart_rate.max, gt: 140}, {fact: heart_rate.max, gte: 150}]", "heart_rate.max gt 140"),
])
def test_L003_a_redundant_bound_inside_one_any_or_all(tmp_path, condition, extra):
    found = findings(tmp_path, demo(crit("DEMO-A", condition)), "L003")
    assert ids(found) == ["DEMO-A"] and f"'{extra}' adds nothing" in found[0].message


def band(cid, lo_op, lo, hi_op, hi, fact="expected_midnights"):
    return crit(cid, f"all: [{{fact: {fact}, {lo_op}: {lo}}}, {{fact: {fact}, {hi_op}: {hi}}}]")


def test_L003_overlapping_bands(tmp_path):
    found = findings(tmp_path, demo(band("DEMO-A", "gte", 0, "lt", 5) + band("DEMO-B", "gte", 3, "lt", 8)), "L003")
    assert ids(found) == ["DEMO-B"]
    assert found[0].message == "DEMO-B band [3, 8) of expected_midnights overlaps DEMO-A band [0, 5) on [3, 5)"


def test_L003_bands_touching_at_a_closed_end_overlap(tmp_path):
    found = findings(tmp_path, demo(band("DEMO-A", "gte", 0, "lte", 2) + band("DEMO-B", "gte", 2, "lt", 8)), "L003")
    assert ids(found) == ["DEMO-B"] and found[0].message.endswith("on 2")


@pytest.mark.parametrize("text", [
    demo(crit("DEMO-A", "any: [{fact: heart_rate.min, lt: 50}, {fact: heart_rate.max, gt: 140}]")),
    demo(crit("DEMO-A", "any: [{fact: heart_rate.max, lt: 50}, {fact: heart_rate.max, gt: 140}]")),
    demo(band("DEMO-A", "gte", 0, "lt", 2) + band("DEMO-B", "gte", 2, "lt", 6)),
    demo(band("DEMO-A", "gte", 0, "lt", 5) + band("DEMO-B", "gte", 3, "lt", 8, fact="heart_rate.max")),
])
def test_L003_not_reported_without_overlap(tmp_path, text):
    assert findings(tmp_path, text, "L003") == []


# --- L004 gapped ranges -----------------------------------------------------------------------------------

def test_L004_a_gap_between_consecutive_bands(tmp_path):
    text = demo(band("DEMO-B", "gte", 3, "lt", 6) + band("DEMO-A", "gte", 0, "lt", 2)
                + band("DEMO-C", "gte", 6, "lt", 9))
    found = findings(tmp_path, text, "L004")
    assert ids(found) == ["DEMO-B"] and found[0].level == "info"
    assert found[0].message == "expected_midnights values [2, 3) fall between DEMO-A band [0, 2) and DEMO-B band [3, 6)"


def test_L004_a_single_point_gap(tmp_path):
    found = findings(tmp_path, demo(band("DEMO-A", "gte", 0, "lt", 2) + band("DEMO-B", "gt", 2, "lt", 6)), "L004")
    assert ids(found) == ["DEMO-B"] and "values 2 fall between" in found[0].message


@pytest.mark.parametrize("text", [
    demo(band("DEMO-A", "gte", 0, "lt", 2) + band("DEMO-B", "gte", 2, "lt", 6)),
    demo(band("DEMO-A", "gte", 0, "lte", 2) + band("DEMO-B", "gt", 2, "lt", 6)),
    demo(band("DEMO-A", "gte", 0, "lt", 10) + band("DEMO-B", "gte", 2, "lt", 4) + band("DEMO-C", "gte", 6, "lt", 12)),
])
def test_L004_not_reported_for_contiguous_bands(tmp_path, text):
    assert findings(tmp_path, text, "L004") == []


# --- L005 unused facts ------------------------------------------------------------------------------------

def test_L005_unused_facts_are_reported_per_definition(tmp_path):
    found = findings(tmp_path, demo(crit("DEMO-A", "{fact: heart_rate.max, gt: 140}")), "L005")
    messages = [f.message for f in found]
    assert all(f.file == "facts.yaml" and f.line is None for f in found)
    assert any(m.startswith("observation 'bnp' ") for m in messages)
    assert any(m.startswith("fact 'treatment.dialysis' (treatments)") for m in messages)
    assert any(m.startswith("fact 'admit_source' (fields)") for m in messages)
    assert not any("'heart_rate'" in m or "'diastolic_bp'" in m for m in messages)


def test_L005_a_fact_any_criterion_uses_is_not_reported(tmp_path):
    text = demo(crit("DEMO-A", "any: [{fact: paco2.last, gt: 50}, {fact: treatment.dialysis, is: true}, "
                               "{fact: sex, eq: female}]"))
    messages = [f.message for f in findings(tmp_path, text, "L005")]
    assert not any("paco2" in m or "dialysis" in m or "'sex'" in m for m in messages)
    assert any("'bnp'" in m for m in messages)


# --- L006 unused valuesets --------------------------------------------------------------------------------

VALUESET = """\
valueset: demo-sepsis
title: Demo sepsis codes
source: ICD-10-CM 2026
system: icd10cm
match: prefix
codes:
  - {code: A41}
"""


def test_L006_a_valueset_nothing_refers_to(tmp_path):
    found = findings(tmp_path, demo(crit("DEMO-A", "{fact: heart_rate.max, gt: 140}")), "L006",
                     extra={"valuesets/demo-sepsis.yaml": VALUESET})
    assert [(f.message, f.file, f.line) for f in found] == [
        ("valueset 'demo-sepsis' is not used by any fact or rule set", None, None)]


def test_L006_a_valueset_used_by_applies_or_a_fact_is_not_reported(tmp_path):
    text = demo(crit("DEMO-A", "{fact: heart_rate.max, gt: 140}"), more="applies: {diagnoses: [demo-sepsis]}\n")
    assert findings(tmp_path, text, "L006", extra={"valuesets/demo-sepsis.yaml": VALUESET}) == []
    assert [f for f in lint(load_library(RULES)) if f.code == "L006"] == []  # inpatient-only: a procedure fact


# --- L007 unreachable levels ------------------------------------------------------------------------------

def test_L007_a_level_whose_group_can_never_be_met(tmp_path):
    text = demo(crit("DEMO-A", "{fact: heart_rate.max, gt: 140}")
                + crit("DEMO-B", "all: [{fact: heart_rate.max, lt: 50}, {fact: heart_rate.max, gt: 60}]",
                       group="dead"),
                levels="levels:\n  observation: severity\n  inpatient: {all: [severity, dead]}\n")
    found = findings(tmp_path, text, "L007")
    assert [(f.message, f.line) for f in found] == [
        ("demo: level 'inpatient' can never hold: no criterion of group 'dead' can be met", 1)]


def test_L007_a_gate_on_a_level_no_rule_set_supports(tmp_path):
    text = demo(crit("DEMO-A", "{fact: heart_rate.max, gt: 140}"), more="requires:\n  home: severity\n")
    found = findings(tmp_path, text, "L007")
    assert [f.message for f in found] == ["demo gates 'home' but no rule set lists it under levels"]


def test_L007_not_reported_when_levels_and_gates_can_hold(tmp_path):
    text = demo(crit("DEMO-A", "{fact: heart_rate.max, gt: 140}")
                + crit("DEMO-B", "all: [{fact: heart_rate.max, lt: 50}, {fact: heart_rate.max, gt: 60}]",
                       group="dead"),
                levels="levels:\n  observation: {any: [severity, dead]}\n", more="requires:\n  inpatient: severity\n")
    assert findings(tmp_path, text, "L007") == []


# --- L008 weak sources ------------------------------------------------------------------------------------

def test_L008_sources_without_a_section_number_or_year(tmp_path):
    text = demo(crit("DEMO-A", "{fact: heart_rate.max, gt: 140}", source="clinical judgement"),
                source="Local policy")
    found = findings(tmp_path, text, "L008")
    assert [(f.line, f.rule_id) for f in found] == [(1, None), (7, "DEMO-A")]


def test_L008_not_reported_for_sources_with_a_citation(tmp_path):
    text = demo(crit("DEMO-A", "{fact: heart_rate.max, gt: 140}", source="Nates 2016"), source="42 CFR 412.3(d)")
    assert findings(tmp_path, text, "L008") == []


# --- L009 untested --------------------------------------------------------------------------------------

def test_L009_a_rule_file_without_tests(tmp_path):
    found = findings(tmp_path, demo(crit("DEMO-A", "{fact: heart_rate.max, gt: 140}"), tests=""), "L009")
    assert [str(f) for f in found] == ["demo.yaml:1 L009 warning: rule set demo has no tests"]


def test_L009_not_reported_for_a_tested_rule_file(tmp_path):
    assert findings(tmp_path, demo(crit("DEMO-A", "{fact: heart_rate.max, gt: 140}")), "L009") == []


# --- the library as a whole, levels, documentation --------------------------------------------------------

@pytest.fixture(scope="module")
def default_findings():
    return lint(load_library(RULES))


def test_the_default_library_has_no_logic_findings(default_findings):
    found = {(f.code, f.file, f.message) for f in default_findings if f.code in ("L001", "L002", "L003", "L007")}
    assert found == set()


def test_the_default_library_is_tested_and_cited(default_findings):
    assert not [f for f in default_findings if f.code in ("L008", "L009")]


def test_findings_are_sorted_by_file_and_line(default_findings):
    keys = [(f.file is None, f.file or "", f.line or 0) for f in default_findings]
    assert keys == sorted(keys)


def test_levels_turn_codes_off_and_change_their_level(tmp_path):
    lib = lib_with(tmp_path, demo(crit("DEMO-A", "{fact: heart_rate.max, gt: 140}"), tests=""))
    assert any(f.code == "L005" for f in lint(lib))
    assert not any(f.code == "L005" for f in lint(lib, {"L005": "off"}))
    assert {f.level for f in lint(lib, {"L009": "error"}) if f.code == "L009"} == {"error"}
    assert {f.level for f in lint(lib) if f.code == "L009"} == {"warning"}


@pytest.mark.parametrize("levels, suggestion", [({"L0005": "off"}, "L005"), ({"L005": "warn"}, "warning")])
def test_unknown_codes_and_levels_are_refused_with_a_suggestion(levels, suggestion):
    with pytest.raises(LintConfigError) as caught:
        lint(load_library(RULES), levels)
    assert caught.value.code == "UR070" and caught.value.suggestion == suggestion


def test_lint_command_names_the_config_file_of_a_bad_level(tmp_path):
    d = tmp_path / "rules"
    shutil.copytree(RULES, d)
    (d / ".ur-lint.yaml").write_text("levels: {L005: fatal}\n")
    result = CliRunner().invoke(main, ["rules", "lint", str(d)])
    assert result.exit_code == 1
    assert ".ur-lint.yaml UR070 unknown level 'fatal' for L005" in result.stderr


def test_every_code_is_documented_in_the_module_docstring():
    doc = lint_module.__doc__
    for code, (level, _) in CODES.items():
        assert re.search(rf"^\| {code} \| {level} +\| \S", doc, re.M), code
    assert len(re.findall(r"^\| L\d{3} ", doc, re.M)) == len(CODES)


def test_finding_renders_without_a_line_or_file():
    assert str(Finding("L005", "warning", "m", "facts.yaml", None)) == "facts.yaml L005 warning: m"
    assert str(Finding("L006", "warning", "m", None, None)) == "L006 warning: m"


def test_lint_command_applies_the_config_and_deny_warnings(tmp_path):
    from click.testing import CliRunner

    from ur_engine.cli import main

    d = tmp_path / "rules"
    shutil.copytree(RULES, d)
    (d / ".ur-lint.yaml").write_text("levels: {L005: warning}\n")
    runner = CliRunner()
    warned = runner.invoke(main, ["rules", "lint", str(d)])
    assert warned.exit_code == 0 and "L005 warning" in warned.stdout
    assert runner.invoke(main, ["rules", "lint", "--deny-warnings", str(d)]).exit_code == 1
    (d / ".ur-lint.yaml").write_text("levels: {L005: off}\n")
    quiet = runner.invoke(main, ["rules", "lint", "--deny-warnings", "--format", "json", str(d)])
    assert quiet.exit_code == 0 and json.loads(quiet.stdout) == []
