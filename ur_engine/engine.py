"""The pipeline in one call: record → facts → evaluation → decision.

>>> engine = Engine(library)                      # doctest: +SKIP
>>> engine.review({"id": "stay-1", ...}).outcome  # doctest: +SKIP
'approve'
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date

from ulid import ULID

from ur_engine import record as records
from ur_engine.decision import Decision, decide, unknown_basics
from ur_engine.words import missing_words, some_missing
from ur_engine.evaluation.evaluator import DurableEvaluator, Evaluator, ReferenceEvaluator
from ur_engine.rules.library import Library, RuleSet
from ur_engine.vocabulary import ACUTE_LEVELS, LINES_OF_BUSINESS, POST_ACUTE_SETTINGS

EVALUATORS: dict[str, Callable[[Library], Evaluator]] = {"durable": DurableEvaluator, "reference": ReferenceEvaluator}


class Engine:
    """A loaded rule library bound to an evaluator; ``review`` is safe to call from several threads."""

    def __init__(self, library: Library, evaluator: str = "durable") -> None:
        self.library = library
        self.evaluator: Evaluator = EVALUATORS[evaluator](library)
        # applicable rule sets -> (facts to derive, criteria waived): a batch repeats a few dozen combinations
        self._combinations: dict[tuple[str, ...], tuple[frozenset[str], frozenset[str]]] = {}

    def review(self, data: records.Admission | Mapping[str, object], review_id: str | None = None,
               as_of: date | None = None) -> Decision:
        """Judge one admission record (a dict, or an ``Admission``); raises RecordError on bad input.

        Rule sets are those in effect on the arrival date, or on ``as_of`` when given.
        """
        adm = data if isinstance(data, records.Admission) else records.parse(data)
        facts_dict = self.library.facts
        facts_dict.check(adm)
        rulesets = self.library.applicable(adm, as_of)
        keys, needed, waived = self.combination(rulesets)
        facts = facts_dict.derive(adm, needed)
        found = self.evaluator.evaluate_many(keys, facts.values, waived)
        results = [(rs, found[k]) for rs, k in zip(rulesets, keys)]
        decision = decide(adm, self.library, results, facts, review_id or str(ULID()), waived)
        basics = unknown_basics(adm)
        if basics:
            self._also_needed(adm, decision, as_of, [name for name, _ in basics])
        return decision

    def _also_needed(self, adm: records.Admission, decision: Decision, as_of: date | None,
                     basics: list[str]) -> None:
        """Add to a decision that pends for its basics what the criteria would still need once they are known: a
        nurse asked for the line of business would otherwise be asked, in a second round, for the expected
        midnights Medicare's rule reads. What any line of business or requested level may need is asked; of what
        an age may need, only what every age needs (an adult's stay is not asked for a child's laboratory values)."""
        by_age: dict[float | None, list[str]] = {}
        for alt in _with_basics(adm, self.library, basics):
            rulesets = self.library.applicable(alt, as_of)
            keys, needed, waived = self.combination(rulesets)
            facts = self.library.facts.derive(alt, needed)
            found = self.evaluator.evaluate_many(keys, facts.values, waived)
            then = decide(alt, self.library, [(rs, found[k]) for rs, k in zip(rulesets, keys)], facts,
                          decision.review_id, waived)
            names = by_age.setdefault(alt.patient.age, [])
            names += [name for name in then.missing if name not in names and name not in decision.missing]
        lists = list(by_age.values())
        extra = [name for name in lists[0] if all(name in other for other in lists[1:])] if lists else []
        if extra:
            words = missing_words(self.library, adm.review_type, extra)
            decision.missing += extra
            decision.missing_info += words
            decision.reasons.append(f"Once they are known, the criteria that may then apply also need: "
                                    f"{some_missing(extra, words)}")

    def combination(self, rulesets: list[RuleSet]) -> tuple[tuple[str, ...], frozenset[str], frozenset[str]]:
        """(their keys, the facts to derive, the criteria waived) of the rule sets applying to a record."""
        keys = tuple([rs.key for rs in rulesets])
        combination = self._combinations.get(keys)
        if combination is None:
            combination = self._combinations[keys] = (
                self.library.facts.closure({f for rs in rulesets for f in rs.facts}),
                frozenset(cid for rs in rulesets for cid in rs.waives))
        return keys, *combination

    def close(self) -> None:
        self.evaluator.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with_basics(adm: records.Admission, library: Library, basics: list[str]) -> list[records.Admission]:
    """``adm`` with each value its unknown basics may take that can change which rule sets apply or what they
    judge: every age where a rule set's age range starts or ends, every line of business, every level (or
    post-acute setting) that can be requested."""
    ages: list[float | None] = [adm.patient.age]
    if "age" in basics:
        bounds = {b for rs in library.rulesets for b in (rs.applies.age_min, rs.applies.age_max) if b is not None}
        ages = [*sorted({0.0, *bounds, *(b + 1 for b in bounds)})]
    lines = list(LINES_OF_BUSINESS) if "line_of_business" in basics else [adm.coverage.line_of_business]
    discharge = adm.review_type == "discharge"
    levels = ([*(POST_ACUTE_SETTINGS if discharge else ACUTE_LEVELS)] if "requested_level" in basics
              else [adm.requested])
    out = []
    for age, line, level in itertools.product(ages, lines, levels):
        alt = replace(adm, patient=replace(adm.patient, age=age), coverage=replace(adm.coverage, line_of_business=line))
        if discharge:
            alt.discharge_plan = replace(adm.discharge_plan or records.DischargePlan(), requested_setting=level)
        else:
            alt.encounter = replace(adm.encounter, requested_level=level)
        out.append(alt)
    return out
