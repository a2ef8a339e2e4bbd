"""Structured JSON logs, one object a line. No record body and no patient field is ever logged.

Call sites pass only ``extra={"fields": {...}}`` with ids, routes, statuses and timings; the formatter
prints nothing else from the record, so patient data cannot slip in through a stray attribute.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import datetime, timezone

import orjson

LOGGER = "ur"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # The type and the stack, not the message: an exception's text may quote the record.
            out["error"] = record.exc_info[0].__name__
            out["stack"] = "".join(traceback.format_tb(record.exc_info[2]))[-4000:]
        try:  # orjson: a third of json's time, on two lines a review
            text = orjson.dumps(out, default=str).decode()
            if text.isascii():
                return text
        except TypeError:  # what orjson refuses (a key that is not a string, an integer past 64 bits)
            pass
        return json.dumps(out, default=str)  # ASCII, \u-escaped: a log stream may not take UTF-8


class DropQueryString(logging.Filter):
    """The development server logs each request line; keep the path, drop the query (record_id=… is an id)."""

    # Anywhere in the argument: werkzeug wraps 4xx and 5xx lines in terminal colour codes.
    LINE = re.compile(r"([A-Z]+ /[^ ?]*)\?[^ ]*( HTTP/[0-9.]+)")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.LINE.sub(r"\1\2", a) if isinstance(a, str) else a for a in record.args)
        return True


def setup(level: str = "INFO") -> logging.Logger:
    """Send the ``ur`` loggers to stderr as JSON (once per process)."""
    # A review logs two lines. No line prints the caller's file and line, thread or process name (JsonFormatter
    # writes only the fields given), and looking them up is a fifth of making a log record: the logging module's
    # documented switches turn those look-ups off.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, DropQueryString) for f in werkzeug.filters):
        werkzeug.addFilter(DropQueryString())
    logger = logging.getLogger(LOGGER)
    if not any(getattr(h, "_ur_json", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._ur_json = True
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
    return logger


def get(name: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER}.{name}")
