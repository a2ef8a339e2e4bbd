"""A QuestionnaireResponse to a review's documentation questionnaire → the values it adds to that review's record.

The questionnaire is the one ``ur_engine.output.questionnaire`` writes: a reading's group gives an observation
(``<name>.value`` in a unit, ``<name>.time``), a treatment's group a treatment, a finding or field item its value.
Each value added names its source, ``QuestionnaireResponse/<id>``, so the decision shows it as evidence from the
answers and not from the chart. A reading the record already holds (same code, value and time: the pre-filled
answers the nurse left as they were) is not added twice.

The response is read through the FHIR model library; what it cannot be read as is an error naming the element
(``QuestionnaireResponse.item[2].item[0].answer[0].valueQuantity``): an answer is not guessed at.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from ur_engine.errors import RecordError, RecordErrors
from ur_engine.facts import FactDictionary

ANSWERED = ("completed", "amended")


def _where(loc: tuple[Any, ...]) -> str:
    out = "QuestionnaireResponse"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _error(message: str, loc: tuple[Any, ...] = ()) -> RecordError:
    return RecordError(message, code="UR120", path=_where(loc))


def read_response(raw: Any) -> dict[str, Any]:
    """``raw`` checked as a QuestionnaireResponse by the FHIR model library; RecordErrors name each element."""
    if not isinstance(raw, dict) or raw.get("resourceType") != "QuestionnaireResponse":
        found = raw.get("resourceType") if isinstance(raw, dict) else type(raw).__name__
        raise RecordErrors([_error(f"expected a QuestionnaireResponse, got {found!r}", ("resourceType",))])
    try:
        get_fhir_model_class("QuestionnaireResponse").model_validate(raw)
    except ValidationError as exc:
        raise RecordErrors([_error(str(e["msg"]), tuple(e["loc"])) for e in exc.errors()[:20]]) from None
    if raw.get("status") not in ANSWERED:
        raise RecordErrors([_error(f"status is {raw.get('status')!r}: only a completed (or amended) response is "
                                   "reviewed", ("status",))])
    return raw


def add_answers(record: dict[str, Any], response: dict[str, Any], facts: FactDictionary,
                source: str) -> dict[str, Any]:
    """A copy of ``record`` with the answers of ``response`` (already read by ``read_response``) added, each naming
    ``source``. Raises RecordErrors naming each answer that cannot be read as its item asks."""
    out = copy.deepcopy(record)
    errors: list[RecordError] = []
    observations: list[dict[str, Any]] = []
    treatments: list[dict[str, Any]] = []
    for i, item in enumerate(response.get("item") or ()):
        link = str(item.get("linkId", ""))
        where: tuple[Any, ...] = ("item", i)
        children = {str(c.get("linkId")): (j, c) for j, c in enumerate(item.get("item") or ())}
        if link in facts.spec.get("observations", {}):
            reading = _reading(link, children, facts, where, errors)
            if reading is not None:
                observations.append({**reading, "source": source})
        elif link.startswith("treatment.") and link.split(".", 1)[1] in facts.treatments:
            given = _treatment(link, children, facts, where, errors)
            if given is not None:
                treatments.append({**given, "source": source})
        elif link.startswith("finding.") and link[8:] in facts.findings:
            value = _single(item, where, errors)
            if value is not None:
                if not isinstance(out.get("findings"), dict):
                    out["findings"] = {}
                if out["findings"].get(link[8:]) != value:  # the chart's own value, confirmed, stays the chart's
                    out["findings"][link[8:]] = value
                    _source(out, f"findings.{link[8:]}", source)
        elif link in facts.fields and len(str(facts.fields[link]["path"]).split(".")) == 2:
            value = _single(item, where, errors)
            if value is not None:
                section, name = str(facts.fields[link]["path"]).split(".")
                if not isinstance(out.get(section), dict):
                    out[section] = {}
                if out[section].get(name) != value:
                    out[section][name] = value
                    _source(out, f"{section}.{name}", source)
        elif item.get("answer") or item.get("item"):
            errors.append(_error(f"linkId {link!r} is not a question of this questionnaire", (*where, "linkId")))
    if errors:
        raise RecordErrors(errors)
    # The same reading under a LOINC twin (sodium in serum 2951-2 or in blood 2947-0) is the same reading.
    def same_reading(x: dict[str, Any]) -> tuple[Any, ...]:
        code = x.get("code")
        names = frozenset(d.name for d in facts.definitions(code)) if isinstance(code, str) else code
        return names, x.get("value"), x.get("time")

    _extend(out, "observations", observations, same_reading)
    _extend(out, "treatments", treatments, lambda x: (x.get("type"), x.get("start")))
    return out


def _extend(out: dict[str, Any], section: str, added: list[dict[str, Any]],
            same: Callable[[dict[str, Any]], tuple[Any, ...]]) -> None:
    if not added:
        return
    had = out.get(section)
    if not isinstance(had, list):
        # The chart sent none: the section is still partly known, so what nobody answered stays unknown.
        out[section] = had = []
        out["incomplete"] = sorted({*(out.get("incomplete") or ()), section})
    held = {same(x) for x in had if isinstance(x, dict)}
    for entry in added:
        key = same(entry)
        if key not in held:  # a pre-filled reading the nurse left as it was is the chart's, not an answer
            held.add(key)
            had.append(entry)


def _source(out: dict[str, Any], path: str, source: str) -> None:
    if not isinstance(out.get("sources"), dict):
        out["sources"] = {}
    out["sources"][path] = source


def _answer(item: dict[str, Any] | None, where: tuple[Any, ...], errors: list[RecordError]) -> dict[str, Any] | None:
    answers = (item or {}).get("answer") or []
    if len(answers) > 1:
        errors.append(_error("give one answer", (*where, "answer")))
        return None
    return answers[0] if answers else None


def _single(item: dict[str, Any], where: tuple[Any, ...], errors: list[RecordError]) -> Any:
    answer = _answer(item, where, errors)
    if answer is None:
        return None
    for key in ("valueBoolean", "valueDecimal", "valueInteger", "valueString"):
        if key in answer:
            value = answer[key]
            return value
    errors.append(_error("expected a boolean, number or text answer", (*where, "answer", 0)))
    return None


def _reading(name: str, children: dict[str, tuple[int, dict[str, Any]]], facts: FactDictionary,
             where: tuple[Any, ...], errors: list[RecordError]) -> dict[str, Any] | None:
    j, value_item = children.get(f"{name}.value", (0, None))
    k, time_item = children.get(f"{name}.time", (1, None))
    value = _answer(value_item, (*where, "item", j), errors)
    time = _answer(time_item, (*where, "item", k), errors)
    if value is None and time is None:
        return None  # left blank: still unknown
    q = (value or {}).get("valueQuantity")
    number = q.get("value") if isinstance(q, dict) else (value or {}).get("valueDecimal")
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        errors.append(_error(f"{name}: a number (valueQuantity) is needed", (*where, "item", j, "answer", 0)))
        return None
    when = (time or {}).get("valueDateTime")
    if not isinstance(when, str) or len(when) < 20:  # the rules read a time inside a window: it needs its zone
        errors.append(_error(f"{name}: the date and time it was measured, with the time zone, is needed",
                             (*where, "item", k, "answer", 0, "valueDateTime")))
        return None
    spec = facts.spec["observations"][name]
    first = spec["codes"][0]
    code = first if isinstance(first, str) else first["code"]
    reading: dict[str, Any] = {"code": code, "value": number, "time": when}
    unit = (q.get("code") or q.get("unit")) if isinstance(q, dict) else None
    if unit:
        reading["unit"] = unit  # converted, or set aside with a notice, by the intake like any other unit
    comparator = q.get("comparator") if isinstance(q, dict) else None
    if comparator in ("<", "<=", ">", ">="):  # "> 15" is a bound, never exactly 15
        reading["comparator"] = comparator
    for attribute, allowed in {**spec.get("where", {}),
                               **({} if isinstance(first, str) else first.get("where", {}))}.items():
        if allowed and allowed[0] is not None:  # the oral temperature is read with method oral
            reading[attribute] = allowed[0]
    return reading


def _treatment(name: str, children: dict[str, tuple[int, dict[str, Any]]], facts: FactDictionary,
               where: tuple[Any, ...], errors: list[RecordError]) -> dict[str, Any] | None:
    j, type_item = children.get(f"{name}.type", (0, None))
    k, start_item = children.get(f"{name}.start", (1, None))
    kind = _answer(type_item, (*where, "item", j), errors)
    start = _answer(start_item, (*where, "item", k), errors)
    if start is None:
        return None
    types = facts.treatments[name.split(".", 1)[1]]
    code = ((kind or {}).get("valueCoding") or {}).get("code") if kind else (
        next(iter(types)) if len(types) == 1 else None)
    if code not in types:
        errors.append(_error(f"{name}: which treatment was given must be one of {', '.join(sorted(types))}",
                             (*where, "item", j, "answer", 0, "valueCoding")))
        return None
    when = start.get("valueDateTime")
    if not isinstance(when, str) or len(when) < 20:
        errors.append(_error(f"{name}: the date and time it started, with the time zone, is needed",
                             (*where, "item", k, "answer", 0, "valueDateTime")))
        return None
    return {"type": code, "start": when}
