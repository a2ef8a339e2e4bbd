"""Rule set results → the decision: approve, pend or alternative_setting, with reasons and the trail.

The engine never denies. ``approve`` (X12 306 A1) when the criteria support the requested level or a higher
one; ``alternative_setting`` when they support a lower one; ``pend`` (A4) when nothing is supported, when
information is missing, or when a criterion asks for physician review. A met ``notify`` criterion adds a notice
(a duty, such as a notice owed to the patient) and changes neither outcome nor level.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

from ur_engine.evaluation.evaluator import RulesetResult
from ur_engine.facts import Facts
from ur_engine.memo import Recent
from ur_engine.record import Admission, DataNotice
from ur_engine.rules.library import Library, RuleSet
from ur_engine.words import missing_words, some_missing
from ur_engine.vocabulary import (
    ACUTE_LEVELS,
    Action,
    Outcome,
    ReviewAction,
    Setting,
    Status,
)

Trail = Literal["full", "compact"]
# Post-acute settings from the most to the least intensive; hospice is judged on its own.
POST_ACUTE_ORDER: tuple[str, ...] = tuple(s.value for s in Setting if s is not Setting.HOSPICE)


@dataclass(slots=True)
class Evidence:
    fact: str
    value: object
    time: str | None = None
    comparator: str | None = None  # the value is a bound (a laboratory's "> 15")


@dataclass(slots=True)
class CriterionResult:
    id: str
    ruleset: str
    group: str
    status: Status
    text: str
    source: str
    facts: tuple[str, ...]
    record_facts: Facts  # shared by the whole trail: evidence is read from it when asked for

    @property
    def evidence(self) -> list[Evidence]:
        """The value (and time, when it has one) of each fact the criterion tests."""
        values, times, bounds = self.record_facts.values, self.record_facts.times, self.record_facts.bounds
        return [Evidence(f, bounds[f][1], times.get(f), bounds[f][0]) if f in bounds else
                Evidence(f, values.get(f), times.get(f)) for f in self.facts]


@dataclass
class Decision:
    review_id: str
    record_id: str
    review_type: str
    outcome: Outcome
    requested: str | None
    supported: str | None
    recommended: str | None
    reasons: list[str]
    missing: list[str]  # fact names, the most decisive first
    levels: dict[str, Status]  # each judged level's clinical finding (its criteria), payment rules aside
    rules: dict[str, Any]  # version, digest, and the version of each rule set applied
    review_action: ReviewAction = field(default=ReviewAction.PENDED)
    notices: list[str] = field(default_factory=list)
    # What the intake set aside, mapped or could not read (see record.DataNotice), for the reviewer to see.
    data_notices: tuple[DataNotice, ...] = ()
    # Payment gates on a level (Medicare two-midnight, SNF qualifying stay): met, not met or unknown, apart
    # from the clinical finding in ``levels``.
    payment: dict[str, Status] = field(default_factory=dict)
    # ``missing`` in words: what to document, with the time window, each naming the facts it would give.
    missing_info: list[dict[str, object]] = field(default_factory=list)
    # What the trail is made from. Most decisions are only serialised, and one CriterionResult per criterion
    # cost more than the rest of the decision: ``criteria`` builds them when asked, ``to_dict`` never does.
    _results: list[tuple[RuleSet, RulesetResult]] = field(default_factory=list, repr=False, compare=False)
    _facts: Facts = field(default_factory=Facts, repr=False, compare=False)
    _waived: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    _parts: list[_Part] | None = field(default=None, repr=False, compare=False)  # of ``_results``, when at hand
    # The stay day by day (stay_days.StayDays.to_dict()), set only when a day-by-day review was asked for.
    by_day: dict[str, object] | None = None

    def met_for(self, level: str) -> list[str]:
        """The ids of the criteria met that support ``level`` (through a rule set whose groups support it)."""
        return _met_ids(self._results, level, self._rule_parts())

    def _rule_parts(self) -> list[_Part]:
        # A decision made without its parts at hand (one that pends for its basics) works them out when asked.
        return self._parts if self._parts is not None else _parts(self._results, self._waived)

    @cached_property
    def criteria(self) -> list[CriterionResult]:
        """The trail: every criterion of every applicable rule set, in rule set and file order."""
        waived, facts = self._waived, self._facts
        return [CriterionResult(cr.id, rs.id, cr.group,
                                Status.WAIVED if cr.id in waived else Status.of(r.criteria[cr.id]),
                                cr.text, cr.source, cr.facts, facts)
                for rs, r in self._results for cr in rs.criteria]

    def to_dict(self, trail: Trail = "full") -> dict[str, object]:
        """Plain JSON-ready data, in the field order of ``schemas/decision.schema.json``.

        ``trail="compact"`` gives, instead of ``criteria``, each criterion's id under its status (``trail``) and
        each fact they read once (``evidence``): a tenth of the size, and the full trail is rebuilt from it and
        the rules of ``rules.digest`` exactly (``ur_engine.output.trail.expand``).
        """
        head: dict[str, object] = {
            "review_id": self.review_id, "record_id": self.record_id, "review_type": self.review_type,
            "outcome": self.outcome, "requested": self.requested, "supported": self.supported,
            "recommended": self.recommended, "reasons": self.reasons, "missing": self.missing,
            "missing_info": self.missing_info,
            "notices": self.notices, "data_notices": [n.as_dict() for n in self.data_notices],
            "levels": self.levels, "payment": self.payment}
        if trail == "compact":
            head["trail"], head["evidence"] = self._compact_trail()
        else:
            head["criteria"] = self._trail_dicts()
        head["rules"], head["review_action"] = self.rules, self.review_action
        if self.by_day is not None:
            head["by_day"] = self.by_day
        return head

    def _compact_trail(self) -> tuple[dict[str, list[str]], dict[str, dict[str, object]]]:
        by_status = _by_status(self._rule_parts())
        vget, tget, bounds = self._facts.values.get, self._facts.times.get, self._facts.bounds
        evidence: dict[str, dict[str, object]] = {}
        for f in _facts_read(self.rules.get("digest"), [rs for rs, _ in self._results]):
            v, t = vget(f), tget(f)
            if v is None and t is None:
                continue  # what no entry names is unknown: absent here, null when rebuilt
            e: dict[str, object] = {"value": v} if t is None else {"value": v, "time": t}
            if bounds and f in bounds:
                e["comparator"], e["value"] = bounds[f]
            evidence[f] = e
        return {k: list(ids) for k, ids in by_status.items()}, evidence

    def _trail_dicts(self) -> list[dict[str, object]]:
        """``criteria`` as dicts, straight from the rule set results (the same data as CriterionResult)."""
        vget, tget = self._facts.values.get, self._facts.times.get
        bounds = self._facts.bounds
        waived = self._waived
        out: list[dict[str, object]] = []
        add = out.append
        for rs, r in self._results:
            rid, status = rs.id, r.criteria
            for cr in rs.criteria:
                evidence: list[dict[str, object]] = []
                for f in cr.facts:
                    t = tget(f)
                    evidence.append({"fact": f, "value": vget(f)} if t is None else
                                    {"fact": f, "value": vget(f), "time": t})
                    if bounds and f in bounds:  # a laboratory's "> 15": the bound, not the value that stood in
                        evidence[-1]["comparator"], evidence[-1]["value"] = bounds[f]
                add({"id": cr.id, "ruleset": rid, "group": cr.group,
                     "status": Status.WAIVED if cr.id in waived else Status.of(status[cr.id]), "text": cr.text,
                     "source": cr.source, "evidence": evidence})
        return out


Results = list[tuple[RuleSet, RulesetResult]]


def _by_status(parts: list[_Part]) -> dict[str, tuple[str, ...]]:
    """The criteria's ids under their status (met, not met, unknown, waived), in trail order; empty ones left out."""
    if len(parts) == 1:
        return parts[0].by_status
    merged = {status: tuple([cid for p in parts for cid in p.by_status.get(status, ())]) for status in STATUSES}
    return {k: ids for k, ids in merged.items() if ids}


STATUSES = ("met", "not_met", "unknown", "waived")


@dataclass(frozen=True, slots=True)
class _Part:
    """What one rule set's pattern of criteria results brings to a decision, whichever rule sets apply beside it.

    A batch meets a few thousand patterns per rule set but many more combinations of them (20,000 generated stays:
    1,981 and 11,471), and far fewer combinations of what a verdict reads of each (``signature``: 1,700): each
    part is worked out once per pattern, kept with the evaluator's results (``RulesetResult.derived``), and a
    verdict once per combination of signatures; what else a stay's decision names (the criteria met, the facts
    still wanted) is put together from its parts.
    """

    waived: frozenset[str]
    # The rule set, its levels, gates and groups, its criteria asking for a physician and its notices.
    signature: tuple[object, ...]
    by_status: dict[str, tuple[str, ...]]  # the criteria's ids under their status, empty ones left out
    pend_reasons: tuple[str, ...]  # the criteria met that ask for a physician's review
    notices: tuple[str, ...]  # the criteria met that owe a notice
    supports: tuple[str, ...]  # the met criteria that support a level, named when that level is supported
    # unknown targets -> (fact, 2 or 1): see ``_candidates``; filled as targets come
    candidates: dict[tuple[str, ...], tuple[tuple[str, int], ...]] = field(default_factory=dict)


def _parts(results: Results, waived: frozenset[str]) -> list[_Part]:
    return [_part(rs, r, waived) for rs, r in results]


def _part(rs: RuleSet, r: RulesetResult, waived: frozenset[str]) -> _Part:
    part = r.derived.get("decision")
    if isinstance(part, _Part) and (part.waived is waived or part.waived == waived):
        return part
    status = r.criteria
    by: dict[bool | None, list[str]] = {True: [], False: [], None: []}
    waived_ids: list[str] = []
    for cid, met in status.items():
        (waived_ids if cid in waived else by[met]).append(cid)
    trail = {"met": by[True], "not_met": by[False], "unknown": by[None], "waived": waived_ids}
    pend_reasons, notices = [], []
    for cr in rs.acting_criteria:
        if status[cr.id] is True and cr.id not in waived:
            if cr.action is Action.PEND:
                pend_reasons.append(f"{cr.id}: {cr.text} — physician review")
            else:
                notices.append(f"{cr.id}: {cr.text}")
    signature = (rs.key, tuple(r.levels.items()), tuple(r.requires.items()), tuple(r.groups.items()),
                 tuple(pend_reasons), tuple(notices))
    supports = tuple(cr.id for cr in rs.criteria if status[cr.id] is True and cr.action is Action.SUPPORT)
    part = _Part(waived, signature, {k: tuple(ids) for k, ids in trail.items() if ids}, tuple(pend_reasons),
                 tuple(notices), supports)
    r.derived["decision"] = part
    return part


def _facts_read(digest: object, rulesets: list[RuleSet]) -> tuple[str, ...]:
    """The facts the criteria of ``rulesets`` read, each once, in trail order (worked out once per combination)."""
    key = (digest, tuple([rs.key for rs in rulesets]))
    found = _FACTS_READ.get(key)
    if found is None:
        if len(_FACTS_READ) >= 4096:
            _FACTS_READ.clear()
        found = _FACTS_READ[key] = tuple(dict.fromkeys(f for rs in rulesets for cr in rs.criteria for f in cr.facts))
    return found


_FACTS_READ: dict[tuple[object, tuple[str, ...]], tuple[str, ...]] = {}


def _and(values: Iterable[bool | None]) -> bool | None:
    found = list(values)
    if False in found:
        return False
    return None if None in found else True


def _or(values: Iterable[bool | None]) -> bool | None:
    found = list(values)
    if True in found:
        return True
    return None if None in found else False


def _chain(requested: str | None) -> tuple[str, ...]:
    if requested in ACUTE_LEVELS:
        return ACUTE_LEVELS
    if requested in POST_ACUTE_ORDER:
        return POST_ACUTE_ORDER
    return (requested,) if requested else ()


def decide(adm: Admission, library: Library, results: Results, facts: Facts, review_id: str,
           waived: frozenset[str] = frozenset()) -> Decision:
    """The decision on one record from its rule sets' results.

    A level's clinical finding (its criteria groups) and its payment gates (``requires:``, such as Medicare's
    two-midnight benchmark, 42 CFR 412.3, or the SNF qualifying stay, 42 CFR 409.30) are judged apart: a gate
    decides payment status, never the setting the patient needs. So the engine never offers a lower setting
    than the clinical criteria support; a level supported clinically whose gate fails pends, citing the gate.

    The outcome, levels and reasons follow from what each rule set's results say of its levels, gates and
    groups, and a batch meets a few thousand combinations of those in millions of stays: each combination's
    verdict is worked out once (``_verdict``). Which criteria were met, and which of the facts the verdict asks
    for are missing, are the stay's own, put together from its rule sets' parts (``_Part``).
    """
    if adm.patient.age is None or adm.requested is None or adm.coverage.line_of_business is None:
        return _pend_without_basics(adm, library, results, facts, review_id, waived, unknown_basics(adm))
    parts = _parts(results, waived)
    if not results:
        verdict = _verdict(adm.requested, adm.review_type, library, results, parts)
        verdict = replace(verdict, reasons=(
            f"No rule set applies to this record ({adm.review_type}, age {adm.patient.age:g}, "
            f"{adm.coverage.line_of_business}, arrival {adm.encounter.arrival_time.date()}); physician review",))
    else:
        key = (library.digest, adm.requested, adm.review_type, waived, tuple([p.signature for p in parts]))
        found = _VERDICTS.get(key)
        if found is None:
            found = _VERDICTS.put(key, _verdict(adm.requested, adm.review_type, library, results, parts))
        verdict = found
    values = facts.values
    candidates = _candidates_ranked(library, results, parts, verdict.unknown) if verdict.asks else ()
    missing = [name for name in candidates if name not in values]
    missing_info = missing_words(library, adm.review_type, missing) if missing else []
    return Decision(
        review_id=review_id, record_id=adm.id, review_type=adm.review_type, outcome=verdict.outcome,
        requested=adm.requested, supported=verdict.supported, recommended=verdict.recommended,
        reasons=[r if isinstance(r, str) else r.text(results, parts, missing, missing_info)
                 for r in verdict.reasons],
        missing=missing, missing_info=missing_info, levels=dict(verdict.levels), payment=dict(verdict.payment),
        rules=dict(verdict.rules), review_action=verdict.review_action, notices=list(verdict.notices),
        data_notices=adm.data_notices + tuple(facts.notices) if facts.notices else adm.data_notices,
        _results=results, _facts=facts, _waived=waived, _parts=parts)


@dataclass(frozen=True, slots=True)
class _Words:
    """A reason that goes on to name the missing facts: ``prefix`` and then, per record, what is missing."""

    prefix: str

    def text(self, results: Results, parts: list[_Part], missing: list[str],
             words: list[dict[str, object]]) -> str:
        return self.prefix + some_missing(missing, words)


@dataclass(frozen=True, slots=True)
class _Support:
    """"Criteria support ``target`` (the criteria met that support it)": which were met is the record's own."""

    target: str
    highest: str | None

    def text(self, results: Results, parts: list[_Part], missing: list[str],
             words: list[dict[str, object]]) -> str:
        return _support_reason(self.target, self.highest, results, parts)


@dataclass(frozen=True, slots=True)
class _Payment:
    """Why a payment rule refuses ``target``, naming the criteria that would meet it: the record's own."""

    target: str

    def text(self, results: Results, parts: list[_Part], missing: list[str],
             words: list[dict[str, object]]) -> str:
        return _payment_reason(self.target, results)


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What a pattern of criteria results decides, whatever record it came from."""

    outcome: Outcome
    supported: str | None
    recommended: str | None
    reasons: tuple[str | _Words | _Support | _Payment, ...]
    asks: bool  # whether facts absent from a stay are missing (``_candidates_ranked``)
    unknown: tuple[str, ...]  # the levels judged that are still unknown
    levels: dict[str, Status]
    payment: dict[str, Status]
    rules: dict[str, Any]
    review_action: ReviewAction
    notices: tuple[str, ...]


# Verdicts kept at most, the least recently used forgotten first: a long batch meets a long tail of combinations
# seen once, so a larger cache mostly holds those. With 8,192 forgotten all at once (the evaluator's patterns
# 16,384, the missing facts' words 4,096), one process peaked at 120.6 MiB over 100,000 stays and 127.5 over
# 1,000,000, its pymalloc arenas creeping while its live objects did not grow; with bounds of this size, its RSS
# levels off (bench/memory.py).
KEPT = 2048
# (library digest, requested, review type, waivers, each rule set's _Part.signature) -> its verdict.
_VERDICTS: Recent[tuple[object, ...], _Verdict] = Recent(KEPT)


def _verdict(requested_level: str | None, review_type: str, library: Library, results: Results,
             parts: list[_Part]) -> _Verdict:
    requested = requested_level or ""
    chain = _chain(requested_level)
    clinical: dict[str, bool | None] = {}
    payment: dict[str, bool | None] = {}
    for target in chain:
        support = [r.levels[target] for _, r in results if target in r.levels]
        if not support:
            continue
        clinical[target] = _or(support)
        gates = [r.requires[target] for _, r in results if target in r.requires]
        if gates:
            payment[target] = _and(gates)
    status = {t: _and([clinical[t], payment.get(t, True)]) for t in clinical}
    judged = [t for t in chain if t in clinical]
    rank = {t: i for i, t in enumerate(chain)}
    at_or_above = [t for t in judged if rank[t] <= rank.get(requested, len(chain))]
    supported = next((t for t in judged if clinical[t] is True), None)  # the level the criteria support

    pend_reasons = [reason for p in parts for reason in p.pend_reasons]
    notices = [notice for p in parts for notice in p.notices]

    reasons: list[str | _Words | _Support | _Payment] = []
    recommended = None
    unknown = [t for t in judged if status[t] is None]
    approved = not pend_reasons and any(status[t] is True for t in at_or_above)
    outcome = Outcome.PEND
    if pend_reasons:
        reasons += pend_reasons
    elif approved:
        outcome, recommended = Outcome.APPROVE, requested
        reasons.append(_Support(requested, supported))
        if supported and supported != requested and payment.get(supported) is False:
            reasons.append(_Payment(supported))
    elif any(clinical[t] is None for t in at_or_above) or (
            supported is not None and payment.get(supported, True) is None):
        reasons.append(_Words(f"Not enough information to judge {', '.join(t for t in judged if t in unknown)}: "))
    elif supported is not None and payment.get(supported) is False:
        # Supported clinically, refused by a payment rule: a physician decides, the setting is not lowered.
        reasons.append(_Support(supported, supported))
        reasons.append(_Payment(supported))
    elif supported is not None:
        outcome, recommended = Outcome.ALTERNATIVE_SETTING, supported
        reasons += _why_not(requested, results)
        reasons.append(_Support(supported, supported))
    else:
        if requested not in clinical:
            reasons.append(f"No applicable rule set judges '{requested}'")
        else:
            reasons += _why_not(requested, results)
        if unknown:
            reasons.append(_Words(f"{', '.join(unknown)} could not be judged: "))
        if review_type == "continued_stay":
            reasons.append(f"No criterion supports a continued stay at {requested}: review for discharge; "
                           "physician review")
        else:
            reasons.append("No level of care is supported by the criteria; physician review")
    return _Verdict(
        outcome=outcome, supported=supported, recommended=recommended, reasons=tuple(reasons),
        asks=not approved, unknown=tuple(unknown), levels={t: Status.of(clinical[t]) for t in judged},
        payment={t: Status.of(v) for t, v in payment.items()},
        rules={"version": library.version, "digest": library.digest,
               "rulesets": {rs.id: rs.version for rs, _ in results}},
        review_action=ReviewAction.CERTIFIED if outcome is Outcome.APPROVE else ReviewAction.PENDED,
        notices=tuple(notices))


def _met_ids(results: Results, target: str, parts: list[_Part]) -> list[str]:
    ids: list[str] = []
    for (_, r), part in zip(results, parts):
        if r.levels.get(target) is True:
            ids += part.supports
    return ids


def _support_reason(target: str, highest: str | None, results: Results, parts: list[_Part]) -> str:
    text = f"Criteria support {target} ({', '.join(_met_ids(results, target, parts)) or 'no criterion'})"
    if highest and highest != target:
        text += f"; they also support the higher level {highest}"
    return text


def _payment_reason(target: str, results: Results) -> str:
    """Which payment rule refuses ``target``, what would meet it (each criterion with its source), and that a
    physician decides: the rule decides payment status, not the setting."""
    parts = []
    for rs, r in results:
        if r.requires.get(target) is False:
            reads = rs.target_groups[target][1]
            needs = [cr for cr in rs.criteria if cr.group in reads and r.criteria[cr.id] is not True]
            ways = ", or ".join(f"{cr.text[0].lower()}{cr.text[1:]} ({cr.id}, {cr.source})" for cr in needs)
            parts.append(f"{rs.title} — not met; it would be met if {ways}")
    return (f"Payment status for {target}: " + "; ".join(parts) + f". The clinical criteria support {target}, "
            "which a payment rule never lowers: a physician decides the status; physician review")


def _why_not(target: str, results: Results) -> list[str]:
    out = []
    supporters = [(rs, r) for rs, r in results if target in r.levels]
    if supporters and _or(r.levels[target] for _, r in supporters) is False:
        for rs, r in supporters:
            reads = rs.target_groups[target][0]
            failed = [g for g, v in r.groups.items() if v is False and g in reads]
            out.append(f"{rs.id}: {target} not supported — no criterion met in {', '.join(failed)}")
    return out


def _candidates_ranked(library: Library, results: Results, parts: list[_Part],
                       targets: tuple[str, ...]) -> tuple[str, ...]:
    """The facts that, when absent, left a criterion unknown in a group that a still-unknown level depends on —
    only those whose value could change that level — the most decisive first: a fact of the one group still
    unknown for a level (its value alone settles the level) before a fact of a group that settles it only with
    others. A record's missing facts are those of these it does not give."""
    if not targets:
        return ()
    weight: dict[str, int] = {}
    for (rs, r), part in zip(results, parts):
        # A rule set meets far fewer patterns of results than a combination of them does: kept with its part.
        kept = part.candidates
        candidates = kept.get(targets)
        if candidates is None:
            candidates = kept[targets] = _candidates(library, rs, targets, r)
        for name, decisive in candidates:
            if weight.get(name, 0) < decisive:
                weight[name] = decisive
    return tuple(sorted(weight, key=lambda name: -weight[name]))  # stable: rule-file order within a rank


def _candidates(library: Library, rs: RuleSet, targets: tuple[str, ...],
                r: RulesetResult) -> tuple[tuple[str, int], ...]:
    """(fact, 2 or 1) for the inputs of a rule set's unknown criteria in groups a still-unknown target reads: 2
    when that group is the only one still open for the target."""
    status, group_status = r.criteria, r.groups
    unknown = [cr for cr in rs.criteria if status[cr.id] is None]
    out: dict[str, int] = {}
    for t in targets:
        level, gate = rs.target_groups.get(t, (frozenset(), frozenset()))
        for reads in (level, gate):
            open_groups = [g for g in reads if group_status.get(g) is None]
            if not open_groups:
                continue
            decisive = 2 if len(open_groups) == 1 else 1
            for cr in unknown:
                if cr.group in open_groups:
                    for f in cr.facts:
                        for name in library.facts.inputs(f):
                            out[name] = max(out.get(name, 0), decisive)
    return tuple(out.items())


# What a review cannot start without. A record may leave them out (a prior-authorization request without a birth
# date or a level of care, an extract without its payer): the stay then pends, naming them, instead of being
# refused or judged on a guess.
BASICS = (("age", "Patient's age at arrival (the birth date): it decides which criteria apply"),
          ("requested_level", "Level of care requested (inpatient, observation, critical care…)"),
          ("line_of_business", "Coverage: the line of business (Medicare, Medicaid, commercial…): it decides which "
                               "payment rules apply"))


def unknown_basics(adm: Admission) -> list[tuple[str, str]]:
    """(name, words) of each basic the record does not give."""
    unknown = {"age": adm.patient.age is None, "requested_level": adm.requested is None,
               "line_of_business": adm.coverage.line_of_business is None}
    return [(name, text) for name, text in BASICS if unknown[name]]


def _pend_without_basics(adm: Admission, library: Library, results: Results, facts: Facts, review_id: str,
                         waived: frozenset[str], basics: list[tuple[str, str]]) -> Decision:
    words = "; ".join(text for _, text in basics)
    return Decision(
        review_id=review_id, record_id=adm.id, review_type=adm.review_type, outcome=Outcome.PEND,
        requested=adm.requested, supported=None, recommended=None,
        reasons=[f"The review cannot start without: {words}; physician review"],
        missing=[name for name, _ in basics], missing_info=[{"facts": [name], "text": text} for name, text in basics],
        levels={}, payment={},
        rules={"version": library.version, "digest": library.digest,
               "rulesets": {rs.id: rs.version for rs, _ in results}},
        review_action=ReviewAction.PENDED, data_notices=adm.data_notices, _results=results, _facts=facts,
        _waived=waived)
