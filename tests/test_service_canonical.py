"""The text every audit hash is taken over: the fast writer gives the reference's bytes, on anything."""

from __future__ import annotations

import hashlib
import json
from enum import Enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, examples
from ur_service.store import canonical, canonical_bytes, canonical_reference, chain_hash

strings = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"]),  # lone surrogates too
                            st.sampled_from("\x00\x1f\x7f\u2028\u2029\"\\é€😀")))
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), strings,
                    st.sampled_from([1e-5, 1e-4, 9.99e-5, 1e15, 1e16, 1.5e16, -0.0, 38.9, 100.0, 0.1 + 0.2]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                             st.dictionaries(strings, inner, max_size=5)),
                           max_leaves=30)


def either(write, value):
    try:
        return write(value)
    except ValueError as exc:  # NaN and infinities: both refuse them
        return ("refused", type(exc))


def encoded(write):
    return lambda value: write(value).encode()


@settings(max_examples=examples(1000))
@given(json_values)
def test_the_fast_canonical_text_is_the_reference_text_on_any_json(value):
    assert either(canonical, value) == either(canonical_reference, value)


@settings(max_examples=examples(1000))
@given(json_values)
def test_the_canonical_bytes_hashed_are_the_reference_text_encoded_on_any_json(value):
    assert either(canonical_bytes, value) == either(encoded(canonical_reference), value)


class Status(str, Enum):
    MET = "met"


@pytest.mark.parametrize("value", [
    {"status": Status.MET, "values": [Status.MET]},  # the decision's own enums
    {1: "a"},  # a key that is not a string: the reference writes "1"
    (1, 2.5),
    2**64,
])
def test_values_the_fast_writer_cannot_take_are_written_by_the_reference(value):
    assert canonical(value) == canonical_reference(value)


def test_a_stored_row_hashes_as_before(engine):
    record = json.loads((ROOT / "examples" / "pneumonia.json").read_text())
    decision = engine.review(record).to_dict()
    row = {"seq": 7, "record": canonical(record), "decision": canonical(decision), "due_at": None, "ok": True}
    assert row["decision"] == canonical_reference(decision) and row["record"] == canonical_reference(record)
    reference = hashlib.sha256(("0" * 64 + canonical_reference(row)).encode()).hexdigest()
    assert chain_hash("0" * 64, row) == reference

