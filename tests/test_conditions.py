"""Condition-specific admission cases, one row per clinical situation, judged on the default rules.

Each row names the case, the record's diagnosis, requested level, observations and findings, and the decision a
reviewer reading the cited source would expect: outcome, supported level, and the criterion that decides it.
"""

from __future__ import annotations

import pytest

from conftest import make_record, obs


def dx(code: str) -> list[dict]:
    return [{"code": code, "principal": True}]


CASES = [
    # name, diagnosis, requested, observations, findings, (outcome, supported, deciding criterion)
    ("heart failure with an oxygen saturation of 87 % is inpatient",
     "I50.23", "inpatient", [obs("59408-5", 87)], {}, ("approve", "inpatient", "HF-SPO2")),
    ("heart failure with dyspnea at rest is inpatient",
     "I50.9", "inpatient", [obs("59408-5", 94)], {"dyspnea_at_rest": True}, ("approve", "inpatient", "HF-DYSPNEA-REST")),
    ("heart failure with new rapid atrial fibrillation is inpatient",
     "I11.0", "inpatient", [], {"hemodynamically_significant_arrhythmia": True},
     ("approve", "inpatient", "HF-ARRHYTHMIA")),
    ("syncope with a hematocrit of 26 % is observation, not inpatient",
     "R55", "inpatient", [obs("4544-3", 26), obs("8480-6", 118), obs("8867-4", 80)], {},
     ("alternative_setting", "observation", "SYNC-SFSR-POSITIVE")),
    ("syncope from complete heart block is inpatient",
     "R55", "inpatient", [], {"serious_condition_causing_syncope": True},
     ("approve", "inpatient", "SYNC-SERIOUS-CONDITION")),
    ("TIA with an hour of unilateral weakness at 72 the same day is inpatient",
     "G45.9", "inpatient", [obs("8480-6", 150), obs("8462-4", 85)],
     {"hours_since_tia": 4, "tia_unilateral_weakness": True, "tia_duration_minutes": 60},
     ("approve", "inpatient", "TIA-ABCD2-3")),
    ("acute ischemic stroke is inpatient",
     "I63.9", "inpatient", [], {}, ("approve", "inpatient", "STROKE-UNIT")),
    ("cellulitis with fever and tachycardia (SIRS) is observation",
     "L03.115", "inpatient", [obs("8310-5", 38.7, unit="Cel"), obs("8867-4", 108), obs("8480-6", 126)], {},
     ("alternative_setting", "observation", "CELL-SIRS")),
    ("cellulitis with concern for necrotizing infection is inpatient",
     "L03.116", "inpatient", [], {"deeper_or_necrotizing_infection_suspected": True},
     ("approve", "inpatient", "CELL-DEEP-OR-NECROTIZING")),
    ("pyelonephritis with persistent vomiting is inpatient",
     "N10", "inpatient", [], {"persistent_vomiting_or_unable_to_take_oral": True},
     ("approve", "inpatient", "PYELO-VOMITING")),
    ("severe alcohol withdrawal (CIWA-Ar 24) is observation",
     "F10.239", "observation", [], {"ciwa_ar": 24}, ("approve", "observation", "AWS-SEVERE")),
    ("acute pancreatitis with SIRS asked as ICU is intermediate care",
     "K85.10", "critical", [obs("8867-4", 118), obs("9279-1", 26)], {},
     ("alternative_setting", "intermediate", "AP-SIRS")),
    ("COPD exacerbation with pH 7.31 and PaCO2 64 is inpatient",
     "J44.1", "inpatient", [obs("2744-1", 7.31), obs("2019-8", 64)], {},
     ("approve", "inpatient", "COPD-HYPERCAPNIC-ACIDOSIS")),
    ("acute pancreatitis with a creatinine of 2.4 mg/dL is intermediate care",
     "K85.20", "intermediate", [obs("2160-0", 2.4)], {}, ("approve", "intermediate", "AP-RENAL-FAILURE")),
]


@pytest.mark.parametrize("name, code, requested, observations, findings, expected", CASES,
                         ids=[c[0] for c in CASES])
def test_condition_case(engine, reference_engine, name, code, requested, observations, findings, expected):
    record = make_record(diagnoses=dx(code), encounter={"requested_level": requested},
                         observations=observations, findings=findings)
    d = engine.review(record)
    outcome, supported, criterion = expected
    assert (d.outcome, d.supported) == (outcome, supported), d.reasons
    assert criterion in {c.id for c in d.criteria if c.status == "met"}
    assert d.outcome != "deny"
    assert reference_engine.review(record).to_dict() | {"review_id": d.review_id} == d.to_dict()


@pytest.mark.parametrize("code", ["G45.4", "R51.9"])
def test_a_diagnosis_outside_every_condition_valueset_is_judged_by_the_general_criteria_only(engine, code):
    record = make_record(diagnoses=dx(code), findings={"hours_since_tia": 4, "tia_unilateral_weakness": True,
                                                        "tia_duration_minutes": 60})
    rulesets = set(engine.review(record).rules["rulesets"])
    assert rulesets == {"adult-admission", "critical-care"}
