"""FHIR Bulk Data exports (a directory of NDJSON files, or a manifest) → one record per hospital stay."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import ROOT

from ur_engine import record
from ur_engine.errors import UrError
from ur_engine.intake.readers import read_items

FHIR = ROOT / "tests" / "data" / "fhir"


def write(path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


ENC_PNA = {
    "id": "enc-pna", "review_type": "admission", "patient": {"age": 67, "sex": "female"},
    "coverage": {"line_of_business": "medicare", "plan": "Original Medicare Part A"},
    "encounter": {"arrival_time": "2026-03-02T09:40:00+00:00", "requested_level": "inpatient",
                  "admit_source": "emergency", "expected_midnights": 3},
    "diagnoses": [{"code": "J18.9", "system": "icd10cm", "principal": True},  # ICD-10-CM chosen over SNOMED CT
                  {"code": "J96.01", "system": "icd10cm", "principal": False}],  # only via Encounter.diagnosis
    "observations": [  # the blood-pressure panel gives its two components
        {"code": "8867-4", "value": 118, "time": "2026-03-02T09:45:00+00:00", "unit": "/min"},
        {"code": "59408-5", "value": 86, "time": "2026-03-02T09:45:00+00:00", "unit": "%"},
        {"code": "8480-6", "value": 86, "time": "2026-03-02T10:10:00+00:00", "unit": "mm[Hg]"},
        {"code": "8462-4", "value": 50, "time": "2026-03-02T10:10:00+00:00", "unit": "mm[Hg]"},
        {"code": "8310-5", "value": 38.9, "time": "2026-03-02T09:45:00+00:00", "unit": "Cel"},
        {"code": "9279-1", "value": 30, "time": "2026-03-02T09:45:00+00:00", "unit": "/min"}],
    "procedures": [],
    "treatments": [{"type": "iv_medication", "start": "2026-03-02T11:00:00+00:00", "end": "2026-03-02T11:30:00+00:00"}],
    "incomplete": ["treatments"],
}
ENC_CP = {
    "id": "enc-cp", "review_type": "admission", "patient": {"age": 46, "sex": "male"},
    "coverage": {"line_of_business": "commercial", "plan": "acme-ppo"},
    "encounter": {"arrival_time": "2026-03-03T22:15:00-05:00", "requested_level": "observation",
                  "admit_source": "physician_referral"},
    "diagnoses": [{"code": "R07.9", "system": "icd10cm", "principal": False},
                  {"code": "29857009", "system": "snomed", "principal": False}],  # SNOMED CT is kept
    "observations": [{"code": "10839-9", "value": 0.02, "time": "2026-03-03T23:00:00-05:00", "unit": "ng/mL"}],
    "procedures": [{"code": "93000", "system": "cpt", "status": "completed", "time": "2026-03-03T22:30:00-05:00"},
                   {"code": "G0378", "system": "hcpcs", "status": "cancelled"}],
    "treatments": [],  # an oral medication only
    "incomplete": ["treatments"],
}
ENC_NOCOV = {
    "id": "enc-nocov", "review_type": "admission", "patient": {"age": 35, "sex": "female"},
    "coverage": {},  # its only Coverage is cancelled: the line of business is unknown, and the review pends for it
    "encounter": {"arrival_time": "2026-03-04T08:00:00+00:00", "requested_level": "observation"},
    "diagnoses": [], "observations": [], "procedures": [], "treatments": [], "incomplete": ["treatments"],
    "data_notices": [{"what": None, "where": "Patient/p3", "why": "no Coverage for the stay: the line of business is unknown"}],
}
ENC_MA = {
    "id": "enc-ma", "review_type": "admission", "patient": {"age": 80, "sex": "male"},
    "coverage": {"line_of_business": "medicare_advantage", "plan": "ma-hmo-12"},  # order 1 beats Medicaid
    "encounter": {"arrival_time": "2026-03-05T12:00:00+00:00", "requested_level": "inpatient",  # extension over EMER
                  "discharge_time": "2026-03-08T10:00:00+00:00"},
    "diagnoses": [{"code": "I50.9", "system": "icd10cm", "principal": False}],
    "observations": [{"code": "8867-4", "value": 95, "time": "2026-03-05T12:30:00+00:00", "unit": "/min"}],
    "procedures": [{"code": "33533", "system": "cpt", "status": "planned"}],
    "treatments": [{"type": "iv_medication", "start": "2026-03-05T13:10:00+00:00"}],
    "incomplete": ["treatments"],
    "data_notices": [{"what": "sinus rhythm", "where": "Observation/o9.value[x]", "why": "not a numeric value"}],
}


def test_fhir_directory_gives_one_record_per_stay(engine):
    stream = read_items([str(FHIR)])
    items = list(stream)
    assert [i.position for i in items] == [f"fhir/Encounter.ndjson:{n}" for n in (1, 2, 3, 4)]
    assert [i.record for i in items] == [ENC_PNA, ENC_CP, ENC_NOCOV, ENC_MA]
    for item in items:
        engine.review(record.parse(item.record))
    assert stream.orphans == 1
    assert stream.ignored == {"Observation: unknown encounter": 1, "Condition: entered-in-error": 1,
                              "Coverage: cancelled": 1}
    assert stream.notices == {"no Coverage for the stay": 1, "not a numeric value": 1}


def test_fhir_manifest_sections_follow_the_exported_types(engine):
    items = list(read_items([str(FHIR / "manifest.json")]))
    # The manifest lists no Procedure or MedicationAdministration file: those sections are unknown.
    strip = lambda r: {k: v for k, v in r.items() if k not in ("procedures", "treatments", "incomplete")}  # noqa: E731
    assert [i.record for i in items] == [strip(ENC_PNA), strip(ENC_CP), strip(ENC_NOCOV), strip(ENC_MA)]
    engine.review(record.parse(items[0].record))


def test_fhir_order_is_deterministic_and_files_sort_by_number(tmp_path):
    export = tmp_path / "export"
    shutil.copytree(FHIR, export, ignore=shutil.ignore_patterns("synthea", "pas-*"))
    lines = (export / "Encounter.ndjson").read_text().splitlines()
    (export / "Encounter.ndjson").unlink()
    for number, line in zip((10, 2, 1, 3), lines):  # enc-pna in Encounter-10, enc-cp in Encounter-2...
        write(export / f"Encounter-{number}.ndjson", line + "\n")
    ids = [[i.record["id"] for i in read_items([str(export)])] for _ in range(2)]
    assert ids[0] == ids[1] == ["enc-nocov", "enc-cp", "enc-ma", "enc-pna"]


def _export(tmp_path, encounters: list[dict], extra: str = "") -> str:
    export = tmp_path / "export"
    shutil.copytree(FHIR, export, ignore=shutil.ignore_patterns("synthea", "pas-*"))
    write(export / "Encounter.ndjson", "\n".join(json.dumps(e) for e in encounters) + "\n" + extra)
    return str(export)


def _encounter(**changes) -> dict:
    enc = {"resourceType": "Encounter", "id": "e1", "status": "in-progress", "class": {"code": "IMP"},
           "subject": {"reference": "Patient/p1"}, "period": {"start": "2026-03-02T09:40:00Z"}}
    return {k: v for k, v in {**enc, **changes}.items() if v is not None}


@pytest.mark.parametrize("changes, field, where, why", [
    ({"period": None}, "arrival_time", "Encounter/e1.period.start", "arrival time is unknown"),
    ({"period": {"start": "2026-03-02"}}, "arrival_time", "Encounter/e1.period.start", "UTC offset"),
    ({"period": {"start": "2026-03-02T09:40:00"}}, "arrival_time", "Encounter/e1.period.start", "regex"),
])
def test_fhir_value_that_cannot_be_read_is_a_notice_and_the_stay_still_comes(tmp_path, changes, field, where,
                                                                             why):
    items = list(read_items([_export(tmp_path, [_encounter(**changes), _encounter(id="e2")])]))
    assert [i.record["id"] for i in items] == ["e1", "e2"]  # the next encounter still comes
    first = items[0].record
    assert any(n["where"] == where and why in n["why"] for n in first["data_notices"])
    with pytest.raises(record.RecordErrors) as exc:  # the field left out is named when the record is checked
        record.parse(first)
    assert any(e.path.endswith(field) for e in exc.value.errors)
    assert "data_notices" not in items[1].record
    record.parse(items[1].record)


@pytest.mark.parametrize("changes, where, why", [
    ({"subject": {"reference": "Patient/p9"}}, "Encounter/e1.subject", "not in the source"),
    ({"period": {"start": "1950-01-01T00:00:00Z"}}, "Patient/p1.birthDate", "after arrival"),
])
def test_a_fhir_stay_whose_age_cannot_be_known_is_reviewed_and_pends_naming_it(tmp_path, engine, changes, where,
                                                                                why):
    from ur_engine.intake.normalise import review

    items = list(read_items([_export(tmp_path, [_encounter(**changes), _encounter(id="e2")])]))
    first = items[0].record
    assert any(n["where"] == where and why in n["why"] for n in first["data_notices"])
    assert record.parse(first).patient.age is None
    decision = review(engine, first)
    assert decision.outcome == "pend" and decision.missing[0] == "age"


def test_fhir_bad_lines_and_repeated_ids_are_error_items(tmp_path):
    export = _export(tmp_path, [_encounter(), _encounter(), _encounter(id="e2")],
                     extra='{"resourceType": "Patient", "id": "x"}\n{not json\n')
    items = list(read_items([export]))
    enc = "export/Encounter.ndjson"
    assert [(i.position, i.error.code if i.error else i.record["id"]) for i in items] == [
        (f"{enc}:2", "UR120"), (f"{enc}:4", "UR120"), (f"{enc}:5", "UR101"), (f"{enc}:1", "e1"), (f"{enc}:3", "e2")]
    assert "appears twice" in items[0].error.message


def test_fhir_export_without_encounters_or_with_remote_files_is_refused(tmp_path):
    with pytest.raises(UrError, match="no Encounter or Claim"):
        read_items([str(tmp_path)])
    manifest = write(tmp_path / "m.json", json.dumps({"output": [
        {"type": "Encounter", "url": "https://bulk.example/Encounter.ndjson"}]}))
    with pytest.raises(UrError, match="remote"):
        read_items([manifest])


def test_bundles_and_exports_come_after_other_inputs_file_after_file(tmp_path):
    nd = write(tmp_path / "a.ndjson", '{"id": "x"}\n')
    bundle = str(FHIR / "synthea" / "Trent_Jaskolski_75b8811d.json")
    positions = [i.position for i in read_items([nd, str(ROOT / "tests" / "data" / "stays.csv"),
                                                 str(FHIR / "manifest.json"), bundle])]
    assert positions[0] == "a.ndjson:1"
    assert positions[1].startswith("stays.csv:") and positions[5].startswith("fhir/Encounter.ndjson:")
    assert positions[-1].startswith("Trent_Jaskolski_75b8811d.json:")
    assert len(positions) == 1 + 4 + 4 + 1


def _export_by_type(tmp_path, resources: list[dict]) -> str:
    by_type: dict[str, list[dict]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(r)
    for rtype, rs in by_type.items():
        write(tmp_path / f"{rtype}.ndjson", "".join(json.dumps(r) + "\n" for r in rs))
    return str(tmp_path)


def _visit_and_stay(visits: int) -> list[dict]:
    enc = {"resourceType": "Encounter", "status": "finished", "subject": {"reference": "Patient/p1"},
           "period": {"start": "2026-03-02T09:40:00Z"}}
    obs = {"resourceType": "Observation", "status": "final", "effectiveDateTime": "2026-03-02T09:45:00Z",
           "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
           "valueQuantity": {"value": 118, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}
    bill = {"resourceType": "ExplanationOfBenefit", "status": "active", "use": "claim",
            "patient": {"reference": "Patient/p1"}, "insurance": [{"focal": True, "coverage": {"display": "Medicare"}}]}
    out = [{"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1959-05-01"},
           {**enc, "id": "stay", "class": {"code": "IMP"}},
           {**obs, "id": "o-stay", "encounter": {"reference": "Encounter/stay"}},
           {**bill, "id": "b-stay", "item": [{"sequence": 1, "encounter": [{"reference": "Encounter/stay"}]}]}]
    for n in range(visits):
        out += [{**enc, "id": f"visit{n}", "class": {"code": "AMB"}},
                {**obs, "id": f"o-visit{n}", "encounter": {"reference": f"Encounter/visit{n}"}},
                {**bill, "id": f"b-visit{n}", "insurance": [{"focal": True, "coverage": {"display": "Medicaid"}}],
                 "item": [{"sequence": 1, "encounter": [{"reference": f"Encounter/visit{n}"}]}]},
                {**bill, "resourceType": "Claim", "id": f"c-visit{n}",
                 "item": [{"sequence": 1, "encounter": [{"reference": f"Encounter/visit{n}"}]}]}]
    return out


def test_a_bulk_export_lets_go_of_each_visits_resources_as_they_come():
    # The export's files come type by type, Encounters and Claims first: once they are in, the stays are known,
    # and an Observation or benefit statement of a visit is counted and let go rather than held to the end.
    from ur_engine.intake import fhir

    resources = _visit_and_stay(visits=3)
    source = fhir.Source()
    for n, r in enumerate(r for r in resources if r["resourceType"] in ("Patient", "Encounter", "Claim")):
        source.add(r, "x.ndjson", n)
    source.settle()
    assert [r.rid for r, _, _ in source.reads["Claim"]] == []  # billing Claims of visits: let go at once
    for n, r in enumerate(r for r in resources if r["resourceType"] in ("ExplanationOfBenefit", "Observation")):
        source.add(r, "x.ndjson", n)
    assert [r.rid for r, _, _ in source.reads["Observation"]] == ["o-stay"]
    assert [r.rid for r, _, _ in source.reads["ExplanationOfBenefit"]] == ["b-stay"]
    assert source.ignored == {"Observation: its encounter is not a hospital stay": 3}
    with pytest.raises(RuntimeError):  # an Encounter now could change which stays there are
        source.add(resources[1], "x.ndjson", 99)
    [(_, _, rid, rec, error)] = list(source.records())
    assert (rid, error, rec["coverage"], [o["value"] for o in rec["observations"]]) == \
        ("stay", None, {"line_of_business": "medicare"}, [118])


def test_a_bulk_export_gives_the_stays_a_bundle_of_the_same_resources_gives(tmp_path):
    from ur_engine.intake.fhir_files import bundle_items

    resources = _visit_and_stay(visits=2)
    [from_export] = [i.record for i in read_items([_export_by_type(tmp_path, resources)])]
    [from_bundle] = [i.record for i in bundle_items(
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}, "b.json")]
    assert from_export == from_bundle
    assert from_export["coverage"] == {"line_of_business": "medicare"}
