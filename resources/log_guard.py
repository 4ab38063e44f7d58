"""Keeps secrets out of the HTTP libraries' DEBUG logs.

At DEBUG, botocore logs whole response bodies (the AzureAuth item holds the client secret; an SSM SecureString read
returns the webhook URL) and urllib3 logs every request line (`"POST /services/T000/B000/xyz HTTP/1.1" 200`: the
webhook URL's path is its secret). While a thread is inside `secret_in_flight()`, every record of those loggers
made by that thread is dropped; other threads and the rest of the time log as usual.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Loggers that print request lines, URLs, headers or bodies (a filter only sees records made on its own logger).
GUARDED_LOGGERS = (
    "botocore.parsers",
    "botocore.endpoint",
    "botocore.auth",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.util.retry",
)

_state = threading.local()


class _SecretInFlight(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_state, "depth", 0)


_FILTER = _SecretInFlight()
for _name in GUARDED_LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)


@contextmanager
def secret_in_flight() -> Iterator[None]:
    """Drop this thread's records of GUARDED_LOGGERS while the block sends or receives a secret (nestable)."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
