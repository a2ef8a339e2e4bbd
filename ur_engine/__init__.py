"""ur-engine: open, explainable utilization review.

The pipeline, a room each: ``intake`` (read and normalise what hospitals send) → ``record`` (the validated,
typed admission) → ``facts`` (derive) → ``evaluation`` (durable-rules) → ``decision``; ``rules`` loads the
rule files and ``engine`` ties the core steps together.

>>> from ur_engine import Engine, load_library, review     # doctest: +SKIP
>>> review(Engine(load_library()), record).outcome        # doctest: +SKIP
'approve'
"""

from ur_engine.decision import Decision
from ur_engine.engine import Engine
from ur_engine.errors import EngineError, RecordError, RecordErrors, RuleError, RuleErrors, UrError
from ur_engine.intake.normalise import admit, review
from ur_engine.intake.rule_files import load_library
from ur_engine.rules.library import Library, Source, load
from ur_engine.vocabulary import Level, Outcome, Setting, Status

__all__ = ["Decision", "Engine", "EngineError", "Level", "Library", "Outcome", "RecordError", "RecordErrors",
           "RuleError", "RuleErrors", "Setting", "Source", "Status", "UrError", "admit", "load", "load_library",
           "review"]
