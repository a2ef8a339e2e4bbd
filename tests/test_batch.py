"""ur batch: one line per input record in input order, error lines instead of silence, resumable after kill -9."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, RULES, make_record, obs

from ur_engine import RuleErrors, Source
from ur_engine.batch.runner import run_batch
from ur_engine.errors import BatchError
from ur_engine.intake.rule_files import read_sources

SOURCES = read_sources(RULES)


def _generate(path, count: int, seed: int = 11) -> list[str]:
    with path.open("w") as f:
        subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), "--count", str(count),
                        "--seed", str(seed)], stdout=f, check=True)
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def _read(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_record_gets_one_line_in_input_order_errors_included(tmp_path):
    stays = tmp_path / "stays.ndjson"
    good = [make_record(id=f"s{i}", observations=[obs("8867-4", 100 + 20 * i)]) for i in range(5)]
    lines = [json.dumps(r) for r in good]
    lines.insert(2, '{"id": "broken", "patient": {}}')
    lines.insert(4, "not json at all")
    stays.write_text("\n".join(lines) + "\n\n")
    out = tmp_path / "out.ndjson"
    summary = run_batch([str(stays)], str(out), SOURCES, workers=1)
    got = _read(out)
    assert [d.get("record_id") for d in got] == ["s0", "s1", "broken", "s2", None, "s3", "s4"]
    assert [d["position"] for d in got][2:5] == ["stays.ndjson:3", "stays.ndjson:4", "stays.ndjson:5"]
    assert got[2]["outcome"] == "error" and got[2]["errors"][0]["path"].startswith("$")
    assert got[4]["errors"][0]["code"] == "UR101"
    assert summary.total == 7 and summary.errors == 2
    written = json.loads((tmp_path / "out.ndjson.summary.json").read_text())
    assert written["total"] == 7 and written["outcomes"]["error"] == 2


@pytest.mark.slow
def test_two_workers_write_the_same_lines_as_one(tmp_path):
    stays = tmp_path / "stays.ndjson"
    ids = _generate(stays, 1500)
    one, two = tmp_path / "one.ndjson", tmp_path / "two.ndjson"
    run_batch([str(stays)], str(one), SOURCES, workers=1, chunk=100)
    run_batch([str(stays)], str(two), SOURCES, workers=2, chunk=100)
    strip = lambda rows: [{k: v for k, v in d.items() if k != "review_id"} for d in rows]  # noqa: E731
    assert strip(_read(one)) == strip(_read(two))
    assert [d["record_id"] for d in _read(two)] == ids
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no spooled chunk left


def test_compressed_input_goes_to_two_workers_item_by_item_with_the_same_decisions(tmp_path):
    stays = tmp_path / "stays.ndjson"
    _generate(stays, 300)
    packed = tmp_path / "stays.ndjson.gz"
    packed.write_bytes(gzip.compress(stays.read_bytes()))
    one, two = tmp_path / "one.ndjson", tmp_path / "two.ndjson"
    run_batch([str(stays)], str(one), SOURCES, workers=1)
    run_batch([str(packed)], str(two), SOURCES, workers=2, chunk=64)
    strip = lambda rows: [{k: v for k, v in d.items() if k not in ("review_id", "position")} for d in rows]  # noqa: E731
    assert strip(_read(one)) == strip(_read(two))
    assert _read(two)[5]["position"] == "stays.ndjson.gz:6"


def test_broken_rules_stop_a_batch_whose_workers_already_started_before_any_output(tmp_path):
    stays = tmp_path / "stays.ndjson"
    stays.write_text(json.dumps(make_record()) + "\n")
    broken = [s if s.name != "adult-admission.yaml" else
              Source(s.name, s.text.replace("fact: heart_rate.max", "fact: heart_rat.max")) for s in SOURCES]
    with pytest.raises(RuleErrors, match="heart_rat.max"):
        run_batch([str(stays)], str(tmp_path / "out.ndjson"), broken, workers=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stays.ndjson"]


def test_an_existing_output_is_not_overwritten_without_resume(tmp_path):
    stays = tmp_path / "stays.ndjson"
    stays.write_text(json.dumps(make_record()) + "\n")
    out = tmp_path / "out.ndjson"
    run_batch([str(stays)], str(out), SOURCES, workers=1)
    with pytest.raises(BatchError, match="--resume"):
        run_batch([str(stays)], str(out), SOURCES, workers=1)


def test_resume_refuses_changed_inputs(tmp_path):
    stays = tmp_path / "stays.ndjson"
    stays.write_text(json.dumps(make_record()) + "\n")
    out = tmp_path / "out.ndjson"
    run_batch([str(stays)], str(out), SOURCES, workers=1)
    stays.write_text(json.dumps(make_record()) + "\n" + json.dumps(make_record(id="more")) + "\n")
    with pytest.raises(BatchError, match="changed"):
        run_batch([str(stays)], str(out), SOURCES, workers=1, resume=True)


def test_a_resumed_run_reads_back_the_ids_it_finds_a_few_at_a_time_and_still_finds_every_duplicate(
        tmp_path, monkeypatch):
    from ur_engine.batch import runner

    stays = tmp_path / "stays.ndjson"
    ids = ["a", "b", "c", "d", "a", "e", "f", "b", "g", "a"]
    stays.write_text("".join(json.dumps(make_record(id=i)) + "\n" for i in ids))
    out = tmp_path / "out.ndjson"
    run_batch([str(stays)], str(out), SOURCES, workers=1)
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:8]) + lines[8][:40])  # killed mid-line, eight lines in
    handed: list[int] = []
    add = runner._Duplicates.add
    monkeypatch.setattr(runner._Duplicates, "add", lambda self, batch: (handed.append(len(batch)), add(self, batch)))
    monkeypatch.setattr(runner, "RESUMED_IDS", 3)
    summary = run_batch([str(stays)], str(out), SOURCES, workers=1, resume=True)
    assert [d["record_id"] for d in _read(out)] == ids
    assert max(handed) <= 3 and sum(handed) == len(ids)
    assert summary.to_dict()["duplicate_record_ids"] == {
        "count": 2, "first": [["a", "stays.ndjson:1", 3], ["b", "stays.ndjson:2", 2]]}


def test_a_batch_in_one_process_holds_a_few_dozen_records_at_a_time_and_writes_them_in_order(tmp_path, monkeypatch):
    from ur_engine.batch import runner

    stays = tmp_path / "stays.ndjson"
    ids = [f"s{i:03d}" for i in range(130)]
    stays.write_text("".join(json.dumps(make_record(id=i)) + "\n" for i in ids))
    held: list[int] = []
    review = runner._review
    monkeypatch.setattr(runner, "_review", lambda engine, batch, options: (held.append(len(batch)),
                                                                         review(engine, batch, options))[1])
    out = tmp_path / "out.ndjson"
    summary = run_batch([str(stays)], str(out), SOURCES, workers=1)  # the default chunk, 500
    assert max(held) == runner.WRITE_EVERY < 500 and sum(held) == len(ids)
    assert [d["record_id"] for d in _read(out)] == ids and summary.total == len(ids)


def test_a_worker_writes_its_block_of_lines_a_few_dozen_records_at_a_time(tmp_path, monkeypatch):
    from ur_engine.batch import runner
    from ur_engine.engine import Engine
    from ur_engine.intake.readers import Item
    from ur_engine.rules.library import load

    ids = [f"w{i:03d}" for i in range(130)]
    items = [Item(f"stays.ndjson:{n + 1}", raw=json.dumps(make_record(id=i)).encode()) for n, i in enumerate(ids)]
    held: list[int] = []
    review = runner._review
    monkeypatch.setattr(runner, "_review", lambda engine, batch, options: (held.append(len(batch)),
                                                                         review(engine, batch, options))[1])
    with Engine(load(SOURCES)) as engine:
        monkeypatch.setattr(runner, "_ENGINE", engine)
        path, part = runner._spool(str(tmp_path / "0.ndjson"), items)  # as a worker does with its block
    assert max(held) == runner.WRITE_EVERY and sum(held) == len(ids)
    assert [d["record_id"] for d in _read(path)] == ids
    assert part.total == len(ids) and [rid for rid, _ in part.ids] == ids


@pytest.mark.slow
def test_killed_run_resumes_with_every_record_exactly_once(tmp_path):
    stays = tmp_path / "stays.ndjson"
    ids = _generate(stays, 20000)
    out = tmp_path / "out.ndjson"
    cmd = [sys.executable, "-m", "ur_engine.cli", "batch", str(stays), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 200_000):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its worker processes, mid-write
    proc.wait()
    partial = out.read_bytes()
    assert 0 < partial.count(b"\n") < len(ids), "the kill should land mid-run"
    assert (tmp_path / ".out.ndjson.spool").is_dir()  # chunks the workers spooled but the parent never appended
    res = subprocess.run(cmd + ["--resume"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    got = [d["record_id"] for d in _read(out)]
    assert got == ids  # each id exactly once, in input order
    assert not (tmp_path / ".out.ndjson.spool").exists()
    assert json.loads((tmp_path / "out.ndjson.summary.json").read_text())["total"] == len(ids)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_synthea_patient_gives_its_hospital_stays_and_counts_the_visits_skipped(tmp_path, workers):
    bundle = ROOT / "tests" / "data" / "fhir" / "synthea" / "Dino_Barton_f24d7951.json.gz"
    out = tmp_path / "out.ndjson"
    from datetime import date
    summary = run_batch([str(bundle)], str(out), SOURCES, workers=workers, as_of=date(2026, 12, 1))
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines and all(d["outcome"] in ("approve", "pend", "alternative_setting") for d in lines)
    assert all(d["requested"] in ("inpatient", "observation") for d in lines)  # no ambulatory visit reviewed
    skipped = summary.to_dict()["visits_skipped"]
    assert skipped and all("not a hospital stay" in k for k in skipped)
    assert not any("No rule set applies" in r for d in lines for r in d["reasons"])


def test_the_same_stay_id_twice_in_one_batch_is_flagged(tmp_path):
    stays = tmp_path / "stays.ndjson"
    stays.write_text("".join(json.dumps(make_record(id=i)) + "\n" for i in ("a", "b", "a")))
    summary = run_batch([str(stays)], str(tmp_path / "out.ndjson"), SOURCES, workers=1)
    assert summary.to_dict()["duplicate_record_ids"] == {"count": 1, "first": [["a", "stays.ndjson:1", 2]]}


def test_a_file_sent_twice_counts_every_duplicate_and_names_the_first_20_in_input_order(tmp_path):
    from ur_engine.batch.runner import DUPLICATES_NAMED

    stays = tmp_path / "stays.ndjson"
    ids = [f"s{i}" for i in range(DUPLICATES_NAMED + 5)]
    stays.write_text("".join(json.dumps(make_record(id=i)) + "\n" for i in ids * 2))
    summary = run_batch([str(stays)], str(tmp_path / "out.ndjson"), SOURCES, workers=1, chunk=7)
    # The summary holds only the ids it names, however many came twice.
    assert len(summary.duplicates) == DUPLICATES_NAMED
    # Line 10 comes after line 9 (as text, "stays.ndjson:10" sorts before "stays.ndjson:9").
    assert summary.to_dict()["duplicate_record_ids"] == {
        "count": len(ids), "first": [[rid, f"stays.ndjson:{n + 1}", 2] for n, rid in enumerate(ids[:DUPLICATES_NAMED])]}


def test_a_batch_whose_records_are_all_invalid_exits_2(tmp_path, runner):
    from ur_engine.cli import main

    stays = tmp_path / "stays.ndjson"
    stays.write_text('{"id": "x"}\n{"not": "a record"}\n')
    res = runner.invoke(main, ["batch", str(stays), "--out", str(tmp_path / "out.ndjson"), "--workers", "1"])
    assert res.exit_code == 2 and "2 record(s) rejected" in res.output
