"""One bounded, jittered retry loop for every outgoing HTTP call (Azure APIs, the Slack webhook).

urllib3's Retry only knows the standard `Retry-After` header; Azure throttles with its own headers
(`x-ms-ratelimit-retailprices-retry-after` in seconds, `x-ms-user-quota-resets-after` as hh:mm:ss),
and a 200 with an unparsable body must be retried too. So the loop is ours, kept small.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from .error_text import error_code
from .retry import Backoff

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# No answer, or an answer cut off mid-body (the connection dropped while the body streamed): worth another try.
TRANSIENT_ERRORS = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
RETRY_AFTER_HEADERS = ("retry-after", "x-ms-ratelimit-retailprices-retry-after", "x-ms-user-quota-resets-after")


class HttpRequestError(RuntimeError):
    """An HTTP call that failed for good: names the endpoint, the last status and Azure's error code (or the kind
    of body), never a credential, an id or the body's text (resources/error_text.py)."""

    def __init__(self, endpoint: str, status: int | None, detail: str, tries: int):
        self.endpoint, self.status, self.detail, self.tries = endpoint, status, detail, tries
        shown = "no response" if status is None else f"HTTP {status}"
        super().__init__(f"{endpoint}: {shown} after {tries} tries: {detail}")


@dataclass(frozen=True)
class RetryPolicy:
    max_tries: int = 6
    timeout_seconds: float = 50.0  # the legacy SPS collector saw answers take up to 50 s
    backoff: Backoff = field(default_factory=Backoff)


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from any of Azure's throttling headers; None when none is usable (absent, not a number,
    not finite, negative: a malformed header must not stop the run or make it wait forever)."""
    for name in RETRY_AFTER_HEADERS:
        value = headers.get(name)
        if not value:
            continue
        value = value.strip()
        try:
            if ":" in value:  # hh:mm:ss
                h, m, s = (float(part) for part in value.split(":"))
                seconds = h * 3600 + m * 60 + s
            else:
                seconds = float(value)
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


@dataclass
class RetryingClient:
    """A requests session with bounded retries; `sleep` is injectable so tests never wait."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    retries: int = 0  # retries made, for run metadata

    def __post_init__(self) -> None:
        self._rng = random.Random()
        self._local = threading.local()
        self._lock = threading.Lock()

    @property
    def session(self) -> requests.Session:
        # requests.Session is not documented as thread-safe: one per thread.
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def request_json(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        headers: Callable[[], dict[str, str]] | None = None,
        accept: Callable[[requests.Response], bool] | None = None,
        **kwargs: Any,
    ) -> tuple[requests.Response, Any]:
        """Send until a 2xx with a JSON body (or a response `accept` takes), retrying transient failures.

        `endpoint` is the name shown in errors (no query string, so no secret can leak through it);
        `headers` is called before every try so a refreshed token is used.
        """
        last_status: int | None = None
        detail = ""
        tries = self.policy.max_tries
        for attempt in range(tries):
            retry_after = None
            try:
                response = self.session.request(
                    method, url, headers=headers() if headers else None, timeout=self.policy.timeout_seconds, **kwargs
                )
            except TRANSIENT_ERRORS as exc:
                last_status, detail = None, type(exc).__name__
            else:
                last_status = response.status_code
                if accept is not None and accept(response):
                    return response, None
                if 200 <= response.status_code < 300:
                    try:
                        return response, response.json()
                    except (ValueError, json.JSONDecodeError):
                        detail = "malformed JSON body"
                elif response.status_code in RETRYABLE_STATUS:
                    detail = error_code(response.text)
                    retry_after = parse_retry_after(response.headers)
                else:
                    raise HttpRequestError(endpoint, response.status_code, error_code(response.text), attempt + 1)
            if attempt + 1 == tries:
                break
            with self._lock:
                self.retries += 1
                wait = self.policy.backoff.delay(attempt, retry_after, self._rng)
            log.info("%s: %s, retry %d/%d in %.2fs", endpoint, last_status or detail, attempt + 1, tries - 1, wait)
            self.sleep(wait)
        raise HttpRequestError(endpoint, last_status, detail, tries)


class Pacer:
    """Spaces calls from any number of threads at least 1/rate seconds apart, so a burst of parallel pages
    stays under a server's throttling threshold instead of provoking long retry-after waits."""

    def __init__(self, rate_per_second: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self._interval = 1.0 / rate_per_second
        self._next = 0.0
        self._lock = threading.Lock()
        self._sleep = sleep

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            self._sleep(slot - now)
