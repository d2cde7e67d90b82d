"""structlog set-up. Log lines carry ids, portal keys and error types; a last-line-of-defence processor
drops any field whose name says it could hold PHI or a secret."""

from __future__ import annotations

import logging
import sys

import structlog

SENSITIVE_KEYS = frozenset({
    "password", "totp", "totp_secret", "secret", "member_id", "member", "patient", "name", "first_name",
    "last_name", "dob", "birth_date", "ssn", "storage_state", "cookie", "cookies", "token", "html",
})


def _redact(_logger, _method, event_dict):
    for k in list(event_dict):
        if k.lower() in SENSITIVE_KEYS:
            event_dict[k] = "[redacted]"
    return event_dict


def configure(level: str = "INFO", stream=None) -> None:
    logging.basicConfig(format="%(message)s", stream=stream or sys.stderr, level=level, force=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=False,
    )
