"""The whole stay, day by day: each day of care judged on its own data, escalations and de-escalations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from day_support import ARRIVAL, at, vitals
from conftest import make_record
from ur_engine import admit
from ur_engine.stay_days import judge_days, review_by_day



def stay(observations, treatments, discharge_hours: float | None = 96, **changes) -> dict:
    enc = {"requested_level": "inpatient", "arrival_time": ARRIVAL.isoformat()}
    if discharge_hours is not None:
        enc["discharge_time"] = at(discharge_hours)
    return make_record(encounter=enc, observations=observations, treatments=treatments, **changes)


@pytest.fixture()
def days_of(engine):
    def judge(record):
        return judge_days(engine, admit(record, engine.library.facts))
    return judge


def test_vasopressor_started_at_50_h_escalates_to_icu_on_day_3(days_of):
    # Day 1: tachycardia on IV antibiotics (inpatient); day 3: septic shock on norepinephrine from 50 h.
    record = stay([*vitals(1, pulse=146), *vitals(30), *vitals(52, systolic=78), *vitals(80)],
                  [{"type": "iv_antibiotic", "start": at(2), "end": at(90)},
                   {"type": "vasopressor", "start": at(50), "end": at(70)}])
    result = days_of(record)
    supported = [d.supported for d in result.days]
    assert supported[0] == "inpatient"
    assert supported[2] == "critical"
    up = [c for c in result.changes if c.kind == "escalation" and c.to_level == "critical"]
    assert [(c.day, c.from_level) for c in up] == [(3, "inpatient")]
    assert "CC-VASOPRESSOR" in up[0].criteria


def test_a_stay_off_the_ventilator_on_day_3_de_escalates_from_critical(days_of):
    record = stay([*vitals(1), *vitals(30), *vitals(55)],
                  [{"type": "mechanical_ventilation", "start": at(1), "end": at(40)},
                   {"type": "iv_antibiotic", "start": at(1), "end": at(70)}], discharge_hours=72)
    result = days_of(record)
    assert [d.supported for d in result.days] == ["critical", "critical", "inpatient"]
    down = result.changes[0]
    assert (down.day, down.kind, down.from_level, down.to_level) == (3, "de-escalation", "critical", "inpatient")
    assert down.criteria == ("CC-VENTILATION",)


def test_a_day_with_no_data_is_unknown_not_unsupported(days_of):
    # Readings on days 1 and 3 only: day 2 is unknown, and day 3 is compared with day 1 across it.
    record = stay([*vitals(1, pulse=150), *vitals(60, pulse=150)],
                  [{"type": "iv_fluids", "start": at(1), "end": at(10)},
                   {"type": "iv_fluids", "start": at(58), "end": at(62)}], discharge_hours=70)
    result = days_of(record)
    day2 = result.days[1]
    assert (day2.data, day2.status, day2.supported) == (False, "unknown", None)
    assert day2.to_dict()["levels"] == {}
    assert [d.supported for d in result.days] == ["inpatient", None, "inpatient"]
    assert result.changes == ()


@pytest.mark.parametrize(("discharge", "review", "days", "until"), [
    (96, None, 4, "discharge"),      # four days of care up to the discharge
    (49, None, 3, "discharge"),      # a partial third day counts
    (None, 30, 2, "review"),         # a continued stay: up to the review
    (None, None, 3, "data"),         # neither: up to the last reading (52 h)
])
def test_the_stay_is_cut_into_days_up_to_its_end(days_of, discharge, review, days, until):
    record = stay([*vitals(1), *vitals(52)], [], discharge_hours=discharge)
    if review is not None:
        record["encounter"]["review_time"] = at(review)
    result = days_of(record)
    assert (len(result.days), result.until) == (days, until)
    assert result.days[-1].end <= ARRIVAL + timedelta(hours=24 * days)


def test_findings_count_on_the_first_day_only(days_of):
    # ECG ischemia documented once, with no time: it supports day 1, and later days cannot claim it.
    record = stay([*vitals(1), *vitals(30)], [{"type": "iv_medication", "start": at(1), "end": at(10)}],
                  discharge_hours=40, findings={"ecg_acute_ischemia": True})
    result = days_of(record)
    assert {"SI-ECG-ISCHEMIA", "AEP-ACUTE-ISCHEMIA"} <= result.days[0].all_met
    day2 = result.days[1]
    assert (day2.supported, day2.status) == (None, "unknown")  # readings that day, but the finding is not known
    assert "AEP-ACUTE-ISCHEMIA" not in day2.all_met


def test_by_day_is_in_the_decision_json_beside_the_admission_review(engine):
    record = stay([*vitals(1, pulse=146), *vitals(52, systolic=78)],
                  [{"type": "iv_antibiotic", "start": at(2)}, {"type": "vasopressor", "start": at(50)}],
                  discharge_hours=60)
    decision = review_by_day(engine, admit(record, engine.library.facts))
    d = decision.to_dict()
    assert d["review_type"] == "admission" and d["supported"] == "inpatient"  # the first day, as before
    assert [day["supported"] for day in d["by_day"]["days"]] == ["inpatient", "inpatient", "critical"]
    assert d["by_day"]["changes"] == [{"day": 3, "kind": "escalation", "from": "inpatient", "to": "critical",
                                       "criteria": ["CC-VASOPRESSOR"]}]


def test_by_day_decisions_keep_to_the_decision_schema(engine):
    import json

    import jsonschema

    from conftest import ROOT

    schema = json.loads((ROOT / "schemas" / "decision.schema.json").read_text())
    record = stay([*vitals(1, pulse=146), *vitals(60)],
                  [{"type": "mechanical_ventilation", "start": at(1), "end": at(20)}], discharge_hours=70)
    d = json.loads(json.dumps(review_by_day(engine, admit(record, engine.library.facts)).to_dict()))
    jsonschema.validate(d, schema)
    assert d["by_day"]["days"][1]["status"] == "unknown"  # nothing timed on day 2


LATE_ICU = stay([*vitals(1, pulse=146), *vitals(52, systolic=78)],
                [{"type": "iv_antibiotic", "start": at(2)}, {"type": "vasopressor", "start": at(50)}],
                discharge_hours=60)


@pytest.mark.parametrize("command", ["review", "batch"])
def test_by_day_from_the_command_line_reports_the_late_escalation(runner, tmp_path, command):
    import json

    from ur_engine.cli.main import main

    path = tmp_path / "stays.ndjson"
    path.write_text(json.dumps(LATE_ICU) + "\n")
    out = tmp_path / "out.ndjson"
    args = ["review", str(path), "--by-day"] if command == "review" else \
        ["batch", str(path), "--out", str(out), "--workers", "1", "--by-day"]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    line = json.loads(res.stdout if command == "review" else out.read_text())
    assert [(c["day"], c["to"]) for c in line["by_day"]["changes"]] == [(3, "critical")]
    plain = runner.invoke(main, ["review", str(path)])
    assert "by_day" not in json.loads(plain.stdout)  # asked for only
