"""structlog set-up: one JSON line per event, with the request id, and no secrets ever."""
from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

_SENSITIVE_KEY = re.compile(r"secret|passw|private|token|signature|authorization|(^|_)key$|apiv3|^sign$|cookie", re.I)
REDACTED = "[redacted]"


def redact(_logger: Any, _name: str, event: dict) -> dict:
    """Drop the value of any field whose name says it holds a secret, at any depth."""
    return {k: _scrub(k, v) for k, v in event.items()}


def _scrub(key: str, value: Any) -> Any:
    if isinstance(key, str) and _SENSITIVE_KEY.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: _scrub(k, v) for k, v in value.items()}
    return value


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
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> Any:
    return structlog.get_logger("paymux").bind(**bound)
