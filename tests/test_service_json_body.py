"""A request body read by orjson first is read exactly as the standard library's strict parser reads it: the same
value, down to int against float and -0.0, and the same refusal, naming the same keys given twice."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, examples
from ur_engine.errors import RecordError
from ur_service.inputs import loads, strict_loads

keys = st.text(st.one_of(st.characters(), st.sampled_from(':"\\{}[],é😀')), max_size=6)
strings = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"]),  # lone surrogates too
                            st.sampled_from(':"\\\x00\x1f\u2028é€😀')), max_size=8)
numbers = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([1e-5, 9.99e-5, 1e15, 1e16, 1.5e16, -0.0, 38.9, 2**63, 2**64, -(2**63) - 1]))
scalars = st.one_of(st.none(), st.booleans(), numbers, strings)


@st.composite
def texts(draw) -> bytes:
    """A JSON text as clients write them: spaced or not, ASCII-escaped or not, sometimes with a key twice."""
    indent = draw(st.sampled_from([None, 2]))
    ascii_only = draw(st.booleans())

    def write(value) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(write(v) for v in value) + "]"
        if isinstance(value, tuple):  # an object as its pairs, which may repeat a key
            colon = draw(st.sampled_from([":", ": ", " : "]))
            return "{" + ", ".join(json.dumps(k, ensure_ascii=ascii_only) + colon + write(v) for k, v in value) + "}"
        return json.dumps(value, ensure_ascii=ascii_only, indent=indent)

    pairs = lambda inner: st.lists(st.tuples(keys, inner), max_size=4).map(tuple)  # noqa: E731
    value = draw(st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), pairs(inner)),
                              max_leaves=25))
    text = write(value)
    return text.encode("utf-8", "surrogatepass") if draw(st.booleans()) else text.encode("utf-8", "replace")


def outcome(read, body: bytes):
    try:
        return "value", repr(read(body))
    except RecordError as exc:
        return "refused", [e.as_dict() for e in getattr(exc, "errors", [exc])]


@settings(max_examples=examples(300))
@given(texts())
def test_the_fast_reading_of_a_body_is_the_strict_reading(body):
    assert outcome(loads, body) == outcome(strict_loads, body)


@pytest.mark.parametrize("body", [
    b'{"a": 1, "a": 2}',
    b'{"a": "x:y:z", "a": "w"}',  # the pair given up had colons of its own
    b'{"a": {"b": 1, "c": {"d": [1, {"e": 2, "e": 2}]}}}',
    b'{"a\\u003a": 1, "a\\u003a": 2}',
    b'{"a": "\\u003A", "a": "\\u003A"}',
    b'{"n": 123456789012345678901234567890}',
    b'{"n": -9223372036854775809}',
    b'{"n": 1e400}',
    b'{"n": NaN}',
    b'{"s": "\\ud800"}',
    b'\xef\xbb\xbf{"a": 1}',
    '{"a": 1}'.encode("utf-16"),
    b'{"a": 1',
])
def test_bodies_the_fast_reading_leaves_to_the_strict_one_are_read_alike(body):
    assert outcome(loads, body) == outcome(strict_loads, body)


def test_the_shipped_example_records_read_alike():
    for path in sorted((ROOT / "examples").glob("*.json")):
        body = path.read_bytes()
        assert outcome(loads, body) == outcome(strict_loads, body), path.name
