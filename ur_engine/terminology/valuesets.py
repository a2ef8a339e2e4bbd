"""Effective-dated code sets: a code belongs to the set only on dates within its ``from``/``to``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

_EVER = (date.min, date.max)


def normalize(code, system: str) -> str:
    """Codes compare upper case; ICD-10 codes without their dot (``j18.9`` → ``J189``)."""
    text = str(code).strip().upper()
    return text.replace(".", "") if system.startswith("icd10") else text


@dataclass
class Valueset:
    name: str
    title: str
    source: str
    system: str
    match: str = "exact"
    spans: dict = field(default_factory=dict)  # code -> list of (from, to) dates, both inclusive
    # A set whose codes never start or end answers the same on every date: its answers are kept per code,
    # since a batch asks about the same few diagnosis codes for every stay.
    _answers: dict = field(default_factory=dict, repr=False, compare=False)
    _dated: bool = field(default=False, repr=False, compare=False)

    def add(self, code, start: date | None, end: date | None) -> None:
        self.spans.setdefault(normalize(code, self.system), []).append((start or date.min, end or date.max))
        self._dated = self._dated or start is not None or end is not None
        self._answers.clear()

    @property
    def dated(self) -> bool:
        """Whether some code of the set starts or ends on a date (else it answers the same on every date)."""
        return self._dated

    def contains(self, code: str, on: date) -> bool:
        """True when ``code`` (already normalized) is in the set on ``on``.

        >>> vs = Valueset("x", "t", "s", "icd10cm", "prefix"); vs.add("J18", None, None)
        >>> vs.contains("J189", date(2026, 1, 1))
        True
        """
        if not self._dated:
            found = self._answers.get(code)
            if found is None:
                found = self._lookup(code, on)
                if len(self._answers) < 4096:  # bounded: memory stays flat on any code mix
                    self._answers[code] = found
            return found
        return self._lookup(code, on)

    def _lookup(self, code: str, on: date) -> bool:
        if self.match == "prefix":
            return any(self._on(code[:n], on) for n in range(3, len(code) + 1))
        return self._on(code, on)

    def _on(self, code: str, on: date) -> bool:
        spans = self.spans.get(code)
        return bool(spans) and any(a <= on <= b for a, b in spans)

    def codes_on(self, on: date) -> list[str]:
        return sorted(c for c in self.spans if self._on(c, on))


def merge_import(data: dict, codes: dict[str, str], effective: date) -> tuple[dict, dict]:
    """A valueset file's data updated with a full published list that takes effect on ``effective``.

    Codes new to the list start that day, codes that left it end the day before, and the history stays:
    stays before ``effective`` are still judged by the list of their own date. Returns (data, counts).
    """
    day_before = (effective - timedelta(days=1)).isoformat()
    entries = [dict(e) for e in data.get("codes", [])]
    open_codes = {normalize(e["code"], data["system"]) for e in entries if "to" not in e}
    incoming = {normalize(c, data["system"]): t for c, t in codes.items()}
    counts = {"added": 0, "removed": 0, "kept": 0}
    for e in entries:
        code = normalize(e["code"], data["system"])
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
