"""Effective-dated code sets: a code belongs to the set only on dates within its ``from``/``to``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

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

    def add(self, code, start: date | None, end: date | None) -> None:
        self.spans.setdefault(normalize(code, self.system), []).append((start or date.min, end or date.max))

    def contains(self, code: str, on: date) -> bool:
        """True when ``code`` (already normalized) is in the set on ``on``.

        >>> vs = Valueset("x", "t", "s", "icd10cm", "prefix"); vs.add("J18", None, None)
        >>> vs.contains("J189", date(2026, 1, 1))
        True
        """
        if self.match == "prefix":
            return any(self._on(code[:n], on) for n in range(3, len(code) + 1))
        return self._on(code, on)

    def _on(self, code: str, on: date) -> bool:
        spans = self.spans.get(code)
        return bool(spans) and any(a <= on <= b for a, b in spans)

    def codes_on(self, on: date) -> list[str]:
        return sorted(c for c in self.spans if self._on(c, on))
