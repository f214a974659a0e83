"""A service process's log lines on stderr: JSON (one object a line) for machines, text for a terminal.

JSON lines (python-json-logger) carry `time`, `level`, `logger`, `message`, the `service`, and, for a
line written inside a span, its `trace_id` and `span_id` (the ids Zipkin and `flexledger trace` show)
and the `book` the span works for (`flexledger.book`); a logged exception comes as `exc_info`.
`FLEXLEDGER_LOG_FORMAT` chooses: `json`, `text`, or `auto` (text when stderr is a terminal, else
JSON: the local stack's log files, a container's output). Either way identity numbers are masked
(`3202**********1019`): the logs are for operators, who see identity numbers only masked
(docs/design/audit.md).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from contracts.identifiers import mask_identifiers
from services.runtime.telemetry import BOOK_ATTRIBUTE

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("auto", "json", "text")


class MaskingFormatter(logging.Formatter):
    """Formats as usual, then masks identity numbers."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_identifiers(super().format(record))


class MaskingJsonFormatter(JsonFormatter):
    """One JSON object per record, identity numbers masked in every field (the whole line is masked)."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_identifiers(super().format(record))


class SpanContextFilter(logging.Filter):
    """Adds the service name and, inside a span, its trace id, span id and book to every record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        span = trace.get_current_span()
        ctx = span.get_span_context()
        if ctx.is_valid:
            record.trace_id = format(ctx.trace_id, "032x")
            record.span_id = format(ctx.span_id, "016x")
            book = _attributes(span).get(BOOK_ATTRIBUTE)
            if book is not None:
                record.book = book
        return True


def _attributes(span: trace.Span) -> Any:
    # An SDK span exposes its attributes (read-only); a non-recording span has none.
    return getattr(span, "attributes", None) or {}


def json_formatter() -> MaskingJsonFormatter:
    return MaskingJsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",  # ISO 8601 in UTC, e.g. 2026-12-03T17:08:19.926000+00:00
        json_ensure_ascii=False,
    )


def configure_logging(service: str, log_format: str = "auto", level: int = logging.INFO) -> None:
    """Log records of every logger to stderr, formatted as `log_format` says (module docstring)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"FLEXLEDGER_LOG_FORMAT {log_format!r}: one of {', '.join(LOG_FORMATS)}")
    as_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter() if as_json else MaskingFormatter(TEXT_FORMAT))
    handler.addFilter(SpanContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka logs every connection attempt while a broker restarts; warnings are enough.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
