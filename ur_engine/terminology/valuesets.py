"""Effective-dated code sets: a code belongs to the set only on dates within its ``from``/``to``.

A set may hold codes of any code system (ICD-10-CM, SNOMED CT, CPT…): each code is kept with its system, and a
record's code is a member only when its system is the code's. ``Code`` is a code that knows its system.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

_EVER = (date.min, date.max)
DEFAULT_SYSTEM = "icd10cm"
# Systems whose codes are written with or without a dot: they compare without it.
_DOTTED = ("icd10", "icd9")


class Code(str):
    """A normalized code that carries its code system (``Code("J189", "icd10cm")``); compares as its text."""

    system: str | None

    def __new__(cls, text: str, system: str | None = None) -> Code:
        self = super().__new__(cls, text)
        self.system = system
        return self

    def __reduce__(self) -> tuple[type[Code], tuple[str, str | None]]:
        return Code, (str(self), self.system)


def normalize(code: object, system: str | None) -> str:
    """Codes compare upper case (a system named by its URI keeps its case: it may be case-sensitive);
    ICD-10 and ICD-9 codes without their dot (``j18.9`` → ``J189``)."""
    text = str(code).strip()
    if system is not None and ":" in system:
        return text
    text = text.upper()
    return text.replace(".", "") if system is not None and system.startswith(_DOTTED) else text


@dataclass
class Valueset:
    name: str
    title: str
    source: str
    system: str
    match: str = "exact"
    # (system, code) -> list of (from, to) dates, both inclusive
    spans: dict[tuple[str, str], list[tuple[date, date]]] = field(default_factory=dict)
    # A set whose codes never start or end answers the same on every date: its answers are kept per code,
    # since a batch asks about the same few diagnosis codes for every stay.
    _answers: dict[tuple[str, str], bool] = field(default_factory=dict, repr=False, compare=False)
    _dated: bool = field(default=False, repr=False, compare=False)

    def add(self, code: object, start: date | None, end: date | None, system: str | None = None) -> None:
        """Add ``code`` of ``system`` (the set's own system when not given) from ``start`` to ``end``."""
        system = system or self.system
        self.spans.setdefault((system, normalize(code, system)), []).append((start or date.min, end or date.max))
        self._dated = self._dated or start is not None or end is not None
        self._answers.clear()

    @property
    def dated(self) -> bool:
        """Whether some code of the set starts or ends on a date (else it answers the same on every date)."""
        return self._dated

    def contains(self, code: str, on: date) -> bool:
        """True when ``code`` (already normalized) is in the set on ``on``.

        A ``Code`` is looked up in its own system; a plain string in the set's system.

        >>> vs = Valueset("x", "t", "s", "icd10cm", "prefix"); vs.add("J18", None, None)
        >>> vs.contains("J189", date(2026, 1, 1)), vs.contains(Code("J189", "snomed"), date(2026, 1, 1))
        (True, False)
        """
        key = (getattr(code, "system", None) or self.system, str(code))
        if not self._dated:
            found = self._answers.get(key)
            if found is None:
                found = self._lookup(key, on)
                if len(self._answers) < 4096:  # bounded: memory stays flat on any code mix
                    self._answers[key] = found
            return found
        return self._lookup(key, on)

    def _lookup(self, key: tuple[str, str], on: date) -> bool:
        system, code = key
        if self.match == "prefix":
            return any(self._on((system, code[:n]), on) for n in range(3, len(code) + 1))
        return self._on(key, on)

    def _on(self, key: tuple[str, str], on: date) -> bool:
        return any(a <= on <= b for a, b in self.spans.get(key, ()))

    def codes_on(self, on: date) -> list[str]:
        """The codes in the set on ``on``; a code of another system than the set's is written ``system|code``."""
        return sorted(c if s == self.system else f"{s}|{c}" for s, c in self.spans if self._on((s, c), on))


def merge_import(data: dict[str, Any], codes: dict[str, str],
                 effective: date) -> tuple[dict[str, Any], dict[str, int]]:
    """A valueset file's data updated with a full published list that takes effect on ``effective``.

    Codes new to the list start that day, codes that left it end the day before, and the history stays:
    stays before ``effective`` are still judged by the list of their own date. Returns (data, counts).
    """
    day_before = (effective - timedelta(days=1)).isoformat()
    entries = [dict(e) for e in data.get("codes", [])]
    open_codes = {normalize(e["code"], data.get("system", DEFAULT_SYSTEM)) for e in entries if "to" not in e}
    incoming = {normalize(c, data.get("system", DEFAULT_SYSTEM)): t for c, t in codes.items()}
    counts = {"added": 0, "removed": 0, "kept": 0}
    for e in entries:
        code = normalize(e["code"], data.get("system", DEFAULT_SYSTEM))
        if "to" not in e and code not in incoming:
            e["to"] = day_before
            counts["removed"] += 1
        elif "to" not in e:
            counts["kept"] += 1
    for code in sorted(set(incoming) - open_codes):
        entry = {"code": code, "from": effective.isoformat()}
        if incoming[code]:
            entry["text"] = incoming[code]
        entries.append(entry)
        counts["added"] += 1
    return {**data, "codes": entries}, counts
