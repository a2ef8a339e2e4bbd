"""The twelve mistakes a rule author makes most, each told at its file:line:col with the fix, all at once.

Each row copies the default library, makes one edit, runs ``ur rules check`` from the directory above the copy
and reads what it prints: the file as it can be opened from there, the line the mistake is on, and the words of
the fix.
"""

from __future__ import annotations

import re
import shutil

import pytest
from click.testing import CliRunner

from conftest import RULES
from strategies import json_paths
from ur_engine.cli import main

ADULT, PNEUMONIA, VALUESET = "adult-admission.yaml", "pneumonia.yaml", "valuesets/pneumonia.yaml"

# file, text replaced, its replacement, text on the line the error must point at, code, words of the fix
MISTAKES = [
    pytest.param(ADULT, "{fact: heart_rate.max, gt: 140}", "{fact: heart_rat.max, gt: 140}", "heart_rat.max",
                 "UR020", "did you mean 'heart_rate.max'", id="misspelt-fact"),
    pytest.param(ADULT, "{fact: temperature_oral.max, gte: 100}", "{fact: temperature_oral.max, ge: 100}", "ge: 100",
                 "UR021", "unknown key 'ge' (did you mean 'gte'?)", id="ge-for-gte"),
    pytest.param(PNEUMONIA, "diagnoses: [pneumonia]}", "diagnoses: [pneumonai]}", "pneumonai",
                 "UR040", "did you mean 'pneumonia'", id="unknown-valueset"),
    pytest.param(ADULT, "{fact: heart_rate.max, gt: 140}", "{fact: heart_rate.max, gt: '140'}", "'140'",
                 "UR023", "'gt' needs a number", id="string-threshold"),
    pytest.param(ADULT, "  - id: SI-BP\n", "  - id: SI-PULSE\n", "SI-PULSE\n    group: severity\n    text: Systolic",
                 "UR010", "give each criterion its own id", id="duplicated-id"),
    pytest.param(ADULT, "    source: 405 IAC 5-33-1(1)(B)\n", "", "- id: SI-PULSE",
                 "UR004", "add 'source:' to this criterion", id="missing-source"),
    pytest.param(ADULT, "{fact: temperature_oral.max, gte: 100}", "{fact: temperature_oral.max, gte: 37.8}", "37.8",
                 "UR025", "write the threshold in [degF]", id="celsius-on-fahrenheit"),
    pytest.param(ADULT, "applies: {age: {min: 18}", "applies: {age: {min: 65, max: 18}", "max: 18",
                 "UR032", "min 65 above max 18", id="contradictory-age-bounds"),
    pytest.param(ADULT, "    source: 405 IAC 5-33-1(1)(B)\n", "    sorce: 405 IAC 5-33-1(1)(B)\n", "sorce:",
                 "UR021", "unknown key 'sorce' (did you mean 'source'?)", id="misspelt-key"),
    pytest.param(ADULT, "    source: 405 IAC 5-33-1(1)(B)\n", "\tsource: 405 IAC 5-33-1(1)(B)\n", "\tsource",
                 "UR001", "YAML does not allow tabs for indentation: use spaces", id="tab"),
    pytest.param(ADULT, "    text: Pulse below 50 or above 140 per minute\n",
                 "    text: Pulse: below 50 or above 140 per minute\n", ": below 50",
                 "UR001", 'put the value in quotes, text: "Pulse: below 50 or above 140 per minute"', id="colon"),
    pytest.param(VALUESET, '{code: J15, text: "Bacterial pneumonia, not elsewhere classified"}',
                 "{code: J15, text: Bacterial pneumonia, not elsewhere classified}", "not elsewhere classified}",
                 "UR001", 'put the whole value in quotes, text: "Bacterial pneumonia, not elsewhere classified"',
                 id="unquoted-comma"),
]


@pytest.fixture()
def rules_copy(tmp_path, monkeypatch):
    """A copy of the default library at ./rules, the command running in its parent directory."""
    shutil.copytree(RULES, tmp_path / "rules")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "rules"


def edit(rules_copy, name: str, old: str, new: str) -> str:
    path = rules_copy / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {name}"
    text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    return text


def where(text: str, marker: str) -> tuple[int, int]:
    """Line and column (1-based) where ``marker`` starts in ``text``; a marker that spans lines counts its first."""
    at = text.index(marker)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


def check(*args: str):
    return CliRunner().invoke(main, ["rules", "check", *args])


@pytest.mark.parametrize("name, old, new, marker, code, fix", MISTAKES)
def test_each_mistake_is_told_at_its_line_with_its_fix(rules_copy, name, old, new, marker, code, fix):
    text = edit(rules_copy, name, old, new)
    line, column = where(text, marker)
    res = check("rules")
    assert res.exit_code == 1
    told = [e for e in res.stderr.splitlines() if re.match(r"\S+:\d+(:\d+)? UR\d{3} ", e)]
    assert len(told) == 1, res.stderr
    location, got_code = told[0].split(" ")[:2]
    file, got_line, got_column = location.split(":")
    assert (file, int(got_line), got_code) == (f"rules/{name}", line, code), told[0]
    assert fix in told[0]
    if code != "UR004":  # a missing key has no column of its own: the criterion's first key stands for it
        assert int(got_column) >= column
    assert "Traceback" not in res.output


def test_every_mistake_of_a_file_is_reported_in_one_run(rules_copy):
    """Five mistakes in one file, a misspelt top-level key among them: none hides the others."""
    edit(rules_copy, ADULT, "title: Adult", "titel: Adult")
    edit(rules_copy, ADULT, "applies: {age: {min: 18}", "applies: {age: {min: 65, max: 18}")
    edit(rules_copy, ADULT, "    source: 405 IAC 5-33-1(1)(B)\n", "    sorce: 405 IAC 5-33-1(1)(B)\n")
    edit(rules_copy, ADULT, "{fact: sodium.min, lt: 123}", "{fact: sodum.min, lt: 123}")
    text = edit(rules_copy, ADULT, "  - id: SI-SIGHT-HEARING", "  - id: SI-BP")
    res = check("rules")
    told = re.findall(r"^rules/adult-admission\.yaml:(\d+):\d+ (UR\d{3}) ", res.stderr, re.M)
    expected = [(where(text, "titel")[0], "UR004"), (where(text, "max: 18")[0], "UR032"),
                (where(text, "sorce")[0], "UR021"), (where(text, "SI-BP\n    group: severity\n    text: Acute")[0],
                                                     "UR010"), (where(text, "sodum")[0], "UR020")]
    assert [(int(n), code) for n, code in told] == expected, res.stderr
    assert "5 error(s)" in res.stderr


def test_every_yaml_mistake_with_a_mechanical_fix_is_told_in_one_run(rules_copy):
    """Tabs and values to quote: the file is read again with each fix made, so the next one is found too."""
    edit(rules_copy, ADULT, "    text: Pulse below 50 or above 140 per minute\n",
         "    text: Pulse: below 50 or above 140 per minute\n")
    edit(rules_copy, ADULT, "    source: 405 IAC 5-33-1(1)(B)\n", "\tsource: 405 IAC 5-33-1(1)(B)\n")
    text = edit(rules_copy, ADULT, "  - id: SI-BP\n    group:", "  - id: SI-BP\n\tgroup:")
    res = check("rules")
    told = re.findall(r"^rules/adult-admission\.yaml:(\d+):\d+ (UR\d{3}) (.*)$", res.stderr, re.M)
    assert [(int(n), fix.split(":")[0]) for n, _, fix in told] == [
        (where(text, ": below 50")[0], "a colon followed by a space inside a value starts a new key"),
        (where(text, "\tsource")[0], "YAML does not allow tabs for indentation"),
        (where(text, "\tgroup")[0], "YAML does not allow tabs for indentation")], res.stderr
    assert "3 error(s)" in res.stderr


def test_after_a_yaml_mistake_the_parser_cannot_see_past_only_that_one_is_told(rules_copy):
    """An unclosed quote swallows what follows: a tab below it is not reported, nor anything invented."""
    edit(rules_copy, ADULT, "    source: 405 IAC 5-33-1(1)(B)\n", "\tsource: 405 IAC 5-33-1(1)(B)\n")
    text = edit(rules_copy, ADULT, "    text: Pulse below 50 or above 140 per minute\n",
                "    text: 'Pulse below 50 or above 140 per minute\n")
    res = check("rules")
    told = re.findall(r"^rules/adult-admission\.yaml:(\d+):\d+ (UR\d{3}) ", res.stderr, re.M)
    assert [(int(n), code) for n, code in told] == [(where(text, "'Pulse below")[0], "UR001")], res.stderr


def test_a_broken_valueset_file_does_not_make_every_reference_to_it_an_error(rules_copy):
    edit(rules_copy, VALUESET, '{code: J15, text: "Bacterial pneumonia, not elsewhere classified"}',
         "{code: J15, text: Bacterial pneumonia, not elsewhere classified}")
    res = check("rules")
    assert "1 error(s)" in res.stderr and "UR040" not in res.stderr


def test_paths_are_shown_from_where_the_command_ran(rules_copy, monkeypatch):
    edit(rules_copy, ADULT, "{fact: heart_rate.max, gt: 140}", "{fact: heart_rat.max, gt: 140}")
    work = rules_copy.parent / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    res = check("../rules")
    assert re.search(r"^\.\./rules/adult-admission\.yaml:27:16 UR020 ", res.stderr, re.M), res.stderr
    absolute = check(str(rules_copy))
    assert f"{rules_copy}/adult-admission.yaml:27:16 UR020 " in absolute.stderr
    assert "    ^" in res.stderr  # the caret still finds the line through the shown path


def test_json_keeps_the_file_name_inside_the_library_for_editors(rules_copy):
    edit(rules_copy, ADULT, "{fact: heart_rate.max, gt: 140}", "{fact: heart_rat.max, gt: 140}")
    res = check("--format", "json", "rules")
    assert '"file": "adult-admission.yaml"' in res.stdout


def test_rules_test_names_a_failing_test_from_where_the_command_ran(rules_copy):
    edit(rules_copy, ADULT, "met: [SI-PULSE, IS-IV], not_met", "met: [SI-BP, IS-IV], not_met")
    res = CliRunner().invoke(main, ["rules", "test", "rules"])
    assert res.exit_code == 1
    assert re.search(r"^FAIL rules/adult-admission\.yaml:\d+ adult-admission: tachycardia", res.output, re.M)


def test_lint_prints_info_findings_only_when_asked(rules_copy):
    (rules_copy / "bands.yaml").write_text("""\
ruleset: bands
version: 2026.1.0
title: Bands with a gap
source: 405 IAC 5-33-1
effective: {from: 2026-01-01}
criteria:
  - id: BANDS-LOW
    group: severity
    text: Pulse 50 to 60
    source: 405 IAC 5-33-1(1)(B)
    all: [{fact: heart_rate.max, gte: 50}, {fact: heart_rate.max, lt: 60}]
  - id: BANDS-HIGH
    group: severity
    text: Pulse 70 to 80
    source: 405 IAC 5-33-1(1)(B)
    all: [{fact: heart_rate.max, gte: 70}, {fact: heart_rate.max, lt: 80}]
levels:
  observation: severity
tests:
  - name: fast pulse
    record: {encounter: {requested_level: observation}, observations: [{code: 8867-4, value: 75}]}
    expect: {outcome: approve}
""")
    quiet = CliRunner().invoke(main, ["rules", "lint", "rules"])
    loud = CliRunner().invoke(main, ["rules", "lint", "-v", "rules"])
    assert " info: " not in quiet.stdout and "(-v shows them)" in quiet.stderr
    assert re.search(r"^rules/bands\.yaml:\d+ L004 info: heart_rate\.max values \[60", loud.stdout, re.M)


def test_lint_points_a_contradiction_at_the_line_of_the_clashing_test(rules_copy):
    text = edit(rules_copy, ADULT, "      - {fact: sodium.max, gt: 156}\n",
                "      - {fact: sodium.max, gt: 156}\n      - all: [{fact: sodium.min, lt: 120},\n"
                "              {fact: sodium.min, gt: 130}]\n")
    res = CliRunner().invoke(main, ["rules", "lint", "rules"])
    line = where(text, "{fact: sodium.min, gt: 130}")[0]
    assert re.search(rf"^rules/adult-admission\.yaml:{line} L001 error: part of SI-SODIUM can never be met",
                     res.stdout, re.M), res.stdout


@pytest.mark.parametrize("text, line, column, fix", [
    ("a:\n  b: 1\n   c: 2\n", 3, 4, "keys of one mapping start at the same column"),
    ("a: [1, 2\nb: 3\n", 2, 2, "the '[' at line 1 is not closed: add ']'"),
    ("a: {b: 1 # one}\n", 2, 1, "a '#' inside it starts a comment"),
    ("a: 'abc\nb: 3\n", 1, 4, "the quote opened at line 1 is never closed"),
    ("a: 'it's'\n", 1, 8, "write it twice ('')"),
    ("a: {text: Time: 5}\n", 1, 15, "a colon followed by a space ends a key"),
    ("a: 1\nthis is text\nb: 2\n", 2, 1, "add the missing ':'"),
    ("a:\n  - 1\n  b: 2\n", 3, 3, "start each list item with '- '"),
    ("a: @home\n", 1, 4, "a value cannot start with '@': put the value in quotes"),
    ("a: *x\n", 1, 4, "read as a reference: put the value in quotes"),
], ids=["indentation", "unclosed-bracket", "comment-in-flow", "unclosed-quote", "quote-in-quotes", "colon-in-flow",
        "no-colon", "list-and-key", "at-sign", "asterisk"])
def test_yaml_errors_are_told_as_their_fix(text, line, column, fix):
    from ur_engine.errors import YamlSyntaxError
    from ur_engine.rules.source import parse

    with pytest.raises(YamlSyntaxError) as info:
        parse("demo.yaml", text)
    e = info.value
    assert (e.line, e.column) == (line, column) and fix in e.message, str(e)
    assert "YAML syntax:" not in e.message  # the parser's own words only when nothing better is known


def test_a_key_given_null_or_nothing_in_braces_is_not_taken_for_a_split_value():
    from ur_engine.rules.source import parse

    assert parse("demo.yaml", "a: {b: null, c: ~, d: }\n").problems == []


# --- no mistake crashes the check -----------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import examples  # noqa: E402
from ur_engine.errors import RuleError, RuleErrors  # noqa: E402
from ur_engine.intake.rule_files import read_sources  # noqa: E402
from ur_engine.rules.library import Source, load  # noqa: E402

SOURCES = read_sources(RULES)
EDITED = ("adult-admission.yaml", "pneumonia.yaml", "valuesets/pneumonia.yaml", "facts.yaml")
TYPED = ["\t", ":", ": ", ",", "'", '"', "[", "]", "{", "}", "#", "-", " ", "\n", "*", "&", "!", "|", ">", "@",
         "`", "%", "?"]


def outcome_of(name: str, text: str) -> list[RuleError]:
    """The errors of the library with ``name`` replaced by ``text`` (none when it loads)."""
    try:
        load([Source(s.name, text) if s.name == name else s for s in SOURCES])
    except RuleErrors as exc:
        return exc.errors
    return []


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(EDITED), data=st.data())
def test_a_stray_character_anywhere_is_an_error_with_a_place_never_a_crash(name, data):
    text = next(s.text for s in SOURCES if s.name == name)
    for _ in range(data.draw(st.integers(1, 2))):
        at = data.draw(st.integers(0, len(text) - 1))
        if data.draw(st.booleans()):
            text = text[:at] + data.draw(st.sampled_from(TYPED)) + text[at:]
        else:
            text = text[:at] + text[at + data.draw(st.integers(1, 3)):]
    for e in outcome_of(name, text):
        assert e.file and e.line, str(e)


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 500), st.text(max_size=8),
                   st.sampled_from(["heart_rate.max", "severity", "2026-13-45", "gt"]),
                   st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=2),
                   st.dictionaries(st.sampled_from(["fact", "any", "all", "min", "max", "x"]),
                                   st.one_of(st.integers(0, 99), st.text(max_size=3)), max_size=2))


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(EDITED), data=st.data())
def test_any_part_of_a_rule_file_of_the_wrong_shape_is_an_error_never_a_crash(name, data):
    import yaml

    doc = yaml.safe_load(next(s.text for s in SOURCES if s.name == name))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(list(json_paths(doc))))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = data.draw(VALUES)
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=data.draw(st.booleans()))
    for e in outcome_of(name, text):
        assert e.file and e.line, str(e)


def test_a_broken_criterion_does_not_hide_a_broken_rule_test_record(rules_copy):
    edit(rules_copy, ADULT, "{fact: heart_rate.max, gt: 140}", "{fact: heart_rat.max, gt: 140}")
    text = edit(rules_copy, ADULT, "observations: [{code: 8867-4, value: 150}]",
                "observations: [{code: 8867-4, valeu: 150}]")
    res = check("rules")
    assert re.search(rf"^rules/adult-admission\.yaml:{where(text, 'heart_rat.max')[0]}:\d+ UR020 ", res.stderr, re.M)
    assert re.search(rf"^rules/adult-admission\.yaml:{where(text, 'valeu')[0]}:\d+ UR060 .*valeu", res.stderr,
                     re.M), res.stderr


def test_two_misspelt_keys_of_one_mapping_are_both_named(rules_copy):
    edit(rules_copy, ADULT, "title: Adult", "titel: Adult")
    text = edit(rules_copy, ADULT, "source: Indiana", "sorce: Indiana")
    res = check("rules")
    told = re.findall(r"^rules/adult-admission\.yaml:(\d+):1 UR004 (.*)$", res.stderr, re.M)
    assert told == [(str(where(text, "titel")[0]), "unknown field 'titel' (did you mean 'title'?)"),
                    (str(where(text, "sorce")[0]), "unknown field 'sorce' (did you mean 'source'?)")], res.stderr


def test_a_broken_fact_of_facts_yaml_hides_neither_the_rule_files_errors_nor_repeats_itself_in_them(rules_copy):
    facts = edit(rules_copy, "facts.yaml", '  heart_rate: {text: Heart rate, codes: ["8867-4"], unit: /min,',
                 '  heart_rate: {text: Heart rate, codes: ["8867-4"], unti: /min,')
    text = edit(rules_copy, ADULT, "{fact: sodium.min, lt: 123}", "{fact: sodum.min, lt: 123}")
    res = check("rules")
    told = re.findall(r"^(rules/\S+):(\d+):\d+ (UR\d+) ", res.stderr, re.M)
    assert told == [(f"rules/{ADULT}", str(where(text, "sodum")[0]), "UR020"),
                    ("rules/facts.yaml", str(where(facts, "unti")[0]), "UR004")], res.stderr
    assert "heart_rate" not in res.stderr.split("unti")[0]  # no rule using heart_rate is reported for it
