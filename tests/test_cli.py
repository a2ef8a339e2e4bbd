"""The ur command: review files and streams, check and test rule libraries; errors without tracebacks."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import click
import pytest

from ur_engine.cli import main
from conftest import ROOT, RULES, make_record, obs

EXAMPLES = ROOT / "examples"


def test_review_one_json_file_prints_one_decision(runner):
    res = runner.invoke(main, ["review", str(EXAMPLES / "pneumonia.json")])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert (d["record_id"], d["outcome"]) == ("stay-0001", "approve")


def test_review_ndjson_gives_one_line_per_record_in_order(runner):
    res = runner.invoke(main, ["review", str(EXAMPLES / "admissions.ndjson")])
    assert res.exit_code == 0, res.output
    ids = [json.loads(line)["record_id"] for line in res.output.splitlines()]
    expected = [json.loads(line)["id"] for line in (EXAMPLES / "admissions.ndjson").read_text().splitlines()]
    assert ids == expected


def test_summary_prints_one_readable_line_per_record(runner):
    res = runner.invoke(main, ["review", "--summary", str(EXAMPLES / "admissions.ndjson")])
    lines = res.output.splitlines()
    assert res.exit_code == 0 and len(lines) == 8
    assert lines[1].split()[:5] == ["stay-0002", "pend", "inpatient", "→", "inpatient"]  # Medicare two-midnight: payment, not setting


def test_review_reads_standard_input(runner):
    lines = "\n".join(json.dumps(make_record(id=f"in-{i}", observations=[obs("8867-4", 150)])) for i in range(3))
    res = runner.invoke(main, ["review", "-"], input=lines + "\n")
    assert res.exit_code == 0
    assert [json.loads(x)["outcome"] for x in res.output.splitlines()] == ["alternative_setting"] * 3


def test_invalid_record_in_a_stream_gives_an_error_line_and_exit_2(runner):
    good = json.dumps(make_record(id="good"))
    bad = json.dumps(make_record(id="bad", patient={"age": "old"}))
    res = runner.invoke(main, ["review", "-"], input=f"{good}\n{bad}\n{good}\n")
    assert res.exit_code == 2
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert [x.get("record_id") for x in lines] == ["good", "bad", "good"]
    assert lines[1]["outcome"] == "error" and lines[1]["errors"][0]["path"] == "$.patient.age"


def test_invalid_single_record_exits_2_naming_the_field(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(make_record(encounter={"requested_level": "inpatiant"}), indent=2))
    res = subprocess.run([sys.executable, "-m", "ur_engine.cli", "review", str(path)], capture_output=True,
                         text=True, cwd=ROOT)
    assert res.returncode == 2
    assert "$.encounter.requested_level" in res.stderr and "inpatient" in res.stderr
    assert "Traceback" not in res.stderr


def test_rules_check_accepts_the_default_library(runner):
    res = runner.invoke(main, ["rules", "check", str(RULES)])
    assert res.exit_code == 0 and res.output.startswith("ok: ")


def test_rules_check_prints_every_error_with_a_caret(runner, tmp_path):
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    text = (target / "critical-care.yaml").read_text()
    (target / "critical-care.yaml").write_text(
        text.replace("fact: treatment.vasopressor", "fact: treatment.vasopresor").replace("critical: life_support",
                                                                                          "critical: life_suport"))
    res = runner.invoke(main, ["rules", "check", str(target)])
    assert res.exit_code == 1
    err = res.stderr
    assert re.search(r"critical-care.yaml:\d+:\d+ UR020 unknown fact 'treatment.vasopresor' "
                     r"\(did you mean 'treatment.vasopressor'\?\)", err)
    assert "UR030" in err and "2 error(s)" in err
    assert "\n    " + " " * 10 + "^" in err or re.search(r"\n +\^", err)
    assert "Traceback" not in err


def test_rules_test_runs_every_rule_test(runner, library):
    res = runner.invoke(main, ["rules", "test", str(RULES)])
    total = sum(len(rs.tests) for rs in library.rulesets)
    assert res.exit_code == 0, res.output
    assert res.output.strip().endswith(f"{total} passed, 0 failed")


def test_rules_check_json_lists_every_error_for_editors(runner, tmp_path):
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    path = target / "critical-care.yaml"
    path.write_text(path.read_text().replace("fact: treatment.vasopressor", "fact: treatment.vasopresor"))
    res = runner.invoke(main, ["rules", "check", "--format", "json", str(target)])
    body = json.loads(res.stdout)
    assert res.exit_code == 1 and body["ok"] is False
    assert body["errors"][0] | {"line": 0} == {"code": "UR020", "message": "unknown fact 'treatment.vasopresor'",
                                               "file": "critical-care.yaml", "line": 0, "column": 11,
                                               "suggestion": "treatment.vasopressor"}


def test_rules_test_reports_coverage_and_fails_under_a_threshold(runner, tmp_path):
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    path = target / "observation.yaml"
    text = path.read_text()
    cut = text.index("  - name: a third day in observation pends")
    end = text.index("  - name: twenty hours in observation")
    path.write_text(text[:cut] + text[end:])
    res = runner.invoke(main, ["rules", "test", str(target)])
    assert res.exit_code == 0
    assert "coverage: observation OBS-OVER-48H never met" in res.output
    pct = float(re.search(r"criterion coverage: ([\d.]+)%", res.output).group(1))
    assert pct < 100
    assert runner.invoke(main, ["rules", "test", "--fail-under", str((pct + 100) / 2), str(target)]).exit_code == 1
    assert runner.invoke(main, ["rules", "test", "--fail-under", str(pct - 1), str(target)]).exit_code == 0


def test_rules_test_reports_a_failure_with_file_and_line(runner, tmp_path):
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    path = target / "critical-care.yaml"
    path.write_text(path.read_text().replace("met: [CC-VENTILATION], not_met", "met: [CC-VASOPRESSOR], not_met"))
    res = runner.invoke(main, ["rules", "test", str(target)])
    assert res.exit_code == 1
    assert re.search(r"FAIL \S*rules/critical-care.yaml:\d+ critical-care: intubated patient", res.output)
    assert "met: expected CC-VASOPRESSOR; actual CC-VASOPRESSOR=not_met" in res.output


def _commands(group: click.Group, prefix: str = "ur"):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}"


@pytest.mark.parametrize("command", sorted(_commands(main)))
def test_every_command_is_documented_in_the_readme(command):
    assert command in (ROOT / "README.md").read_text(), f"README.md does not document `{command}`"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_the_readme_example_on_localhost(runner, tmp_path, monkeypatch):
    port = _free_port()
    # The service needs an audit store and an API key (README, "Serve the API").
    monkeypatch.setenv("UR_DATABASE_URL", f"sqlite:///{tmp_path}/audit.db")
    made = runner.invoke(main, ["keys", "create", "--role", "reviewer"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    proc = subprocess.Popen([sys.executable, "-m", "ur_engine.cli", "serve", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        body = (EXAMPLES / "pneumonia.json").read_bytes()
        for _ in range(100):
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/reviews", data=body,
                                             headers={"Content-Type": "application/json",
                                                      "Authorization": f"Bearer {key}"})
                with urllib.request.urlopen(req, timeout=5) as res:
                    assert json.load(res)["outcome"] == "approve"
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail("ur serve did not answer within 10 s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_rules_replay_reports_what_an_edit_changes(runner, tmp_path):
    candidate = tmp_path / "candidate"
    shutil.copytree(RULES, candidate)
    path = candidate / "adult-admission.yaml"
    path.write_text(path.read_text().replace("{fact: heart_rate.max, gt: 140}", "{fact: heart_rate.max, gt: 100}"))
    stays = tmp_path / "stays.ndjson"
    stays.write_text("\n".join(json.dumps(make_record(id=f"s{i}", observations=[obs("8867-4", 90 + 10 * i)]))
                               for i in range(6)) + "\n")
    html = tmp_path / "replay.html"
    res = runner.invoke(main, ["rules", "replay", "--baseline", str(RULES), "--candidate", str(candidate),
                               "--workers", "1", "--html", str(html), str(stays)])
    assert res.exit_code == 0, res.output
    # s2..s5 (110-140/min) now meet SI-PULSE; s0, s1 (90, 100/min) do not.
    assert "| pend→alternative_setting | 4 | s2, s3, s4, s5 |" in res.output
    assert "| SI-PULSE | not_met→met | 4 | s2, s3, s4, s5 |" in res.output
    assert "SI-PULSE" in html.read_text()


ADDENDUM_B = """CY 2027 OPPS Addendum B (test excerpt)
,,,,
HCPCS Code,Short Descriptor,SI,APC,Payment Rate
33510,CABG vein single,C,,
33533,CABG arterial single,C,,
0999X,Test procedure new to the list,C,,
47562,Laparoscopic cholecystectomy,J1,5361,100.00
"""


def test_valuesets_import_dates_additions_and_removals(runner, tmp_path):
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    addendum = tmp_path / "addendum-b.csv"
    addendum.write_text(ADDENDUM_B)
    vs = target / "valuesets" / "inpatient-only.yaml"
    res = runner.invoke(main, ["valuesets", "import", str(addendum), "--into", str(vs), "--effective", "2027-01-01"])
    assert res.exit_code == 0, res.output
    assert "1 added, 4 ended 2027-01-01, 2 kept" in res.output
    from datetime import date

    from ur_engine.intake.rule_files import load_library

    lib = load_library(target)  # the rewritten file still loads
    ipo = lib.valuesets["inpatient-only"]
    assert ipo.contains("0999X", date(2027, 1, 1)) and not ipo.contains("0999X", date(2026, 12, 31))
    assert ipo.contains("44140", date(2026, 12, 31)) and not ipo.contains("44140", date(2027, 1, 1))
    assert ipo.contains("33533", date(2027, 6, 1)) and not ipo.contains("47562", date(2027, 6, 1))
    assert ipo.contains("27447", date(2017, 5, 1))  # history before the import stays


def test_replay_as_of_judges_old_stays_by_todays_rules(runner, tmp_path):
    candidate = tmp_path / "candidate"
    shutil.copytree(RULES, candidate)
    path = candidate / "adult-admission.yaml"
    path.write_text(path.read_text().replace("{fact: heart_rate.max, gt: 140}", "{fact: heart_rate.max, gt: 100}"))
    old_stay = make_record(id="old", encounter={"arrival_time": "2025-06-01T09:40:00Z"},
                           observations=[{"code": "8867-4", "value": 120, "time": "2025-06-01T10:00:00Z"}])
    stays = tmp_path / "stays.ndjson"
    stays.write_text(json.dumps(old_stay) + "\n")
    args = ["rules", "replay", "--baseline", str(RULES), "--candidate", str(candidate), "--workers", "1", str(stays)]
    by_arrival = runner.invoke(main, args)
    as_of = runner.invoke(main, args + ["--as-of", "2026-03-01"])
    assert "| Changed | 0 " in by_arrival.output  # no rule set was in effect in 2025
    assert "| Changed | 1 " in as_of.output and "SI-PULSE" in as_of.output
