"""Azure Spot Placement Score client: one call, one classified outcome.

No retry loop here: every call spends quota of a (subscription, URL location) pair, so the collector decides
what to retry and on which pair (spotlake_assets/sps/collector.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import requests

from spotlake_assets.core.sps.answers import (
    parse_invalid_region,
    parse_invalid_size,
    parse_supported_locations,
    parse_try_again_after,
)

from .error_text import error_code
from .http import HttpRequestError, RetryingClient, RetryPolicy, parse_retry_after

API_VERSION = "2025-06-05"
DISCOVERY_LOCATION = "ERROR_LOCATION"  # a URL location Azure rejects with the list of supported ones


class Outcome(Enum):
    OK = "ok"
    INVALID_REGION = "invalid_region"
    INVALID_SIZE = "invalid_size"
    THROTTLED = "throttled"  # 429: the subscription's read quota (docs/azure-sources.md)
    FORBIDDEN = "forbidden"  # 403: the subscription lacks the "Compute Recommendations Role"
    UNSUPPORTED_LOCATION = "unsupported_location"
    TRANSIENT = "transient"  # 5xx, 408, timeouts, malformed bodies: worth another pair
    FAILED = "failed"  # any other 4xx: retrying would not help


@dataclass(frozen=True)
class SpsAnswer:
    outcome: Outcome
    body: dict[str, Any] | None = None
    value: str | None = None  # the invalid region or size
    locations: tuple[str, ...] = ()
    status: int | None = None
    detail: str = ""  # Azure's error code or the kind of failure: never the body's text (it names subscriptions)
    retry_after: float | None = None  # seconds a 429 said to wait (Retry-After, or "try again after N seconds")


@dataclass
class SpsClient:
    management_url: str
    bearer_token: Callable[[], str]
    timeout_seconds: float = 50.0

    def __post_init__(self) -> None:
        # one try per call; the shared client gives each thread its own session and names endpoints in errors
        self._http = RetryingClient(policy=RetryPolicy(max_tries=1, timeout_seconds=self.timeout_seconds))

    def url(self, subscription: str, location: str) -> str:
        return (
            f"{self.management_url.rstrip('/')}/subscriptions/{subscription}/providers/Microsoft.Compute/"
            f"locations/{location}/placementScores/spot/generate?api-version={API_VERSION}"
        )

    def call(
        self, subscription: str, location: str, desired_count: int, regions: Sequence[str], sizes: Sequence[str]
    ) -> SpsAnswer:
        body = {
            "availabilityZones": True,
            "desiredCount": desired_count,
            "desiredLocations": list(regions),
            "desiredSizes": [{"sku": s} for s in sizes],
        }
        # the endpoint named in errors leaves out the subscription id
        endpoint = f"POST placementScores/spot/generate at location {location}"
        try:
            response, _ = self._http.request_json(
                "POST",
                self.url(subscription, location),
                endpoint=endpoint,
                headers=lambda: {"Authorization": f"Bearer {self.bearer_token()}"},
                accept=lambda r: True,
                json=body,
            )
        except HttpRequestError as exc:  # timeouts and connection errors
            return SpsAnswer(Outcome.TRANSIENT, status=exc.status, detail=exc.detail)
        return classify(response)

    def discover_locations(self, subscription: str) -> SpsAnswer:
        """A call at ERROR_LOCATION: its answer is UNSUPPORTED_LOCATION with the URL locations Azure supports, or
        whatever else the subscription got (a 403 or 429 says something about the subscription)."""
        return self.call(subscription, DISCOVERY_LOCATION, 1, ["eastus"], ["Standard_D2s_v3"])


def classify(response: requests.Response) -> SpsAnswer:
    """The outcome of one answer. The whole body is read here (invalid region or size, supported locations); only
    its error code leaves as `detail`."""
    status, text = response.status_code, response.text
    detail = error_code(text)
    if status == 200:
        try:
            body = response.json()
        except ValueError:
            return SpsAnswer(Outcome.TRANSIENT, status=status, detail="malformed JSON body")
        if not isinstance(body, dict) or not isinstance(body.get("placementScores"), list):
            return SpsAnswer(Outcome.TRANSIENT, status=status, detail="answer has no placementScores list")
        return SpsAnswer(Outcome.OK, body=body, status=status)
    if status == 429:
        wait = parse_retry_after(response.headers)
        wait = parse_try_again_after(text) if wait is None else wait
        return SpsAnswer(Outcome.THROTTLED, status=status, detail=detail, retry_after=wait)
    if status == 403:
        return SpsAnswer(Outcome.FORBIDDEN, status=status, detail=detail)
    if status == 400:
        if region := parse_invalid_region(text):
            return SpsAnswer(Outcome.INVALID_REGION, value=region, status=status, detail=detail)
        if size := parse_invalid_size(text):
            return SpsAnswer(Outcome.INVALID_SIZE, value=size, status=status, detail=detail)
        if locations := parse_supported_locations(text):
            return SpsAnswer(Outcome.UNSUPPORTED_LOCATION, locations=tuple(locations), status=status, detail=detail)
    if status in (408,) or status >= 500:
        return SpsAnswer(Outcome.TRANSIENT, status=status, detail=detail)
    return SpsAnswer(Outcome.FAILED, status=status, detail=detail)
