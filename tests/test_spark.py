"""ur_engine.batch.spark on a local SparkSession: every row reviewed, the same outcomes as Engine.review, errors kept."""

from __future__ import annotations

import os

import json
import pickle
import random
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from conftest import ROOT, RULES
from strategies import bench_generator
from ur_engine.intake.rule_files import read_sources
from ur_engine.batch.spark import review_partition

COUNT = 50
BAD = [('{"id": "bad-1", "patient": {"age": "old"}}', "bad-1"), ("not json", None)]


@pytest.fixture(scope="module")
def spark():
    if not os.environ.get("CI"):  # locally, Spark is optional; CI installs it and must run these tests
        pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    # Small and quiet: no UI, little memory, loopback only. Python workers must run this interpreter (the
    # venv's, with durable-rules): pyspark reads PYSPARK_PYTHON when the context starts, not the config.
    patch = pytest.MonkeyPatch()
    patch.setenv("PYSPARK_PYTHON", sys.executable)
    patch.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").appName("ur-engine-test")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.memory", "512m")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.driver.host", "127.0.0.1")
               # C1 only: a JVM that lives a few seconds starts faster without the optimising compiler
               .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    patch.undo()


@pytest.fixture(scope="module")
def records() -> list[dict]:
    gen = bench_generator()
    rng = random.Random(5)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return [gen.record(rng, i, start) for i in range(COUNT)]


@pytest.fixture(scope="module")
def reviewed(spark, records):
    from ur_engine.batch.spark import review_dataframe

    texts = [json.dumps(r) for r in records] + [text for text, _ in BAD]
    df = spark.createDataFrame([(t,) for t in texts], "record string")
    assert df.rdd.getNumPartitions() == 2  # two partitions, hence two engines
    rows = review_dataframe(df, sources=read_sources(RULES)).collect()
    return texts, rows


def _strip(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "review_id"}  # a fresh ULID per review


def test_one_row_per_input_row(reviewed):
    texts, rows = reviewed
    assert len(rows) == len(texts) == COUNT + len(BAD)
    assert all(set(r.asDict()) == {"record_id", "outcome", "supported", "review_action", "decision", "error"}
               for r in rows)


def test_same_decisions_as_the_engine(reviewed, records, engine):
    _, rows = reviewed
    by_id = {r.record_id: r for r in rows}
    assert len({r["id"] for r in records} & set(by_id)) == COUNT
    outcomes = set()
    for rec in records:
        want = engine.review(rec).to_dict()
        row = by_id[rec["id"]]
        assert (row.outcome, row.supported, row.review_action) == \
            (want["outcome"], want["supported"], want["review_action"])
        assert _strip(json.loads(row.decision)) == _strip(want)
        assert row.error is None
        outcomes.add(row.outcome)
    assert len(outcomes) >= 2  # the sample exercises more than one path


def test_invalid_records_are_error_rows(reviewed):
    _, rows = reviewed
    errors = [r for r in rows if r.outcome == "error"]
    assert sorted(r.record_id or "" for r in errors) == sorted(rid or "" for _, rid in BAD)
    for r in errors:
        assert r.error and r.supported is None
        line = json.loads(r.decision)
        assert line["outcome"] == "error" and line["errors"][0]["code"].startswith("UR1")
    bad = next(r for r in errors if r.record_id == "bad-1")
    assert "$.patient.age" in bad.error


def test_default_sources(spark, records, engine):
    from ur_engine.batch.spark import review_dataframe

    df = spark.createDataFrame([(json.dumps(r),) for r in records[:3]], "record string")
    out = review_dataframe(df)  # the shipped library, read on the driver
    assert out.columns == ["record_id", "outcome", "supported", "review_action", "decision", "error"]
    assert [r.outcome for r in out.collect()] == [engine.review(r).outcome for r in records[:3]]


def test_module_does_not_import_pyspark():
    code = "import sys, ur_engine.batch.spark; assert 'pyspark' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_a_worker_builds_one_engine_for_all_the_partitions_of_a_library(records):
    from ur_engine.batch.spark import engine_for
    from ur_engine.rules.library import load

    sources = read_sources(RULES)
    first = engine_for(load(sources))
    assert engine_for(pickle.loads(pickle.dumps(load(sources)))) is first  # the same rules, as a task carries them
    edited = [replace(s, text=s.text + "\n# edited\n") if i == 0 else s for i, s in enumerate(sources)]
    assert engine_for(load(edited)) is not first  # other rules: another engine
    texts = [json.dumps(r) for r in records[:5]]
    assert [r[:4] for r in review_partition(texts, load(sources))] == [r[:4] for r in review_partition(texts, sources)]


def test_partition_logic_without_spark(records, engine):
    sources = read_sources(RULES)
    assert list(review_partition(iter(()), sources)) == []  # an empty partition builds no engine
    rows = list(review_partition([json.dumps(records[0]), None, b"[1]", bytearray(b"{}")], sources))
    assert rows[0][:4] == (records[0]["id"], *(engine.review(records[0]).to_dict()[k]
                                              for k in ("outcome", "supported", "review_action")))
    assert [r[1] for r in rows[1:]] == ["error"] * 3
    assert "no record (null)" in rows[1][5] and "a record must be a JSON object" in rows[2][5]
