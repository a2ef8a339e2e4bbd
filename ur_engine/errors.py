"""Every error ur-engine raises, under one root, one class per kind; each kind's code is a class attribute.

    UrError                         UR000  root; fields: file, line, column, rule_id, path, suggestion
    ├── RuleError                   UR090  a rule, fact or valueset file is invalid (``file``, ``line``, ``column``)
    │   ├── RuleErrors                     every error of a rule library, reported together
    │   ├── YamlSyntaxError         UR001  the file is not valid YAML
    │   ├── DuplicateKeyError       UR002  a mapping repeats a key
    │   ├── MissingRuleFileError    UR003  no rule directory, or no facts.yaml in it
    │   ├── RuleSchemaError         UR004  a file does not match its JSON Schema (a misspelt or missing key)
    │   ├── RuleDateError           UR005  a date that is not one, or ``to`` before ``from``
    │   ├── DuplicateCriterionError UR010  a criterion id used by two rule sets
    │   ├── OverlappingVersionsError UR011 two versions of one rule set in effect on the same day
    │   ├── UnknownFactError        UR020  a condition names a fact that facts.yaml does not define
    │   ├── ConditionShapeError     UR021  a condition is not one of any / all / not / fact
    │   ├── OperatorError           UR022  a fact test without exactly one operator
    │   ├── ThresholdTypeError      UR023  a threshold of the wrong type for its fact
    │   ├── NestedScoreError        UR024  a score built on another score
    │   ├── ThresholdRangeError     UR025  a threshold outside its fact's plausible range (often another unit)
    │   ├── UnknownRecordPathError  UR026  facts.yaml reads a field the record does not have
    │   ├── UnknownGroupError       UR030  a level names a criteria group no criterion belongs to
    │   ├── UnknownWaiverError      UR031  a rule set waives a criterion that does not exist
    │   ├── AppliesBoundsError      UR032  ``applies`` bounds no record can meet (an age min above its max)
    │   ├── UnknownValuesetError    UR040  a reference to a valueset that does not exist
    │   ├── DuplicateValuesetError  UR041  a valueset defined twice
    │   ├── TooManyAlternativesError UR050 a criterion with more alternatives than durable-rules can hold
    │   ├── RuleTestRecordError     UR060  a rule test's record is not a valid admission record
    │   └── LintConfigError         UR070  a lint configuration names an unknown code or level
    ├── RecordError                 UR100  an admission record is invalid (``path`` is its JSON path)
    │   ├── RecordErrors                   several record errors, reported together
    │   ├── InvalidJsonError        UR101  the input is not JSON
    │   ├── RecordSchemaError       UR102  the record does not match schemas/admission.schema.json
    │   ├── InvalidTimeError        UR103  a date or time that is not one
    │   ├── NonFiniteNumberError    UR104  NaN or infinity
    │   ├── TimeOrderError          UR105  a time before arrival where that is impossible
    │   ├── UnitError               UR106  a unit the fact does not accept
    │   ├── FindingError            UR107  an undeclared finding, or one of the wrong type
    │   └── UnreadableRecordError   UR120  an input row or resource that cannot become a record
    ├── InputError                  UR121  an input file that cannot be read (format, compression, a missing library)
    ├── BatchError                  UR300  a batch run cannot start or resume
    │   ├── ResumeMismatchError     UR301  resuming with other inputs or rules than the run began with
    │   ├── OutputExistsError       UR302  the output exists and --resume was not given
    │   └── TrailRulesError         UR303  a compact decision line judged by other rules than those given
    └── EngineError                 UR990  the evaluation engine failed (never raised for "no rule matched")
        ├── CompileError            UR900  durable-rules could not compile the rules
        ├── EvaluationError         UR901  durable-rules failed on a stage
        └── ReplayWorkerError       UR902  a replay worker failed

Each error renders as ``file:line:col CODE message (did you mean 'x'?)``; ``as_dict()`` gives the same fields
for JSON output. ``RecordError("…", code="UR103")`` builds the registered kind of that code, so callers that know
only a code still raise the right class. ``KINDS`` maps every code to its class.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar

_E = TypeVar("_E", bound="UrError")


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to ``word``, or None when nothing is close.

    >>> did_you_mean("heart_rat.max", ["heart_rate.max", "heart_rate.min"])
    'heart_rate.max'
    """
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


class UrError(Exception):
    """Root of all ur-engine errors."""

    code: str = "UR000"  # each kind's code; an instance built from a code keeps that code
    FIELDS: ClassVar[tuple[str, ...]] = ("file", "line", "column", "rule_id", "path", "suggestion")

    def __new__(cls: type[_E], message: str = "", *args: Any, code: str | None = None, **fields: Any) -> _E:
        kind = KINDS.get(code) if code else None
        if kind is not None and issubclass(kind, cls):
            cls = kind  # the registered kind of that code
        return super().__new__(cls)

    def __init__(self, message: str, *, code: str | None = None, file: str | None = None, line: int | None = None,
                 column: int | None = None, rule_id: str | None = None, path: str | None = None,
                 suggestion: str | None = None) -> None:
        self.message = message
        self.code = code or type(self).code
        self.file, self.line, self.column = file, line, column
        self.rule_id, self.path, self.suggestion = rule_id, path, suggestion
        super().__init__(str(self))

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.as_dict() == self.as_dict()

    __hash__ = Exception.__hash__

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickles only its args; keep every structured field across process boundaries.
        return _rebuild, (type(self), self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        fields = {"code": self.code, "message": self.message, **{k: getattr(self, k) for k in self.FIELDS}}
        return {k: v for k, v in fields.items() if v is not None}


def _rebuild(cls: type[_E], fields: dict[str, Any]) -> _E:
    """The error ``as_dict`` gave ``fields`` of; each of a list's errors is rebuilt as the kind its code names."""
    if issubclass(cls, RecordErrors):
        return cls([_rebuild(RecordError, f) for f in fields["errors"]])
    if issubclass(cls, RuleErrors):
        return cls([_rebuild(RuleError, f) for f in fields["errors"]])
    return cls(**{k: v for k, v in fields.items() if k != "errors"})


class RecordError(UrError):
    """An admission record failed validation; ``path`` names the field."""

    code = "UR100"


class RecordErrors(RecordError):
    """Several record errors at once; ``errors`` holds each one."""

    def __new__(cls, errors: list[RecordError]) -> RecordErrors:
        return Exception.__new__(cls)

    def __init__(self, errors: list[RecordError]) -> None:
        self.errors = errors
        first = errors[0]
        super().__init__(first.message if len(errors) == 1 else f"{len(errors)} errors in the record",
                         code=first.code, path=first.path, suggestion=first.suggestion)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in getattr(self, "errors", ()))

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "errors": [e.as_dict() for e in self.errors]}


class RuleError(UrError):
    """A rule library file is invalid; ``file``, ``line`` and ``column`` locate it."""

    code = "UR090"


class RuleErrors(RuleError):
    """Every error found while loading a rule library, sorted by file and line."""

    def __new__(cls, errors: list[RuleError]) -> RuleErrors:
        return Exception.__new__(cls)

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.file or "", e.line or 0, e.column or 0, e.message))
        first = self.errors[0]
        super().__init__(f"{len(self.errors)} error(s) in the rule library", code=first.code,
                         file=first.file, line=first.line, column=first.column)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in getattr(self, "errors", ()))

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "errors": [e.as_dict() for e in self.errors]}


class EngineError(UrError):
    """durable-rules reported a failure while compiling or evaluating."""

    code = "UR990"


class InputError(UrError):
    """An input file cannot be read: its format, its compression, or a library its format needs."""

    code = "UR121"


class BatchError(UrError):
    """A batch run cannot start or resume."""

    code = "UR300"


KINDS: dict[str, type[UrError]] = {}  # filled below: every code, the class of its kind

class YamlSyntaxError(RuleError):
    """The file is not valid YAML."""

    code = "UR001"


class DuplicateKeyError(RuleError):
    """A mapping repeats a key."""

    code = "UR002"


class MissingRuleFileError(RuleError):
    """No rule directory, or no facts.yaml."""

    code = "UR003"


class RuleSchemaError(RuleError):
    """A file does not match its JSON Schema."""

    code = "UR004"


class RuleDateError(RuleError):
    """A date that is not one, or 'to' before 'from'."""

    code = "UR005"


class DuplicateCriterionError(RuleError):
    """A criterion id used twice."""

    code = "UR010"


class OverlappingVersionsError(RuleError):
    """Two versions of a rule set in effect on the same day."""

    code = "UR011"


class UnknownFactError(RuleError):
    """A fact that facts.yaml does not define."""

    code = "UR020"


class ConditionShapeError(RuleError):
    """A condition not of any/all/not/fact."""

    code = "UR021"


class OperatorError(RuleError):
    """A fact test without exactly one operator."""

    code = "UR022"


class ThresholdTypeError(RuleError):
    """A threshold of the wrong type."""

    code = "UR023"


class NestedScoreError(RuleError):
    """A score built on another score."""

    code = "UR024"


class ThresholdRangeError(RuleError):
    """A threshold outside its fact's plausible range: most often a value in another unit (37.8 on a °F fact)."""

    code = "UR025"


class UnknownRecordPathError(RuleError):
    """facts.yaml reads a field the record does not have."""

    code = "UR026"


class UnknownGroupError(RuleError):
    """A level names an unknown criteria group."""

    code = "UR030"


class UnknownWaiverError(RuleError):
    """A waiver of an unknown criterion."""

    code = "UR031"


class AppliesBoundsError(RuleError):
    """``applies`` bounds no record can meet: the rule set would silently judge nobody."""

    code = "UR032"


class UnknownValuesetError(RuleError):
    """A reference to an unknown valueset."""

    code = "UR040"


class DuplicateValuesetError(RuleError):
    """A valueset defined twice."""

    code = "UR041"


class TooManyAlternativesError(RuleError):
    """More alternatives in one criterion than durable-rules holds."""

    code = "UR050"


class RuleTestRecordError(RuleError):
    """A rule test's record is invalid."""

    code = "UR060"


class LintConfigError(RuleError):
    """A lint configuration names an unknown code or level."""

    code = "UR070"


class InvalidJsonError(RecordError):
    """The input is not JSON."""

    code = "UR101"


class RecordSchemaError(RecordError):
    """The record does not match its schema."""

    code = "UR102"


class InvalidTimeError(RecordError):
    """A date or time that is not one."""

    code = "UR103"


class NonFiniteNumberError(RecordError):
    """NaN or infinity."""

    code = "UR104"


class TimeOrderError(RecordError):
    """A time before arrival where that is impossible."""

    code = "UR105"


class UnitError(RecordError):
    """A unit the fact does not accept."""

    code = "UR106"


class FindingError(RecordError):
    """An undeclared finding, or one of the wrong type."""

    code = "UR107"


class UnreadableRecordError(RecordError):
    """An input row or resource that cannot become a record."""

    code = "UR120"


class ResumeMismatchError(BatchError):
    """Resuming with other inputs or rules than the run began with."""

    code = "UR301"


class OutputExistsError(BatchError):
    """The output exists and --resume was not given."""

    code = "UR302"


class TrailRulesError(BatchError):
    """A compact decision line's trail is rebuilt only from the rules that judged it (its ``rules.digest``)."""

    code = "UR303"


class CompileError(EngineError):
    """durable-rules could not compile the rules."""

    code = "UR900"


class EvaluationError(EngineError):
    """durable-rules failed on a stage."""

    code = "UR901"


class ReplayWorkerError(EngineError):
    """A replay worker failed."""

    code = "UR902"


def _register() -> None:
    seen: list[type[UrError]] = [UrError]
    while seen:
        cls = seen.pop()
        seen.extend(cls.__subclasses__())
        if cls not in (RecordErrors, RuleErrors):
            if cls.code in KINDS:
                raise TypeError(f"{cls.__name__} reuses {cls.code} of {KINDS[cls.code].__name__}")
            KINDS[cls.code] = cls


_register()
