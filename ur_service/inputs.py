"""What the service checks at its edge, before the engine sees a request.

* JSON bodies are parsed strictly: a key given twice in one object is refused (naming the key and where),
  never silently resolved to the last value, since the reviewer and the audit store would disagree on it.
* Every date and time in an admission record and in a query parameter must fall between 1900-01-01 and one
  year from now; outside that, or impossible (``0000-00-00``), it is a 400 naming the field. The engine's
  fact derivation adds hours and days to these times, which overflows at the ends of Python's calendar.
* Error messages quote at most ``QUOTE`` characters of a bad value, so a large bad body cannot come back
  doubled in the answer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

import orjson

from ur_engine import schemas as engine_schemas
from ur_engine.errors import RecordError, RecordErrors

EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
HORIZON = timedelta(days=365)  # how far ahead a planned date or time may lie
QUOTE = 200  # characters of a bad value an error message may quote
MAX_ERRORS = 100
# The shape of a date and time the service accepts (what the OpenAPI document says too): a real month, day,
# hour and offset; a year from 1900 (the exact range is checked against the clock, which a pattern cannot do).
TIME_PATTERN = (r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]"
                r"(:[0-5][0-9](\.[0-9]{1,9})?)?(Z|[+-](0[0-9]|1[0-4]):[0-5][0-9])$")
DATE_PATTERN = r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_LOOKS_LIKE = re.compile(r"^[0-9]{4}-")


# -- strict JSON ------------------------------------------------------------------------------------------

class _Repeated(dict):
    """An object in which a key was given more than once (the keys are in ``repeated``)."""

    repeated: list[str]


def _pairs(pairs, repeats: list):
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    seen: set[str] = set()
    marked = _Repeated(out)
    marked.repeated = [k for k, _ in pairs if k in seen or seen.add(k)]
    repeats.append(marked)
    return marked


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {clip(text)} is too large")
    return value


def loads(body: bytes | str):
    """Parse a JSON body; raises ``RecordError`` (UR101) for a syntax error or a key given twice.

    orjson reads a body first, in a ninth of the time, and takes the last of a key given twice: so what it read
    is the body's value only when writing it back keeps every colon of the body. Outside strings a JSON text has
    colons only after keys, and inside them orjson writes the same characters again, so a key given twice shows
    as a colon fewer at least (its pair, strings and all, is gone). A colon written as ``\\u003a`` would not be
    counted in the body, and ``e+`` in what orjson wrote is a number from 1e16 (an integer past 64 bits is one
    to orjson, an int to json): both go the reference way, as does anything orjson refuses. ``strict_loads`` then
    accepts or refuses the body and words the error.
    """
    if type(body) is bytes and (b"\\u003" not in body or not re.search(rb"\\u003[aA]", body)):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            again = orjson.dumps(data)
            if again.count(b":") == body.count(b":") and b"e+" not in again:
                return data
    return strict_loads(body)


def strict_loads(body: bytes | str):
    """``loads`` by the standard library's parser alone: the reference the fast path must agree with."""
    repeats: list = []  # objects with a key given twice: only then is the tree walked to say where they are
    try:
        data = json.loads(body, object_pairs_hook=lambda pairs: _pairs(pairs, repeats),
                          parse_constant=_reject_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise RecordError(f"invalid JSON: {exc.msg}", code="UR101", path="$", line=exc.lineno,
                          column=exc.colno) from None
    except (ValueError, UnicodeDecodeError) as exc:  # NaN, a number past a double, bytes not UTF-8
        raise RecordError(f"invalid JSON: {clip(str(exc))}", code="UR101", path="$") from None
    repeated = list(_repeated_keys(data, [])) if repeats else []
    if repeated:
        raise RecordErrors([RecordError(f"the key '{clip(key)}' is given more than once; give each key once",
                                        code="UR101", path=engine_schemas.json_path(where + [key]))
                            for where, key in repeated[:MAX_ERRORS]])
    return data


def _repeated_keys(node, where: list):
    if isinstance(node, _Repeated):
        for key in dict.fromkeys(node.repeated):
            yield where, key
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                yield from _repeated_keys(value, where + [key])
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, (dict, list)):
                yield from _repeated_keys(value, where + [i])


# -- dates ------------------------------------------------------------------------------------------------

def latest(now: datetime | None = None) -> datetime:
    return (now or datetime.now(timezone.utc)) + HORIZON


_TIME = re.compile(TIME_PATTERN)


def time_problem(text: str, now: datetime | None = None) -> str | None:
    """Why ``text`` is not a plausible date and time (None when it is)."""
    limit = latest(now)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return f"'{clip(text)}' is not a valid date and time"
    if when.tzinfo is None:
        return f"'{clip(text)}' has no UTC offset"
    if not _TIME.fullmatch(text):
        return f"'{clip(text)}' is not a date and time from 1900 on with an offset of at most 14 hours"
    try:
        inside = EARLIEST <= when.astimezone(timezone.utc) <= limit
    except OverflowError:  # e.g. 9999-12-31T23:59-12:00 is in the year 10000 in UTC
        inside = False
    if not inside:
        return f"'{text}' is outside {EARLIEST.date()} … {limit.date()} (one year from now)"
    return None


def date_problem(text: str, now: datetime | None = None) -> str | None:
    limit = latest(now).date()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return f"'{clip(text)}' is not a valid date"
    if not EARLIEST.date() <= day <= limit:
        return f"'{text}' is outside {EARLIEST.date()} … {limit} (one year from now)"
    return None


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """A query parameter's time, in UTC; raises ValueError with the reason."""
    problem = time_problem(text, now)
    if problem:
        raise ValueError(problem)
    return datetime.fromisoformat(text).astimezone(timezone.utc)


class _Node:
    """A schema node with what the date walk reads of it looked up once: every review walks the same schema."""

    __slots__ = ("check", "ref", "subs", "props", "extra", "items")

    def __init__(self) -> None:
        # time_problem or date_problem: the node is a $ref to a time or a date
        self.check: Callable[[str, datetime | None], str | None] | None = None
        self.ref: _Node | None = None  # another $ref, walked first
        self.subs: list[_Node] = []  # allOf, anyOf, oneOf, then, else, in that order
        self.props: dict[str, _Node] = {}
        self.extra: _Node | None = None  # additionalProperties, when it is a schema
        self.items: _Node | None = None


def _compile(schema: dict, node: dict, seen: dict) -> _Node:
    if id(node) in seen:
        return seen[id(node)]
    out = seen[id(node)] = _Node()
    ref = node.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[1]
        if name in ("time", "date"):
            out.check = time_problem if name == "time" else date_problem
            return out
        out.ref = _compile(schema, schema["$defs"][name], seen)
    for key in ("allOf", "anyOf", "oneOf"):
        out.subs += [_compile(schema, sub, seen) for sub in node.get(key, ())]
    for key in ("then", "else"):
        if isinstance(node.get(key), dict):
            out.subs.append(_compile(schema, node[key], seen))
    out.props = {k: _compile(schema, v, seen) for k, v in node.get("properties", {}).items()}
    extra = node.get("additionalProperties")
    out.extra = _compile(schema, extra, seen) if isinstance(extra, dict) else None
    items = node.get("items")
    out.items = _compile(schema, items, seen) if isinstance(items, dict) else None
    return out


@lru_cache(maxsize=1)
def _admission() -> _Node:
    schema = engine_schemas.schema("admission")
    return _compile(schema, schema, {})


def check_record_times(data, now: datetime | None = None) -> None:
    """Raise ``RecordErrors`` naming every date or time of an admission record outside the plausible range.

    Values that do not look like dates are left to the engine's schema check, which names them itself.
    """
    if not isinstance(data, dict):
        return
    now = now or datetime.now(timezone.utc)  # one "now" for the whole record
    found: dict[str, str] = {}

    def walk(node: _Node, value, where: list) -> None:
        if node.check is not None:
            if isinstance(value, str) and _LOOKS_LIKE.match(value):
                why = node.check(value, now)
                if why:
                    found.setdefault(engine_schemas.json_path(where), why)
            return
        if node.ref is not None:
            walk(node.ref, value, where)
        for sub in node.subs:
            walk(sub, value, where)
        if isinstance(value, dict):
            if node.props or node.extra is not None:
                props, extra = node.props, node.extra
                for k, v in value.items():
                    child = props.get(k, extra)
                    if child is not None:
                        walk(child, v, where + [k])
        elif isinstance(value, list) and node.items is not None:
            for i, v in enumerate(value):
                walk(node.items, v, where + [i])

    walk(_admission(), data, [])
    if found:
        raise RecordErrors([RecordError(why, code="UR103", path=path) for path, why in found.items()])


# -- quoting ----------------------------------------------------------------------------------------------

_QUOTED = re.compile(r"(['\"])((?:(?!\1).){%d,}?)\1" % (QUOTE + 1), re.S)


def clip(text: str, limit: int = QUOTE) -> str:
    """``text`` with each quoted value cut to ``limit`` characters, and the whole kept to a few times that."""
    if len(text) <= limit:
        return text
    text = _QUOTED.sub(lambda m: f"{m[1]}{m[2][:limit]}…{m[1]} ({len(m[2])} characters)", text)
    if len(text) > 2 * limit:  # an unquoted value (a list, an object): keep the head and the reason at the end
        text = f"{text[:limit]} … {text[-80:]}"
    return text


def clip_errors(errors: list) -> list:
    """Error entries (dicts or strings) with their messages clipped; at most ``MAX_ERRORS`` of them."""
    out = []
    for e in errors[:MAX_ERRORS]:
        if isinstance(e, dict):
            out.append({k: clip(v) if isinstance(v, str) else v for k, v in e.items()})
        else:
            out.append(clip(str(e)))
    return out
