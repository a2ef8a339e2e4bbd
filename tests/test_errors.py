"""One error root, one class per kind: every code the package raises is registered, documented and unique."""

from __future__ import annotations

import pickle
import re

import pytest

from conftest import ROOT
from ur_engine import errors
from ur_engine.errors import KINDS, RecordError, RecordErrors, RuleError, RuleErrors, UrError

SOURCES = sorted((ROOT / "ur_engine").rglob("*.py")) + sorted((ROOT / "ur_service").rglob("*.py"))


def test_every_kind_is_a_class_under_the_one_root_with_its_own_code():
    assert len(KINDS) == len(set(KINDS.values()))
    for code, kind in KINDS.items():
        assert issubclass(kind, UrError) and kind.code == code and re.fullmatch(r"UR\d{3}", code)


@pytest.mark.parametrize("code", sorted(KINDS))
def test_every_kind_is_listed_in_the_module_docstring(code):
    assert re.search(rf"^    (│   |    )*(├── |└── )?{KINDS[code].__name__} +{code} ", errors.__doc__, re.M), code


def test_every_code_raised_anywhere_is_a_registered_kind():
    used = {c for p in SOURCES for c in re.findall(r"\"(UR\d{3})\"", p.read_text())}
    assert used <= set(KINDS), sorted(used - set(KINDS))


@pytest.mark.parametrize("base, code", [(RecordError, "UR103"), (RuleError, "UR020"), (UrError, "UR121")])
def test_an_error_built_from_a_code_is_the_kind_of_that_code(base, code):
    e = base("message", code=code, path="$.encounter.arrival_time")
    assert type(e) is KINDS[code] and isinstance(e, base) and e.code == code


def test_errors_keep_their_kind_and_fields_across_processes():
    one = RecordError("not a date", code="UR103", path="$.encounter.arrival_time")
    many = RuleErrors([RuleError("unknown fact 'pulse'", code="UR020", file="x.yaml", line=3, column=9,
                                 suggestion="heart_rate.max")])
    for e in (one, RecordErrors([one]), many):
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and back.as_dict() == e.as_dict()


def test_an_error_renders_file_line_code_message_and_suggestion():
    e = RuleError("unknown fact 'heart_rat.max'", code="UR020", file="pneumonia.yaml", line=12, column=15,
                  suggestion="heart_rate.max")
    assert str(e) == "pneumonia.yaml:12:15 UR020 unknown fact 'heart_rat.max' (did you mean 'heart_rate.max'?)"
