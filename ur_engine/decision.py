"""Rule set results → the decision: approve, pend or alternative_setting, with reasons and the trail.

The engine never denies. ``approve`` (X12 306 A1) when the criteria support the requested level or a higher
one; ``alternative_setting`` when they support a lower one; ``pend`` (A4) when nothing is supported, when
information is missing, or when a criterion asks for physician review. A met ``notify`` criterion adds a notice
(a duty, such as a notice owed to the patient) and changes neither outcome nor level.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any, Literal

from ur_engine.evaluation.evaluator import RulesetResult
from ur_engine.facts import FactDictionary, Facts
from ur_engine.memo import Recent
from ur_engine.record import Admission, DataNotice
from ur_engine.rules.library import Library, RuleSet
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
    # The criteria's ids under their status, shared by every decision of the same pattern of results (None: work
    # them out from ``_results``).
    _by_status: dict[str, tuple[str, ...]] | None = field(default=None, repr=False, compare=False)
    # The stay day by day (stay_days.StayDays.to_dict()), set only when a day-by-day review was asked for.
    by_day: dict[str, object] | None = None

    def met_for(self, level: str) -> list[str]:
        """The ids of the criteria met that support ``level`` (through a rule set whose groups support it)."""
        return _met_ids(self._results, level)

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
        by_status = self._by_status if self._by_status is not None else _by_status(self._results, self._waived)
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


def _by_status(results: Results, waived: frozenset[str]) -> dict[str, tuple[str, ...]]:
    """The criteria's ids under their status (met, not met, unknown, waived), in trail order; empty ones left out."""
    by: dict[bool | None, list[str]] = {True: [], False: [], None: []}
    waived_ids: list[str] = []
    for _, r in results:
        for cid, met in r.criteria.items():
            (waived_ids if cid in waived else by[met]).append(cid)
    trail = {"met": by[True], "not_met": by[False], "unknown": by[None], "waived": waived_ids}
    return {k: tuple(ids) for k, ids in trail.items() if ids}


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

    All but the missing facts follows from the pattern of criteria results, and a batch meets a few thousand
    patterns in millions of stays: each pattern's verdict is worked out once (``_verdict``); which of its
    candidate facts are missing is the record's own.
    """
    if adm.patient.age is None or adm.requested is None or adm.coverage.line_of_business is None:
        return _pend_without_basics(adm, library, results, facts, review_id, waived, unknown_basics(adm))
    if not results:
        verdict = _verdict(adm.requested, adm.review_type, library, results, waived)
        verdict = replace(verdict, reasons=(
            f"No rule set applies to this record ({adm.review_type}, age {adm.patient.age:g}, "
            f"{adm.coverage.line_of_business}, arrival {adm.encounter.arrival_time.date()}); physician review",))
    else:
        pattern = (library.digest, adm.requested, adm.review_type, waived,
                   tuple([(rs.key, r.pattern if r.pattern is not None else tuple(r.criteria.values()))
                          for rs, r in results]))
        found = _VERDICTS.get(pattern)
        if found is None:
            found = _VERDICTS.put(pattern, _verdict(adm.requested, adm.review_type, library, results, waived))
        verdict = found
    values = facts.values
    missing = [name for name in verdict.candidates if name not in values]
    missing_info = missing_words(library, adm.review_type, missing) if missing else []
    return Decision(
        review_id=review_id, record_id=adm.id, review_type=adm.review_type, outcome=verdict.outcome,
        requested=adm.requested, supported=verdict.supported, recommended=verdict.recommended,
        reasons=[r if isinstance(r, str) else r.prefix + _some(missing, words=missing_info) for r in verdict.reasons],
        missing=missing, missing_info=missing_info, levels=dict(verdict.levels), payment=dict(verdict.payment),
        rules=dict(verdict.rules), review_action=verdict.review_action, notices=list(verdict.notices),
        data_notices=adm.data_notices + tuple(facts.notices) if facts.notices else adm.data_notices,
        _results=results, _facts=facts, _waived=waived, _by_status=verdict.by_status)


@dataclass(frozen=True, slots=True)
class _Words:
    """A reason that goes on to name the missing facts: ``prefix`` and then, per record, what is missing."""

    prefix: str


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What a pattern of criteria results decides, whatever record it came from."""

    outcome: Outcome
    supported: str | None
    recommended: str | None
    reasons: tuple[str | _Words, ...]
    candidates: tuple[str, ...]  # facts that, absent, are missing: the most decisive first
    levels: dict[str, Status]
    payment: dict[str, Status]
    rules: dict[str, Any]
    review_action: ReviewAction
    notices: tuple[str, ...]
    by_status: dict[str, tuple[str, ...]]  # the compact trail's ids (Decision._compact_trail)


# Verdicts (and candidate facts) kept at most, the least recently used forgotten first: a long batch meets a long
# tail of patterns seen once, so a larger cache mostly holds those. With 8,192 forgotten all at once (the
# evaluator's patterns 16,384, the missing facts' words 4,096), one process peaked at 120.6 MiB over 100,000 stays
# and 127.5 over 1,000,000, its pymalloc arenas creeping while its live objects did not grow; with these sizes,
# 78.7 and 79.9 MiB, the arenas level at 32 MiB (bench/memory.py), for about 5% more CPU (4–11% in 3 paired runs).
KEPT = 2048
# (library digest, requested, review type, waivers, each rule set's criteria results) -> its verdict.
_VERDICTS: Recent[tuple[object, ...], _Verdict] = Recent(KEPT)


def _verdict(requested_level: str | None, review_type: str, library: Library, results: Results,
             waived: frozenset[str]) -> _Verdict:
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

    pend_reasons, notices = [], []
    for rs, r in results:
        for cr in rs.acting_criteria:
            if r.criteria[cr.id] is True and cr.id not in waived:
                if cr.action is Action.PEND:
                    pend_reasons.append(f"{cr.id}: {cr.text} — physician review")
                else:
                    notices.append(f"{cr.id}: {cr.text}")

    reasons: list[str | _Words] = []
    recommended = None
    unknown = [t for t in judged if status[t] is None]
    approved = not pend_reasons and any(status[t] is True for t in at_or_above)
    candidates = () if approved else _candidates_ranked(library, results, unknown)
    outcome = Outcome.PEND
    if pend_reasons:
        reasons += pend_reasons
    elif approved:
        outcome, recommended = Outcome.APPROVE, requested
        reasons.append(_support_reason(requested, supported, results))
        if supported and supported != requested and payment.get(supported) is False:
            reasons.append(_payment_reason(supported, results))
    elif any(clinical[t] is None for t in at_or_above) or (
            supported is not None and payment.get(supported, True) is None):
        reasons.append(_Words(f"Not enough information to judge {', '.join(t for t in judged if t in unknown)}: "))
    elif supported is not None and payment.get(supported) is False:
        # Supported clinically, refused by a payment rule: a physician decides, the setting is not lowered.
        reasons.append(_support_reason(supported, supported, results))
        reasons.append(_payment_reason(supported, results))
    elif supported is not None:
        outcome, recommended = Outcome.ALTERNATIVE_SETTING, supported
        reasons += _why_not(requested, results)
        reasons.append(_support_reason(supported, supported, results))
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
        candidates=candidates, levels={t: Status.of(clinical[t]) for t in judged},
        payment={t: Status.of(v) for t, v in payment.items()},
        rules={"version": library.version, "digest": library.digest,
               "rulesets": {rs.id: rs.version for rs, _ in results}},
        review_action=ReviewAction.CERTIFIED if outcome is Outcome.APPROVE else ReviewAction.PENDED,
        notices=tuple(notices), by_status=_by_status(results, waived))


def _met_ids(results: Results, target: str) -> list[str]:
    ids = []
    for rs, r in results:
        if r.levels.get(target) is True:
            ids += [cr.id for cr in rs.criteria if r.criteria[cr.id] is True and cr.action is Action.SUPPORT]
    return ids


def _support_reason(target: str, highest: str | None, results: Results) -> str:
    text = f"Criteria support {target} ({', '.join(_met_ids(results, target)) or 'no criterion'})"
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


def _candidates_ranked(library: Library, results: Results, targets: list[str]) -> tuple[str, ...]:
    """The facts that, when absent, left a criterion unknown in a group that a still-unknown level depends on —
    only those whose value could change that level — the most decisive first: a fact of the one group still
    unknown for a level (its value alone settles the level) before a fact of a group that settles it only with
    others. A record's missing facts are those of these it does not give."""
    if not targets:
        return ()
    weight: dict[str, int] = {}
    key = tuple(targets)
    for rs, r in results:
        # A rule set meets far fewer patterns of results than a combination of them does: cached per rule set.
        found = (library.digest, rs.key, key, r.pattern if r.pattern is not None else tuple(r.criteria.values()),
                 tuple(r.groups.values()))  # the groups too: a waiver moves them
        candidates = _CANDIDATES.get(found)
        if candidates is None:
            candidates = _CANDIDATES.put(found, _candidates(library, rs, key, r))
        for name, decisive in candidates:
            if weight.get(name, 0) < decisive:
                weight[name] = decisive
    return tuple(sorted(weight, key=lambda name: -weight[name]))  # stable: rule-file order within a rank


# (library digest, rule set, targets, its criteria's and groups' results) -> _candidates.
_CANDIDATES: Recent[tuple[object, ...], tuple[tuple[str, int], ...]] = Recent(KEPT)


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


STAT_WORDS = {"min": "lowest", "max": "highest", "first": "first", "last": "latest", "count": "number of readings"}


def missing_words(library: Library, review_type: str, names: list[str]) -> list[dict[str, object]]:
    """The missing facts in words a nurse acts on, one entry per thing to document: a lab or vital sign with the
    time window it is read in (its lowest and highest merged into one line), a finding, a treatment, a field."""
    # A batch pends many stays for the same few lists of missing facts: their words are worked out once.
    # Fresh dicts each time: the cached words are shared by every decision that asks for them.
    return [{"facts": list(facts), "text": text} for facts, text in _words(library.facts, review_type, tuple(names))]


@lru_cache(maxsize=KEPT // 2)
def _words(facts: FactDictionary, review_type: str,
           names: tuple[str, ...]) -> tuple[tuple[tuple[str, ...], str], ...]:
    catalog, window = facts.catalog, facts.windows.get(review_type, {})
    span = ""
    if window:
        span = (f"in the first {window['end_hours']:g} h after arrival" if window["anchor"] == "arrival" else
                "on that day of care" if window["anchor"] == "day_start" else
                f"in the {-window['start_hours']:g} h before the review")
    order: list[str] = []  # one entry per observation (its statistics merged) or per other fact
    facts_of: dict[str, list[str]] = {}
    stats_of: dict[str, list[str]] = {}
    for name in names:
        info = catalog.get(name)
        base, _, stat = name.rpartition(".")
        key = base if info is not None and info.kind == "observation" and stat in STAT_WORDS else name
        if key not in facts_of:
            order.append(key)
            facts_of[key], stats_of[key] = [], []
        facts_of[key].append(name)
        if key == base:
            stats_of[key].append(STAT_WORDS[stat])
    words: list[tuple[tuple[str, ...], str]] = []
    for key in order:
        info = catalog.get(facts_of[key][0])
        label = info.text if info is not None else key
        if stats_of[key]:
            text = f"{label.rsplit(' (', 1)[0]} ({' and '.join(stats_of[key])}) {span}".rstrip()
        elif info is not None and info.kind == "finding":
            text = f"{label}: documented present or absent"
        elif info is not None and info.kind == "treatment":
            text = f"{label}: given or not {span}".rstrip()
        else:
            text = label
        words.append((tuple(facts_of[key]), text))
    return tuple(words)


def some_missing(names: list[str], words: list[dict[str, object]]) -> str:
    """The first few missing facts in words, and how many more (see ``missing``)."""
    return _some(names, words=words)


def _some(names: list[str], limit: int = 6, words: list[dict[str, object]] | None = None) -> str:
    if words:
        shown = [str(w["text"]) for w in words[:limit]]
        more = f"; and {len(words) - limit} more (see missing)" if len(words) > limit else ""
        return "; ".join(shown) + more
    if not names:
        return "criteria unknown"
    more = f" and {len(names) - limit} more (see missing)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


# What a review cannot start without. A record may leave them out (a prior-authorization request without a birth
# date or a level of care, an extract without its payer): the stay then pends, naming them, instead of being refused or judged on a guess.
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
