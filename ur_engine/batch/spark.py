"""Review a Spark DataFrame of admission records: the same engine, one per partition, inside Spark.

    from pyspark.sql import SparkSession
    from ur_engine.batch.spark import review_dataframe
    spark = SparkSession.builder.getOrCreate()
    stays = spark.read.text("stays/*.ndjson").withColumnRenamed("value", "record")
    review_dataframe(stays).write.mode("overwrite").parquet("decisions/")

pyspark is imported only inside ``review_dataframe``: ``ur_engine`` works without it. The executors need
ur-engine installed (and the same Python) but no rule files: the library, loaded and checked on the driver,
travels with the task, and each Python worker builds its engine once for all the partitions it reviews.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson

from ur_engine import record as records
from ur_engine.engine import Engine
from ur_engine.errors import InvalidJsonError, UrError
from ur_engine.intake.normalise import review
from ur_engine.rules.library import Library, Source, load

COLUMNS = ("record_id", "outcome", "supported", "review_action", "decision", "error")


def review_dataframe(df, record_col: str = "record", sources: list[Source] | None = None):
    """DataFrame with a JSON-string column of admission records -> DataFrame(record_id, outcome, supported,
    review_action, decision (the decision JSON), error), all strings, one row per input row.

    An invalid record gives outcome "error", the error text in ``error`` and, in ``decision``, the same
    ``{"outcome": "error", "errors": [...]}`` line as ``ur review``. Default rules: the shipped library.
    """
    from pyspark.sql.types import StringType, StructField, StructType

    if sources is None:
        from ur_engine.intake.rule_files import (
            default_sources,  # read here, on the driver: executors need no file access
        )

        sources = default_sources()
    # Loaded on the driver: a broken library is refused before any task starts, and the tasks carry it loaded
    # (unpickled in ~30 ms where reading the rule files again took ~300 ms a partition).
    library = load(list(sources))
    schema = StructType([StructField(name, StringType(), True) for name in COLUMNS])

    # rdd.mapPartitions rather than mapInArrow/mapInPandas: those need pandas on every executor (pyspark
    # 4.3 refuses mapInArrow without it); this needs nothing beyond pyspark, but classic Spark only (Spark
    # Connect has no RDDs). The closure carries the library by value, pickled once per task.
    def partition(rows: Iterable) -> Iterator[tuple]:
        return review_partition((row[0] for row in rows), library)

    rdd = df.select(record_col).rdd.mapPartitions(partition, preservesPartitioning=True)
    return df.sparkSession.createDataFrame(rdd, schema)


def review_partition(texts: Iterable, rules: Library | list[Source]) -> Iterator[tuple]:
    """The rows of one partition, reviewed by this process's engine for ``rules`` (a library, or its files)."""
    texts = iter(texts)
    for first in texts:
        # Built on the first row only: after a shuffle most of 200 partitions may be empty.
        engine = engine_for(rules if isinstance(rules, Library) else load(rules))
        yield review_text(engine, first)
        for text in texts:
            yield review_text(engine, text)


def engine_for(library: Library) -> Engine:
    """The engine of a library with ``library``'s digest, built once per process: a Spark Python worker reviews
    partition after partition of the same job (and its caches of rule-set combinations and verdicts carry on)."""
    global _ENGINE
    if _ENGINE is None or _ENGINE.library.digest != library.digest:
        if _ENGINE is not None:
            _ENGINE.close()
        _ENGINE = Engine(library)
    return _ENGINE


_ENGINE: Engine | None = None


def review_text(engine: Engine, text) -> tuple:
    """One record (JSON text, bytes or None) -> one output row; a bad record becomes an error row."""
    data = None
    try:
        if text is None:
            raise InvalidJsonError("no record (null)", path="$")
        data = records.loads(text)
        d = review(engine, data).to_dict()
        return (d["record_id"], _text(d["outcome"]), _text(d["supported"]), _text(d["review_action"]),
                orjson.dumps(d).decode(), None)
    except UrError as exc:  # RecordError for bad input; EngineError must not fail a whole job either
        rid = data.get("id") if isinstance(data, dict) else None
        rid = rid if isinstance(rid, str) else None
        line = {"record_id": rid, "outcome": "error",
                "errors": [e.as_dict() for e in getattr(exc, "errors", [exc])]}
        return (rid, "error", None, None, orjson.dumps(line).decode(), str(exc))


def _text(word: object) -> str | None:
    """A vocabulary member as the plain string it stands for: Spark's JVM side unpickles str, not Enums."""
    return None if word is None else str(word)
