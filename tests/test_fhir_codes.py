"""Codes of every system are kept: diagnoses and procedures carry their system; code sets answer by system."""

from __future__ import annotations

import shutil
import textwrap
from datetime import date

import pytest
from conftest import RULES, make_record

from ur_engine import load_library, record
from ur_engine.intake.fhir_codes import hcpcs_level
from ur_engine.terminology.valuesets import Code, Valueset

DAY = date(2026, 3, 2)


@pytest.mark.parametrize("diagnosis, valid", [
    ({"code": "J18.9"}, True),                                   # ICD-10-CM is the default system
    ({"code": "J18.9", "system": "icd10cm", "display": "Pneumonia"}, True),
    ({"code": "233604007", "system": "snomed", "display": "Pneumonia (disorder)"}, True),
    ({"code": "410.90", "system": "icd9cm"}, True),
    ({"code": "X-42", "system": "http://example.org/local-problems"}, True),  # any system, by its URI
    ({"code": "233604007"}, False),                              # a SNOMED code needs its system named
    ({"code": "233604007", "system": "icd10cm"}, False),         # the ICD-10-CM form is enforced for ICD-10-CM only
    ({"code": "J18.9", "system": "snomed ct"}, False),           # neither a known name nor a URI
])
def test_diagnosis_codes_of_any_system_validate_and_icd10cm_keeps_its_form(diagnosis, valid):
    rec = make_record(diagnoses=[{**diagnosis, "principal": True}])
    if valid:
        d = record.parse(rec).diagnoses[0]
        assert (d.system, d.display) == (diagnosis.get("system", "icd10cm"), diagnosis.get("display"))
        assert d.code.system == d.system
    else:
        with pytest.raises(record.RecordErrors) as exc:
            record.parse(rec)
        assert exc.value.errors[0].path.startswith("$.diagnoses[0]")


@pytest.mark.parametrize("procedure", [
    {"code": "433236007", "system": "snomed", "display": "Transthoracic echocardiography"},
    {"code": "02703ZZ", "system": "icd10pcs"}, {"code": "36.10", "system": "icd9pcs"},
    {"code": "33510", "system": "cpt"}, {"code": "G0378", "system": "hcpcs"},
])
def test_procedure_codes_of_any_system_validate(procedure):
    p = record.parse(make_record(procedures=[procedure])).procedures[0]
    assert (p.system, p.display, p.code.system) == (procedure["system"], procedure.get("display"),
                                                    procedure["system"])


def test_data_notices_are_part_of_the_record_contract():
    notice = {"what": "abc", "where": "Observation/o1.valueQuantity.value", "why": "not a number"}
    record.parse(make_record(data_notices=[notice, {**notice, "what": None}]))
    with pytest.raises(record.RecordErrors):
        record.parse(make_record(data_notices=[{"what": "abc"}]))  # where and why are required


def _set(*codes, system="icd10cm", match="exact") -> Valueset:
    vs = Valueset("t", "test", "test fixture", system, match)
    for code in codes:
        vs.add(*code) if isinstance(code, tuple) else vs.add(code, None, None)
    return vs


@pytest.mark.parametrize("code, member", [
    ("J189", True),                      # a plain code is taken in the set's own system
    (Code("J189", "icd10cm"), True),
    (Code("J189", "snomed"), False),     # the same text in another system is another code
    (Code("233604007", "snomed"), True),  # a code the set lists in another system than its own
    (Code("233604007", "icd10cm"), False),
])
def test_code_set_membership_asks_the_codes_system(code, member):
    vs = _set("J18", ("233604007", None, None, "snomed"), match="prefix")
    assert vs.contains(code, DAY) is member


MIXED = """\
valueset: demo-mixed
title: Pneumonia in two code systems (test fixture)
source: test fixture
match: exact
codes:
  - {code: J18.9}
  - {code: "233604007", system: snomed, text: "Pneumonia (disorder)"}
"""


@pytest.mark.parametrize("dated", [False, True], ids=["undated", "dated"])
def test_a_code_set_lists_codes_of_several_systems(tmp_path, dated):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    extra = '  - {code: "X-42", system: "http://example.org/local-problems", from: 2026-06-01}\n' if dated else ""
    (rules / "valuesets" / "demo-mixed.yaml").write_text(MIXED + extra)
    (rules / "demo.yaml").write_text(textwrap.dedent("""\
        ruleset: demo
        version: 2026.1.0
        title: Demo rule set gated by a mixed code set
        source: test fixture
        effective: {from: 2026-01-01}
        applies: {diagnoses: [demo-mixed]}
        criteria:
          - {id: DEMO-PULSE, group: severity, text: Pulse over 140, source: test fixture, fact: heart_rate.max, gt: 140}
        levels:
          observation: severity
        """))
    library = load_library(rules)
    vs = library.valuesets["demo-mixed"]
    assert vs.system == "icd10cm"  # the default system of a set that names none
    assert vs.codes_on(DAY) == ["J189", "snomed|233604007"]

    def gated(code: str, system: str, day: str = "2026-03-02") -> bool:
        stay = record.parse(make_record(encounter={"arrival_time": f"{day}T09:40:00Z"},
                                        diagnoses=[{"code": code, "system": system, "principal": True}]))
        return "demo" in {rs.id for rs in library.applicable(stay)}

    # The same text asked in another system right after: a set's answer is kept per code *and* system.
    assert gated("233604007", "snomed") and not gated("233604007", "http://example.org/local-problems")
    assert gated("J18.9", "icd10cm") and not gated("J18.9", "icd10")
    if dated:
        assert not gated("X-42", "http://example.org/local-problems") and \
            gated("X-42", "http://example.org/local-problems", "2026-07-01")


@pytest.mark.parametrize("system, code, level", [
    ("hcpcs", "33510", "cpt"), ("hcpcs", "0042T", "cpt"), ("hcpcs", "G0154", "hcpcs"),
    ("cpt", "G0154", "hcpcs"), ("cpt", "99213", "cpt"), ("snomed", "80146002", "snomed"),
])
def test_hcpcs_level_one_is_cpt_whichever_system_names_it(system, code, level):
    assert hcpcs_level(system, code) == level
