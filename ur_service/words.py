"""Facts, thresholds and evidence in the words of a nurse: names from ``rules/facts.yaml``, units as people write
them, the lowest and highest of a lab merged into one line with values and times.

Nothing here judges: it only says what the engine's decision and the rule files already say, for people.
"""

from __future__ import annotations

import re
from datetime import datetime

from ur_engine.conditions import All, Any, Leaf, Not, ScoreLeaf
from ur_engine.facts import FactDictionary

# UCUM as written by the rules → as a reviewer writes it ("" for a unitless quantity such as pH).
UNITS = {"/min": "/min", "mm[Hg]": "mm Hg", "[degF]": "°F", "Cel": "°C", "%": "%", "[pH]": "",
         "10*3/uL": "×10³/µL", "10*9/L": "×10⁹/L", "h": "h", "min": "min", "d": "days", "points": "points"}
STATS = {"min": "lowest", "max": "highest", "first": "first", "last": "latest", "count": "number of readings"}
OPS = {"lt": "below", "lte": "at or below", "gt": "above", "gte": "at or above", "eq": "equal to", "ne": "not"}
LEVELS = {"critical": "critical care", "intermediate": "intermediate care", "inpatient": "inpatient",
          "observation": "observation", "outpatient": "outpatient", "ltch": "long-term care hospital",
          "irf": "inpatient rehabilitation facility", "snf": "skilled nursing facility",
          "home_health": "home health", "hospice": "hospice", "home": "home"}
# The catalogue names a treatment by its type ("Treatment: iv medication"): these read as a nurse writes them.
TREATMENTS = {"iv_medication": "IV medication", "iv_antibiotic": "IV antibiotic", "iv_fluids": "IV fluids",
              "iv_insulin_infusion": "IV insulin infusion",
              "frequent_vital_signs": "Vital signs every 2 h or telemetry",
              "neuro_checks_q2h": "Neurological checks every 2 h", "chemotherapy": "Chemotherapy",
              "icu_care": "ICU care", "vasopressor": "Vasopressor", "mechanical_ventilation": "Mechanical ventilation",
              "noninvasive_ventilation": "Non-invasive ventilation", "high_flow_oxygen": "High-flow oxygen",
              "oxygen": "Oxygen", "transfusion": "Transfusion", "dialysis": "Dialysis"}
FIELDS = {"sex": "Sex", "line_of_business": "Line of business", "plan": "Plan", "requested_level": "Requested level",
          "admit_source": "Admitted from"}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# A dotted or snake_case engine name inside a sentence (a reason written for the trail).
_NAME = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)*(?:\.[a-z0-9_]+)+\b|\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def level(name: str | None) -> str:
    return LEVELS.get(name or "", (name or "—").replace("_", " "))


def day_level(day: dict) -> str:
    """The level of care a day's data supports, in words: a day without data is unknown, never "not met"."""
    if not day.get("data"):
        return "unknown — no data that day"
    if day.get("supported"):
        name = level(day["supported"])
        return name[:1].upper() + name[1:]
    if day.get("status") == "unknown":
        return "unknown — not enough information that day"
    return "no level of care supported"


def span(start: str | None, end: str | None) -> str:
    """A day of care's span on the record's clock: ``2 Mar 09:40 – 3 Mar 09:40``."""
    return f"{when(start)} – {when(end)}"


def when(text: str | None) -> str:
    """``2026-03-02T22:20:00Z`` → ``2 Mar 22:20`` (the record's own clock; a plain date stays a date)."""
    if not text:
        return ""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if len(text) <= 10:
        return f"{t.day} {MONTHS[t.month - 1]} {t.year}"
    return f"{t.day} {MONTHS[t.month - 1]} {t:%H:%M}"


def number(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


class Words:
    """The words for one library's facts, in one review type's window (admission: the first 24 h)."""

    def __init__(self, facts: FactDictionary, review_type: str = "admission"):
        self.facts = facts
        self.observations: dict = facts.spec.get("observations", {})
        self.scores: dict = facts.spec.get("scores", {})
        w = facts.windows.get(review_type) or facts.windows.get("admission") or {}
        self.window = ""
        if w:
            self.window = (f"in the first {w['end_hours']:g} h after arrival" if w["anchor"] == "arrival" else
                           f"in the {-w['start_hours']:g} h before the review")

    # --- names ------------------------------------------------------------------------------------------

    def observation(self, name: str) -> tuple[str, str] | None:
        """(base, statistic) when ``name`` is an observation statistic such as ``sodium.min``."""
        base, _, stat = name.rpartition(".")
        return (base, stat) if base in self.observations and stat in STATS else None

    def obs_text(self, base: str) -> str:
        return self.observations[base]["text"]

    def codes(self, base: str) -> list[str]:
        return [c["code"] if isinstance(c, dict) else c for c in self.observations.get(base, {}).get("codes", [])]

    def unit(self, name: str) -> str:
        """The display unit of a fact's values ("" when it has none)."""
        found = self.observation(name)
        if found:
            return "" if found[1] == "count" else self._unit(self.observations[found[0]]["unit"])
        if name.startswith("score."):
            return "points"
        info = self.facts.catalog.get(name)
        return self._unit(info.unit) if info is not None and info.unit else ""

    @staticmethod
    def _unit(ucum: str) -> str:
        return UNITS.get(ucum, ucum)

    def label(self, name: str) -> str:
        """A fact's human name, with the window it is read in for a lab or vital sign."""
        found = self.observation(name)
        if found:
            return f"{self.obs_text(found[0])}, {STATS[found[1]]} {self.window}".rstrip()
        kind, _, rest = name.partition(".")
        if kind == "score":
            base = rest.removesuffix(".lo").removesuffix(".hi")
            text = self.scores.get(base, {}).get("text", base.replace("_", " "))
            return text + (" (points surely scored)" if rest.endswith(".lo") else
                           " (most points possible)" if rest.endswith(".hi") else "")
        if kind == "treatment" and rest in TREATMENTS:
            return TREATMENTS[rest]
        if name in FIELDS:
            return FIELDS[name]
        info = self.facts.catalog.get(name)
        if info is not None and info.text and not _NAME.fullmatch(info.text):
            return info.text
        return (rest or name).replace("_", " ").replace(".", " ").capitalize()

    def value(self, name: str, v: object, comparator: str | None = None) -> str:
        """A value with its unit; booleans as the fact's kind says them."""
        if v is None:
            return "not documented"
        if isinstance(v, bool):
            kind = name.partition(".")[0]
            if kind == "finding":
                return "documented present" if v else "documented absent"
            if kind == "treatment":
                return "given" if v else f"not given {self.window}".rstrip()
            if kind == "procedure":
                return "yes" if v else "none"
            return "yes" if v else "no"
        if isinstance(v, (int, float)):
            unit = self.unit(name)
            text = (comparator + " " if comparator else "") + number(v)
            if unit == "°F":  # the rules read Fahrenheit (405 IAC 5-33); most charts are in Celsius
                text += f" °F ({(float(v) - 32) / 1.8:.1f} °C)"
            elif unit:
                text += ("" if unit in ("%", "/min") else " ") + unit
            return text
        return str(v).replace("_", " ")

    # --- evidence and sentences ---------------------------------------------------------------------------

    def evidence(self, items: list[dict]) -> list[str]:
        """A criterion's evidence as lines: a lab's lowest and highest in one line, a score's bounds in one."""
        lines: list[str] = []
        seen: set[str] = set()
        by_fact = {e["fact"]: e for e in items}
        for e in items:
            name = e["fact"]
            if name in seen:
                continue
            found = self.observation(name)
            if found:
                group = [by_fact[f] for f in by_fact if (self.observation(f) or ("",))[0] == found[0]]
                seen.update(g["fact"] for g in group)
                lines.append(self._observation_line(found[0], group) + _answered(group))
                continue
            if name.startswith("score.") and name.endswith((".lo", ".hi")):
                base = name[:-3]
                lo, hi = by_fact.get(base + ".lo", {}).get("value"), by_fact.get(base + ".hi", {}).get("value")
                seen.update((base + ".lo", base + ".hi"))
                lines.append(self._score_line(base, lo, hi))
                continue
            seen.add(name)
            line = f"{self.label(name)}: {self.value(name, e.get('value'), e.get('comparator'))}"
            if e.get("time") and e.get("value") not in (None, False):
                line += f" ({'from ' if name.startswith('treatment.') else 'at '}{when(e['time'])})"
            lines.append(line + _answered([e]))
        return lines

    def _observation_line(self, base: str, group: list[dict]) -> str:
        text = self.obs_text(base)
        known = [g for g in group if g.get("value") is not None]
        if not known:
            return f"{text} {self.window}: not recorded".replace("  ", " ")
        parts = []
        values = {(g.get("value"), g.get("time"), g.get("comparator")) for g in known}
        if len(values) == 1 and len(known) > 1:  # lowest and highest are the same reading
            g = known[0]
            stats = " and ".join(STATS[self.observation(k["fact"])[1]] for k in known)  # type: ignore[index]
            return f"{text}, {stats} {self.window}: {self._reading(g)}"
        for i, g in enumerate(known):
            stat = STATS[self.observation(g["fact"])[1]]  # type: ignore[index]
            parts.append(f"{stat} {self.window}: {self._reading(g)}" if i == 0 else f"{stat}: {self._reading(g)}")
        return f"{text}, " + "; ".join(parts)

    def _reading(self, g: dict) -> str:
        text = self.value(g["fact"], g["value"], g.get("comparator"))
        return text + (f" at {when(g['time'])}" if g.get("time") else "")

    def _score_line(self, base: str, lo: object, hi: object) -> str:
        text = self.label(base)
        if lo is None and hi is None:
            return f"{text}: not known"
        if lo == hi:
            return f"{text}: {number(lo)} points"  # type: ignore[arg-type]
        return (f"{text}: between {number(lo)} and {number(hi)} points "  # type: ignore[arg-type]
                f"({number(lo)} surely scored; the items not documented could add the rest)")

    def sentence(self, text: str) -> str:
        """A reason written for the trail, with any engine name in it said in words."""
        def say(m: re.Match) -> str:
            name = m.group(0)
            if name in self.facts.catalog or self.observation(name) or name.startswith("score."):
                return self.label(name)
            return name.replace("_", " ")
        return _NAME.sub(say, text)

    # --- thresholds --------------------------------------------------------------------------------------

    def condition(self, expr) -> str:
        """A criterion's test in words, thresholds with their units."""
        if isinstance(expr, (Leaf, ScoreLeaf)):
            return self._test(expr)
        if isinstance(expr, Not):
            return f"not ({self.condition(expr.item)})"
        parts = [self.condition(x) if isinstance(x, (Leaf, ScoreLeaf)) else f"({self.condition(x)})"
                 for x in expr.items]
        if len(parts) == 1:
            return parts[0]
        return (" or " if isinstance(expr, Any) else " and ").join(parts)

    def tree(self, expr) -> dict:
        """A criterion's test as nested parts for a page: ``{"text"}`` or ``{"join": "any of", "items"}``."""
        if isinstance(expr, (Leaf, ScoreLeaf)):
            return {"text": self._test(expr)}
        if isinstance(expr, Not):
            return {"join": "none of", "items": [self.tree(expr.item)]}
        if len(expr.items) == 1:
            return self.tree(expr.items[0])
        return {"join": "any of" if isinstance(expr, Any) else "all of", "items": [self.tree(x) for x in expr.items]}

    def _test(self, leaf) -> str:
        name, op, v = leaf.fact, leaf.op, leaf.value
        label = self.label(name)
        if op == "is":
            if name.startswith("finding."):
                return f"{label}: {'present' if v else 'absent'}"
            if name.startswith("treatment."):
                return f"{label} {'given' if v else 'not given'}"
            return f"{label}: {'yes' if v else 'no'}"
        if op == "in":
            return f"{label} is one of {', '.join(str(x).replace('_', ' ') for x in v)}"
        if isinstance(v, str):
            return f"{label} {'is' if op == 'eq' else 'is not'} {v.replace('_', ' ')}"
        threshold = self.value(name if not isinstance(leaf, ScoreLeaf) else "score." + name, v)
        if isinstance(leaf, ScoreLeaf) or name.startswith("score."):
            threshold = f"{number(v)} points"
        return f"{label}: {OPS[op]} {threshold}"

    def thresholds(self, expr, base: str) -> list[tuple[str, float]]:
        """(operator, value) of every numeric test of ``expr`` on observation ``base`` (any statistic)."""
        out = []
        if isinstance(expr, Leaf):
            found = self.observation(expr.fact)
            if found and found[0] == base and found[1] != "count" and expr.op in OPS and \
                    isinstance(expr.value, (int, float)) and not isinstance(expr.value, bool):
                out.append((expr.op, float(expr.value)))
        elif isinstance(expr, Not):
            out += self.thresholds(expr.item, base)
        elif isinstance(expr, (All, Any)):
            for x in expr.items:
                out += self.thresholds(x, base)
        return out


def _answered(evidence: list[dict]) -> str:
    """Where a value came from when it is not the chart (a QuestionnaireResponse's answer), for the reviewer."""
    source = next((e["source"] for e in evidence if e.get("source")), None)
    return f" — answered, from {source}" if source else ""
