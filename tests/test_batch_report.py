"""The batch report: one self-contained HTML page with a plot per section, every string escaped."""

from __future__ import annotations

import html
import random
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest

from strategies import bench_generator
from ur_engine.batch.runner import BatchSummary, _stay
from ur_engine.batch.report import to_html

COUNT = 200
EVIL = "<script>alert('pend')</script> & co"
PLOTS = 5  # outcomes, requested × supported, by rule set, criteria not met, length of stay


@pytest.fixture(scope="module")
def summary(engine) -> dict:
    gen, rng = bench_generator(), random.Random(3)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    s = BatchSummary(seconds=1.25)
    for i in range(COUNT):
        rec = gen.record(rng, i, start)
        if i % 3 == 0:  # a third discharged, so actual midnights are known for some stays only
            arrival = datetime.fromisoformat(rec["encounter"]["arrival_time"])
            left = arrival + timedelta(hours=rng.randrange(4, 100))
            rec["encounter"]["discharge_time"] = left.strftime("%Y-%m-%dT%H:%M:%SZ")
        d = engine.review(rec).to_dict()
        d["stay"] = _stay(rec["encounter"])  # as run_batch adds it to each line
        s.add(d)
    s.add({"record_id": None, "outcome": "error", "errors": [{"code": "UR101", "message": "invalid JSON"}]})
    d = s.to_dict()
    d["pend_reasons"][EVIL] = 3
    return d


@pytest.fixture(scope="module")
def page(summary) -> str:
    return to_html(summary)


def test_page_shows_the_totals(page, summary):
    assert page.startswith("<!DOCTYPE html>")
    assert summary["total"] == COUNT + 1 and summary["errors"] == 1
    assert f"<b>{summary['total']:,}</b><span>records</span>" in page
    assert f"<b>{COUNT:,}</b><span>reviewed</span>" in page
    for outcome, n in summary["outcomes"].items():
        assert outcome in page and f">{n:,} · " in page


def test_one_svg_per_plot_and_each_is_well_formed(page):
    svgs = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    assert len(svgs) == page.count("<svg") == PLOTS
    for svg in svgs:
        ET.fromstring(svg)  # escaping done right leaves valid XML


def test_top_criteria(page, summary):
    ranked = sorted(summary["criteria_not_met"].items(), key=lambda kv: (-kv[1], kv[0]))
    top_id = ranked[0][0]
    assert f">{top_id}<title>" in page
    if len(ranked) > 15:
        assert f">{ranked[15][0]}<title>" not in page


def test_every_string_is_escaped(page, summary):
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;pend&#x27;)&lt;/script&gt; &amp; co" in page
    evil = dict(summary, by_ruleset={'rs"><img src=x>': {"approve": 1}},
                criteria_not_met={"<b>X</b>": 2}, requested_vs_supported={"<i>→<u>": 1})
    other = to_html(evil)
    assert "<img" not in other and "<b>X" not in other and "<i>" not in other and "<u>" not in other


def test_self_contained(page):
    for needle in ("http://", "https://", " src=", " href=", "@import", "url(", "<link"):
        assert needle not in page


def test_pend_reasons_table(page, summary):
    assert summary["pend_reasons"]
    pends = summary["outcomes"]["pend"]
    for reason, n in summary["pend_reasons"].items():
        assert f'<tr><td>{html.escape(reason)}</td><td class="n">{n:,}</td>' in page
    top, n = max(summary["pend_reasons"].items(), key=lambda kv: kv[1])
    assert f'<td class="n">{100 * n / pends:.1f} %</td>' in page


def test_length_of_stay_notes_unknown_actual(page, summary):
    unknown = sum(n for k, n in summary["length_of_stay"].items() if k.endswith("actual None"))
    assert 0 < unknown < COUNT
    assert f"Actual midnights are unknown for {unknown:,} of {COUNT:,} stays" in page
    stays = {"expected 2, actual None": 5, "expected None, actual None": 2}
    alone = to_html(dict(summary, length_of_stay=stays))
    assert "none has been discharged yet" in alone and "2 stays give no expected_midnights" in alone
    assert alone.count("<svg") == PLOTS and ">2 midnights<title>" in alone and ">not given<title>" in alone


def test_empty_summary_and_same_bytes(summary):
    empty = to_html(BatchSummary().to_dict())
    assert "<svg" not in empty and "No record in this batch." in empty
    assert to_html(summary) == to_html(summary)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(not CHROMIUM, reason="headless Chromium is not installed")
def test_renders_in_headless_chromium(page, tmp_path):
    html_file, png = tmp_path / "report.html", tmp_path / "report.png"
    html_file.write_text(page, encoding="utf-8")
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,2600",
                    f"--screenshot={png}", html_file.as_uri()], check=True, capture_output=True, timeout=120)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


# --- a day-by-day run ---------------------------------------------------------------------------------------------

BY_DAY_PLOTS = 2  # changes by day of care, changes by levels


@pytest.fixture(scope="module")
def by_day_summary(engine) -> dict:
    from test_batch_by_day import LATE_ICU, OFF_VENT, RELAPSE, STEADY
    from ur_engine import admit
    from ur_engine.stay_days import review_by_day

    s = BatchSummary(seconds=0.5)
    for rec in (LATE_ICU, OFF_VENT, RELAPSE, STEADY, dict(LATE_ICU, id=EVIL)):
        d = review_by_day(engine, admit(rec, engine.library.facts)).to_dict("compact")
        d["stay"] = _stay(rec["encounter"])
        s.add(d)
    return s.to_dict()


def test_a_day_by_day_run_gets_its_escalations_section(by_day_summary):
    page = to_html(by_day_summary)
    section = page[page.index("<h2>Escalations day by day</h2>"):]
    section = section[:section.index("</section>")]
    svgs = re.findall(r"<svg .*?</svg>", section, flags=re.S)
    assert len(svgs) == BY_DAY_PLOTS and page.count("<svg") == PLOTS + BY_DAY_PLOTS
    for svg in svgs:
        ET.fromstring(svg)
    assert "<b>5</b><span>stays judged day by day</span>" in section
    assert "<b>3 (60.0 %)</b><span>late escalations</span>" in section
    # Day 3: three stays rose to critical care and one fell from it; day 2: the relapse came off the ventilator.
    assert ">day 2<title>" in section and ">day 3<title>" in section
    assert "day 3, escalation: 3 (75.0 % of the changes that day)" in section
    assert ">inpatient → critical<title>" in section and ">critical → inpatient<title>" in section
    assert ">3 · 60.0 %</text>" in section  # three of the five changes
    rows = re.findall(r"<tr><td>(.*?)</td><td class=\"n\">(\d+)</td><td>(.*?)</td></tr>", section)
    assert rows == [("late-icu", "3", "inpatient → critical"), ("relapse", "3", "inpatient → critical"),
                    (html.escape(EVIL), "3", "inpatient → critical")]
    assert "<script" not in page.lower()


def test_a_run_not_by_day_has_no_escalations_section(page):
    assert "Escalations day by day" not in page


def test_a_day_by_day_run_where_no_level_moved_says_so(by_day_summary):
    still = dict(by_day_summary, by_day={"stays": 4, "escalations": {"count": 0, "levels": {}, "days": {}},
                                         "de_escalations": {"count": 0, "levels": {}, "days": {}},
                                         "late_escalations": {"stays": 0, "examples": []}})
    page = to_html(still)
    assert "The supported level never changed from one day of care to the next." in page
    assert page.count("<svg") == PLOTS


@pytest.mark.skipif(not CHROMIUM, reason="headless Chromium is not installed")
def test_the_escalations_section_renders_in_headless_chromium(by_day_summary, tmp_path):
    from conftest import ROOT

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    html_file, png = tmp_path / "report.html", artifacts / "report-by-day.png"
    html_file.write_text(to_html(by_day_summary), encoding="utf-8")
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,3200",
                    f"--screenshot={png}", html_file.as_uri()], check=True, capture_output=True, timeout=120)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
