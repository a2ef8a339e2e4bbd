"""Every error ur-engine raises, under one root.

    UrError                      root; structured fields: file, line, column, rule_id, path, suggestion
    ├── RecordError              an admission record is invalid (``path`` is its JSON path, e.g. ``$.encounter.arrival_time``)
    │   └── RecordErrors         several record errors, reported together
    ├── RuleError                a rule, fact or valueset file is invalid (``file``, ``line``, ``column``)
    │   └── RuleErrors           every error of a rule library, reported together
    └── EngineError              the evaluation engine failed (never raised for "no rule matched")

Each error renders as ``file:line:col CODE message (did you mean 'x'?)``; ``as_dict()`` gives the same fields
for JSON output.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to ``word``, or None when nothing is close.

    >>> did_you_mean("heart_rat.max", ["heart_rate.max", "heart_rate.min"])
    'heart_rate.max'
    """
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


@dataclass
class UrError(Exception):
    """Root of all ur-engine errors."""

    message: str
    code: str = "UR000"
    file: str | None = None
    line: int | None = None
    column: int | None = None
    rule_id: str | None = None
    path: str | None = None
    suggestion: str | None = None

    def __post_init__(self) -> None:
        Exception.__init__(self, str(self))

    def location(self) -> str:
        parts = [p for p in (self.file, self.line, self.column) if p is not None]
        return ":".join(str(p) for p in parts)

    def __str__(self) -> str:
        text = self.message
        if self.path and self.file is None:
            text = f"{self.path}: {text}"
        if self.suggestion:
            text += f" (did you mean '{self.suggestion}'?)"
        where = self.location()
        return f"{where} {self.code} {text}" if where else f"{self.code} {text}"

    def __reduce__(self):
        # Exception pickles only its args; keep every structured field across process boundaries.
        return _rebuild, (type(self), self.as_dict())

    def as_dict(self) -> dict:
        return {k: v for k, v in {
            "code": self.code, "message": self.message, "file": self.file, "line": self.line,
            "column": self.column, "rule_id": self.rule_id, "path": self.path, "suggestion": self.suggestion,
        }.items() if v is not None}


def _rebuild(cls, fields: dict):
    if issubclass(cls, (RecordErrors, RuleErrors)):
        return cls([_rebuild(RecordError if cls is RecordErrors else RuleError, f) for f in fields["errors"]])
    return cls(**{k: v for k, v in fields.items() if k != "errors"})


class RecordError(UrError):
    """An admission record failed validation; ``path`` names the field."""


class RecordErrors(RecordError):
    """Several record errors at once; ``errors`` holds each one."""

    def __init__(self, errors: list[RecordError]):
        self.errors = errors
        first = errors[0]
        super().__init__(first.message if len(errors) == 1 else f"{len(errors)} errors in the record",
                         code=first.code, path=first.path, suggestion=first.suggestion)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    def as_dict(self) -> dict:
        return {**super().as_dict(), "errors": [e.as_dict() for e in self.errors]}


class RuleError(UrError):
    """A rule library file is invalid; ``file``, ``line`` and ``column`` locate it."""


class RuleErrors(RuleError):
    """Every error found while loading a rule library, sorted by file and line."""

    def __init__(self, errors: list[RuleError]):
        self.errors = sorted(errors, key=lambda e: (e.file or "", e.line or 0, e.column or 0, e.message))
        first = self.errors[0]
        super().__init__(f"{len(self.errors)} error(s) in the rule library", code=first.code,
                         file=first.file, line=first.line, column=first.column)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    def as_dict(self) -> dict:
        return {**super().as_dict(), "errors": [e.as_dict() for e in self.errors]}


class EngineError(UrError):
    """durable-rules reported a failure while compiling or evaluating."""
