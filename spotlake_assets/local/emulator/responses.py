"""The answers every API of the emulator shares: JSON bodies, Azure's error shape, and each API's 429.

The APIs differ in how they say "too many requests" (error code and retry header); `rate_limited` keeps
those differences in one place for the throttles of the API modules and the injected 429s of `faults`.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response


def json_answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_answer({"error": {"code": code, "message": message}}, status, headers)


def hms(seconds: float) -> str:
    s = max(0, int(seconds + 0.999))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def rate_limited(endpoint: str, retry_after: float, message: str, header_text: str | None = None) -> Response:
    """A 429 in the style of each API: its error code and its retry header (`header_text` replaces its value)."""
    if endpoint == "prices":
        headers = {"x-ms-ratelimit-retailprices-retry-after": header_text or str(round(retry_after))}
    elif endpoint == "resource_graph":
        headers = {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": header_text or hms(retry_after)}
    else:
        headers = {"Retry-After": header_text or str(round(retry_after))}
    code = "RateLimiting" if endpoint == "resource_graph" else "TooManyRequests"
    return error(429, code, message, headers)
