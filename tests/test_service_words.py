"""The reviewer's pages in plain words, without a browser: fact names, merged lab lines, verdicts, SVG charts."""

from __future__ import annotations

import html
import re
from xml.etree import ElementTree

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import examples, make_record, obs
from strategies import records
from ur_engine.intake.normalise import review
from ur_service import web_views
from ur_service.charts import chart, readings
from ur_service.words import Words

# An engine name where a person's words belong: `sodium.min`, `score.curb65.lo`, `finding.active_bleeding`.
RAW_NAME = re.compile(r"\b[a-z][a-z0-9_]*\.(?:min|max|first|last|count|lo|hi)\b|\b(?:finding|treatment|score|dx|"
                      r"procedure)\.[a-z]")


@pytest.fixture(scope="module")
def words(library):
    return Words(library.facts)


@pytest.mark.parametrize("evidence,line", [
    ([{"fact": "sodium.min", "value": 128, "time": "2026-03-02T03:10:00Z"},
      {"fact": "sodium.max", "value": 131, "time": "2026-03-02T09:00:00Z"}],
     "Sodium, lowest in the first 24 h after arrival: 128 mmol/L at 2 Mar 03:10; "
     "highest: 131 mmol/L at 2 Mar 09:00"),
    ([{"fact": "heart_rate.min", "value": 44, "time": "2026-03-02T22:20:00Z"},
      {"fact": "heart_rate.max", "value": 44, "time": "2026-03-02T22:20:00Z"}],
     "Heart rate, lowest and highest in the first 24 h after arrival: 44/min at 2 Mar 22:20"),
    ([{"fact": "arterial_ph.min", "value": None}, {"fact": "arterial_ph.max", "value": None}],
     "Arterial blood pH in the first 24 h after arrival: not recorded"),
    ([{"fact": "temperature_oral.max", "value": 102.2, "time": "2026-03-02T09:45:00Z"}],
     "Body temperature, oral, highest in the first 24 h after arrival: 102.2 °F (39.0 °C) at 2 Mar 09:45"),
    ([{"fact": "troponin_i.max", "value": 15, "comparator": ">", "time": "2026-03-02T10:00:00Z"}],
     "Troponin I, highest in the first 24 h after arrival: > 15 ng/mL at 2 Mar 10:00"),
    ([{"fact": "finding.sudden_unconsciousness_or_disorientation", "value": False}],
     "Sudden onset of unconsciousness or disorientation (coma or unresponsiveness): documented absent"),
    ([{"fact": "finding.active_bleeding", "value": None}], "Active bleeding: not documented"),
    ([{"fact": "treatment.iv_medication", "value": True, "time": "2026-03-02T11:00:00Z"}],
     "IV medication: given (from 2 Mar 11:00)"),
    ([{"fact": "treatment.iv_fluids", "value": False}], "IV fluids: not given in the first 24 h after arrival"),
    ([{"fact": "score.curb65.lo", "value": 2}, {"fact": "score.curb65.hi", "value": 4}],
     "CURB-65 score (0-5) on presentation: between 2 and 4 points (2 surely scored; the items not documented "
     "could add the rest)"),
    ([{"fact": "score.qsofa.lo", "value": 2}, {"fact": "score.qsofa.hi", "value": 2}],
     "quick SOFA (qSOFA) score (0-3), worst value in the window: 2 points"),
    ([{"fact": "expected_midnights", "value": 3}],
     "Midnights the admitting physician expects hospital care to span, counted from arrival: 3"),
    ([{"fact": "line_of_business", "value": "medicare_advantage"}], "Line of business: medicare advantage"),
])
def test_evidence_reads_as_a_nurse_writes_it(words, evidence, line):
    assert words.evidence(evidence) == [line]


def test_a_continued_stay_reads_the_24_hours_before_the_review(library):
    said = Words(library.facts, "continued_stay").evidence([{"fact": "heart_rate.max", "value": 120}])
    assert said == ["Heart rate, highest in the 24 h before the review: 120/min"]


@pytest.mark.parametrize("ruleset,criterion,words_", [
    ("adult-admission", "SI-PULSE", "Heart rate, lowest in the first 24 h after arrival: below 50/min or "
                                    "Heart rate, highest in the first 24 h after arrival: above 140/min"),
    ("adult-admission", "SI-SODIUM", "Sodium, lowest in the first 24 h after arrival: below 123 mmol/L or "
                                     "Sodium, highest in the first 24 h after arrival: above 156 mmol/L"),
    ("adult-admission", "IS-ICU", "ICU care given"),
])
def test_a_criterion_threshold_is_said_with_its_unit(library, words, ruleset, criterion, words_):
    rs = next(r for r in library.rulesets if r.id == ruleset)
    assert words.condition(next(c for c in rs.criteria if c.id == criterion).condition) == words_


def test_no_criterion_of_the_library_is_said_with_an_engine_name(library, words):
    said = [words.condition(c.condition) for rs in library.rulesets for c in rs.criteria]
    assert len(said) > 100 and not [s for s in said if RAW_NAME.search(s)]


def test_a_reason_written_for_the_trail_names_facts_in_words(words):
    said = words.sentence("Not enough information: sodium.min, finding.active_bleeding; severity_with_intensity")
    assert said == ("Not enough information: Sodium, lowest in the first 24 h after arrival, Active bleeding; "
                    "severity with intensity")


def decision(engine, **record):
    return review(engine, make_record(**record)).to_dict()


def test_bradycardia_on_telemetry_with_one_expected_midnight_reads_observation_supported(engine, library):
    d = decision(engine, coverage={"line_of_business": "medicare"},
                 encounter={"expected_midnights": 1}, observations=[obs("8867-4", 44)],
                 treatments=[{"type": "telemetry", "start": "2026-03-02T10:00:00Z"}])
    v = web_views.verdict(d, web_views.gates(d, library))
    assert d["outcome"] == "pend" and v["tone"] == "pend"
    assert v["text"] == ("Observation supported: inpatient criteria met, Medicare two-midnight benchmark and the "
                         "Inpatient Only list not met — physician review for inpatient")
    rows = {r["level"]: r for r in web_views.level_rows(d, web_views.gates(d, library))}
    assert rows["inpatient"]["clinical"] == "met" and rows["inpatient"]["payment"] == "not_met"  # apart


@pytest.mark.parametrize("record,outcome,tone,label,text", [
    ({"observations": [obs("2951-2", 118)], "treatments": [{"type": "iv_fluids"}]}, "approve", "approve",
     "Approved: inpatient", "Inpatient approved: inpatient criteria met"),
    ({"observations": [obs("8867-4", 150)], "treatments": []}, "alternative_setting", "alternative_setting",
     "Alternative setting: observation",
     "Observation supported: inpatient criteria not met, observation criteria met — physician review if "
     "inpatient is still sought"),
    ({"observations": [obs("8867-4", 88)], "complete": None, "findings": None}, "pend", "pend",
     "Pended: physician review", "Physician review: not enough information to judge"),
])
def test_the_verdict_names_the_outcome_with_its_setting_and_never_a_denial(engine, library, record, outcome, tone,
                                                                           label, text):
    d = decision(engine, **record)
    v = web_views.verdict(d, web_views.gates(d, library))
    assert (d["outcome"], v["tone"], v["label"]) == (outcome, tone, label)
    assert v["text"].startswith(text) and "den" not in v["text"].lower()


def test_met_criteria_come_first_grouped_by_rule_set_and_the_rest_apart(engine, library, words):
    d = decision(engine, observations=[obs("2951-2", 118)], treatments=[{"type": "iv_fluids"}])
    met, rest = web_views.criteria_groups(d, library, words)
    assert {c["status"] for g in met for c in g["items"]} == {"met"}
    assert {c["status"] for g in rest for c in g["items"]} <= {"not_met", "unknown"}
    assert met[0]["title"].startswith("Adult acute admission") and "SI-SODIUM" in [c["id"] for c in met[0]["items"]]
    shown = sum(len(g["items"]) for g in met + rest)
    assert shown == len(d["criteria"])  # nothing lost by the folding


def test_a_chart_has_every_reading_and_the_criterion_threshold(engine, library, words):
    record = make_record(observations=[obs("8867-4", 96, 10), obs("8867-4", 152, 90), obs("8867-4", 118, 300),
                                       obs("8867-4", 101, 60 * 30)])  # the last is after the first 24 h
    d = review(engine, record).to_dict()
    charts = web_views.chart_list(d, record, library, words)
    hr = next(c for c in charts if c["fact"] == "heart_rate")
    svg = ElementTree.fromstring(str(hr["svg"]))
    ns = {"s": "http://www.w3.org/2000/svg"} if svg.tag.startswith("{") else {}
    find = (lambda p: svg.findall(".//s:" + p, ns)) if ns else (lambda p: svg.findall(".//" + p))
    points = find("circle")
    assert [p.get("data-value") for p in points] == ["96", "152", "118", "101"]  # the whole stay, in time order
    assert sorted(t.get("data-threshold") for t in find("line") if t.get("class") == "threshold") == ["140", "50"]
    assert [p.get("class") for p in points].count("point beyond") == 1  # 152 is past 140
    assert find("rect")[0].get("class") == "window"  # the first 24 h shaded
    assert "style" not in str(hr["svg"]) and "<script" not in str(hr["svg"])


def test_a_chart_reads_celsius_on_the_fahrenheit_scale_the_rule_uses(engine, library, words):
    from ur_engine.intake.normalise import admit

    adm = admit(make_record(observations=[obs("8310-5", 38.5, unit="Cel", method="oral")]), library.facts)
    points = readings(adm, words, "temperature_oral")
    assert [p.value for p in points] == [101.3]
    svg = str(chart(words, "temperature_oral", points, [("gte", 100.0)]))
    assert 'data-threshold="100"' in svg and "101.3 °F (38.5 °C)" in svg


def test_missing_treatments_are_named_as_a_nurse_charts_them(engine, library, words):
    d = decision(engine, observations=[obs("8867-4", 88)], complete=None)
    lines = web_views.missing_lines(d, words)
    assert "IV medication: given or not in the first 24 h after arrival" in lines
    assert not [x for x in lines if x.startswith("Treatment:")]


@pytest.mark.parametrize("query,expect", [
    ("sodium", ["SI-SODIUM", "PED-SI-SODIUM"]),
    ("SODIUM 5-33-2", ["PED-SI-SODIUM"]),  # every word must match, in any case
    ("si-pulse", ["SI-PULSE", "PED-SI-PULSE"]),
    ("", []),
    ("no-such-thing", []),
])
def test_the_rule_search_matches_ids_texts_and_sources(library, query, expect):
    assert [h["id"] for h in web_views.search(library, query)] == expect


def test_a_rule_set_page_says_how_each_level_is_met(library):
    rs = next(r for r in library.rulesets if r.id == "two-midnight")
    shown = web_views.ruleset_page(rs, library)
    assert shown["requires"] and all(r["rule"] for r in shown["requires"])
    assert not RAW_NAME.search(str(shown["criteria"]))


def test_a_stay_no_rule_set_judges_says_so_rather_than_no_level_supported(engine, library):
    d = decision(engine, encounter={"arrival_time": "2020-01-01T00:00:00Z"})  # before every rule set's effect
    assert d["levels"] == {} and d["outcome"] == "pend"
    assert web_views.verdict(d, {})["text"] == "Physician review: no rule set judges inpatient for this stay"


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_review_page_of_any_stay_shows_an_engine_name(app, client, library, data):
    """Any stay the engine can judge, pended or not, acute or post-acute: its page says every fact in words."""
    record = data.draw(records(library))
    res = client.post("/v1/reviews", json=record)
    assert res.status_code == 200, res.get_json()
    web = app.test_client()
    web.set_cookie("ur_key", app.config["TEST_KEYS"]["reviewer"])
    page = web.get(f"/ui/reviews/{res.get_json()['review_id']}")
    assert page.status_code == 200
    text = html.unescape(re.sub(r"<[^>]+>", " ", page.get_data(as_text=True)))
    assert not RAW_NAME.findall(text), RAW_NAME.findall(text)[:5]


def test_a_discharge_no_setting_fits_reads_as_no_post_acute_setting(engine, library):
    rec = make_record(review_type="discharge", coverage={"line_of_business": "medicare"},
                      encounter={"review_time": "2026-03-06T10:00:00Z"},
                      discharge_plan={"requested_setting": "snf", "inpatient_midnights": 4,
                                      "planned_date": "2026-03-06"})
    rec["encounter"].pop("requested_level")
    d = review(engine, rec).to_dict()
    assert d["outcome"] == "pend" and d["supported"] is None
    assert web_views.verdict(d, web_views.gates(d, library))["text"] == \
        "Physician review: no post-acute setting is supported by the criteria"


def test_a_reason_naming_a_rule_set_by_its_id_reads_with_its_title(engine, library):
    d = decision(engine, observations=[obs("8867-4", 96)], treatments=[])
    said = web_views._titled(next(r for r in d["reasons"] if r.startswith("adult-admission: ")), library)
    assert said.startswith("Adult acute admission — severity of illness and intensity of service: inpatient not")


# --- a stay day by day --------------------------------------------------------------------------------------------

def by_day_decision(engine, record: dict) -> dict:
    from ur_engine import admit
    from ur_engine.stay_days import review_by_day

    return review_by_day(engine, admit(record, engine.library.facts)).to_dict()


def test_each_day_of_care_says_its_span_and_the_level_its_data_supports(engine, library):
    from test_batch_by_day import at, stay, vitals

    # Readings on days 1 and 3 only, ventilated on day 1, a vasopressor on day 3: day 2 is unknown, not unmet.
    rec = stay("gap", [*vitals(1, pulse=146), *vitals(55, systolic=78)],
               [{"type": "iv_antibiotic", "start": at(1), "end": at(10)},
                {"type": "iv_antibiotic", "start": at(50), "end": at(60)},
                {"type": "vasopressor", "start": at(50), "end": at(60)}], 70)
    view = web_views.day_by_day(by_day_decision(engine, rec), library)
    assert view["head"] == "3 days of care, 24 h each from arrival, up to the discharge."
    assert [(x["number"], x["span"], x["level"]) for x in view["days"]] == [
        (1, "2 Mar 09:40 – 3 Mar 09:40", "Inpatient"),
        (2, "3 Mar 09:40 – 4 Mar 09:40", "unknown — no data that day"),
        (3, "4 Mar 09:40 – 5 Mar 07:40", "Critical care")]
    assert view["days"][1]["status"] == "unknown" and view["days"][1]["criteria"] == []
    assert "Vasopressor infusion (aggressive hemodynamic intervention)" in view["days"][2]["criteria"]
    assert [c["text"] for c in view["changes"]] == [
        "Day 3 (4 Mar 09:40 – 5 Mar 07:40): the level the data supports rose from inpatient to critical care, "
        "compared with day 1, the last day before it with data — newly met: Vasopressor infusion (aggressive "
        "hemodynamic intervention)."]


def test_a_de_escalation_names_the_criteria_no_longer_met_by_their_text(engine, library):
    from test_batch_by_day import OFF_VENT

    view = web_views.day_by_day(by_day_decision(engine, OFF_VENT), library)
    assert [x["level"] for x in view["days"]] == ["Critical care", "Critical care", "Inpatient"]
    (change,) = view["changes"]
    assert change["kind"] == "de-escalation"
    assert change["text"].startswith("Day 3 (4 Mar 09:40 – 5 Mar 09:40): the level the data supports fell from "
                                     "critical care to inpatient — no longer met: Invasive mechanical ventilation")
    assert "CC-" not in change["text"] and not RAW_NAME.findall(change["text"])


@pytest.mark.parametrize("day,words_", [
    ({"data": False, "status": "unknown", "supported": None}, "unknown — no data that day"),
    ({"data": True, "status": "met", "supported": "intermediate"}, "Intermediate care"),
    ({"data": True, "status": "unknown", "supported": None}, "unknown — not enough information that day"),
    ({"data": True, "status": "not_met", "supported": None}, "no level of care supported"),
])
def test_a_day_s_level_in_words(day, words_):
    from ur_service.words import day_level

    assert day_level(day) == words_


def test_a_decision_not_judged_by_day_has_no_day_by_day_section(engine, library):
    assert web_views.day_by_day(decision(engine), library) is None


def test_a_change_is_said_in_the_words_of_the_rules_the_decision_was_judged_by(engine, library):
    from test_batch_by_day import LATE_ICU

    d = by_day_decision(engine, LATE_ICU)
    for c in d["criteria"]:
        if c["id"] == "CC-VASOPRESSOR":  # as an earlier version of the rule worded it
            c["text"] = "Vasopressor drip"
    (change,) = web_views.day_by_day(d, library)["changes"]
    assert change["text"].endswith("newly met: Vasopressor drip.")
    assert "Parenteral therapy" in web_views.day_by_day(d, library)["days"][1]["criteria"][0]  # served rules' words
