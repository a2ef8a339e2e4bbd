"""The intake takes records as hospital systems write them: ICD-9, lab unit spellings, comparators, nulls, bad
values. One bad value never loses a stay: it is set aside with a notice and counts as unknown."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import examples, make_record, obs
from ur_engine.errors import InvalidTimeError, RecordErrors
from ur_engine.intake.normalise import admit, review


def admitted(library, **changes):
    return admit(make_record(**changes), library.facts)


def notices(adm, kind=None):
    return [n for n in adm.data_notices if kind is None or n.kind == kind]


def derived(library, adm):
    return library.facts.derive(adm).values


@pytest.mark.parametrize("code, unit, value, fact, expected", [
    ("6690-2", "K/uL", 18.2, "wbc.max", 18.2),                 # thousands per microlitre, as labs write it
    ("777-3", "10^3/uL", 95, "platelets.min", 95),
    ("6690-2", "10*9/L", 3.1, "wbc.min", 3.1),                  # SI count: the same number
    ("8480-6", "mm Hg", 84, "systolic_bp.min", 84),
    ("8867-4", "bpm", 142, "heart_rate.max", 142),
    ("11558-4", "units", 7.21, "arterial_ph.min", 7.21),         # blood-gas pH, specimen not stated, "units"
    ("11557-6", "mm Hg", 62, "paco2.max", 62),
    ("2947-0", "mmol/L", 121, "sodium.min", 121),               # the whole-blood twin of serum sodium
    ("6298-4", "mEq/L", 6.8, "potassium.max", 6.8),
    ("718-7", "g/L", 72, "hemoglobin.min", 7.2),                 # converted through UCUM, not a table of ours
    ("8310-5", "", 38.9, "temperature.max", 102.02),             # a blank unit that only Celsius makes plausible
    ("8310-5", "deg F", 101.3, "temperature.max", 101.3),
])
def test_units_as_laboratories_write_them_are_read(library, code, unit, value, fact, expected):
    adm = admitted(library, observations=[obs(code, value, unit=unit)])
    assert notices(adm, "set_aside") == []
    assert derived(library, adm)[fact] == pytest.approx(expected)


def test_unit_conversions_kept_stay_bounded_however_many_unit_texts_a_batch_sends():
    from ur_engine.terminology.units import UNITS_KEPT, factor

    for i in range(UNITS_KEPT + 100):  # each text once, as free-text units come ("mg/dL (ref 70-99)")
        factor(f"{{text {i}}}", f"{{text {i}}}")
    assert factor.cache_info().currsize == UNITS_KEPT
    assert factor("[degF]", "Cel") == pytest.approx((5 / 9, -160 / 9))  # still converts, kept or not


def test_a_venous_blood_gas_ph_is_not_read_as_arterial(library):
    adm = admitted(library, observations=[obs("11558-4", 7.21, unit="[pH]", method="venous")])
    assert "arterial_ph.min" not in derived(library, adm)


@pytest.mark.parametrize("observation, why", [
    (obs("2823-3", 72), "outside the plausible range 0–30 mmol/L"),        # potassium 72: a typing error
    (obs("8867-4", 420), "outside the plausible range 0–300 /min"),
    (obs("2823-3", 4.1, unit="furlongs"), "the unit cannot be read as mmol/L"),
    (obs("2823-3", None), "no numeric value"),
    (obs("2823-3", "hemolysed"), "not a number"),
    ({"code": "2823-3", "value": 4.1}, "no time"),
])
def test_one_bad_value_is_set_aside_with_a_notice_and_the_stay_is_still_judged(library, engine, observation, why):
    good = obs("8867-4", 150)
    record = make_record(observations=[observation, good], treatments=[{"type": "iv_fluids"}])
    decision = review(engine, record)
    aside = [n for n in decision.data_notices if n.kind == "set_aside"]
    assert [n.why for n in aside] == [why] and aside[0].where.startswith("$.observations[0]")
    assert decision.outcome in ("approve", "pend", "alternative_setting")
    assert decision.to_dict()["data_notices"][0]["why"] == why


def test_a_value_set_aside_is_unknown_never_normal(library):
    adm = admitted(library, observations=[obs("2823-3", 72)])
    assert adm.observations is None  # the only observation was set aside: the section is unknown
    assert "potassium.max" not in derived(library, adm)


@pytest.mark.parametrize("code, system, mapped", [
    ("486", None, "J189"),            # all digits: ICD-9-CM whatever the date
    ("428.0", "icd9cm", "I509"),
    ("V45.81", None, "Z951"),         # a V code of a 2012 stay: ICD-9-CM
])
def test_icd9_diagnoses_are_read_as_icd10_and_the_original_is_named(library, code, system, mapped):
    dx = {"code": code, "principal": True, **({"system": system} if system else {})}
    record = make_record(diagnoses=[dx], encounter={"arrival_time": "2012-03-02T09:40:00Z"})
    adm = admit(record, library.facts)
    assert [d.code for d in adm.diagnoses] == [mapped]
    [note] = notices(adm, "mapped")
    assert note.system == "icd9cm" and code in note.what and mapped in note.what


def test_an_icd9_pneumonia_stay_from_2012_is_judged_by_the_pneumonia_rules_as_of_today(engine):
    record = make_record(diagnoses=[{"code": "486", "principal": True}],
                         encounter={"arrival_time": "2012-03-02T09:40:00Z"})
    from datetime import date
    decision = review(engine, record, as_of=date(2026, 12, 1))
    assert "pneumonia" in decision.rules["rulesets"]


def test_an_icd9_code_the_gems_do_not_map_is_kept_as_unread(library):
    adm = admitted(library, diagnoses=[{"code": "2765", "system": "icd9cm"}])
    assert adm.diagnoses is None  # nothing readable left: the section is unknown, not "no diagnosis"
    assert [n.kind for n in adm.data_notices] == ["unread"]


def test_a_lab_result_beyond_range_is_a_bound_not_a_value(library):
    adm = admitted(library, observations=[obs("2823-3", ">10")])
    values = derived(library, adm)
    assert values["potassium.max"] > 6.0          # every value above 10 is above the 6.0 threshold: decided
    facts = library.facts.derive(adm)
    assert facts.bounds["potassium.max"] == (">", 10.0)


def test_a_bound_that_straddles_a_threshold_leaves_the_fact_unknown(library):
    adm = admitted(library, observations=[obs("2823-3", ">5")])  # above 5: above 6.0 or not?
    assert "potassium.max" not in derived(library, adm)


def test_a_lab_bound_shows_in_the_evidence_with_its_comparator(engine):
    decision = review(engine, make_record(observations=[obs("2823-3", ">10")]))
    evidence = [e for c in decision.to_dict()["criteria"] for e in c["evidence"] if e["fact"] == "potassium.max"]
    assert evidence and evidence[0]["value"] == 10.0 and evidence[0]["comparator"] == ">"


def test_a_treatment_still_running_has_a_null_end(library):
    adm = admitted(library, treatments=[{"type": "iv_fluids", "start": "2026-03-02T10:00:00Z", "end": None}])
    assert derived(library, adm)["treatment.iv_fluids"] is True and notices(adm) == []


def test_an_order_placed_before_arrival_is_set_aside_not_fatal(library):
    adm = admitted(library, encounter={"order_time": "2026-03-02T08:00:00Z"})
    assert adm.encounter.order_time is None
    assert [n.why for n in notices(adm)] == ["before arrival_time"]


@pytest.mark.parametrize("section", ["treatments", "procedures", "diagnoses"])
def test_an_empty_section_is_unknown_unless_declared_complete(library, section):
    assert getattr(admitted(library, **{section: [], "complete": []}), section) is None
    assert getattr(admitted(library, **{section: [], "complete": [section]}), section) == ()


def test_no_treatment_charted_leaves_intensity_unknown_not_unmet(engine):
    decision = review(engine, make_record(observations=[obs("8867-4", 150)], treatments=[], complete=[]))
    statuses = {c["id"]: c["status"] for c in decision.to_dict()["criteria"]}
    assert statuses["IS-IV"] == "unknown"


def test_a_section_with_an_entry_set_aside_is_no_longer_complete(library):
    adm = admitted(library, treatments=[{"type": "iv_fluids", "start": "2026-03-02T10:00:00Z"},
                                        {"type": "vasopressor", "start": "9999-01-01T00:00:00Z"}])
    values = derived(library, adm)
    assert values["treatment.iv_fluids"] is True
    assert "treatment.vasopressor" not in values  # the vasopressor set aside may have been given: unknown


def test_codes_no_rule_reads_leave_the_observations_complete(library):
    adm = admitted(library, observations=[obs("8302-2", 170, unit="cm")])  # a height: no fact reads it
    assert "observations" not in adm.incomplete
    assert derived(library, adm)["heart_rate.count"] == 0  # so no heart rate was measured, not "unknown"


def test_observations_no_rule_reads_are_kept_out_but_counted(library):
    adm = admitted(library, observations=[obs("8302-2", 170, unit="cm"), obs("8302-2", 171, unit="cm"),
                                          {**obs("271649006", 120), "system": "snomed"}])
    unread = {n.system: n.count for n in notices(adm, "unread")}
    assert unread == {"loinc": 2, "snomed": 1}


@pytest.mark.parametrize("where, value", [
    (("encounter", "arrival_time"), "9999-12-31T23:59:59Z"),
    (("encounter", "arrival_time"), "0001-01-01T00:00:00+14:00"),
])
def test_an_impossible_arrival_is_a_record_error_never_an_exception(library, where, value):
    record = make_record()
    record[where[0]][where[1]] = value
    with pytest.raises(RecordErrors) as caught:
        admit(record, library.facts)
    assert isinstance(caught.value.errors[0], InvalidTimeError)
    assert caught.value.errors[0].path == "$.encounter.arrival_time"


@pytest.mark.parametrize("missing", ["id", "encounter"])
def test_a_record_with_nothing_to_judge_is_an_error(library, missing):
    record = make_record()
    del record[missing]
    with pytest.raises(RecordErrors):
        admit(record, library.facts)


@pytest.mark.parametrize("coverage", [None, {}, {"plan": "gold"}])
def test_a_stay_without_its_line_of_business_is_reviewed_and_pends_naming_it(engine, coverage):
    record = make_record(observations=[obs("8867-4", 150)], treatments=[{"type": "iv_fluids"}])
    if coverage is None:
        del record["coverage"]
    else:
        record["coverage"] = coverage
    decision = review(engine, record)
    # Under Medicare the two-midnight benchmark also reads the expected midnights: asked for in the same round.
    assert decision.outcome == "pend" and decision.missing == ["line_of_business", "expected_midnights"]
    assert "line of business" in decision.reasons[0]
    assert decision.reasons[1] == ("Once they are known, the criteria that may then apply also need: Midnights the "
                                   "admitting physician expects hospital care to span, counted from arrival")


def test_a_stay_without_its_age_is_asked_at_once_what_the_criteria_of_every_age_still_need(engine):
    # Without vital signs or laboratory values, the criteria of every age still read the electrolytes and pH.
    record = make_record()
    del record["patient"]["age"]
    del record["observations"]
    decision = review(engine, record)
    assert decision.outcome == "pend" and decision.missing[0] == "age"
    assert {"sodium.min", "potassium.min", "arterial_ph.min"} <= set(decision.missing)
    assert [w["facts"] for w in decision.missing_info][0] == ["age"]
    assert "Once they are known" in decision.reasons[1] and "Sodium (lowest and highest)" in decision.reasons[1]


def test_a_stay_without_its_age_is_not_asked_for_what_only_another_age_would_need(engine):
    # A pulse of 150 meets an adult's criteria; only a child's would read laboratory values this record lacks.
    record = make_record(observations=[obs("8867-4", 150)])
    del record["patient"]["age"]
    decision = review(engine, record)
    assert decision.missing == ["age"] and len(decision.reasons) == 1


def test_a_stay_missing_its_level_whose_criteria_need_nothing_more_at_any_level_asks_only_for_the_level(engine):
    record = make_record(observations=[obs("8867-4", 150)], treatments=[{"type": "iv_fluids"}])
    record["coverage"] = {"line_of_business": "commercial"}
    del record["encounter"]["requested_level"]
    decision = review(engine, record)
    assert decision.missing == ["requested_level"] and len(decision.reasons) == 1


def test_every_age_range_of_the_library_is_tried_for_a_stay_without_its_age(engine):
    from ur_engine.engine import _with_basics

    record = make_record()
    del record["patient"]["age"]
    ages = {alt.patient.age for alt in _with_basics(admit(record, engine.library.facts), engine.library, ["age"])}
    for rs in engine.library.rulesets:
        lo, hi = rs.applies.age_min, rs.applies.age_max
        assert any((lo is None or a >= lo) and (hi is None or a <= hi) for a in ages), rs.id


def test_a_line_of_business_given_wrong_is_still_an_error_naming_it(library):
    with pytest.raises(RecordErrors) as caught:
        admit(make_record(coverage={"line_of_business": "medicar"}), library.facts)
    assert caught.value.errors[0].path == "$.coverage.line_of_business"


def test_an_unknown_field_or_enum_is_set_aside_not_fatal(library):
    record = make_record(observations=[obs("8867-4", 150, o2_device="tent")])
    record["encounter"]["admit_source"] = "helicopter"
    record["weight"] = 80
    adm = admit(record, library.facts)
    wheres = sorted(n.where for n in notices(adm))
    assert wheres == ["$.encounter.admit_source", "$.observations[0]", "$.weight"]
    assert adm.encounter.admit_source is None and adm.observations is None


def test_strict_intake_rejects_what_the_tolerant_one_sets_aside(library):
    record = make_record(observations=[obs("2823-3", 4.1, unit="furlongs")])
    assert admit(record, library.facts).observations is None
    with pytest.raises(RecordErrors):
        admit(record, library.facts, strict=True)


def test_the_raw_record_is_not_changed(library):
    record = make_record(observations=[obs("2823-3", "<2")], treatments=[{"type": "iv_fluids", "end": None}])
    before = copy.deepcopy(record)
    admit(record, library.facts)
    assert record == before


def test_the_engine_itself_refuses_an_arrival_in_year_9999_instead_of_overflowing(engine):
    with pytest.raises(RecordErrors) as caught:
        engine.review(make_record(encounter={"arrival_time": "9999-12-31T23:59:59Z"}))
    assert isinstance(caught.value.errors[0], InvalidTimeError)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=6)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(["code", "value", "unit", "time", "system", "comparator", "method", "o2_device"]),
       value=JSON, section=st.sampled_from(["observations", "treatments", "diagnoses", "procedures"]))
def test_any_value_in_any_field_of_an_entry_never_loses_the_stay(library, field, value, section):
    entry = {"observations": obs("8867-4", 150), "treatments": {"type": "iv_fluids"},
             "diagnoses": {"code": "J18.9"}, "procedures": {"code": "33533"}}[section]
    record = make_record(**{section: [{**entry, field: value}], "observations": [obs("8480-6", 84)]}
                         if section != "observations" else {section: [{**entry, field: value}, obs("8480-6", 84)]})
    adm = admit(record, library.facts)  # a RecordErrors here would be a lost stay: the entry is not essential
    assert adm.id == "stay-test"


def test_the_lines_of_business_tried_are_those_the_record_contract_names():
    from ur_engine import schemas
    from ur_engine.vocabulary import LINES_OF_BUSINESS

    contract = schemas.schema("admission")["properties"]["coverage"]["properties"]["line_of_business"]["enum"]
    assert list(LINES_OF_BUSINESS) == contract
