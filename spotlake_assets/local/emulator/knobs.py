"""The emulator's knobs: `EmulatorConfig`, every behaviour a test or benchmark can change while it runs.

A knob is a field of `EmulatorConfig` with its default; `validate` refuses unusable values by name. The
server applies new knobs in-process (`AzureEmulator.configure`) or over HTTP (`POST /_emulator/config`); every
API module reads them from the shared state on each request.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from .. import catalogue as cat
from .. import drift

PAGE_SIZE = 1000  # the most items of a Retail Prices page
ARG_MAX_TOP = 1000  # the most rows of a Resource Graph page
FAULT_KINDS = ("429", "500", "timeout", "malformed", "cut")
RECORD_FAULT_ENDPOINTS = ("price", "eviction", "sps")
HANG_ENDPOINTS = ("prices", "resource_graph", "sps")
SKU_NAME_PATHS = ("both", "sku.name", "properties.skuName")
EVICTION_RATE_STYLES = ("plain", "percent")


@dataclass
class EmulatorConfig:
    """Every knob of the emulator, with its default.

    overrides: {"price": {"region|Standard_Size": factor on every price row of that offer},
                "eviction": {"region|standard_size": "20+"},
                "score": {"region|Standard_Size[|zone[|desiredCount]]": "Low"}}
    with zone '1'/'2'/'3' or 'single', keys case-insensitive.
    invalid_regions / invalid_sizes: planted values SPS refuses with its 400.
    subscriptions / url_locations: counts; None means 3 / 4 at small scale and 50 / 50 at full scale.
    Fault rates are shares of the requests to prices, Resource Graph and SPS (their sum at most 1).
    Knobs of documented Azure behaviour (docs/azure-sources.md):
    price_page_size: items per price page (NextPageLink steps $skip by it).
    price_links_end_after: from this page on (1 = the first) NextPageLink is null although items remain.
    arg_rows_per_page: most rows of one Resource Graph page, whatever $top asks.
    arg_unstable_unsorted_paging: the pages of a query without `order by id` repeat some rows and skip others.
    arg_result_truncated: resultTruncated "true", at most half the rows, no $skipToken.
    arg_sku_name_path: "sku.name", "properties.skuName" or "both": where rows keep the size name (a query reading
      another path gets no row).
    eviction_rate_style: "plain" ('0-5') or "percent" ('0%-5%', '20+%').
    sps_subscriptions_without_role: the last N subscriptions answer every SPS call 403 AuthorizationFailed.
    sps_subscription_calls_per_hour: calls a subscription may make over all its locations in an hour (emulator
      clock), then 429 SubscriptionRequestsThrottled with Retry-After; 0 for no such limit.
    sps_extra_locations: non-public names added to the supported-locations list; calls there answer 400.
    Bad records (docs/contract.md "Bad input"): record_faults {"price" | "eviction" | "sps": {"every": N, and one of
      "set": {field: value} (e.g. {"retailPrice": "abc"}, {"location": ""}), "replace": value (the record becomes
      that value, e.g. "oops"), "drop": true}} changes every Nth record of each answer (N=1: all of them).
    rate_cut: share of answers whose connection is cut halfway through the body.
    hang: APIs ("prices", "resource_graph", "sps") whose every answer never ends: status and headers, then a byte
      every `hang_trickle_seconds`, forever (a read timeout never fires: only a bound on the whole run ends it).
    retry_after_header: the text of every retry-after header instead of retry_after_seconds (e.g. "nan", "-5").
    """

    seed: int = 7
    scale: str = "small"  # "small" for tests, "full" for benchmarks
    drift_rate: float = drift.DEFAULT_DRIFT_RATE  # share of series that change between consecutive epochs
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    boundary_repeat_rate: float = 0.05  # share of price pages that also repeat the previous page's last item
    price_page_size: int = PAGE_SIZE  # items a price page holds; Azure's documentation once said 100
    price_links_end_after: int = 0  # pages from this one on (1 = the first) come without NextPageLink; 0: never
    prices_requests_per_second: float = 50
    arg_quota_per_5s: int = 15
    sps_calls_per_hour: int = 10  # per (subscription, URL location), on the emulator clock
    # SPS, as Azure documents it (docs/azure-sources.md):
    sps_subscription_calls_per_hour: int = 0  # per subscription, all locations together (429 + Retry-After); 0: none
    sps_subscriptions_without_role: int = 0  # the last N subscriptions lack the role: 403 AuthorizationFailed
    sps_extra_locations: list[str] = field(default_factory=list)  # non-public names in the supported list
    invalid_regions: list[str] = field(default_factory=list)
    invalid_sizes: list[str] = field(default_factory=list)
    subscriptions: int | None = None
    url_locations: int | None = None
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0  # sleep timeout_seconds, then answer 504
    rate_malformed: float = 0.0  # 200 with a truncated JSON body
    rate_cut: float = 0.0  # the connection is cut halfway through the body
    latency_ms: float = 0.0
    hang: list[str] = field(default_factory=list)  # APIs whose answers never end (a hung run)
    hang_trickle_seconds: float = 2.0
    timeout_seconds: float = 5.0
    retry_after_seconds: int = 60  # the value put in retry-after headers
    retry_after_header: str | None = None  # the literal text of retry-after headers (a malformed server's)
    record_faults: dict[str, dict[str, Any]] = field(default_factory=dict)  # bad records in answers
    # Resource Graph, as Azure documents it (docs/azure-sources.md):
    arg_rows_per_page: int = ARG_MAX_TOP  # the most rows one page holds, whatever $top asks
    arg_unstable_unsorted_paging: bool = False  # pages of a query without `order by id` repeat and miss rows
    arg_result_truncated: bool = False  # resultTruncated "true", no $skipToken, totalRecords > rows served
    arg_sku_name_path: str = "both"  # where a row keeps its size name: "sku.name", "properties.skuName" or both
    eviction_rate_style: str = "plain"  # "plain" ('0-5', '20+') or "percent" ('0%-5%', '20+%')

    @property
    def subscription_count(self) -> int:
        return self.subscriptions if self.subscriptions is not None else (3 if self.scale == "small" else 50)

    @property
    def url_location_count(self) -> int:
        return self.url_locations if self.url_locations is not None else (4 if self.scale == "small" else 50)

    def validate(self) -> None:
        """Raise ValueError naming the first knob with an unusable value."""
        if self.scale not in cat.SCALES:
            raise ValueError(f"knob 'scale' must be one of {cat.SCALES}, got {self.scale!r}")
        shares = ("drift_rate", "boundary_repeat_rate", *(f"rate_{k}" for k in FAULT_KINDS))
        for name in shares:
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"knob {name!r} must be between 0 and 1, got {getattr(self, name)!r}")
        if sum(getattr(self, f"rate_{k}") for k in FAULT_KINDS) > 1:
            raise ValueError(
                "knobs 'rate_429' + 'rate_500' + 'rate_timeout' + 'rate_malformed' + 'rate_cut' must not exceed 1"
            )
        if self.retry_after_header is not None and not isinstance(self.retry_after_header, str):
            raise ValueError(f"knob 'retry_after_header' must be text or null, got {self.retry_after_header!r}")
        check_record_faults(self.record_faults)
        if not isinstance(self.hang, list) or not set(self.hang) <= set(HANG_ENDPOINTS):
            raise ValueError(f"knob 'hang' must be a list of {HANG_ENDPOINTS}, got {self.hang!r}")
        if not 0 < self.hang_trickle_seconds <= 60:
            raise ValueError(f"knob 'hang_trickle_seconds' must be in (0, 60], got {self.hang_trickle_seconds!r}")
        positive = ("prices_requests_per_second", "arg_quota_per_5s", "sps_calls_per_hour")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"knob {name!r} must be positive, got {getattr(self, name)!r}")
        for name in ("latency_ms", "timeout_seconds", "retry_after_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"knob {name!r} must not be negative, got {getattr(self, name)!r}")
        if not 1 <= self.subscription_count <= 1000:
            raise ValueError(f"knob 'subscriptions' must be between 1 and 1000, got {self.subscriptions!r}")
        public = len(cat.public_region_codes())
        if not 1 <= self.url_location_count <= public:
            raise ValueError(f"knob 'url_locations' must be between 1 and {public}, got {self.url_locations!r}")
        for name in ("invalid_regions", "invalid_sizes"):
            if not all(isinstance(v, str) for v in getattr(self, name)):
                raise ValueError(f"knob {name!r} must be a list of strings")
        if not isinstance(self.price_links_end_after, int) or self.price_links_end_after < 0:
            raise ValueError(
                f"knob 'price_links_end_after' must be 0 (never) or a page number, got {self.price_links_end_after!r}"
            )
        if not isinstance(self.price_page_size, int) or not 1 <= self.price_page_size <= PAGE_SIZE:
            raise ValueError(f"knob 'price_page_size' must be between 1 and {PAGE_SIZE}, got {self.price_page_size!r}")
        if not isinstance(self.sps_subscription_calls_per_hour, int) or self.sps_subscription_calls_per_hour < 0:
            raise ValueError(
                "knob 'sps_subscription_calls_per_hour' must be 0 (no limit) or a positive whole number, "
                f"got {self.sps_subscription_calls_per_hour!r}"
            )
        roleless = self.sps_subscriptions_without_role
        if not isinstance(roleless, int) or not 0 <= roleless <= self.subscription_count:
            raise ValueError(
                f"knob 'sps_subscriptions_without_role' must be between 0 and {self.subscription_count} "
                f"(the subscriptions), got {roleless!r}"
            )
        extra = self.sps_extra_locations
        if not isinstance(extra, list) or not all(isinstance(v, str) and re.fullmatch(r"[a-z0-9]+", v) for v in extra):
            raise ValueError(f"knob 'sps_extra_locations' must be a list of lower-case location names, got {extra!r}")
        if public_named := sorted(set(extra) & set(cat.public_region_codes())):
            raise ValueError(f"knob 'sps_extra_locations' must name no public region, got {public_named}")
        for name in ("arg_unstable_unsorted_paging", "arg_result_truncated"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"knob {name!r} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.arg_rows_per_page, int) or not 1 <= self.arg_rows_per_page <= ARG_MAX_TOP:
            raise ValueError(
                f"knob 'arg_rows_per_page' must be between 1 and {ARG_MAX_TOP}, got {self.arg_rows_per_page!r}"
            )
        choices = {"arg_sku_name_path": SKU_NAME_PATHS, "eviction_rate_style": EVICTION_RATE_STYLES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"knob {name!r} must be one of {allowed}, got {getattr(self, name)!r}")
        drift.DataKey.make(self.seed, self.scale, 0, self.drift_rate, self.overrides)  # validates 'overrides'


KNOBS = frozenset(f.name for f in dataclasses.fields(EmulatorConfig))


def check_record_faults(faults: Any) -> None:
    """Raise ValueError when the `record_faults` knob is not {endpoint: {"every": N, one action}}."""
    if not isinstance(faults, dict):
        raise ValueError(f"knob 'record_faults' must be an object, got {faults!r}")
    for endpoint, fault in faults.items():
        if endpoint not in RECORD_FAULT_ENDPOINTS:
            raise ValueError(f"knob 'record_faults' has {endpoint!r}; known: {RECORD_FAULT_ENDPOINTS}")
        if not isinstance(fault, dict) or not isinstance(fault.get("every"), int) or fault["every"] < 1:
            raise ValueError(f"knob 'record_faults.{endpoint}' needs 'every', a whole number of at least 1")
        actions = [a for a in ("set", "replace", "drop") if a in fault]
        if len(actions) != 1 or ("set" in fault and not isinstance(fault["set"], dict)):
            raise ValueError(
                f"knob 'record_faults.{endpoint}' needs exactly one of 'set' (an object), 'replace', 'drop'"
            )
