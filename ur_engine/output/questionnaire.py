"""DTR, open: what a pended review still needs → a FHIR Questionnaire a nurse answers, pre-filled from the chart.

One item per entry of the decision's ``missing_info`` (the library's own words, with the time window), laid out so
that ``ur_engine.intake.answers`` can read the answers back into the record:

- a lab or vital sign: a repeating group (``linkId`` the observation's name, its LOINC codes on the item), each
  repetition one reading: ``<name>.value`` (a quantity in the fact's UCUM unit) and ``<name>.time`` (when it was
  measured: the rules read it only inside the review's window);
- a treatment: ``treatment.<name>`` group with ``.type`` (which one, when the fact counts several), ``.start``;
- a finding or a record field: one answer of its type (``finding.<name>``, ``<field name>``);
- anything else (a diagnosis, a procedure, a score's parts): a display item naming it, to be sent with the record.

What the chart already says about the same things (the trail's evidence) fills a QuestionnaireResponse in progress,
DTR's pre-population, so the nurse confirms rather than re-types it. Pure functions: no file, network or web.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from ur_engine.words import missing_words
from ur_engine.facts import FactDictionary
from ur_engine.rules.library import Library

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
UNIT_EXT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
TREATMENT_SYSTEM = "https://ur-engine.org/fhir/CodeSystem/treatment-type"
# UCUM codes as a nurse reads them; a code not listed is shown as it is (mmol/L, mg/dL, ng/L read well already).
UNIT_WORDS = {"mm[Hg]": "mm Hg", "[degF]": "°F", "Cel": "°C", "[pH]": "pH", "10*3/uL": "thousand per µL",
              "/min": "per minute", "d": "days", "h": "hours", "min": "minutes"}
TIME_TEXT = "Date and time measured, with the time zone"
START_TEXT = "Date and time it was started, with the time zone"
Json = dict[str, Any]


def checked(resource: Json) -> Json:
    """``resource`` after the FHIR model library has read it (raises pydantic's ValidationError if it cannot)."""
    get_fhir_model_class(str(resource["resourceType"])).model_validate(resource)
    return resource


def questionnaire(decision: Mapping[str, Any], library: Library, *, qid: str, url: str, title: str) -> Json:
    """The Questionnaire of a decision, checked by the FHIR model library: first what its ``missing_info`` asks
    for, then what the chart gives for the criteria still unknown (the pre-filled part, for the nurse to check)."""
    facts = library.facts
    entries = list(decision.get("missing_info") or ())
    asked = {str(n) for e in entries for n in e["facts"]}
    known = [str(e["fact"]) for c in decision.get("criteria") or () if c["status"] == "unknown"
             for e in c["evidence"] if e.get("value") is not None and str(e["fact"]) not in asked
             and facts.catalog.get(str(e["fact"])) is not None and not str(e["fact"]).endswith(".count")]
    if known:
        entries += missing_words(library, str(decision.get("review_type") or "admission"), list(dict.fromkeys(known)))
    items = [_item(entry, facts) for entry in entries]
    return checked({
        "resourceType": "Questionnaire", "id": qid, "url": url, "version": library.version,
        "name": "".join(c for c in title.title() if c.isalnum())[:200] or "Documentation", "title": title,
        "status": "active", "subjectType": ["Patient"],
        "description": "What the criteria still need to judge the stay. Each answer is added to the review's record "
                       "with this questionnaire's response named as its source, and the stay is reviewed again.",
        "item": items or [{"linkId": "nothing", "type": "display",
                           "text": "Nothing is missing: the criteria could judge the stay as it was sent."}]})


def _item(entry: Mapping[str, Any], facts: FactDictionary) -> Json:
    names = [str(n) for n in entry["facts"]]
    text = str(entry["text"])
    first = names[0]
    info = facts.catalog.get(first)
    kind = info.kind if info is not None else ""
    if kind == "observation":
        base = first.rpartition(".")[0]
        spec = facts.spec["observations"][base]
        unit = str(spec["unit"])
        codes = [c if isinstance(c, str) else c["code"] for c in spec["codes"]]
        return {"linkId": base, "text": text, "type": "group", "repeats": True, "required": True,
                "code": [{"system": LOINC, "code": c, "display": spec["text"]} for c in dict.fromkeys(codes)],
                "item": [
                    {"linkId": f"{base}.value", "text": f"{spec['text']} ({UNIT_WORDS.get(unit, unit)})",
                     "type": "quantity", "required": True, "extension": [_unit(unit)]},
                    {"linkId": f"{base}.time", "text": TIME_TEXT, "type": "dateTime", "required": True}]}
    if kind == "treatment":
        types = sorted(facts.treatments[first.split(".", 1)[1]])
        return {"linkId": first, "text": text, "type": "group", "item": [
            {"linkId": f"{first}.type", "text": "Which was given", "type": "choice", "required": True,
             "answerOption": [{"valueCoding": {"system": TREATMENT_SYSTEM, "code": t,
                                               "display": t.replace("_", " ")}} for t in types],
             **({"initial": [{"valueCoding": {"system": TREATMENT_SYSTEM, "code": types[0],
                                              "display": types[0].replace("_", " ")}}]} if len(types) == 1 else {})},
            {"linkId": f"{first}.start", "text": START_TEXT, "type": "dateTime", "required": True}]}
    if kind in ("finding", "field") and info is not None and (kind == "finding" or _simple_field(facts, first)):
        item: Json = {"linkId": first, "text": text, "type": {"boolean": "boolean", "number": "decimal"}.get(
            info.type, "string"), "required": True}
        if info.unit and info.type == "number":
            item["extension"] = [_unit(info.unit)]
        return item
    return {"linkId": first, "type": "display",
            "text": f"{text} — cannot be answered here: send it with the stay's record ({', '.join(names)})"}


def _unit(code: str) -> Json:
    return {"url": UNIT_EXT, "valueCoding": {"system": UCUM, "code": code, "display": UNIT_WORDS.get(code, code)}}


def _simple_field(facts: FactDictionary, name: str) -> bool:
    """A field the record holds at a path of two names (encounter.expected_midnights): an answer can set it."""
    spec = facts.fields.get(name)
    return spec is not None and len(str(spec["path"]).split(".")) == 2


def prefilled(q: Mapping[str, Any], criteria: Iterable[Mapping[str, Any]], facts: FactDictionary, *,
              subject: str | None = None) -> Json:
    """A QuestionnaireResponse in progress for ``q``, its answers what the chart already says: the values and
    times of the trail's evidence (``criteria`` of the decision) that the questionnaire asks about."""
    known: dict[str, list[tuple[Any, str | None]]] = {}
    for criterion in criteria:
        for e in criterion.get("evidence", ()):
            if e.get("value") is not None and "comparator" not in e:
                known.setdefault(str(e["fact"]), []).append((e["value"], e.get("time")))
    answered = []
    for item in q.get("item", ()):
        link, kind = str(item["linkId"]), item["type"]
        if kind == "group" and item.get("repeats"):  # a reading: each known statistic is one reading of it
            readings: dict[tuple[str, Any], None] = {}
            for fact, values in known.items():
                if fact.rpartition(".")[0] == link and not fact.endswith(".count"):
                    for value, time in values:
                        if time:
                            readings[(time, value)] = None
            unit = item["item"][0]["extension"][0]["valueCoding"]["code"]
            for time, value in sorted(readings, key=lambda r: (str(r[0]), float(r[1]))):
                answered.append({"linkId": link, "text": item.get("text"), "item": [
                    {"linkId": f"{link}.value", "answer": [{"valueQuantity": {
                        "value": value, "unit": unit, "system": UCUM, "code": unit}}]},
                    {"linkId": f"{link}.time", "answer": [{"valueDateTime": time}]}]})
        elif kind in ("boolean", "decimal", "string") and link in known:
            value = known[link][0][0]
            key = {"boolean": "valueBoolean", "decimal": "valueDecimal", "string": "valueString"}[kind]
            if isinstance(value, bool) == (kind == "boolean"):
                answered.append({"linkId": link, "text": item.get("text"), "answer": [{key: value}]})
    response: Json = {"resourceType": "QuestionnaireResponse", "questionnaire": f"{q['url']}|{q['version']}",
                      "status": "in-progress", "item": answered}
    if subject:
        response["subject"] = {"reference": subject}
    if not answered:
        del response["item"]
    return checked(response)


def has_sources(record: Mapping[str, Any]) -> bool:
    """Whether some value of ``record`` names a source other than the chart (see ``name_sources``)."""
    return bool(record.get("sources")) or any(
        isinstance(x, dict) and "source" in x
        for section in ("observations", "treatments") for x in (record.get(section) or ()))


def name_sources(decision: Json, record: Mapping[str, Any], facts: FactDictionary) -> Json:
    """``decision`` with each piece of evidence that came from outside the chart naming where it came from: the
    ``source`` of the observation or treatment that gave it, or the record's ``sources`` for a finding or field."""
    # (fact family, time, value in the fact's unit) -> source: a chart reading at the same time is not the answer
    readings: dict[tuple[str, str, object], str] = {}
    for o in record.get("observations") or ():
        if isinstance(o, dict) and o.get("source") and isinstance(o.get("code"), str):
            for d in facts.definitions(o["code"]):
                unit = o.get("unit")
                if isinstance(o.get("value"), (int, float)) and (unit is None or unit == d.unit or unit in d.convert):
                    value = d.to_unit(float(o["value"]), unit if unit != d.unit else None)
                    readings[(d.name, str(o.get("time")), round(value, 4))] = str(o["source"])
    for t in record.get("treatments") or ():
        if isinstance(t, dict) and t.get("source"):
            for name, types in facts.treatments.items():
                if t.get("type") in types:
                    readings[(f"treatment.{name}", str(t.get("start")), True)] = str(t["source"])
    given = record.get("sources") if isinstance(record.get("sources"), dict) else {}
    paths = {f"finding.{k}": f"findings.{k}" for k in facts.findings}
    paths.update({name: str(f["path"]) for name, f in facts.fields.items()})
    for criterion in decision.get("criteria", ()):
        for e in criterion["evidence"]:
            fact = str(e["fact"])
            family = fact if fact.startswith("treatment.") else fact.rpartition(".")[0]
            value = e.get("value")
            key = round(float(value), 4) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
            found = readings.get((family, str(e.get("time")), key)) if e.get("time") else None
            found = found or (given.get(paths[fact]) if fact in paths and given else None)
            if found:
                e["source"] = found
    return decision
