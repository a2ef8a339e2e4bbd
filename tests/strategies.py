"""Hypothesis strategies: random facts and random admission records near the rules' thresholds."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

from ur_engine import conditions as c
from ur_engine.vocabulary import ACUTE_LEVELS, POST_ACUTE_SETTINGS

ARRIVAL = datetime(2026, 3, 2, 9, 40, tzinfo=timezone.utc)
TREATMENTS = ["iv_medication", "iv_antibiotic", "iv_fluids", "iv_insulin_infusion", "vasopressor", "oxygen",
              "high_flow_oxygen", "noninvasive_ventilation", "mechanical_ventilation", "telemetry",
              "vital_signs_q2h", "neuro_checks_q2h", "transfusion", "chemotherapy", "dialysis", "icu_care",
              "tube_feeding"]


def leaves(expr):
    if isinstance(expr, c.Leaf):
        yield expr
    elif isinstance(expr, c.ScoreLeaf):  # the engine tests a score's bounds
        yield c.Leaf(f"{expr.fact}.lo", expr.op, expr.value)
        yield c.Leaf(f"{expr.fact}.hi", expr.op, expr.value)
    elif isinstance(expr, c.Not):
        yield from leaves(expr.item)
    else:
        for item in expr.items:
            yield from leaves(item)


def thresholds(library) -> dict[str, list]:
    """fact → values at and around every constant a rule compares it with."""
    out: dict[str, set] = {}
    for rs in library.rulesets:
        for cr in rs.criteria:
            for leaf in leaves(cr.condition):
                vals = leaf.value if leaf.op == "in" else (leaf.value,)
                bucket = out.setdefault(leaf.fact, set())
                for v in vals:
                    bucket.add(v)
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        bucket.update({v - 1, v + 1, round(v - 0.01, 4), round(v + 0.01, 4)})
    return {k: sorted(v, key=str) for k, v in out.items()}


def fact_values(library, ruleset):
    """Random ``{fact: value}`` for one rule set's facts, each fact possibly absent (unknown)."""
    near = thresholds(library)
    catalog = library.facts.catalog
    parts = {}
    for name in ruleset.facts:
        info = catalog[name]
        if info.type == "boolean":
            value = st.booleans()
        elif info.type == "number":
            value = st.sampled_from(near.get(name, [0])) | st.integers(-5, 400) | \
                st.floats(-1000, 1000, allow_nan=False).map(lambda x: round(x, 3))
        else:
            value = st.sampled_from(near.get(name, ["x"]) + ["other"])
        parts[name] = st.none() | value
    return st.fixed_dictionaries(parts).map(lambda d: {k: v for k, v in d.items() if v is not None})


def _time(hours: float) -> str:
    return (ARRIVAL + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def records(draw, library, ruleset=None):
    """A valid admission record; when ``ruleset`` is given, one that it applies to."""
    near = thresholds(library)
    spec = library.facts.spec["observations"]
    a = ruleset.applies if ruleset else None
    review_type = draw(st.sampled_from(sorted(a.review_types) if a else ["admission", "continued_stay"]))
    lines = sorted(a.lines) if a and a.lines else ["medicare", "medicare_advantage", "medicaid", "commercial"]
    lo = a.age_min if a and a.age_min is not None else 0
    hi = a.age_max if a and a.age_max is not None else 100
    settings = review_type == "discharge"
    levels = sorted(a.requested) if a and a.requested else list(POST_ACUTE_SETTINGS if settings else ACUTE_LEVELS)
    rec = {
        "id": f"r{draw(st.integers(0, 10**9))}",
        "review_type": review_type,
        "patient": {"age": draw(st.integers(int(lo), int(hi)))},
        "coverage": {"line_of_business": draw(st.sampled_from(lines))},
        "encounter": {"arrival_time": _time(0)},
    }
    enc = rec["encounter"]
    if settings:
        plan = {"requested_setting": draw(st.sampled_from(levels))}
        if draw(st.booleans()):
            plan["inpatient_midnights"] = draw(st.integers(0, 6))
        if draw(st.booleans()):
            plan["planned_date"] = (ARRIVAL + timedelta(days=draw(st.integers(1, 10)))).date().isoformat()
        rec["discharge_plan"] = plan
        if draw(st.booleans()):
            rec["function"] = {
                k: draw(v) for k, v in {
                    "therapy_hours_per_day": st.sampled_from([0, 1, 2.5, 3, 4]),
                    "therapy_days_per_week": st.integers(0, 7),
                    "expected_to_benefit": st.booleans(), "physician_visits_per_week": st.integers(0, 5),
                    "homebound": st.booleans(),
                    "skilled_need": st.sampled_from(["none", "intermittent", "daily", "continuous"]),
                    "face_to_face_date": st.integers(-120, 60).map(
                        lambda d: (ARRIVAL + timedelta(days=d)).date().isoformat()),
                }.items() if draw(st.booleans())}
    else:
        enc["requested_level"] = draw(st.sampled_from(levels))
    if draw(st.booleans()):
        enc["expected_midnights"] = draw(st.integers(0, 5))
    if draw(st.booleans()):
        enc["order_time"] = _time(draw(st.integers(0, 20)))
    if review_type != "admission" or draw(st.booleans()):
        enc["review_time"] = _time(draw(st.integers(20, 80)))
    if draw(st.booleans()):
        obs = []
        for _ in range(draw(st.integers(0, 8))):
            name = draw(st.sampled_from(sorted(spec)))
            o = spec[name]
            stat_near = [v for s in ("min", "max", "first", "last") for v in near.get(f"{name}.{s}", [])]
            value = draw(st.sampled_from(stat_near or [1]) | st.integers(0, 300))
            codes = [c["code"] if isinstance(c, dict) else c for c in o["codes"]]
            item = {"code": draw(st.sampled_from(codes)), "value": value,
                    "time": _time(draw(st.integers(-30, 80) if review_type != "admission" else st.integers(-2, 30)))}
            if "where" in o:
                for key, allowed in o["where"].items():
                    item[key] = draw(st.sampled_from(list(allowed) + ["other"]))
            obs.append(item)
        rec["observations"] = obs
    if draw(st.booleans()):
        rec["treatments"] = [{"type": t} for t in draw(st.lists(st.sampled_from(TREATMENTS), max_size=4))]
    if draw(st.booleans()):
        names = sorted(library.facts.findings)
        chosen = draw(st.lists(st.sampled_from(names), max_size=8, unique=True))
        near_findings = {n: near.get(f"finding.{n}", [0]) for n in names}
        rec["findings"] = {n: draw(st.booleans()) if library.facts.findings[n]["type"] == "boolean"
                           else draw(st.sampled_from(near_findings[n]) | st.integers(0, 200)) for n in chosen}
    if a and a.diagnoses:  # a rule set for a condition applies only to records with that diagnosis
        dx = sorted(c for v in a.diagnoses for c in library.valuesets[v].codes_on(ARRIVAL.date()))
        rec["diagnoses"] = [{"code": draw(st.sampled_from(dx)), "principal": True}]
    if draw(st.booleans()):
        codes = library.valuesets["inpatient-only"].codes_on(ARRIVAL.date()) + ["27447", "99213", "47562"]
        rec["procedures"] = [
            {"code": draw(st.sampled_from(codes)),
             "status": draw(st.sampled_from(["planned", "completed", "cancelled"])),
             "anesthesia": draw(st.sampled_from(["general", "regional", "local", "none"])),
             "hospital_only": draw(st.booleans()),
             "time": _time(draw(st.integers(-5, 40)))}
            for _ in range(draw(st.integers(0, 2)))]
    return rec


def bench_generator():
    """bench/generate.py as a module: its seeded ``record(rng, i, start)`` gives realistic synthetic stays."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bench_generate", Path(__file__).parents[1] / "bench" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def json_paths(node, at=()):
    """Every place in a JSON document a value could be replaced: each key's value and each list item."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*at, k)
            yield from json_paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*at, i)
            yield from json_paths(v, (*at, i))
