"""The compact trail of batch lines: a tenth of the bytes, and the full trail rebuilt from it exactly."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import RULES, examples, make_record, obs
from hypothesis import HealthCheck, given, settings
from strategies import records

from ur_engine import load_library, schemas
from ur_engine.cli import main
from ur_engine.errors import TrailRulesError
from ur_engine.intake.normalise import review
from ur_engine.output.trail import expand


def test_a_compact_line_expands_to_the_full_trail_for_any_record(library, engine):
    @settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records(library))
    def same(record):
        d = review(engine, record)
        full, compact = d.to_dict(), d.to_dict("compact")
        # Through JSON, as a line is written and read: enum members become their text.
        full, compact = json.loads(json.dumps(full)), json.loads(json.dumps(compact))
        assert expand(compact, library) == full
        assert list(expand(compact, library)) == list(full)  # the fields in the same order too
        assert not list(schemas.validator("decision").iter_errors(compact))

    same()


def test_the_engine_is_deterministic_so_a_line_judged_twice_is_the_same_line(engine):
    record = make_record(observations=[obs("8867-4", 150), obs("2160-0", 4.2, unit="mg/dL")])
    first, second = (review(engine, record).to_dict("compact") for _ in range(2))
    assert {**first, "review_id": ""} == {**second, "review_id": ""}


def test_each_criterion_appears_under_exactly_one_status(library, engine):
    d = review(engine, make_record(observations=[obs("8867-4", 150)])).to_dict("compact")
    ids = [cid for found in d["trail"].values() for cid in found]
    applied = [cr.id for rs in library.rulesets if d["rules"]["rulesets"].get(rs.id) == rs.version
               for cr in rs.criteria]
    assert sorted(ids) == sorted(applied) and len(ids) == len(set(ids))
    assert "heart_rate.max" in d["evidence"] and d["evidence"]["heart_rate.max"]["value"] == 150


def test_a_line_is_expanded_only_by_the_rules_that_judged_it(tmp_path, engine):
    line = json.loads(json.dumps(review(engine, make_record()).to_dict("compact")))
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "adult-admission.yaml"
    path.write_text(path.read_text().replace("title:", "title: Edited —", 1))
    edited = load_library(rules)
    with pytest.raises(TrailRulesError, match="rules.digest"):
        expand(line, edited)


def test_batch_writes_compact_lines_that_ur_expand_turns_into_the_full_ones(tmp_path, runner):
    stays = tmp_path / "stays.ndjson"
    recs = [make_record(id=f"s{i}", observations=[obs("8867-4", 60 + 25 * i)]) for i in range(6)]
    stays.write_text("\n".join(json.dumps(r) for r in recs + [{"id": "bad"}]) + "\n")
    compact, full = tmp_path / "compact.ndjson", tmp_path / "full.ndjson"
    assert runner.invoke(main, ["batch", str(stays), "--out", str(compact), "--workers", "1"]).exit_code == 2
    assert runner.invoke(main, ["batch", str(stays), "--out", str(full), "--workers", "1",
                                "--trail", "full"]).exit_code == 2
    lines = [json.loads(x) for x in compact.read_text().splitlines()]
    assert all("trail" in d and "criteria" not in d for d in lines[:-1]) and lines[-1]["outcome"] == "error"
    assert len(compact.read_bytes()) * 2 < len(full.read_bytes())
    res = runner.invoke(main, ["expand", str(compact)])
    assert res.exit_code == 0, res.output

    def strip(text):
        return [{k: v for k, v in json.loads(x).items() if k != "review_id"} for x in text.splitlines()]

    assert strip(res.stdout) == strip(full.read_text())
    # The counts do not depend on the form of the trail.
    summaries = [json.loads((tmp_path / f"{n}.ndjson.summary.json").read_text()) for n in ("compact", "full")]
    for s in summaries:
        s.pop("seconds"), s.pop("per_second")
    assert summaries[0] == summaries[1] and summaries[0]["criteria_not_met"]


def test_ur_expand_names_a_line_it_cannot_read_and_exits_2(tmp_path, runner):
    path = tmp_path / "lines.ndjson"
    path.write_text('{"record_id": "x", "trail": {}, "evidence": {}}\nnot json\n')
    res = runner.invoke(main, ["expand", str(path)])
    assert res.exit_code == 2
    errors = [json.loads(x) for x in res.stdout.splitlines()]
    assert [e["position"] for e in errors] == [f"{path}:1", f"{path}:2"]
    assert "rules" in errors[0]["errors"][0]["message"] or "KeyError" in errors[0]["errors"][0]["message"]
