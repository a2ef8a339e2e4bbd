"""Rule replay: the same stays under a baseline and an edited library, and the reports of what changed."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import random
import re
import shutil
from datetime import datetime, timezone

import pytest

from conftest import ROOT, RULES
from ur_engine import RuleErrors
from ur_engine.intake.rule_files import read_sources
from ur_engine.rules.library import Source
from ur_engine.authoring.replay import ReplaySummary, replay
from ur_engine.authoring.replay_report import svg_chart, text_chart, to_html, to_markdown
from ur_engine.authoring.rulediff import edits

COUNT = 400
BAD = ['{"id": "x"}', "not json"]


def _generator():
    spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _edit(sources: list[Source], name: str, old: str, new: str) -> list[Source]:
    assert any(s.name == name and old in s.text for s in sources)
    return [Source(s.name, s.text.replace(old, new)) if s.name == name else s for s in sources]


@pytest.fixture(scope="module")
def baseline() -> list[Source]:
    return read_sources(RULES)


@pytest.fixture(scope="module")
def candidate(baseline) -> list[Source]:
    # SI-PULSE: pulse above 140 → above 120
    return _edit(baseline, "adult-admission.yaml", "gt: 140", "gt: 120")


@pytest.fixture(scope="module")
def stays() -> list[str]:
    rng, start = random.Random(11), datetime(2026, 1, 1, tzinfo=timezone.utc)
    record = _generator().record
    return [json.dumps(record(rng, i, start)) for i in range(COUNT)]


@pytest.fixture(scope="module")
def lines(stays) -> list[str]:
    """The stays with two invalid lines and a blank one among them (lines 101, 201 and 301)."""
    return stays[:100] + [BAD[0]] + stays[100:199] + [BAD[1]] + stays[199:298] + [""] + stays[298:]


@pytest.fixture(scope="module")
def edited(lines, baseline, candidate) -> ReplaySummary:
    return replay(iter(lines), baseline, candidate)


def _numbers(s: ReplaySummary) -> dict:
    return {k: v for k, v in dataclasses.asdict(s).items() if k != "seconds"}


def test_identical_libraries_change_nothing(lines, baseline):
    s = replay(iter(lines), baseline, list(baseline))
    assert (s.total, s.invalid, s.changed) == (COUNT + 2, 2, 0)
    assert s.baseline_digest == s.candidate_digest
    assert not (s.outcome_flips or s.level_flips or s.by_ruleset or s.by_criterion or s.samples)


def test_a_lower_pulse_threshold_meets_si_pulse_on_more_stays(edited):
    assert edited.baseline_digest != edited.candidate_digest
    assert edited.by_criterion["SI-PULSE"]["not_met→met"] > 0
    assert set(edited.by_criterion) == {"SI-PULSE"}  # the edit touches no other criterion
    assert edited.by_ruleset == {"adult-admission": edited.by_criterion["SI-PULSE"]["not_met→met"]}
    assert sum(edited.outcome_flips.values()) > 0
    assert all(key.startswith("pend→") for key in edited.outcome_flips)  # a lower bar only ever helps
    assert edited.changed >= sum(edited.outcome_flips.values())


def test_samples_are_up_to_five_of_the_changed_records(edited, stays):
    ids = {json.loads(s)["id"] for s in stays}
    assert set(edited.samples) == set(edited.outcome_flips) | {"SI-PULSE", "trail only"} | {
        "level " + key for key in edited.level_flips}
    for key, sample in edited.samples.items():
        assert 1 <= len(sample) <= 5 and set(sample) <= ids
        assert sample == sorted(sample)


def test_every_line_is_counted_and_invalid_lines_are_not_lost(edited):
    assert edited.total == COUNT + 2  # the blank line is not a record
    assert edited.invalid == 2
    assert edited.invalid_lines == [101, 201]


def test_bytes_lines_give_the_same_summary(lines, baseline, candidate, edited):
    s = replay((line.encode() + b"\n" for line in lines), baseline, candidate)
    assert _numbers(s) == _numbers(edited)


@pytest.mark.slow
def test_two_workers_give_the_same_summary_as_one(lines, baseline, candidate, edited):
    # A small chunk: several chunks per worker, finished in any order.
    s = replay(iter(lines), baseline, candidate, workers=2, chunk=37)
    assert _numbers(s) == _numbers(edited)
    assert s.seconds > 0 and s.per_second > 0


def test_a_criterion_in_one_version_only_counts_as_absent(stays, baseline):
    without_cc = [s for s in baseline if s.name != "critical-care.yaml"]
    s = replay(iter(stays[:150]), baseline, without_cc)
    assert s.by_criterion and set(s.by_criterion) <= {"CC-VENTILATION", "CC-VENTILATION-FOR-SURGERY", "CC-VASOPRESSOR"}
    assert all(key.endswith("→absent") for flips in s.by_criterion.values() for key in flips)
    assert s.by_ruleset["critical-care"] == s.changed


def test_a_broken_candidate_is_reported_before_any_worker_starts(stays, baseline):
    broken = _edit(baseline, "adult-admission.yaml", "heart_rate.max, gt", "heart_rat.max, gt")
    with pytest.raises(RuleErrors) as exc:
        replay(iter(stays), baseline, broken, workers=2)
    assert "heart_rate.max" in str(exc.value)


def test_merge_adds_partial_summaries_and_refuses_other_libraries():
    a = ReplaySummary("sha256:a", "sha256:b", total=3, changed=1, outcome_flips={"pend→approve": 1},
                      by_criterion={"SI-PULSE": {"not_met→met": 1}}, samples={"SI-PULSE": ["s-9"]},
                      invalid_lines=[8])
    b = ReplaySummary("sha256:a", "sha256:b", total=4, invalid=1, changed=2, outcome_flips={"pend→approve": 2},
                      by_criterion={"SI-PULSE": {"not_met→met": 2}, "IS-IV": {"unknown→met": 1}},
                      samples={"SI-PULSE": [f"s-{i}" for i in range(5)]}, invalid_lines=[2])
    a.merge(b)
    assert (a.total, a.invalid, a.changed) == (7, 1, 3)
    assert a.outcome_flips == {"pend→approve": 3}
    assert a.by_criterion == {"SI-PULSE": {"not_met→met": 3}, "IS-IV": {"unknown→met": 1}}
    assert a.samples["SI-PULSE"] == ["s-0", "s-1", "s-2", "s-3", "s-4"]
    assert a.invalid_lines == [2, 8]
    with pytest.raises(ValueError):
        a.merge(ReplaySummary("sha256:a", "sha256:c"))


def test_reports_show_the_flips_counts_and_samples(edited):
    md, page = to_markdown(edited), to_html(edited)
    for key, n in edited.outcome_flips.items():
        first = edited.samples[key][0]
        assert f"| {key} | {n} | {first}" in md
        assert f"<td>{key}</td><td class=\"n\">{n:,}</td><td>{first}" in page
    n = edited.by_criterion["SI-PULSE"]["not_met→met"]
    assert f"| SI-PULSE | not_met→met | {n} |" in md
    assert edited.candidate_digest in md and edited.candidate_digest in page
    assert f"{edited.total:,} ({edited.invalid:,} invalid)" in md


def test_reports_escape_record_ids(edited, lines, baseline, candidate):
    flipped = next(line for line in lines if line.strip().startswith("{") and
                   json.loads(line)["id"] == edited.samples["SI-PULSE"][0])
    evil = json.dumps({**json.loads(flipped), "id": "<script>alert('x')</script>|"})
    s = replay([evil], baseline, candidate)
    assert s.samples["SI-PULSE"] == ["<script>alert('x')</script>|"]
    page, md = to_html(s), to_markdown(s)
    assert "<script" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;|" in page
    assert "<script" not in md and "&lt;script&gt;alert('x')&lt;/script&gt;\\|" in md


def test_an_unchanged_replay_says_so(lines, baseline):
    s = replay(iter(lines[:20]), baseline, baseline)
    assert "No record changes" in to_markdown(s) and "No record changes" in to_html(s)


# --- totals, trail-only changes, the diff, the charts, progress ---------------------------------------------

def test_outcome_totals_before_and_after_add_up_to_the_judged_stays(edited):
    assert sum(edited.before.values()) == sum(edited.after.values()) == edited.judged == COUNT
    for outcome in edited.before.keys() | edited.after.keys():
        gained = sum(n for key, n in edited.outcome_flips.items() if key.endswith("→" + outcome))
        lost = sum(n for key, n in edited.outcome_flips.items() if key.startswith(outcome + "→"))
        assert edited.after.get(outcome, 0) - edited.before.get(outcome, 0) == gained - lost


def test_a_lower_pulse_threshold_raises_the_approval_rate_by_the_stays_it_approves(edited):
    approved = sum(n for key, n in edited.outcome_flips.items() if key.endswith("→approve"))
    assert approved > 0
    assert edited.approval_rate("after") - edited.approval_rate("before") == pytest.approx(approved / COUNT)


def test_trail_only_changes_are_set_apart_from_changed_decisions(edited):
    assert edited.decisions_changed + edited.trail_only == edited.changed
    assert edited.trail_only > 0  # SI-PULSE met now on stays that were approved anyway
    assert edited.decisions_changed >= sum(edited.outcome_flips.values())
    assert edited.trail_by_criterion == {"SI-PULSE": edited.trail_only}
    md = to_markdown(edited)
    assert f"| Decisions changed | {edited.decisions_changed:,} " in md
    assert f"| Trail only | {edited.trail_only:,} " in md
    assert f"{edited.trail_only:,} records changed only in their criteria" in md


def test_totals_merge_across_workers(lines, baseline, candidate, edited):
    halves = [replay(iter(part), baseline, candidate) for part in (lines[:200], lines[200:])]
    halves[0].merge(halves[1])
    assert (halves[0].before, halves[0].after, halves[0].decisions_changed) == \
        (edited.before, edited.after, edited.decisions_changed)


def test_the_report_shows_the_diff_of_the_edited_criterion_at_its_lines(edited, baseline):
    (edit,) = edited.edits
    assert (edit.file, edit.what, edit.kind) == ("adult-admission.yaml", "SI-PULSE", "edited")
    text = next(s.text for s in baseline if s.name == "adult-admission.yaml").splitlines()
    line = next(n for n, t in enumerate(text, 1) if "{fact: heart_rate.max, gt: 140}" in t)
    assert "-      - {fact: heart_rate.max, gt: 140}\n+      - {fact: heart_rate.max, gt: 120}" in edit.diff
    first = int(edit.diff.split("@@ -")[1].split(",")[0])
    assert first <= line < first + 6  # hunks count lines as the file does
    assert "```diff\n" + edit.diff in to_markdown(edited)
    assert '<span class="add">+      - {fact: heart_rate.max, gt: 120}</span>' in to_html(edited)


@pytest.mark.parametrize("change, what, kind", [
    (lambda srcs: _edit(srcs, "adult-admission.yaml", "text: Pulse below 50", "text: Heart rate below 50"),
     "SI-PULSE", "edited"),
    (lambda srcs: _edit(srcs, "adult-admission.yaml", "  observation: severity\n", "  observation: intensity\n"),
     "other parts", "edited"),
    (lambda srcs: _edit(srcs, "valuesets/pneumonia.yaml", "  - {code: J18,", "  - {code: J17.9,}\n  - {code: J18,"),
     "file", "edited"),
    (lambda srcs: [s for s in srcs if s.name != "syncope.yaml"], "file", "removed"),
], ids=["criterion-text", "levels", "valueset", "removed-file"])
def test_each_kind_of_edit_is_named_with_its_place(baseline, change, what, kind):
    (edit,) = edits(baseline, change(baseline))
    assert (edit.what, edit.kind) == (what, kind) and edit.diff.startswith("--- baseline/")


def test_unchanged_libraries_have_no_edits(baseline):
    assert edits(baseline, list(baseline)) == []


def test_the_text_chart_draws_each_outcome_in_proportion(edited):
    chart = text_chart(edited)
    bars = {}
    outcome = None
    for line in chart.splitlines():
        head, rest = line[:20].strip(), line.split("baseline ")[-1].split("candidate")[-1]
        outcome = head or outcome
        side = "baseline" if "baseline " in line else "candidate"
        bars[(outcome, side)] = (rest.count("█"), int(rest.split()[-1].replace(",", "")))
    top = max(n for _, n in bars.values())
    for (outcome, side), (width, n) in bars.items():
        assert n == (edited.before if side == "baseline" else edited.after).get(outcome, 0)
        assert width == round(40 * n / top)
    assert "```text\n" + chart + "\n```" in to_markdown(edited)


def test_the_html_report_draws_the_totals_as_svg_without_script(edited):
    svg = svg_chart(edited)
    widths = re.findall(r'<rect class="bar" x="\d+" y="\d+" width="([\d.]+)"', svg)
    counts = [n for o in ("approve", "alternative_setting", "pend")
              for n in (edited.before.get(o, 0), edited.after.get(o, 0))]
    top = max(counts)
    assert [float(w) for w in widths] == [round(380 * n / top, 1) for n in counts]
    page = to_html(edited)
    assert svg in page and "<script" not in page


def test_progress_is_reported_for_every_line(lines, baseline, candidate):
    done = []
    replay(iter(lines), baseline, candidate, progress=done.append)
    assert sum(done) == len(lines) and len(done) > 1


@pytest.mark.slow
def test_progress_is_reported_for_every_chunk_of_two_workers(lines, baseline, candidate):
    done = []
    replay(iter(lines), baseline, candidate, workers=2, chunk=37, progress=done.append)
    assert sum(done) == len(lines) and len(done) == -(-len(lines) // 37)


def test_the_replay_command_shows_totals_chart_diff_and_a_progress_bar(tmp_path, stays):
    from click.testing import CliRunner

    from ur_engine.cli import main

    candidate = tmp_path / "candidate"
    shutil.copytree(RULES, candidate)
    path = candidate / "adult-admission.yaml"
    path.write_text(path.read_text().replace("{fact: heart_rate.max, gt: 140}", "{fact: heart_rate.max, gt: 120}"))
    (tmp_path / "stays.ndjson").write_text("\n".join(stays[:120]) + "\n")
    html = tmp_path / "replay.html"
    args = ["rules", "replay", "--baseline", str(RULES), "--candidate", str(candidate), "--workers", "1",
            "--html", str(html), str(tmp_path / "stays.ndjson")]
    res = CliRunner().invoke(main, args + ["--progress"])
    assert res.exit_code == 0, res.output
    assert "## Outcomes before and after" in res.stdout and "| approval rate |" in res.stdout
    assert "candidate █" in res.stdout and "### SI-PULSE (adult-admission.yaml, edited)" in res.stdout
    assert re.search(r"replay: 100%\|.*\| 120/120", res.stderr), res.stderr  # the bar, finished
    assert "<svg" in html.read_text()
    quiet = CliRunner().invoke(main, args + ["--no-progress"])
    assert quiet.stderr == "" and quiet.stdout.split("| Time |")[0] == res.stdout.split("| Time |")[0]


def test_a_broken_candidate_is_named_by_its_own_path(tmp_path, stays, monkeypatch):
    from click.testing import CliRunner

    from ur_engine.cli import main

    shutil.copytree(RULES, tmp_path / "edited")
    path = tmp_path / "edited" / "adult-admission.yaml"
    path.write_text(path.read_text().replace("{fact: heart_rate.max, gt: 140}", "{fact: heart_rat.max, gt: 120}"))
    (tmp_path / "stays.ndjson").write_text(stays[0] + "\n")
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["rules", "replay", "--baseline", str(RULES), "--candidate", "edited",
                                    "--workers", "1", "stays.ndjson"])
    assert res.exit_code == 1
    assert re.search(r"^edited/adult-admission\.yaml:\d+:\d+ UR020 unknown fact 'heart_rat\.max'", res.stderr, re.M)
