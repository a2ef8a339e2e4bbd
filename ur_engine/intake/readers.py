"""Batch inputs → a stream of ``Item``: NDJSON lines, CSV and Parquet rows, FHIR stays (from Bundles, in
``.json`` or ``.json.gz`` files, or from Bulk Data exports).

NDJSON lines pass through unparsed (the worker parses them); CSV, Parquet and FHIR become record dicts.
An input that cannot be turned into a record becomes an ``Item`` with ``error``: it is reported, never dropped.

CSV and flat Parquet columns, one row per stay (docs/inputs.md has the details and examples):

    id, review_type, age, sex, line_of_business, plan, requested_level, admit_source,
    arrival_time, order_time, review_time, expected_midnights, discharge_time    one field each
    diagnoses        ICD-10-CM codes separated by ``|``; the first is the principal diagnosis
    procedures       ``CODE``, ``CODE@TIME`` or ``CODE@TIME@anesthesia``, separated by ``|``
    treatments       treatment types separated by ``|``
    findings         boolean findings present, separated by ``|``
    loinc:<code>     an observation's value; ``loinc:<code>:unit`` and ``loinc:<code>:time`` (default arrival_time)

An empty cell is absent. A list column that is there but empty gives an empty, present section (a treatment
it does not list was not given); a list column that is not there leaves its section out (unknown). The
observations section is present when the file has at least one ``loinc:`` column. Unknown columns are an error.
"""

from __future__ import annotations

import csv
import gzip
import math
import re
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import orjson

from ur_engine import schemas
from ur_engine.errors import RecordError, RecordErrors, UrError, did_you_mean

SCALARS = {  # column → where it goes in the record
    "id": ("id",), "review_type": ("review_type",), "age": ("patient", "age"), "sex": ("patient", "sex"),
    "line_of_business": ("coverage", "line_of_business"), "plan": ("coverage", "plan"),
    **{k: ("encounter", k) for k in ("requested_level", "admit_source", "arrival_time", "order_time",
                                     "review_time", "expected_midnights", "discharge_time")},
}
NUMBERS = {"age", "expected_midnights"}
LISTS = ("diagnoses", "procedures", "treatments", "findings")
LOINC_COLUMN = re.compile(r"^loinc:([^:]+)(?::(unit|time))?$")
BATCH_ROWS = 1024  # Parquet rows decoded at a time: bounded memory, few Python calls per row
MANIFEST_PEEK = 16 << 20  # a pretty-printed .json larger than this is not taken for a Bulk Data manifest
# A pretty-printed document whose first member is "resourceType": "Bundle" (as servers and Synthea write them).
BUNDLE_FIRST = re.compile(rb'\A\s*\{\s*"resourceType"\s*:\s*"Bundle"\s*[,}]')
BUNDLE_HEAD = 4096


@dataclass(frozen=True)
class Item:
    """One input stay: NDJSON text (``raw``), a built ``record``, or the ``error`` that stopped it.

    ``record_id`` names the stay of an error item when the input gave its id (CSV ``id``, ``Encounter.id``).
    """

    position: str
    raw: bytes | None = None
    record: dict | None = None
    error: RecordError | None = None
    record_id: str | None = None



def _name(path: str) -> str:
    """How positions name an input: its base name, short enough to read in every output line."""
    return "<stdin>" if path == "-" else Path(path).name or path


def _fail(path: str, message: str, suggestion: str | None = None) -> UrError:
    return UrError(message, code="UR121", file=path, suggestion=suggestion)


def detect_format(path: str) -> str:
    """``ndjson``, ``csv``, ``parquet``, ``fhir`` (a directory or a Bulk Data manifest) or ``bundle`` (a FHIR
    Bundle in a ``.json`` or ``.json.gz`` file); UrError otherwise."""
    if path == "-":
        return "ndjson"
    p = Path(path)
    if p.is_dir():
        return "fhir"
    if not p.is_file():
        raise _fail(path, "no such file or directory")
    suffix = p.suffix.lower()
    if suffix == ".gz":  # compressed NDJSON, CSV or JSON: the name before .gz tells which
        inner = Path(p.stem).suffix.lower()
        if inner in (".ndjson", ".jsonl", ".csv"):
            return "csv" if inner == ".csv" else "ndjson"
        if inner == ".json":
            return _json_kind(path)
        raise _fail(path, "unknown compressed input: use .ndjson.gz, .jsonl.gz, .json.gz or .csv.gz")
    if suffix in (".ndjson", ".jsonl"):
        return "ndjson"
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".json":
        return _json_kind(path)
    raise _fail(path, "unknown input format: use .ndjson, .jsonl, .json, .csv (each maybe .gz), .parquet or a FHIR "
                      "export directory")


def _json_kind(path: str) -> str:
    """A ``.json`` file is a Bulk Data manifest (``fhir``), a FHIR Bundle (``bundle``) or NDJSON records."""
    doc = _document(path)
    if isinstance(doc, dict) and isinstance(doc.get("output"), list):
        return "fhir"
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        return "bundle"
    if doc is _MULTILINE:  # one document over many lines, too large to look into here: only a Bundle is
        return "bundle"
    return "ndjson"


_MULTILINE = object()


def _document(path: str):
    """The one JSON document of ``path`` (its first line, or the whole file when it spans lines), or None.

    ``_MULTILINE`` for a document over many lines larger than ``MANIFEST_PEEK``.
    """
    try:
        with _open(path) as f:
            first = b""
            for first in f:
                if first.strip():
                    break
            try:  # a one-line object: a manifest, a Bundle or the first NDJSON record
                return orjson.loads(first)
            except orjson.JSONDecodeError:
                pass
            if not _compressed(path) and Path(path).stat().st_size > MANIFEST_PEEK:
                return _MULTILINE
            head = f.read(BUNDLE_HEAD)
            if BUNDLE_FIRST.match(first + head):  # a Bundle says so first: no need to read it twice
                return _MULTILINE
            rest = head + f.read(MANIFEST_PEEK + 1 - len(head))
            if len(rest) > MANIFEST_PEEK:
                return _MULTILINE
            try:
                return orjson.loads(first + rest)
            except orjson.JSONDecodeError:
                return None
    except _BROKEN_OFF as exc:
        raise _unreadable(path, exc) from None


_BROKEN_OFF = (OSError, EOFError, zlib.error)  # what reading a truncated or corrupt .gz raises


def _compressed(path: str) -> bool:
    return path.lower().endswith(".gz")


def _open(path: str, mode: str = "rb", **text):
    """A file of the batch's input, decompressed on the fly when its name ends in ``.gz``."""
    if _compressed(path):
        return gzip.open(path, mode if "b" in mode else mode + "t", **text)
    return open(path, mode, **text)  # noqa: SIM115 -- the caller closes it


def _unreadable(path: str, exc: Exception) -> UrError:
    """A file that breaks off mid-way (a truncated or corrupt .gz): the records before it were already read."""
    return _fail(path, f"cannot read on: {exc}")


class ItemStream:
    """The items of ``paths``, file after file. ``ignored``, ``orphans``, ``skipped`` and ``notices`` count FHIR
    resources left out, visits not reviewed and values set aside.

    The counts are complete once the stream is exhausted.
    """

    def __init__(self, paths: list[str]):
        self.ignored: Counter[str] = Counter()  # "Procedure: its encounter is not a hospital stay" → how many
        self.orphans = 0  # Condition, Observation, Procedure, MedicationAdministration linked to no Encounter
        self.skipped: Counter[str] = Counter()  # FHIR encounters that are not hospital stays, by class
        self.notices: Counter[str] = Counter()  # FHIR values set aside (data notices), by reason
        # Every path is checked now, so a bad one stops the batch before any item is out.
        sources = [_reader(detect_format(path))(path, self) for path in paths]
        self._items = (item for source in sources for item in source())

    def __iter__(self) -> ItemStream:
        return self

    def __next__(self) -> Item:
        return next(self._items)


def _reader(kind: str) -> Callable[[str, ItemStream], Callable[[], Iterator[Item]]]:
    if kind in ("fhir", "bundle"):
        # Imported only for FHIR input: it builds on this module, and the FHIR models take longer to import
        # (~0.15 s) than a small batch of NDJSON takes to review.
        from ur_engine.intake import fhir_files

        return fhir_files.export_reader if kind == "fhir" else fhir_files.bundle_reader
    return {"ndjson": _ndjson, "csv": _csv, "parquet": _parquet}[kind]


def read_items(paths: list[str]) -> ItemStream:
    """Every item of ``paths`` in input order; an iterator of ``Item`` with the ``ignored``/``orphans`` counts.

    Raises UrError (code UR121, ``file`` set) before any item when a path is not a readable input.
    """
    return ItemStream(paths)


# --- NDJSON -------------------------------------------------------------------------------------------------

SEGMENT_BYTES = 1 << 20  # NDJSON is read and handed to workers a block of whole lines at a time


def _ndjson(path: str, stream: ItemStream) -> Callable[[], Iterator[Item]]:
    def items() -> Iterator[Item]:
        name = _name(path)
        f = sys.stdin.buffer if path == "-" else _open(path)
        try:
            for _, block, first in _blocks(f, 0, 1):
                yield from block_items(name, block, first)
        except _BROKEN_OFF as exc:
            raise _unreadable(path, exc) from None
        finally:
            if f is not sys.stdin.buffer:
                f.close()
    return items


def _blocks(f, offset: int, line: int) -> Iterator[tuple[int, bytes, int]]:
    """(offset, block of whole lines, number of its first line) from ``f``, read from ``offset`` on."""
    pending, size = b"", SEGMENT_BYTES
    while True:
        data = f.read1(size)  # what is there: a pipe feeding stdin slowly is not waited on for a whole block
        block = pending + data if pending else data
        if not data:
            if block:  # a last line without its newline
                yield offset, block, line
            return
        end = block.rfind(b"\n") + 1
        if end == 0:  # one line longer than a block: read on until it ends
            pending = block
            continue
        yield offset, block[:end] if end < len(block) else block, line
        offset, line, pending = offset + end, line + block.count(b"\n", 0, end), block[end:]


def block_items(name: str, block: bytes, first_line: int) -> Iterator[Item]:
    """The items of a block of NDJSON lines; blank lines are skipped but keep their number."""
    for number, line in enumerate(block.split(b"\n"), start=first_line):
        line = line.rstrip(b"\r")
        if line.strip():
            yield Item(f"{name}:{number}", raw=line)


def ndjson_segments(paths: list[str], skip: int = 0) -> Iterator[tuple[str, str, int, int, int]] | None:
    """(path, name, offset, length, first line) of blocks of whole lines of NDJSON files, after ``skip`` records.

    A worker reads its block itself (``read_segment``), so a batch moves no record through a pipe.
    None when some path is not a plain NDJSON file (stdin, .gz, CSV, Parquet, FHIR): those go item by item.
    """
    if not all(path != "-" and not _compressed(path) and detect_format(path) == "ndjson" for path in paths):
        return None

    def segments():
        left = skip
        for path in paths:
            with open(path, "rb") as f:
                offset, line = 0, 1
                while left:  # resuming: step over the records already written, a line at a time
                    text = f.readline()
                    if not text:
                        break
                    offset, line = offset + len(text), line + 1
                    left -= bool(text.strip())
                for start, block, first in _blocks(f, offset, line):
                    yield path, _name(path), start, len(block), first
    return segments()


def read_segment(path: str, name: str, offset: int, length: int, first_line: int) -> list[Item]:
    """The items of one segment given by ``ndjson_segments``."""
    with open(path, "rb") as f:
        f.seek(offset)
        return list(block_items(name, f.read(length), first_line))


# --- flat rows (CSV, Parquet) ------------------------------------------------------------------------------

def _layout(path: str, columns: list[str]) -> list[str]:
    """The LOINC codes of the ``loinc:`` columns; UrError for an unknown, repeated or dangling column."""
    codes, known = [], [*SCALARS, *LISTS]
    for i, col in enumerate(columns):
        m = LOINC_COLUMN.match(col)
        if col in columns[:i]:
            raise _fail(path, f"column {col!r} appears twice")
        if m and m.group(2) and f"loinc:{m.group(1)}" not in columns:
            raise _fail(path, f"column {col!r} has no value column loinc:{m.group(1)}")
        if m and not m.group(2):
            codes.append(m.group(1))
        elif not m and col not in known:
            raise _fail(path, f"unknown column {col!r}", did_you_mean(col, known))
    return codes


def _number(value, path: str, col: str, errors: list):
    """An int when integral, else a float; an error naming the column for anything else."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        number = value
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        errors.append(RecordError(f"column {col}: {value!r} is not a number", code="UR120", path=path))
        return None
    return int(number) if float(number).is_integer() else float(number)


def _text(value) -> str:
    if isinstance(value, datetime):  # Parquet timestamps; a naive one gives no offset and fails validation
        return value.isoformat()
    return value.isoformat() if isinstance(value, date) else str(value).strip()


def _split(value) -> list[str]:
    """A list cell: ``a|b`` text, or a Parquet list; blanks dropped."""
    parts = value if isinstance(value, (list, tuple)) else ("" if value is None else str(value)).split("|")
    return [_text(p) for p in parts if p is not None and _text(p)]


def _flat_record(row: dict, codes: list[str]) -> dict:
    """One flat row → a record dict; RecordError (or RecordErrors) naming each bad column."""
    errors: list[RecordError] = []
    rec: dict = {"patient": {}, "coverage": {}, "encounter": {}}
    for col, where in SCALARS.items():
        value = row.get(col)
        if value is None or _text(value) == "":
            continue
        value = _number(value, "$." + ".".join(where), col, errors) if col in NUMBERS else _text(value)
        if value is not None:
            (rec[where[0]] if len(where) == 2 else rec)[where[-1]] = value
    if "diagnoses" in row:
        rec["diagnoses"] = [{"code": c, "system": "icd10cm", "principal": i == 0}
                            for i, c in enumerate(_split(row["diagnoses"]))]
    if "procedures" in row:
        rec["procedures"] = []
        for i, entry in enumerate(_split(row["procedures"])):
            parts = [p.strip() for p in entry.split("@")]
            if len(parts) > 3:
                errors.append(RecordError(f"column procedures: {entry!r} is not CODE@TIME@anesthesia",
                                          code="UR120", path=f"$.procedures[{i}]"))
            p = {k: v for k, v in zip(("code", "time", "anesthesia"), parts) if v}
            rec["procedures"].append(p)
    if "treatments" in row:
        rec["treatments"] = [{"type": t} for t in _split(row["treatments"])]
    if "findings" in row:
        rec["findings"] = {f: True for f in _split(row["findings"])}
    if codes:
        rec["observations"] = []
        for code in codes:
            value = row.get(f"loinc:{code}")
            if value is None or _text(value) == "":
                continue
            value = _number(value, f"$.observations[loinc:{code}]", f"loinc:{code}", errors)
            o = {"code": code, "value": value}
            unit, when = row.get(f"loinc:{code}:unit"), row.get(f"loinc:{code}:time")
            if unit is not None and _text(unit):
                o["unit"] = _text(unit)
            when = _text(when) if when is not None and _text(when) else rec["encounter"].get("arrival_time")
            if when is not None:
                o["time"] = when
            rec["observations"].append(o)
    if errors:
        raise errors[0] if len(errors) == 1 else RecordErrors(errors)
    return {k: rec[k] for k in schemas.schema("admission")["properties"] if k in rec}  # the contract's key order


def _row_item(name: str, number: int, row: dict, codes: list[str]) -> Item:
    try:
        return Item(f"{name}:{number}", record=_flat_record(row, codes))
    except RecordError as exc:
        for e in getattr(exc, "errors", [exc]):
            e.file, e.line = name, number
        rid = _text(row["id"]) if row.get("id") is not None else ""
        return Item(f"{name}:{number}", error=exc, record_id=rid or None)


def _csv(path: str, stream: ItemStream) -> Callable[[], Iterator[Item]]:
    # utf-8-sig: spreadsheets write a byte-order mark
    with _open(path, "r", newline="", encoding="utf-8-sig") as f:
        try:
            header = [c.strip() for c in next(csv.reader(f), [])]
        except _BROKEN_OFF as exc:
            raise _unreadable(path, exc) from None
    if not header:
        raise _fail(path, "no header row")
    codes = _layout(path, header)

    def items() -> Iterator[Item]:
        name = _name(path)
        with _open(path, "r", newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            next(reader)
            end = reader.line_num
            try:
                for cells in reader:
                    # The row's first line (a quoted cell may span lines), as a spreadsheet would number it.
                    start, end = end + 1, reader.line_num
                    if not any(c.strip() for c in cells):
                        continue
                    if len(cells) != len(header):
                        yield Item(f"{name}:{start}", error=RecordError(
                            f"row has {len(cells)} cells, the header {len(header)}", code="UR120", path="$",
                            file=name, line=start))
                        continue
                    yield _row_item(name, start, dict(zip(header, cells)), codes)
            except _BROKEN_OFF as exc:
                raise _unreadable(path, exc) from None
    return items


# --- Parquet -----------------------------------------------------------------------------------------------

def _pyarrow():
    try:
        import pyarrow.parquet as pq
        import pyarrow.types as pat
    except ImportError:  # optional: only Parquet inputs need it
        raise UrError("reading Parquet needs pyarrow: pip install pyarrow", code="UR121") from None
    return pq, pat


def _plain(value):
    """A Parquet value as JSON would give it: no None fields, ISO times, floats for decimals."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(x) for x in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return float(value) if isinstance(value, Decimal) else value


def _parquet(path: str, stream: ItemStream) -> Callable[[], Iterator[Item]]:
    pq, pat = _pyarrow()
    try:
        schema = pq.ParquetFile(path).schema_arrow
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise _fail(path, f"not a Parquet file: {exc}") from None
    nested_type = (lambda t: pat.is_struct(t) or pat.is_map(t)
                   or (pat.is_list(t) or pat.is_large_list(t)) and pat.is_struct(t.value_type))
    nested = any(nested_type(f.type) for f in schema)
    if nested:
        keys = list(schemas.schema("admission")["properties"])
        for name in schema.names:
            if name not in keys:
                raise _fail(path, f"column {name!r} is not a record key (nested columns are record sections)",
                            did_you_mean(name, keys))
    codes = [] if nested else _layout(path, schema.names)
    # A map column (findings) comes as (key, value) pairs; only a map, not a struct, can be empty in Parquet.
    maps = {f.name for f in schema if pat.is_map(f.type)}

    def items() -> Iterator[Item]:
        name, number = _name(path), 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
            for row in batch.to_pylist():
                number += 1
                if nested:
                    yield Item(f"{name}:{number}", record={k: _plain(dict(v) if k in maps else v)
                                                           for k, v in row.items() if v is not None})
                else:
                    yield _row_item(name, number, row, codes)
    return items
