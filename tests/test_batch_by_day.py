"""A day-by-day batch counts escalations and de-escalations, and names the stays whose level rose after day 1."""

from __future__ import annotations

import json

import pytest

from day_support import ARRIVAL, at, vitals
from conftest import RULES, make_record
from ur_engine.batch.escalations import DayChanges
from ur_engine.batch.runner import BatchSummary, run_batch
from ur_engine.intake.rule_files import read_sources

SOURCES = read_sources(RULES)


def stay(id_: str, observations, treatments, discharge_hours: float) -> dict:
    return make_record(id=id_, encounter={"arrival_time": ARRIVAL.isoformat(), "discharge_time": at(discharge_hours)},
                       observations=observations, treatments=treatments)


# Septic shock on day 3: tachycardia on IV antibiotics (inpatient), then norepinephrine from 50 h (critical care).
LATE_ICU = stay("late-icu", [*vitals(1, pulse=146), *vitals(52, systolic=78)],
                [{"type": "iv_antibiotic", "start": at(2)}, {"type": "vasopressor", "start": at(50)}], 60)
# Ventilated for the first 40 h, then on IV antibiotics only: down from critical care on day 3.
OFF_VENT = stay("off-vent", [*vitals(1), *vitals(30), *vitals(55)],
                [{"type": "mechanical_ventilation", "start": at(1), "end": at(40)},
                 {"type": "iv_antibiotic", "start": at(1), "end": at(70)}], 72)
# Ventilated on day 1, off on day 2, back on a vasopressor on day 3: down, then up again.
RELAPSE = stay("relapse", [*vitals(1), *vitals(30), *vitals(55)],
               [{"type": "mechanical_ventilation", "start": at(1), "end": at(20)},
                {"type": "iv_antibiotic", "start": at(1), "end": at(70)},
                {"type": "vasopressor", "start": at(50), "end": at(70)}], 72)
# The same level every day: counted as a stay judged day by day, with no change.
STEADY = stay("steady", [*vitals(1, pulse=146), *vitals(30, pulse=146)],
              [{"type": "iv_antibiotic", "start": at(1), "end": at(40)}], 44)


def write(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "not json\n")
    return str(path)


@pytest.fixture(scope="module")
def stays(tmp_path_factory):
    return write(tmp_path_factory.mktemp("by_day") / "stays.ndjson", [LATE_ICU, OFF_VENT, RELAPSE, STEADY, LATE_ICU])


@pytest.mark.parametrize("trail", ["compact", "full"])
def test_escalations_are_counted_by_levels_and_by_day_from_either_trail(stays, tmp_path, trail):
    out = tmp_path / "out.ndjson"
    summary = run_batch([stays], str(out), SOURCES, workers=1, by_day=True, trail=trail).to_dict()
    written = json.loads((tmp_path / "out.ndjson.summary.json").read_text())
    assert written["by_day"] == summary["by_day"]
    by_day = summary["by_day"]
    assert by_day["stays"] == 5 and summary["errors"] == 1  # the unreadable line is no stay
    assert by_day["escalations"] == {"count": 3, "levels": {"inpatient→critical": 3}, "days": {"3": 3}}
    assert by_day["de_escalations"] == {"count": 2, "levels": {"critical→inpatient": 2}, "days": {"2": 1, "3": 1}}


def test_the_stays_whose_level_rose_after_day_1_are_counted_and_named_in_input_order(stays, tmp_path):
    summary = run_batch([stays], str(tmp_path / "out.ndjson"), SOURCES, workers=1, by_day=True).to_dict()
    late = summary["by_day"]["late_escalations"]
    # The relapse counts: its level rose on day 3, though not above day 1's. The stay taken off the ventilator
    # only fell, and the steady one never moved.
    assert late["stays"] == 3
    assert late["examples"] == [
        {"record_id": "late-icu", "day": 3, "from": "inpatient", "to": "critical"},
        {"record_id": "relapse", "day": 3, "from": "inpatient", "to": "critical"},
        {"record_id": "late-icu", "day": 3, "from": "inpatient", "to": "critical"}]


def test_a_batch_not_judged_by_day_has_no_by_day_counts(stays, tmp_path):
    summary = run_batch([stays], str(tmp_path / "out.ndjson"), SOURCES, workers=1).to_dict()
    assert "by_day" not in summary


def test_a_resumed_run_counts_the_lines_it_kept(stays, tmp_path):
    out = tmp_path / "out.ndjson"
    whole = run_batch([stays], str(out), SOURCES, workers=1, by_day=True).to_dict()
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:3]) + lines[3][:20])  # killed after three lines, mid-way through the fourth
    resumed = run_batch([stays], str(out), SOURCES, workers=1, by_day=True, resume=True).to_dict()
    assert len(out.read_bytes().splitlines()) == len(lines)
    assert resumed["by_day"] == whole["by_day"]


def test_two_workers_count_what_one_counts(stays, tmp_path):
    one = run_batch([stays], str(tmp_path / "one.ndjson"), SOURCES, workers=1, by_day=True).to_dict()
    two = run_batch([stays], str(tmp_path / "two.ndjson"), SOURCES, workers=2, chunk=2, by_day=True).to_dict()
    assert two["by_day"] == one["by_day"]


def by_day(*changes) -> dict:
    return {"until": "discharge", "truncated": False, "days": [],
            "changes": [{"day": d, "kind": k, "from": f, "to": t, "criteria": []} for d, k, f, t in changes]}


def test_parts_merge_in_input_order_and_keep_only_the_first_examples():
    first, second = DayChanges(), DayChanges()
    for i in range(8):
        first.add(f"a{i}", by_day((4, "escalation", "inpatient", "critical")))
    for i in range(8):
        second.add(f"b{i}", by_day((2, "escalation", None, "inpatient"), (12, "de-escalation", "inpatient", None)))
    first.merge(second)
    d = first.to_dict()
    assert d["late_escalations"]["stays"] == 16
    assert [e["record_id"] for e in d["late_escalations"]["examples"]] == [f"a{i}" for i in range(8)] + ["b0", "b1"]
    assert d["escalations"]["levels"] == {"inpatient→critical": 8, "none→inpatient": 8}
    assert list(d["escalations"]["days"]) == ["2", "4"]
    assert d["de_escalations"] == {"count": 8, "levels": {"inpatient→none": 8}, "days": {"12": 8}}


def test_the_summary_json_gives_back_the_same_counts(stays, tmp_path):
    summary = run_batch([stays], str(tmp_path / "out.ndjson"), SOURCES, workers=1, by_day=True)
    d = summary.to_dict()
    again = BatchSummary.from_dict(json.loads(json.dumps(d)))
    assert again.to_dict()["by_day"] == d["by_day"]
    again.merge(summary)  # counts read back add up like the live ones
    assert again.to_dict()["by_day"]["escalations"]["days"] == {"3": 6}


def test_the_closing_lines_and_the_report_say_how_many_late_escalations_were_found(stays, tmp_path, runner):
    from ur_engine.cli.main import main

    out = tmp_path / "out.ndjson"
    report = tmp_path / "report.html"
    res = runner.invoke(main, ["batch", stays, "--out", str(out), "--workers", "1", "--by-day", "--report", str(report)])
    assert res.exit_code == 2  # the unreadable line
    assert ("by day: 3 late escalation(s) in 5 stay(s), the supported level rising after day 1 "
            "(first: late-icu, day 3, inpatient → critical); 3 escalation(s), 2 de-escalation(s) in all") in res.stderr
    assert "<h2>Escalations day by day</h2>" in report.read_text()
    plain = runner.invoke(main, ["batch", stays, "--out", str(tmp_path / "plain.ndjson"), "--workers", "1",
                                 "--report", str(report)])
    assert "late escalation" not in plain.stderr and "Escalations day by day" not in report.read_text()
