"""The pipeline in one call: record → facts → evaluation → decision.

>>> engine = Engine(library)                      # doctest: +SKIP
>>> engine.review({"id": "stay-1", ...}).outcome  # doctest: +SKIP
'approve'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date

from ulid import ULID

from ur_engine import record as records
from ur_engine.decision import Decision, decide
from ur_engine.evaluation.evaluator import DurableEvaluator, Evaluator, ReferenceEvaluator
from ur_engine.rules.library import Library, RuleSet

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
        return decide(adm, self.library, results, facts, review_id or str(ULID()), waived)

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
