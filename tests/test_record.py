"""Bad records are refused with the JSON path of each bad field, all at once."""

from __future__ import annotations

import pytest

from ur_engine import RecordError
from ur_engine import record as records
from conftest import make_record, obs


@pytest.mark.parametrize("changes, path, words", [
    ({"id": None}, "$.id", "required"),
    ({"patient": {"age": -3}}, "$.patient.age", "minimum"),
    ({"coverage": {"line_of_business": "medicar"}}, "$.coverage.line_of_business", "not one of"),
    ({"encounter": {"arrival_time": "2026-03-02 09:40"}}, "$.encounter.arrival_time", "expected form"),
    ({"encounter": {"arrival_time": "2026-13-02T09:40:00Z"}}, "$.encounter.arrival_time", "not a valid"),
    ({"observations": [{"code": "8867-4", "value": "fast", "time": "2026-03-02T10:00:00Z"}]},
     "$.observations[0].value", "expected number"),
    ({"treatments": [{"type": "iv_fluid"}]}, "$.treatments[0].type", "not one of"),
    ({"encounter": {"order_time": "2026-03-01T09:00:00Z"}}, "$.encounter.order_time", "before arrival"),
    ({"observatons": []}, "$.observatons", "unknown field"),
], ids=["no-id", "negative-age", "bad-line-of-business", "time-without-offset", "impossible-date",
        "value-not-number", "unknown-treatment", "order-before-arrival", "misspelt-section"])
def test_invalid_record_names_the_field(changes, path, words):
    with pytest.raises(RecordError) as info:
        records.parse(make_record(**changes))
    paths = {e.path: e for e in info.value.errors}
    assert path in paths, paths
    assert words in paths[path].message


def test_suggestions_for_misspelt_names():
    with pytest.raises(RecordError) as info:
        records.parse(make_record(observatons=[], coverage={"line_of_business": "medicar"}))
    hints = {e.path: e.suggestion for e in info.value.errors}
    assert hints == {"$.observatons": "observations", "$.coverage.line_of_business": "medicare"}


def test_every_error_is_reported_at_once():
    with pytest.raises(RecordError) as info:
        records.parse(make_record(id=None, patient={"age": 400}, treatments=[{"type": "x"}]))
    assert len(info.value.errors) == 3


def test_json_syntax_error_gives_line_and_column():
    with pytest.raises(RecordError) as info:
        records.loads('{"id": "x",\n "patient": }')
    assert (info.value.line, info.value.path) == (2, "$")


def test_nan_is_not_a_number():
    with pytest.raises(RecordError) as info:
        records.loads('{"value": NaN}')
    assert (info.value.line, info.value.column, info.value.code) == (1, 11, "UR101")


def test_unit_not_accepted_for_the_observation_is_refused(engine):
    with pytest.raises(RecordError) as info:
        engine.review(make_record(observations=[obs("2951-2", 130, unit="mg/dL")]))
    assert info.value.errors[0].path == "$.observations[0].unit"
    assert "mmol/L" in info.value.errors[0].message


def test_unknown_finding_gets_a_suggestion(engine):
    with pytest.raises(RecordError) as info:
        engine.review(make_record(findings={"active_bleedin": True}))
    e = info.value.errors[0]
    assert (e.path, e.suggestion) == ("$.findings.active_bleedin", "active_bleeding")


def test_discharge_review_needs_a_requested_setting():
    rec = make_record(review_type="discharge", encounter={"review_time": "2026-03-05T10:00:00Z"})
    with pytest.raises(RecordError) as info:
        records.parse(rec)
    assert "$.discharge_plan" in {e.path for e in info.value.errors}


def test_icd10_codes_compare_without_the_dot():
    adm = records.parse(make_record(diagnoses=[{"code": "j18.9"}]))
    assert adm.diagnoses[0].code == "J189"


@pytest.mark.parametrize("mutation", [
    ("patient", {"age": "60"}), ("encounter", {"arrival_time": "yesterday"}), ("observations", [{"code": "8867-4"}]),
    ("treatments", [{"type": "iv_fluids", "start": 5}]), ("review_type", "readmission"), ("extra", 1),
    ("diagnoses", [{"code": "not-icd"}]), ("findings", {"active_bleeding": None}),
], ids=lambda m: m[0] if isinstance(m, tuple) else "")
def test_fast_and_explaining_validators_agree(mutation):
    from ur_engine import schemas

    key, value = mutation
    rec = make_record(**{key: value})
    fast = schemas.fast_validator("admission").is_valid(rec)
    slow = schemas.validator("admission").is_valid(rec)
    assert fast is slow is False
    assert schemas.fast_validator("admission").is_valid(make_record()) is True
