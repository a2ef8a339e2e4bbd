"""What the reviewer's pages show, worked out from a stored decision and the serving rule library: the verdict
in one sentence, the levels with the clinical finding apart from the payment status, the criteria met first and
grouped by rule set, the charts, the worklist's triage columns and the rule browser's criteria in words."""

from __future__ import annotations

from datetime import datetime, timedelta

from ur_engine.conditions import Any as AnyOf
from ur_engine.conditions import Leaf, Not
from ur_engine.errors import RecordError
from ur_engine.intake.normalise import admit
from ur_engine.vocabulary import POST_ACUTE_SETTINGS

from . import charts
from .words import LEVELS, Words, day_level, level, number, span, when

STATUS = {"met": "met", "not_met": "not met", "unknown": "unknown — information missing", "waived": "waived"}
ORDER = tuple(LEVELS)  # the highest level first, then the post-acute settings


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def gates(decision: dict, library) -> dict[str, str]:
    """target -> the title of the payment rule set(s) gating it (Medicare two-midnight, SNF qualifying stay)."""
    applied = decision.get("rules", {}).get("rulesets") or {}
    found: dict[str, list[str]] = {}
    for rs in library.rulesets:
        if rs.id in applied:
            for target in rs.requires:
                found.setdefault(target, []).append(rs.title)
    return {t: "; ".join(titles) for t, titles in found.items()}


def verdict(d: dict, gate: dict[str, str]) -> dict:
    """The decision in one sentence, its outcome named with its setting, and its tone (green or amber only:
    the engine approves or asks a person, it never denies)."""
    req, sup, rec = d.get("requested"), d.get("supported"), d.get("recommended")
    levels, payment = d.get("levels", {}), d.get("payment", {})
    outcome = d["outcome"]
    if outcome == "approve":
        text = f"{cap(level(req))} approved: {level(req)} criteria met"
        if sup and sup != req:
            text += f", and the criteria also support {level(sup)}"
        if payment.get(req) == "met" and req in gate:
            text += f"; {gate[req]}: met"
        return {"label": f"Approved: {level(req)}", "tone": "approve", "text": text}
    if outcome == "alternative_setting":
        text = (f"{cap(level(rec))} supported: {level(req)} criteria not met, {level(rec)} criteria met — "
                f"physician review if {level(req)} is still sought")
        return {"label": f"Alternative setting: {level(rec)}", "tone": "alternative_setting", "text": text}
    label = {"label": "Pended: physician review", "tone": "pend"}
    if sup and payment.get(sup) == "not_met":
        chain = [t for t in ORDER if t in levels]
        lower = next((t for t in chain[chain.index(sup) + 1:] if levels[t] == "met" and payment.get(t) != "not_met"),
                     None) if sup in chain else None
        because = (f"{level(sup)} criteria met, {gate.get(sup, 'a payment rule')} not met — "
                   f"physician review for {level(sup)}")
        text = f"{cap(level(lower))} supported: {because}" if lower else f"Physician review: {because}"
        return {**label, "text": text}
    unknown = [level(t) for t, s in levels.items() if s == "unknown"]
    missing = len(d.get("missing_info") or []) or len(d.get("missing") or [])
    pend_criteria = [r for r in d.get("reasons", []) if r.endswith("— physician review")]
    if pend_criteria:
        text = "Physician review asked by a criterion: " + pend_criteria[0].split(": ", 1)[-1].removesuffix(
            " — physician review")
    elif not levels:
        text = f"Physician review: no rule set judges {level(req)} for this stay"
    elif unknown and missing:
        text = (f"Physician review: not enough information to judge {', '.join(unknown)} — "
                f"{missing} item{'s' if missing != 1 else ''} to document")
    elif d.get("review_type") == "continued_stay":
        text = f"Physician review: no criterion supports a continued stay at {level(req)} — review for discharge"
    else:
        what = "post-acute setting" if req in POST_ACUTE_SETTINGS else "level of care"
        text = f"Physician review: no {what} is supported by the criteria"
    return {**label, "text": text}


def determination_line(det: dict, requested: str | None) -> dict:
    said = "approved" if det["decision"] == "approve" else "denied"
    return {"label": f"Physician: {said}", "tone": "physician-" + det["decision"],
            "text": f"Physician determination: {level(requested)} {said} by {det['physician']['name']} on "
                    f"{when(det['decided_at'])}"}


def missing_lines(d: dict, words: Words) -> list[str]:
    """What to document: the decision's own words when it has them (older decisions only name facts)."""
    if d.get("missing_info"):
        # The decision's words, except a treatment's, which the catalogue names by its type ("iv medication")
        return [f"{words.label(m['facts'][0])}: given or not {words.window}".rstrip()
                if m.get("facts") and all(f.startswith("treatment.") for f in m["facts"]) else m["text"]
                for m in d["missing_info"]]
    lines: list[str] = []
    for name in d.get("missing") or []:
        found = words.observation(name)
        line = f"{words.obs_text(found[0])} {words.window}" if found else words.label(name)
        if line not in lines:
            lines.append(line)
    return lines


def level_rows(d: dict, gate: dict[str, str]) -> list[dict]:
    rows = []
    for t in sorted(d.get("levels", {}), key=lambda t: ORDER.index(t) if t in ORDER else len(ORDER)):
        marks = [m for m, v in (("requested", d.get("requested")), ("supported", d.get("supported")),
                                ("recommended", d.get("recommended"))) if v == t]
        pay = d.get("payment", {}).get(t)
        rows.append({"level": level(t), "clinical": d["levels"][t], "clinical_words": STATUS[d["levels"][t]],
                     "payment": pay, "payment_words": f"{gate.get(t, 'payment rule')}: {STATUS[pay]}" if pay else
                     "no payment rule applies", "marks": marks})
    return rows


def criteria_groups(d: dict, library, words: Words) -> tuple[list[dict], list[dict]]:
    """(met, the rest): each a list of rule sets in trail order with their criteria in words."""
    titles = {rs.id: rs.title for rs in library.rulesets}
    met: dict[str, dict] = {}
    rest: dict[str, dict] = {}
    for c in d.get("criteria", []):
        item = {"id": c["id"], "status": c["status"], "status_words": STATUS.get(c["status"], c["status"]),
                "group": c["group"].replace("_", " "), "text": c["text"], "source": c["source"],
                "evidence": words.evidence(c["evidence"])}
        into = met if c["status"] in ("met", "waived") else rest
        into.setdefault(c["ruleset"], {"id": c["ruleset"], "title": titles.get(c["ruleset"], c["ruleset"]),
                                       "items": []})["items"].append(item)
    for g in rest.values():  # unknown (what to document) before not met
        g["items"].sort(key=lambda i: i["status"] != "unknown")
    return list(met.values()), list(rest.values())


def chart_list(d: dict, record: dict, library, words: Words, limit: int = 8) -> list[dict]:
    """A chart for each lab or vital sign a deciding criterion tested (the met ones; when none is met, the not
    met ones), over the stay, with that criterion's thresholds."""
    try:
        adm = admit(record, library.facts)
    except (RecordError, ValueError, KeyError, TypeError):
        return []
    chosen = [c for c in d.get("criteria", []) if c["status"] == "met"] or \
             [c for c in d.get("criteria", []) if c["status"] == "not_met"]
    by_id = {(rs.id, cr.id): cr for rs in library.rulesets for cr in rs.criteria}
    bases: dict[str, dict[float, str]] = {}
    why: dict[str, list[str]] = {}
    for c in chosen:
        for e in c["evidence"]:
            found = words.observation(e["fact"])
            if not found or found[1] == "count":
                continue
            base = found[0]
            bases.setdefault(base, {})
            if c["id"] not in why.setdefault(base, []):
                why[base].append(c["id"])
            crit = by_id.get((c["ruleset"], c["id"]))
            for op, t in (words.thresholds(crit.condition, base) if crit else []):
                bases[base].setdefault(t, op)
    anchor, start, end = library.facts.window(adm)
    out = []
    for base, limits in bases.items():
        points = charts.readings(adm, words, base)
        if not points:
            continue
        svg = charts.chart(words, base, points, [(op, t) for t, op in limits.items()], (start, end))
        out.append({"fact": base, "title": words.obs_text(base), "loinc": words.codes(base), "criteria": why[base],
                    "svg": svg,
                    "readings": len(points)})
        if len(out) >= limit:
            break
    return out


UNTIL = {"discharge": "up to the discharge", "review": "up to the review",
         "data": "up to the last time the record gives"}


def day_by_day(d: dict, library) -> dict | None:
    """A day-by-day decision's ``by_day`` for a reviewer: each day of care with its span and the level its data
    supports, and each rise or fall of that level in a sentence naming the criteria that moved it by their text."""
    by_day = d.get("by_day")
    if not by_day:
        return None
    # The decision's own words first (the rules it was judged by); the day-of-care criteria it does not list, from
    # the rules served.
    texts = {cr.id: cr.text for rs in library.rulesets for cr in rs.criteria}
    texts.update({c["id"]: c["text"] for c in d.get("criteria", []) if c.get("text")})

    def said(ids) -> list[str]:
        return [texts.get(i, f"criterion {i}, no longer in the rules served") for i in ids]

    days = [{"number": x["day"], "span": span(x["start"], x["end"]), "level": day_level(x),
             "status": x["status"] if x.get("data") else "unknown", "criteria": said(x.get("criteria") or [])}
            for x in by_day.get("days", [])]
    judged = [x["day"] for x in by_day.get("days", []) if x.get("data") and
              (x.get("supported") or x.get("status") != "unknown")]
    spans = {x["number"]: x["span"] for x in days}
    changes = []
    for c in by_day.get("changes", []):
        up = c["kind"] == "escalation"
        before = max((n for n in judged if n < c["day"]), default=None)
        was = level(c["from"]) if c["from"] else "no level supported"
        now = level(c["to"]) if c["to"] else "no level supported"
        text = (f"Day {c['day']} ({spans.get(c['day'], '')}): the level the data supports "
                f"{'rose' if up else 'fell'} from {was} to {now}")
        if before is not None and before != c["day"] - 1:
            text += f", compared with day {before}, the last day before it with data"
        moved = said(c.get("criteria") or [])
        if moved:
            text += f" — {'newly met' if up else 'no longer met'}: " + "; ".join(moved)
        changes.append({"day": c["day"], "kind": c["kind"], "text": text + "."})
    count = len(days)
    head = f"{count} day{'s' if count != 1 else ''} of care, 24 h each from arrival, " + \
        UNTIL.get(by_day.get("until"), "up to the end of the stay") + "."
    if by_day.get("truncated"):
        head += f" Only the first {count} days were judged."
    return {"head": head, "days": days, "changes": changes}


def _titled(reason: str, library) -> str:
    """``adult-admission: inpatient not supported …`` → the rule set's title in place of its id."""
    head, sep, rest = reason.partition(": ")
    title = next((rs.title for rs in library.rulesets if rs.id == head), None) if sep else None
    return f"{title}: {rest}" if title else reason


def review_view(r: dict, library, others: list[dict]) -> dict:
    d = r["decision"]
    words = Words(library.facts, d.get("review_type") or "admission")
    gate = gates(d, library)
    met, rest = criteria_groups(d, library, words)
    engine_says = verdict(d, gate)
    det = r.get("determination")
    return {
        "verdict": engine_says,
        "headline": determination_line(det, d.get("requested")) if det else engine_says,
        "reasons": [words.sentence(_titled(x, library)) for x in d.get("reasons", [])],
        "notices": [words.sentence(x) for x in d.get("notices", [])],
        "missing": missing_lines(d, words),
        "levels": level_rows(d, gate),
        "met": met, "rest": rest, "rest_count": sum(len(g["items"]) for g in rest),
        "charts": chart_list(d, r["record"], library, words),
        "decided": any(c["status"] == "met" for c in d.get("criteria", [])),
        "duplicates": [o for o in others if o["review_id"] != r["review_id"]],
        "by_day": day_by_day(d, library),
        "level": level,
    }


def triage(row: dict, decision: dict, library, now) -> dict:
    """One worklist row: why it waits, what is missing and which level the criteria support."""
    words = Words(library.facts, decision.get("review_type") or "admission")
    gate = gates(decision, library)
    missing = missing_lines(decision, words)
    left = None
    if row.get("due_at"):
        left = int((datetime.fromisoformat(row["due_at"].replace("Z", "+00:00")) - now) / timedelta(seconds=1))
    return {**row, "verdict": verdict(decision, gate), "missing": missing,
            "supported_words": level(decision.get("supported")) if decision.get("supported") else "none",
            "requested_words": level(decision.get("requested")), "seconds_left": left,
            "overdue": left is not None and left < 0}


# --- the rule browser -------------------------------------------------------------------------------------------

def _groups(expr) -> str:
    """A level's rule over criteria groups in words: ``(severity or severity with intensity) and intensity``."""
    if isinstance(expr, Leaf):
        return expr.fact.replace("_", " ")
    if isinstance(expr, Not):
        return f"not {_groups(expr.item)}"
    parts = [_groups(x) if isinstance(x, Leaf) else f"({_groups(x)})" for x in expr.items]
    return (" or " if isinstance(expr, AnyOf) else " and ").join(parts)


def applies_words(a) -> str:
    parts = []
    if a.age_min is not None or a.age_max is not None:
        parts.append("age " + (f"{a.age_min:g} to {a.age_max:g}" if a.age_min is not None and a.age_max is not None
                               else f"{a.age_min:g} or over" if a.age_min is not None else f"under {a.age_max:g}"))
    parts.append(" or ".join(sorted(t.replace("_", " ") for t in a.review_types)) + " review")
    if a.lines:
        parts.append("coverage: " + ", ".join(sorted(x.replace("_", " ") for x in a.lines)))
    if a.requested:
        parts.append("requested: " + ", ".join(level(x) for x in sorted(a.requested)))
    if a.diagnoses:
        parts.append("diagnosis in: " + ", ".join(a.diagnoses))
    if a.plans:
        parts.append("plan: " + ", ".join(sorted(a.plans)))
    return "; ".join(parts)


def ruleset_page(rs, library) -> dict:
    """One rule set as its page shows it: what it applies to, how each level is met, each criterion's test in
    words with its thresholds and units, and its source."""
    words = Words(library.facts, sorted(rs.applies.review_types)[0] if rs.applies.review_types else "admission")
    return {
        "id": rs.id, "version": rs.version, "title": rs.title, "source": rs.source, "file": rs.file,
        "effective": f"from {rs.effective_from or 'always'}" + (f" to {rs.effective_to}" if rs.effective_to else ""),
        "applies": applies_words(rs.applies),
        "levels": [{"level": level(t), "rule": _groups(e)} for t, e in rs.levels.items()],
        "requires": [{"level": level(t), "rule": _groups(e)} for t, e in rs.requires.items()],
        "criteria": [{"id": c.id, "group": c.group.replace("_", " "), "text": c.text, "source": c.source,
                      "action": {"pend": "sends the case to a physician when met",
                                 "notify": "adds a notice when met"}.get(c.action, ""),
                      "test": words.tree(c.condition)} for c in rs.criteria],
        "tests": len(rs.tests),
        "scores": [{"name": sc["text"], "source": sc.get("source", ""),
                    "components": [(number(x["points"]), x["text"]) for x in sc.get("components", [])]}
                   for name, sc in library.facts.spec.get("scores", {}).items()
                   if any(f.startswith(f"score.{name}.") or f == f"score.{name}" for f in rs.facts)],
    }


def search(library, query: str, limit: int = 200) -> list[dict]:
    """Criteria whose id, text or source (or their rule set's id or title) hold every word of ``query``."""
    terms = [t for t in query.lower().split() if t][:12]
    if not terms:
        return []
    hits = []
    for rs in library.rulesets:
        for c in rs.criteria:
            hay = " ".join((c.id, c.text, c.source or "", rs.id, rs.title)).lower()
            if all(t in hay for t in terms):
                hits.append({"ruleset": rs.id, "title": rs.title, "id": c.id, "text": c.text, "source": c.source})
                if len(hits) >= limit:
                    return hits
    return hits
