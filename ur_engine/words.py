"""The facts a decision still wants, in words a nurse acts on: "Sodium (lowest and highest) in the first 24 h after
arrival", never ``sodium.min``."""

from __future__ import annotations

from functools import lru_cache

from ur_engine.facts import FactDictionary
from ur_engine.rules.library import Library

# Entries kept at most, the least recently used forgotten first: what each fact is documented as, and a text per
# observation and set of its statistics missing (or per other fact) and review type.
TEXTS_KEPT = 2048

STAT_WORDS = {"min": "lowest", "max": "highest", "first": "first", "last": "latest", "count": "number of readings"}


def missing_words(library: Library, review_type: str, names: list[str]) -> list[dict[str, object]]:
    """The missing facts in words a nurse acts on, one entry per thing to document: a lab or vital sign with the
    time window it is read in (its lowest and highest merged into one line), a finding, a treatment, a field."""
    # The lists of missing facts are nearly as many as the stays that pend, but the facts and what is said of
    # each are few: the words are put together per stay from each fact's, worked out once.
    facts = library.facts
    # one entry per observation (its statistics merged) or per other fact: its facts, their statistics' words
    entries: dict[str, tuple[list[str], list[str]]] = {}
    for name in names:
        key, stat = _word_key(facts, name)
        found = entries.get(key)
        if found is None:
            found = entries[key] = ([], [])
        found[0].append(name)
        if stat:
            found[1].append(stat)
    return [{"facts": named, "text": _word_text(facts, review_type, named[0], tuple(stats))}
            for named, stats in entries.values()]


@lru_cache(maxsize=TEXTS_KEPT)
def _word_key(facts: FactDictionary, name: str) -> tuple[str, str]:
    """What ``name`` is documented as (an observation, or the fact itself) and its statistic's word ("" if none)."""
    info = facts.catalog.get(name)
    base, _, stat = name.rpartition(".")
    if info is not None and info.kind == "observation" and stat in STAT_WORDS:
        return base, STAT_WORDS[stat]
    return name, ""


@lru_cache(maxsize=TEXTS_KEPT)
def _word_text(facts: FactDictionary, review_type: str, first: str, stats: tuple[str, ...]) -> str:
    """What to document for an entry whose first fact is ``first``: an observation whose statistics ``stats``
    are missing, or that fact."""
    window = facts.windows.get(review_type, {})
    span = ""
    if window:
        span = (f"in the first {window['end_hours']:g} h after arrival" if window["anchor"] == "arrival" else
                "on that day of care" if window["anchor"] == "day_start" else
                f"in the {-window['start_hours']:g} h before the review")
    info = facts.catalog.get(first)
    label = info.text if info is not None else first
    if stats:
        return f"{label.rsplit(' (', 1)[0]} ({' and '.join(stats)}) {span}".rstrip()
    if info is not None and info.kind == "finding":
        return f"{label}: documented present or absent"
    if info is not None and info.kind == "treatment":
        return f"{label}: given or not {span}".rstrip()
    return label


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
