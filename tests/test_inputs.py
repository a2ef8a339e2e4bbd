"""Batch inputs: format detection, NDJSON lines, CSV and Parquet rows, FHIR exports → items, in input order."""

from __future__ import annotations

import gzip
import json
import pickle

import pytest

from conftest import ROOT, make_record, obs
from ur_engine import record
from ur_engine.errors import UrError
from ur_engine.intake import readers as inputs
from ur_engine.intake.readers import Item, detect_format, ndjson_segments, read_items, read_segment

DATA = ROOT / "tests" / "data"
FHIR = DATA / "fhir"


def reviewed(engine, rec: dict) -> str:
    """The record is valid and the engine decides on it."""
    record.parse(rec)
    return engine.review(rec).outcome


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- format detection ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, text, fmt", [
    ("a.ndjson", '{"id": "x"}\n', "ndjson"),
    ("a.jsonl", '{"id": "x"}\n', "ndjson"),
    ("a.json", '{"id": "x"}\n{"id": "y"}\n', "ndjson"),
    ("a.CSV", "id\nx\n", "csv"),
    ("a.parquet", "", "parquet"),
    ("manifest.json", json.dumps({"transactionTime": "2026-03-09T00:00:00Z", "output": []}, indent=2), "fhir"),
    ("one-line-manifest.json", json.dumps({"output": [{"type": "Encounter", "url": "E.ndjson"}]}), "fhir"),
])
def test_detect_format_by_name_and_content(tmp_path, name, text, fmt):
    assert detect_format(write(tmp_path / name, text)) == fmt


def test_a_pretty_printed_bundle_broken_off_is_one_bad_bundle_not_lines_of_records(tmp_path):
    # Known a Bundle by its first member, it is read once, as a Bundle: the error names where the JSON breaks.
    doc = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "birthDate": "1959-05-01"}}]}, indent=2)
    path = write(tmp_path / "broken.json", doc[: len(doc) // 2])
    assert detect_format(path) == "bundle"
    [item] = list(read_items([path]))
    assert (item.error.code, item.error.file) == ("UR101", "broken.json")
    assert "invalid JSON" in item.error.message


def test_a_directory_is_a_fhir_export_and_stdin_is_ndjson(tmp_path):
    assert detect_format(str(tmp_path)) == "fhir"
    assert detect_format("-") == "ndjson"


@pytest.mark.parametrize("name", ["stays.txt", "missing.ndjson"])
def test_unknown_or_missing_input_is_an_error_naming_the_file(tmp_path, name):
    path = write(tmp_path / name, "x\n") if name.endswith(".txt") else str(tmp_path / name)
    with pytest.raises(UrError) as exc:
        detect_format(path)
    assert (exc.value.code, exc.value.file) == ("UR121", path)


def test_a_bad_path_stops_the_batch_before_any_item(tmp_path):
    good = write(tmp_path / "a.ndjson", '{"id": "x"}\n')
    with pytest.raises(UrError):
        read_items([good, str(tmp_path / "nope.csv")])


# --- NDJSON --------------------------------------------------------------------------------------------------

def test_ndjson_lines_pass_through_unparsed_with_their_line_numbers(tmp_path):
    a = write(tmp_path / "a.ndjson", '{"id": "1"}\n\n   \n{"id": "2"}\r\nnot json\n')
    b = write(tmp_path / "b.jsonl", '{"id": "3"}')
    items = list(read_items([a, b]))
    # Positions name each input by its base name, as every output line shows them.
    assert items == [Item("a.ndjson:1", raw=b'{"id": "1"}'), Item("a.ndjson:4", raw=b'{"id": "2"}'),
                     Item("a.ndjson:5", raw=b"not json"), Item("b.jsonl:1", raw=b'{"id": "3"}')]


def test_ndjson_streams_line_by_line(tmp_path):
    path = tmp_path / "a.ndjson"
    write(path, '{"id": "1"}\n')
    items = read_items([str(path)])
    assert next(items).raw == b'{"id": "1"}'
    with path.open("a") as f:  # written after reading began: a file read whole would miss it
        f.write('{"id": "2"}\n')
    assert [i.raw for i in items] == [b'{"id": "2"}']


def _from_segments(paths, skip=0) -> list[Item]:
    return [item for segment in ndjson_segments(paths, skip) for item in read_segment(*segment)]


@pytest.mark.parametrize("block", [8, 64, 1 << 20])  # lines longer than a block, a few lines per block, one block
@pytest.mark.parametrize("skip", [0, 1, 3, 6, 9])  # resuming: before, inside, at the end of the first file, past all
def test_segments_give_the_items_read_items_gives(tmp_path, monkeypatch, block, skip):
    a = write(tmp_path / "a.ndjson", '{"id": "1"}\n\n   \n{"id": "2"}\r\nnot json\n{"id": "a-long-record"}\n')
    b = write(tmp_path / "b.jsonl", '{"id": "3"}\n{"id": "4"}')  # no newline after the last line
    monkeypatch.setattr(inputs, "SEGMENT_BYTES", block)
    expected = list(read_items([a, b]))[skip:]
    assert _from_segments([a, b], skip) == expected
    assert len(expected) == max(0, 6 - skip)


def test_only_ndjson_files_are_cut_into_segments(tmp_path):
    a = write(tmp_path / "a.ndjson", '{"id": "1"}\n')
    c = write(tmp_path / "c.csv", "id\nx\n")
    assert ndjson_segments([a, c]) is None and ndjson_segments(["-"]) is None


@pytest.mark.parametrize("name, text", [
    ("a.ndjson", '{"id": "1"}\n\n{"id": "2"}\r\nnot json\n'),
    ("a.csv", "id,age,line_of_business,requested_level,arrival_time\n"
              "s1,60,commercial,inpatient,2026-03-02T09:40:00Z\n\ns2,61,medicare,inpatient,2026-03-02T09:40:00Z\n"),
])
def test_gzip_compressed_input_gives_the_items_of_the_plain_file(tmp_path, name, text):
    plain = write(tmp_path / name, text)
    packed = tmp_path / "packed" / (name + ".gz")
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(text.encode()))
    rename = lambda items: [(i.position.replace(".gz:", ":"), i.raw, i.record) for i in items]  # noqa: E731
    assert rename(read_items([str(packed)])) == rename(read_items([plain]))
    assert detect_format(str(packed)) == detect_format(plain)
    assert ndjson_segments([str(packed)]) is None  # no seeking in a compressed stream: item by item


def test_truncated_gzip_input_is_an_error_naming_the_file_after_the_records_before_it(tmp_path):
    text = "".join(json.dumps({"id": f"s{i}", "pad": "x" * 200}) + "\n" for i in range(2000))
    packed = tmp_path / "stays.ndjson.gz"
    whole = gzip.compress(text.encode())
    packed.write_bytes(whole[: len(whole) // 2])
    items = read_items([str(packed)])
    got = []
    with pytest.raises(UrError, match="cannot read on") as err:
        for item in items:
            got.append(item)
    assert err.value.file == str(packed)
    assert 0 < len(got) < 2000 and got[-1].raw == json.dumps({"id": f"s{len(got) - 1}", "pad": "x" * 200}).encode()


def test_unknown_compressed_input_is_refused(tmp_path):
    path = tmp_path / "stays.txt.gz"
    path.write_bytes(gzip.compress(b"{}"))
    with pytest.raises(UrError, match=".ndjson.gz"):
        detect_format(str(path))


# --- CSV -----------------------------------------------------------------------------------------------------

HEAD = "id,age,line_of_business,requested_level,arrival_time"
ROW = "s1,60,commercial,inpatient,2026-03-02T09:40:00Z"
BASE = {"id": "s1", "patient": {"age": 60}, "coverage": {"line_of_business": "commercial"},
        "encounter": {"requested_level": "inpatient", "arrival_time": "2026-03-02T09:40:00Z"}}


@pytest.mark.parametrize("header, row, sections", [
    ("", "", {}),  # no list column: every section is unknown
    (",treatments,findings,diagnoses,procedures", ",,,,", {"treatments": [], "findings": {}, "diagnoses": [],
                                                           "procedures": []}),
    (",treatments,findings", ",iv_antibiotic| oxygen |,active_bleeding",
     {"treatments": [{"type": "iv_antibiotic"}, {"type": "oxygen"}], "findings": {"active_bleeding": True}}),
    (",diagnoses", ",J18.9|J96.01", {"diagnoses": [{"code": "J18.9", "system": "icd10cm", "principal": True},
                                                  {"code": "J96.01", "system": "icd10cm", "principal": False}]}),
    (",procedures", ",27447|33533@2026-03-02T12:00:00Z|44140@2026-03-02T15:00:00Z@general|45378@@monitored",
     {"procedures": [{"code": "27447"}, {"code": "33533", "time": "2026-03-02T12:00:00Z"},
                     {"code": "44140", "time": "2026-03-02T15:00:00Z", "anesthesia": "general"},
                     {"code": "45378", "anesthesia": "monitored"}]}),
    (",loinc:8867-4,loinc:8310-5,loinc:8310-5:unit,loinc:8310-5:time", ",118,38.9,Cel,2026-03-02T10:00:00Z",
     {"observations": [obs("8867-4", 118, minutes=0),
                       obs("8310-5", 38.9, minutes=20, unit="Cel")]}),
    (",loinc:8867-4", ",", {"observations": []}),  # the column is there: observations known, none taken
])
def test_csv_rows_become_records(tmp_path, engine, header, row, sections):
    path = write(tmp_path / "s.csv", f"{HEAD}{header}\n{ROW}{row}\n")
    [item] = read_items([path])
    assert item.position == "s.csv:2" and item.error is None
    assert item.record == {**BASE, **sections}
    reviewed(engine, item.record)


def test_csv_scalars_numbers_and_empty_cells(tmp_path):
    path = write(tmp_path / "s.csv", "id,review_type,age,sex,plan,expected_midnights,order_time,discharge_time\n"
                                     "s1,admission,45.0,male,,2,,\n")
    [item] = read_items([path])
    assert item.record == {"id": "s1", "review_type": "admission", "patient": {"age": 45, "sex": "male"},
                           "coverage": {}, "encounter": {"expected_midnights": 2}}
    assert isinstance(item.record["patient"]["age"], int)


def test_csv_fixture_a_bad_row_is_an_error_item_and_the_next_rows_still_come(engine):
    items = list(read_items([str(DATA / "stays.csv")]))
    assert [i.position for i in items] == [f"stays.csv:{n}" for n in (2, 3, 4, 6)]  # line 5 is blank
    bad = items[2]
    assert bad.record is None and bad.raw is None
    assert (bad.error.path, bad.error.file, bad.error.line) == ("$.observations[loinc:8867-4]", "stays.csv", 4)
    assert bad.record_id == "stay-csv-3"  # so the error line can name the stay
    assert "loinc:8867-4" in str(bad.error) and "'fast'" in str(bad.error)
    first = items[0].record
    assert first["observations"][0] == {"code": "8867-4", "value": 118, "time": "2026-03-02T09:45:00Z"}
    assert first["observations"][2] == {"code": "8310-5", "value": 38.9, "unit": "Cel",
                                        "time": "2026-03-02T09:40:00Z"}
    assert items[1].record["coverage"] == {"line_of_business": "commercial", "plan": "Acme, PPO"}
    assert items[1].record["treatments"] == [] and "findings" in items[1].record
    assert items[3].record["procedures"] == [{"code": "33533", "time": "2026-03-05T10:00:00Z", "anesthesia": "general"}]
    for item in (items[0], items[1], items[3]):
        reviewed(engine, item.record)


def test_csv_every_bad_cell_of_a_row_is_named(tmp_path):
    path = write(tmp_path / "s.csv", f"{HEAD},expected_midnights,loinc:8867-4\n{ROW},two,nan\n{ROW},1,80\n")
    bad, good = read_items([path])
    assert sorted(e.path for e in bad.error.errors) == ["$.encounter.expected_midnights",
                                                        "$.observations[loinc:8867-4]"]
    assert good.record["observations"] == [obs("8867-4", 80, minutes=0)]


def test_csv_row_with_the_wrong_number_of_cells_is_an_error_item(tmp_path):
    path = write(tmp_path / "s.csv", f"{HEAD}\n{ROW},extra\n{ROW}\n")
    bad, good = read_items([path])
    assert bad.error.code == "UR120" and bad.position == "s.csv:2"
    assert good.record == BASE


@pytest.mark.parametrize("header, message, suggestion", [
    ("id,age,treatmnts", "unknown column 'treatmnts'", "treatments"),
    ("id,loinc:8867-4:unit", "has no value column loinc:8867-4", None),
    ("id,age,age", "appears twice", None),
])
def test_csv_header_errors_stop_before_any_item(tmp_path, header, message, suggestion):
    path = write(tmp_path / "s.csv", f"{header}\n")
    with pytest.raises(UrError) as exc:
        read_items([path])
    assert message in exc.value.message and exc.value.suggestion == suggestion


def test_csv_position_counts_physical_lines(tmp_path):
    path = write(tmp_path / "s.csv", 'id,plan\ns1,"two\nlines"\ns2,p\n')
    assert [i.position for i in read_items([path])] == ["s.csv:2", "s.csv:4"]


# --- Parquet -------------------------------------------------------------------------------------------------

def test_parquet_flat_columns_typed_or_as_text(tmp_path, engine):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from datetime import datetime, timezone

    arrival = datetime(2026, 3, 2, 9, 40, tzinfo=timezone.utc)
    table = pa.table({
        "id": ["p1", "p2"], "age": pa.array([60, 71], pa.int64()), "line_of_business": ["medicare", "commercial"],
        "requested_level": ["inpatient", "observation"], "arrival_time": pa.array([arrival, arrival]),
        "diagnoses": pa.array([["J18.9", "J96.01"], None], pa.list_(pa.string())),
        "treatments": ["iv_antibiotic|oxygen", None],
        "loinc:8867-4": pa.array([118.0, None]), "loinc:8867-4:unit": ["/min", None],
    })
    path = str(tmp_path / "s.parquet")
    pq.write_table(table, path)
    one, two = read_items([path])
    assert one.position == "s.parquet:1" and two.position == "s.parquet:2"
    assert one.record == {
        "id": "p1", "patient": {"age": 60}, "coverage": {"line_of_business": "medicare"},
        "encounter": {"requested_level": "inpatient", "arrival_time": "2026-03-02T09:40:00+00:00"},
        "diagnoses": [{"code": "J18.9", "system": "icd10cm", "principal": True},
                      {"code": "J96.01", "system": "icd10cm", "principal": False}],
        "observations": [{"code": "8867-4", "value": 118, "unit": "/min", "time": "2026-03-02T09:40:00+00:00"}],
        "treatments": [{"type": "iv_antibiotic"}, {"type": "oxygen"}]}
    # A null in a list column reads as an empty CSV cell: the section is there and empty.
    assert (two.record["diagnoses"], two.record["treatments"], two.record["observations"]) == ([], [], [])
    for item in (one, two):
        reviewed(engine, item.record)


def test_parquet_nested_columns_pass_records_through(tmp_path, engine):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    records = [make_record(id="n1", observations=[obs("8867-4", 150, unit="/min")], findings={"active_bleeding": True},
                           treatments=[{"type": "iv_fluids"}]),
               make_record(id="n2", observations=None, findings=None, procedures=None,
                           coverage={"plan": "gold"}, encounter={"expected_midnights": 2})]
    path = str(tmp_path / "n.parquet")
    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=1)
    items = list(read_items([path]))
    assert [i.record for i in items] == records
    for item in items:
        reviewed(engine, item.record)


def test_parquet_nested_findings_as_a_map_can_be_present_and_empty(tmp_path, engine):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    records = [make_record(id="m1", findings={}), make_record(id="m2", findings={"active_bleeding": True}),
               make_record(id="m3", findings=None)]
    columns = {k: [r.get(k) for r in records] for k in records[0]}
    columns["findings"] = pa.array([list(r["findings"].items()) if "findings" in r else None
                                    for r in records], pa.map_(pa.string(), pa.bool_()))
    path = str(tmp_path / "m.parquet")
    pq.write_table(pa.table(columns), path)
    items = list(read_items([path]))
    assert [i.record.get("findings") for i in items] == [{}, {"active_bleeding": True}, None]
    assert [i.record for i in items] == records
    for item in items:
        reviewed(engine, item.record)


def test_parquet_nested_file_with_a_stray_column_is_an_error(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = str(tmp_path / "n.parquet")
    pq.write_table(pa.Table.from_pylist([{**make_record(findings=None), "pateint_id": "x"}]), path)
    with pytest.raises(UrError, match="pateint_id"):
        read_items([path])


def test_mixed_inputs_come_file_after_file(tmp_path):
    nd = write(tmp_path / "a.ndjson", '{"id": "x"}\n')
    positions = [i.position for i in read_items([nd, str(DATA / "stays.csv"), str(FHIR / "manifest.json")])]
    assert positions[0] == "a.ndjson:1"
    assert positions[1].startswith("stays.csv:") and positions[-1].startswith("fhir/Encounter.ndjson:")
    assert len(positions) == 1 + 4 + 4


def test_items_survive_pickle_for_worker_processes(tmp_path):
    path = write(tmp_path / "s.csv", f"{HEAD},expected_midnights,loinc:8867-4\n{ROW},two,nan\n{ROW},1,80\n")
    bad, good = read_items([path])
    for item in (bad, good, Item("x:1", raw=b"{}"), Item("x:2", error=bad.error.errors[0], record_id="s9")):
        back = pickle.loads(pickle.dumps(item))
        assert (back.position, back.raw, back.record, back.record_id) == \
            (item.position, item.raw, item.record, item.record_id)
        assert [e.as_dict() for e in getattr(back.error, "errors", [back.error] if back.error else [])] == \
            [e.as_dict() for e in getattr(item.error, "errors", [item.error] if item.error else [])]
