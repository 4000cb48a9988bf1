"""structlog set-up: one JSON line per event, with the request id, and no secrets ever."""
from __future__ import annotations

import functools
import logging
import sys
from typing import Any

import structlog
from structlog.typing import FilteringBoundLogger

from gateway import redact as redaction

REDACTED = redaction.REDACTED


def redact(_logger: Any, _name: str, event: dict) -> dict:
    """Replace the value of any field whose name says it holds a secret, an account number or a
    person's identity, at any depth, by the rules the exchanges and callbacks are kept with."""
    # Most lines are flat, with names that say nothing sensitive: answered from a cache, not walked again.
    if all(_plain(value) and _harmless_name(name) for name, value in event.items()):
        return event
    return redaction.redact(event)


_PROBE = "probe-value"


def _plain(value: Any) -> bool:
    """A value redaction looks at by its field's name only (no structure, no JSON inside a string)."""
    return value is None or type(value) in (int, float, bool) or (type(value) is str and value[:1] not in ("{", "["))


@functools.lru_cache(maxsize=1024)
def _harmless_name(name: str) -> bool:
    """Redaction leaves a plain value under this field name as it is (asked of redaction itself)."""
    return redaction.redact({name: _PROBE}) == {name: _PROBE}


class _StandardError:
    """sys.stderr as it is when a line is written, not as it was when logging was configured (a
    command run in-process, or a test capturing the stream, may swap it and close the old one)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDERR = _StandardError()


def configure_logging(json_lines: bool = True, level: int = logging.INFO, stream: Any = None) -> None:
    renderer = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(stream or _STDERR),   # a write and a flush a line
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> FilteringBoundLogger:
    return structlog.get_logger("paymux").bind(**bound)
