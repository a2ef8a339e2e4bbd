"""Facts derived from the record: windows, units, statistics, midnights, and unknown versus false."""

from __future__ import annotations

import pytest

from ur_engine import record as records
from conftest import make_record, obs


def facts(library, **changes):
    adm = records.parse(make_record(**changes))
    library.facts.check(adm)
    return library.facts.derive(adm)


def test_observation_statistics_within_the_first_24_hours(library):
    f = facts(library, observations=[obs("8867-4", 130, 10), obs("8867-4", 95, 120), obs("8867-4", 160, 60 * 30)])
    v = f.values
    assert (v["heart_rate.min"], v["heart_rate.max"], v["heart_rate.first"], v["heart_rate.last"],
            v["heart_rate.count"]) == (95, 130, 130, 95, 2)
    assert f.times["heart_rate.max"] == "2026-03-02T09:50:00Z"


def test_observation_before_arrival_does_not_count(library):
    f = facts(library, observations=[{"code": "8867-4", "value": 30, "time": "2026-03-02T08:00:00Z"}])
    assert f.values["heart_rate.count"] == 0 and "heart_rate.min" not in f.values


def test_fahrenheit_is_the_canonical_temperature_and_celsius_converts(library):
    f = facts(library, observations=[obs("8310-5", 38.0, unit="Cel", method="oral")])
    assert f.values["temperature_oral.max"] == pytest.approx(100.4)
    assert "temperature_rectal.max" not in f.values


def test_room_air_saturation_ignores_readings_on_oxygen(library):
    f = facts(library, observations=[obs("59408-5", 85, o2_device="room_air"),
                                     obs("59408-5", 95, 20, o2_device="nasal_cannula")])
    assert f.values["spo2_room_air.max"] == 85 and f.values["spo2.max"] == 95


def test_lab_units_convert_to_the_canonical_unit(library):
    f = facts(library, observations=[obs("2160-0", 177, unit="umol/L"), obs("2524-7", 36, unit="mg/dL")])
    assert f.values["creatinine.max"] == pytest.approx(2.0, abs=0.01)
    assert f.values["lactate.max"] == pytest.approx(4.0, abs=0.01)


def test_absent_section_is_unknown_but_present_section_is_complete(library):
    unknown = facts(library, treatments=None, findings=None, observations=None)
    assert "treatment.iv_fluids" not in unknown.values
    assert "finding.active_bleeding" not in unknown.values
    assert "heart_rate.count" not in unknown.values
    known = facts(library, treatments=[{"type": "telemetry"}], findings={})
    assert known.values["treatment.iv_fluids"] is False
    assert known.values["treatment.frequent_vital_signs"] is True
    assert known.values["finding.active_bleeding"] is False


def test_a_finding_the_record_does_not_state_is_unknown_unless_findings_are_declared_complete(library):
    stated = facts(library, findings={"active_bleeding": True}, complete=[])
    assert stated.values["finding.active_bleeding"] is True
    assert "finding.chronic_co2_abnormality" not in stated.values  # unstated: unknown, so its exclusion holds
    declared = facts(library, findings={"active_bleeding": True}, complete=["findings"])
    assert declared.values["finding.chronic_co2_abnormality"] is False


@pytest.mark.parametrize("section, fact", [("treatments", "treatment.iv_fluids"), ("procedures",
                                           "procedure.within_24h_general_or_regional"), ("observations", "heart_rate.count")])
def test_a_section_sent_empty_is_unknown_unless_declared_complete(library, section, fact):
    assert fact not in facts(library, **{section: [], "complete": []}).values
    assert fact in facts(library, **{section: [], "complete": [section]}).values


def test_iv_antibiotic_counts_as_iv_medication(library):
    assert facts(library, treatments=[{"type": "iv_antibiotic"}]).values["treatment.iv_medication"] is True


def test_treatment_that_ended_before_arrival_does_not_count(library):
    f = facts(library, treatments=[{"type": "iv_fluids", "start": "2026-03-01T10:00:00Z",
                                    "end": "2026-03-01T12:00:00Z"}])
    assert f.values["treatment.iv_fluids"] is False


@pytest.mark.parametrize("arrival, order, midnights", [
    ("2026-03-02T09:40:00Z", "2026-03-02T23:59:00Z", 0),
    ("2026-03-02T23:30:00Z", "2026-03-03T00:30:00Z", 1),
    ("2026-03-02T09:40:00Z", "2026-03-05T08:00:00Z", 3),
    # 23:30 local (UTC-05:00) to 04:30 UTC next day is still before local midnight+… : counted on local clock
    ("2026-03-02T22:30:00-05:00", "2026-03-03T04:30:00Z", 0),
    ("2026-03-02T22:30:00-05:00", "2026-03-03T05:30:00Z", 1),
])
def test_midnights_count_on_the_hospital_clock(library, arrival, order, midnights):
    f = facts(library, encounter={"arrival_time": arrival, "order_time": order})
    assert f.values["midnights_before_order"] == midnights


def test_inpatient_only_membership_follows_the_date_of_service(library):
    before = facts(library, procedures=[{"code": "27447", "time": "2017-05-01T10:00:00Z"}])
    after = facts(library, procedures=[{"code": "27447", "time": "2026-03-02T12:00:00Z"}])
    assert before.values["procedure.inpatient_only"] is True
    assert after.values["procedure.inpatient_only"] is False


def test_procedure_within_24_hours_needs_its_time(library):
    f = facts(library, procedures=[{"code": "47562", "anesthesia": "general", "time": "2026-03-03T09:00:00Z"}])
    late = facts(library, procedures=[{"code": "47562", "anesthesia": "general", "time": "2026-03-03T10:00:00Z"}])
    assert f.values["procedure.within_24h_general_or_regional"] is True
    assert late.values["procedure.within_24h_general_or_regional"] is False



@pytest.mark.parametrize("procedure, expected", [
    ({"code": "33510", "anesthesia": "general", "time": "2026-03-02T15:00:00Z"}, True),
    ({"code": "33510", "anesthesia": "local", "time": "2026-03-02T15:00:00Z"}, False),
    ({"code": "33510", "anesthesia": "general", "time": "2026-03-05T15:00:00Z"}, False),  # days later
    # A planned bypass whose time or anesthesia the request does not give may be the very surgery asked about.
    ({"code": "33510", "time": "2026-03-02T15:00:00Z"}, None),
    ({"code": "33510", "anesthesia": "general"}, None),
])
def test_a_procedure_whose_time_or_anesthesia_is_not_given_leaves_surgery_within_24_hours_unknown(
        library, procedure, expected):
    found = facts(library, procedures=[procedure]).values.get("procedure.within_24h_general_or_regional")
    assert found is expected

QSOFA = """
  qsofa_demo:
    text: qSOFA
    source: Seymour CW et al. JAMA 2016;315(8):762-774
    components:
      - {points: 1, when: {fact: respiratory_rate.max, gte: 22}}
      - {points: 1, when: {fact: finding.sudden_unconsciousness_or_disorientation, is: true}}
      - {points: 1, when: {fact: systolic_bp.min, lte: 100}}
"""


def _library_with_score(tmp_path, text=QSOFA):
    import shutil

    from ur_engine import load_library
    from conftest import RULES

    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    facts = (target / "facts.yaml").read_text()
    (target / "facts.yaml").write_text(facts.replace("\nscores:\n", "\nscores:" + text, 1))
    return load_library(target)


@pytest.mark.parametrize("observations, findings, expected, bounds", [
    ([obs("9279-1", 24), obs("8480-6", 96)], {"sudden_unconsciousness_or_disorientation": False}, 2, (2, 2)),
    ([obs("9279-1", 18), obs("8480-6", 130)], {"sudden_unconsciousness_or_disorientation": True}, 1, (1, 1)),
    ([obs("9279-1", 24), obs("8480-6", 96)], None, None, (2, 3)),  # mentation unknown: 2 or 3 points
    ([obs("9279-1", 18)], None, None, (0, 2)),
])
def test_scores_sum_their_components_and_bound_what_is_unknown(tmp_path, observations, findings, expected, bounds):
    lib = _library_with_score(tmp_path)
    values = lib.facts.derive(records.parse(make_record(observations=observations, findings=findings))).values
    assert values.get("score.qsofa_demo") == expected
    assert (values["score.qsofa_demo.lo"], values["score.qsofa_demo.hi"]) == bounds


@pytest.mark.parametrize("op, t, lo, hi, expected", [
    ("gte", 2, 2, 3, True), ("gte", 2, 0, 1, False), ("gte", 2, 1, 3, None), ("lt", 2, 0, 1, True),
    ("lt", 2, 1, 2, None), ("eq", 2, 2, 2, True), ("eq", 2, 0, 1, False), ("eq", 2, 1, 3, None),
    ("ne", 2, 3, 4, True), ("ne", 2, 2, 2, False), ("lte", 2, 2, 2, True), ("gt", 2, 1, 2, False),
])
def test_a_threshold_on_a_partly_known_score_is_decided_by_its_bounds(op, t, lo, hi, expected):
    from ur_engine.conditions import ScoreLeaf, evaluate

    assert evaluate(ScoreLeaf("score.x", op, t), {"score.x.lo": lo, "score.x.hi": hi}) is expected


def test_a_score_component_with_an_unknown_fact_is_a_load_error(tmp_path):
    from ur_engine import RuleErrors

    with pytest.raises(RuleErrors) as info:
        _library_with_score(tmp_path, QSOFA.replace("respiratory_rate.max", "respiratory_rat.max"))
    e = info.value.errors[0]
    assert (e.file, e.code, e.suggestion) == ("facts.yaml", "UR020", "respiratory_rate.max")
    assert e.line > 100


@pytest.mark.parametrize("f2f, planned, days", [("2026-01-01", "2026-03-31", 89), ("2026-02-02", "2026-01-03", -30)])
def test_intervals_between_plain_dates_count_whole_days(library, f2f, planned, days):
    f = facts(library, review_type="discharge", encounter={"review_time": "2026-03-05T10:00:00Z"},
              function={"face_to_face_date": f2f}, discharge_plan={"requested_setting": "home_health",
                                                                   "planned_date": planned})
    assert f.values["face_to_face_before_start_of_care"] == days


def test_a_misspelt_record_path_in_facts_yaml_is_a_load_error(tmp_path):
    import shutil

    from ur_engine import RuleErrors, load_library
    from conftest import RULES

    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    text = (target / "facts.yaml").read_text().replace("path: encounter.expected_midnights",
                                                       "path: encounter.expected_midnight")
    (target / "facts.yaml").write_text(text)
    with pytest.raises(RuleErrors) as info:
        load_library(target)
    e = info.value.errors[0]
    assert (e.code, e.suggestion) == ("UR026", "encounter.expected_midnights")


def test_an_incomplete_section_leaves_what_it_does_not_list_unknown(library):
    f = facts(library, treatments=[{"type": "iv_antibiotic"}], incomplete=["treatments"])
    assert f.values["treatment.iv_medication"] is True
    assert "treatment.oxygen" not in f.values and "treatment.iv_fluids" not in f.values


@pytest.mark.parametrize("disciplines, expected", [
    (["pt", "ot", "slp"], {"therapy_disciplines.count": 3, "therapy_disciplines.pt": True,
                           "therapy_disciplines.prosthetics_orthotics": False}),
    ([], {"therapy_disciplines.count": 0, "therapy_disciplines.ot": False}),
])
def test_a_list_field_gives_its_count_and_each_member(library, disciplines, expected):
    values = facts(library, function={"therapy_disciplines": disciplines}).values
    assert {k: values[k] for k in expected} == expected


def test_a_list_the_record_does_not_give_leaves_its_members_unknown(library):
    values = facts(library, function={"therapy_hours_per_day": 3}).values
    assert not any(k.startswith("therapy_disciplines.") for k in values)


# Arrival 2026-03-02T09:40Z (conftest); bypass surgery under general anesthesia at 11:00.
SURGERY = {"code": "33533", "system": "cpt", "status": "completed", "anesthesia": "general",
           "time": "2026-03-02T11:00:00Z"}


def _vent(start, end=None):
    t = {"type": "mechanical_ventilation", "start": start}
    return {**t, "end": end} if end else t


@pytest.mark.parametrize(("procedures", "treatments", "discharge", "expected"), [
    # ventilated from 13:00 to 21:00 after the surgery: ventilation for surgery
    ([SURGERY], [_vent("2026-03-02T13:00:00Z", "2026-03-02T21:00:00Z")], None, True),
    # ... for 30 hours: not under 24 h
    ([SURGERY], [_vent("2026-03-02T13:00:00Z", "2026-03-03T19:00:00Z")], None, False),
    # ... started 9 h after the surgery: outside the perioperative window
    ([SURGERY], [_vent("2026-03-02T20:00:00Z", "2026-03-02T23:00:00Z")], None, False),
    # ... still ventilated, no discharge yet: how long it lasts is not known
    ([SURGERY], [_vent("2026-03-02T13:00:00Z")], None, None),
    # ... still ventilated at a discharge 6 h later: it lasted 6 h
    ([SURGERY], [_vent("2026-03-02T13:00:00Z")], "2026-03-02T19:00:00Z", True),
    # no surgery in a procedure list given in full: not ventilation for surgery
    ([], [_vent("2026-03-02T13:00:00Z", "2026-03-02T21:00:00Z")], None, False),
    # no ventilation at all
    ([SURGERY], [{"type": "iv_fluids", "start": "2026-03-02T13:00:00Z"}], None, False),
])
def test_ventilation_for_surgery_is_read_against_the_procedure_and_its_length(library, procedures, treatments,
                                                                               discharge, expected):
    enc = {"discharge_time": discharge} if discharge else {}
    f = facts(library, procedures=procedures, treatments=treatments, encounter=enc)
    assert f.values.get("perioperative.ventilation_under_24h") is expected


@pytest.mark.parametrize("procedures", [None, []])
def test_ventilation_is_life_support_when_the_record_shows_no_surgery(library, procedures):
    # The exception rests on a surgery the record shows; an extract without procedures cannot show one.
    rec = make_record(treatments=[_vent("2026-03-02T13:00:00Z", "2026-03-02T21:00:00Z")], procedures=procedures,
                      complete=["treatments"])
    adm = records.parse(rec)
    assert library.facts.derive(adm).values["perioperative.ventilation_under_24h"] is False


def test_a_procedure_without_anesthesia_is_not_surgery_the_ventilation_was_for(library):
    # An intubation (CPT 31500) at the start of ventilation is a procedure, not a surgery.
    intubation = {"code": "31500", "system": "cpt", "status": "completed", "time": "2026-03-02T13:00:00Z"}
    f = facts(library, procedures=[intubation], treatments=[_vent("2026-03-02T13:00:00Z", "2026-03-02T21:00:00Z")])
    assert f.values["perioperative.ventilation_under_24h"] is False


def _k(value, minutes):
    return obs("2823-3", value, minutes, unit="mmol/L")


@pytest.mark.parametrize(("results", "max_k", "disputed"), [
    # 7.2 at 0.2 h, 3.8 on the repeat at 1.8 h: the 7.2 decides nothing, the highest potassium is unknown
    ([_k(7.2, 12), _k(3.8, 108)], None, ["Potassium 7.2 mmol/L at 2026-03-02T09:52:00Z"]),
    # the repeat confirms it
    ([_k(7.2, 12), _k(6.9, 108)], 7.2, []),
    # the next result comes after the 4 h in which a repeat verifies: both stand
    ([_k(7.2, 12), _k(3.8, 12 + 5 * 60)], 7.2, []),
    # a rising potassium: the earlier, normal result is not what the rules decide on; nothing changes
    ([_k(3.8, 12), _k(7.2, 108)], 7.2, []),
    # the repeat is itself contradicted by a third result: the latest verifies
    ([_k(7.2, 12), _k(3.8, 60), _k(7.1, 108)], 7.2, []),
    # the repeat comes after the first 24 h: it still verifies the result, which was the window's only one
    ([_k(7.2, 23 * 60), _k(3.8, 25 * 60)], None, ["Potassium 7.2 mmol/L at 2026-03-03T08:40:00Z"]),
])
def test_a_result_its_repeat_contradicts_decides_nothing(library, results, max_k, disputed):
    f = facts(library, observations=results)
    assert f.values.get("potassium.max") == max_k
    assert [n.what for n in f.notices] == disputed
    assert all(n.kind == "disputed" and "repeat" in n.why for n in f.notices)


def test_the_decision_shows_the_disputed_result_as_a_data_notice(engine):
    decision = engine.review(make_record(observations=[_k(7.2, 12), _k(3.8, 108)],
                                         treatments=[{"type": "iv_fluids"}]))
    assert [(n.kind, n.where) for n in decision.data_notices] == [("disputed", "$.observations[0]")]
    potassium = next(c for c in decision.criteria if c.id == "SI-POTASSIUM")
    assert potassium.status == "unknown"


@pytest.mark.parametrize(("diagnoses", "findings", "expected"), [
    # chronic hypercapnic respiratory failure coded beside the COPD exacerbation: the CO2 is chronically abnormal
    ([{"code": "J44.1", "principal": True}, {"code": "J96.12"}], {}, True),
    # obesity with alveolar hypoventilation likewise
    ([{"code": "E66.2"}], None, True),
    # a stated finding wins over the code
    ([{"code": "J96.12"}], {"chronic_co2_abnormality": False}, False),
    # chronic respiratory failure with hypoxia only says nothing of the CO2: unknown when findings are not complete
    ([{"code": "J96.11"}], None, None),
    # chronic kidney disease is not mapped
    ([{"code": "N18.5"}], None, None),
])
def test_chronic_conditions_are_read_from_coded_diagnoses(library, diagnoses, findings, expected):
    f = facts(library, diagnoses=diagnoses, findings=findings, complete=["diagnoses"])
    assert f.values.get("finding.chronic_co2_abnormality") is expected


@pytest.mark.parametrize(("results", "min_k"), [
    # 2.2 then 3.8 on the repeat: the errors that raise a potassium mask a low one, so the 2.2 stands
    ([_k(2.2, 12), _k(3.8, 108)], 2.2),
    # 2.2 confirmed by a repeat of 2.4
    ([_k(2.2, 12), _k(2.4, 108)], 2.2),
])
def test_a_low_potassium_stands_though_a_higher_repeat_follows(library, results, min_k):
    f = facts(library, observations=results)
    assert f.values.get("potassium.min") == min_k
    assert f.notices == []


def test_codes_and_units_an_extract_sends_are_remembered_only_up_to_a_bound(library):
    from ur_engine.facts import ACCEPTS_KEPT

    facts = library.facts
    for i in range(ACCEPTS_KEPT + 100):  # codes no rule reads: extracts send every LOINC code a lab has
        assert facts.accepts(f"99999-{i}", "mg/dL") is None
    assert len(facts._accepts) <= ACCEPTS_KEPT
    low, high, scale, offset = facts.accepts("8867-4", "/min")  # heart rate in its own unit, still read as is
    assert (scale, offset) == (1.0, 0.0) and low < 80 < high
