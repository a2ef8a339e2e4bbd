"""ur-engine: open, explainable utilization review.

The pipeline, one module each: ``record`` (parse and validate) → ``facts`` (derive) → ``evaluator``
(durable-rules) → ``decision``; ``library`` loads the rule files and ``engine`` ties the steps together.

>>> from ur_engine import Engine, load_library          # doctest: +SKIP
>>> Engine(load_library()).review(record).outcome       # doctest: +SKIP
'approve'
"""

from ur_engine.decision import Decision
from ur_engine.engine import Engine
from ur_engine.errors import (
           EngineError,
           RecordError,
           RecordErrors,
           RuleError,
           RuleErrors,
           UrError,
)
from ur_engine.intake.rule_files import load_library
from ur_engine.rules.library import Library, Source, load

__all__ = ["Decision", "Engine", "EngineError", "Library", "RecordError", "RecordErrors", "RuleError",
           "RuleErrors", "Source", "UrError", "load", "load_library"]
