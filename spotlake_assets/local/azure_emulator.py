"""A local Azure emulator: Retail Prices API, Resource Graph, Spot Placement Scores and an Entra ID login.

It answers with the exact shapes and errors of docs/contract.md "Sources", over real HTTP (and HTTPS
with a trustme CA for the login endpoint, so the real azure-identity/MSAL client works against it), and, on knobs,
with the behaviours Azure documents that a well-behaved run never meets (docs/azure-sources.md): price pages of
another size, unstable Resource Graph pages for an unsorted query, truncated answers, '%'-suffixed eviction
buckets, a size name at only one field path, subscriptions without the SPS role, subscription-wide SPS throttling
and non-public names among the supported SPS locations. Its data
come from `catalogue` (a pure function of seed, scale and the 10-minute epoch of the emulator clock); its
behaviour is tuned by the knobs of `EmulatorConfig`, changeable while running, in-process (`configure`) or
over HTTP (`/_emulator/...`).

Time: the SPS hourly limit and the data epoch read the emulator clock (settable, so tests move time instead of
waiting); burst limits (prices per second, Resource Graph per 5 s) and token lifetimes use real time.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import random
import re
import secrets
import ssl
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

import trustme
from flask import Flask, Response, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import catalogue as cat

PAGE_SIZE = 1000
ARG_MAX_TOP = 1000
SPS_MAX_LOCATIONS = 8
SPS_MAX_SIZES = 5
SPS_WINDOW = timedelta(hours=1)
# The collector's own rule is at most 10 calls per pair in any 62 minutes; stats() reports the densest window.
QUOTA_REPORT_WINDOW = timedelta(minutes=62)
PRICE_URLS_KEPT = 5000  # stats() keeps the raw URLs of this many last price requests
SPS_ANSWERS_KEPT = 20000  # and this many last SPS answers (time, subscription, location, status)
SPS_ACTION = "Microsoft.Compute/locations/placementScores/generate/action"
TOKEN_LIFETIME_SECONDS = 3600
SPS_THROTTLE_TEXT = "You have reached the maximum number of requests allowed. Please try again after 3600 seconds."
FAULT_KINDS = ("429", "500", "timeout", "malformed", "cut")
RECORD_FAULT_ENDPOINTS = ("price", "eviction", "sps")
HANG_ENDPOINTS = ("prices", "resource_graph", "sps")
SKU_NAME_PATHS = ("both", "sku.name", "properties.skuName")
EVICTION_RATE_STYLES = ("plain", "percent")
_SORTED_BY_ID = re.compile(r"\|\s*(order|sort)\s+by\s+id\b", re.IGNORECASE)
_PROJECTS_ID = re.compile(r"\|\s*project\s+(id\s*,|[^|]*,\s*id\s*(,|\||$))", re.IGNORECASE)
_READS_SKU_NAME = re.compile(r"\bsku\.name\b", re.IGNORECASE)
_READS_PROPERTIES_SKU_NAME = re.compile(r"\b(properties|props)\.skuName\b", re.IGNORECASE)


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
    drift_rate: float = cat.DEFAULT_DRIFT_RATE  # share of series that change between consecutive epochs
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
        _check_record_faults(self.record_faults)
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
        cat.DataKey.make(self.seed, self.scale, 0, self.drift_rate, self.overrides)  # validates 'overrides'


KNOBS = frozenset(f.name for f in dataclasses.fields(EmulatorConfig))


def _check_record_faults(faults: Any) -> None:
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


def _with_record_faults(records: list[Any], fault: dict[str, Any] | None) -> list[Any]:
    """The records of an answer with every Nth one changed as the `record_faults` knob says."""
    if not fault:
        return records
    out = []
    for i, record in enumerate(records):
        if i % fault["every"]:
            out.append(record)
        elif "set" in fault:
            out.append({**record, **fault["set"]})
        elif "replace" in fault:
            out.append(fault["replace"])
    return out


class _Clock:
    """The emulator clock: a base clock (wall clock by default), optionally frozen, plus an offset."""

    def __init__(self, base: Callable[[], datetime]) -> None:
        self._base = base
        self._frozen: datetime | None = None
        self._offset = timedelta()

    def now(self) -> datetime:
        return (self._frozen or self._base()) + self._offset

    def set(self, t: datetime | None) -> None:
        if t is not None and t.tzinfo is None:
            raise ValueError(f"emulator time must be timezone-aware, got naive {t.isoformat()}")
        self._frozen, self._offset = (t.astimezone(UTC) if t else None), timedelta()

    def advance(self, seconds: float) -> None:
        self._offset += timedelta(seconds=seconds)


class _Window:
    """Request times (monotonic seconds) inside a sliding window of `width` seconds."""

    def __init__(self, width: float) -> None:
        self.width = width
        self.times: deque[float] = deque()

    def prune(self, now: float) -> int:
        while self.times and self.times[0] <= now - self.width:
            self.times.popleft()
        return len(self.times)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per request would drown test output
        pass


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"error": {"code": code, "message": message}}, status, headers)


def _hms(seconds: float) -> str:
    s = max(0, int(seconds + 0.999))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


_CLAUSE = re.compile(r"^\s*(\w+)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
_EXPECTED_FILTER = {"servicename": "Virtual Machines", "pricetype": "Consumption"}


def _understood_filter(text: str | None) -> bool:
    """True for `serviceName eq 'Virtual Machines' and priceType eq 'Consumption'` (any clause order)."""
    if not text:
        return False
    clauses = [_CLAUSE.match(c) for c in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE)]
    if not all(clauses):
        return False
    found = {m.group(1).lower(): m.group(2) for m in clauses if m}
    return len(found) == len(clauses) and found == _EXPECTED_FILTER


def _encode_skip_token(offset: int, epoch: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "e": epoch}).encode()).decode()


def _decode_skip_token(token: str) -> tuple[int, int]:
    data = json.loads(base64.urlsafe_b64decode(token.encode()))
    return int(data["o"]), int(data["e"])


class AzureEmulator:
    """Two Flask apps (prices/management/admin over HTTP, login over HTTPS) on werkzeug daemon threads."""

    def __init__(self, config: EmulatorConfig | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self._config = config or EmulatorConfig()
        self._config.validate()
        self._clock = _Clock(clock or (lambda: datetime.now(UTC)))
        self._lock = threading.RLock()
        self._rng = random.Random(self._config.seed)
        self._tokens: dict[str, float] = {}  # access token -> expiry (time.time())
        self._price_window = _Window(1.0)
        self._arg_window = _Window(5.0)
        self._servers: list[BaseWSGIServer] = []
        self._threads: list[threading.Thread] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._base_url = self._authority = self._ca_file = ""
        self.reset_stats()

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0, login_port: int = 0) -> AzureEmulator:
        """Serve on `port` (prices, management, admin) and `login_port` (HTTPS login); 0 picks a free port."""
        if self._servers:
            raise RuntimeError(f"the Azure emulator already runs at {self._base_url}")
        ca = trustme.CA(organization_name="SpotLake local Azure emulator")
        self._tmp = tempfile.TemporaryDirectory(prefix="azure-emulator-")
        self._ca_file = f"{self._tmp.name}/ca.pem"
        ca.cert_pem.write_to_path(self._ca_file)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(host, "127.0.0.1", "localhost").configure_cert(tls)
        try:
            api = self._serve(make_server(host, port, self._api_app(), threaded=True, request_handler=_QuietHandler))
            login = self._serve(
                make_server(
                    host,
                    login_port,
                    self._login_app(),
                    threaded=True,
                    request_handler=_QuietHandler,
                    ssl_context=tls,
                )
            )
        except BaseException:
            self.stop()
            raise
        self._base_url = f"http://{host}:{api.server_port}"
        self._authority = f"{host}:{login.server_port}"
        return self

    def _serve(self, server: BaseWSGIServer) -> BaseWSGIServer:
        thread = threading.Thread(target=server.serve_forever, name=f"azure-emulator-{server.server_port}", daemon=True)
        thread.start()
        self._servers.append(server)
        self._threads.append(thread)
        return server

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> AzureEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def authority(self) -> str:
        return self._authority

    @property
    def ca_file(self) -> str:
        return self._ca_file

    @property
    def credentials(self) -> dict[str, Any]:
        """The service principal and subscriptions the emulator accepts (deterministic from the seed)."""
        cfg = self._config
        return {
            **cat.service_principal(cfg.seed),
            "subscriptions": cat.subscription_ids(cfg.seed, cfg.subscription_count),
        }

    # ---- knobs, clock, stats ---------------------------------------------------------------------

    @property
    def config(self) -> EmulatorConfig:
        return self._config

    def configure(self, **knobs: Any) -> None:
        unknown = sorted(set(knobs) - KNOBS)
        if unknown:
            raise ValueError(f"unknown emulator knob(s) {unknown}; known knobs: {sorted(KNOBS)}")
        new = dataclasses.replace(self._config, **knobs)
        new.validate()
        with self._lock:
            if new.seed != self._config.seed:
                self._rng = random.Random(new.seed)
            self._config = new

    def now(self) -> datetime:
        return self._clock.now()

    def set_time(self, t: datetime | None) -> None:
        """Freeze the emulator clock at `t` (aware); None returns to the base clock."""
        with self._lock:
            self._clock.set(t)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._clock.advance(seconds)

    def reset_stats(self) -> None:
        """Forget counters and quota state: SPS call history, burst windows of prices and Resource Graph."""
        with self._lock:
            self._price_window.times.clear()
            self._arg_window.times.clear()
            self._requests: Counter[str] = Counter()
            self._graph_queries: Counter[str] = Counter()  # the exact query text of each Resource Graph request
            self._price_urls: deque[str] = deque(maxlen=PRICE_URLS_KEPT)  # raw path and query of price requests
            self._faults: Counter[str] = Counter({k: 0 for k in FAULT_KINDS})
            self._throttled: Counter[str] = Counter({"prices": 0, "resource_graph": 0, "sps": 0, "sps_subscription": 0})
            self._sps_calls: dict[tuple[str, str], list[datetime]] = {}
            self._sps_answers: deque[dict[str, Any]] = deque(maxlen=SPS_ANSWERS_KEPT)

    def stats(self) -> dict[str, Any]:
        """Requests per endpoint, the query text of Resource Graph requests (with counts), the raw path and query
        of the last price requests (as sent, before any decoding), injected faults per kind, throttled answers per
        endpoint (`sps_subscription`: subscription-wide), accepted SPS call times per 'subscription/location' pair
        (ISO, emulator clock), the last SPS answers (time, subscription, location, status), most calls of a pair in
        62 min."""
        with self._lock:
            calls = {pair: sorted(times) for pair, times in self._sps_calls.items()}
            return {
                "requests": dict(self._requests),
                "resource_graph_queries": dict(self._graph_queries),
                "price_urls": list(self._price_urls),
                "faults": dict(self._faults),
                "throttled": dict(self._throttled),
                "sps_calls": {f"{s}/{loc}": [t.isoformat() for t in ts] for (s, loc), ts in calls.items()},
                "sps_answers": list(self._sps_answers),
                "max_calls_in_any_62_minutes": max(
                    (_densest(ts, QUOTA_REPORT_WINDOW) for ts in calls.values()), default=0
                ),
            }

    def _data_key(self, epoch: int | None = None) -> cat.DataKey:
        cfg = self._config
        epoch = cat.epoch_of(self.now()) if epoch is None else epoch
        return cat.DataKey.make(cfg.seed, cfg.scale, epoch, cfg.drift_rate, cfg.overrides)

    # ---- faults and auth -------------------------------------------------------------------------

    def _enter(self, endpoint: str) -> Response | None:
        """Count the request, add latency and maybe inject a fault (which then changes no other state)."""
        cfg = self._config
        with self._lock:
            self._requests[endpoint] += 1
            draw = self._rng.random()
        if cfg.latency_ms:
            time.sleep(cfg.latency_ms / 1000)
        kind, acc = ("hang" if endpoint in cfg.hang else None), 0.0
        for k in FAULT_KINDS if kind is None else ():
            acc += getattr(cfg, f"rate_{k}")
            if draw < acc:
                kind = k
                break
        if kind is None:
            return None
        with self._lock:
            self._faults[kind] += 1
        if kind == "hang":
            return _hung_response(cfg.hang_trickle_seconds)
        if kind == "429":
            return _rate_limited(
                endpoint,
                cfg.retry_after_seconds,
                "The request is throttled (injected fault)",
                header_text=cfg.retry_after_header,
            )
        if kind == "500":
            return _error(500, "InternalServerError", "Encountered internal server error (injected fault)")
        if kind == "timeout":
            time.sleep(cfg.timeout_seconds)
            return _error(504, "GatewayTimeout", "The gateway did not receive a response in time (injected fault)")
        if kind == "cut":
            return _cut_response()
        body = json.dumps({"error": None, "data": [{"truncated": True}] * 3})
        return Response(body[: len(body) // 2], status=200, mimetype="application/json")

    def _authorized(self) -> Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return _error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        with self._lock:
            expiry = self._tokens.get(header.removeprefix("Bearer ").strip())
        if expiry is None:
            return _error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        if expiry <= time.time():
            return _error(401, "ExpiredAuthenticationToken", "The access token has expired.")
        return None

    # ---- the management / prices app -------------------------------------------------------------

    def _api_app(self) -> Flask:
        app = Flask("azure_emulator_api")
        app.add_url_rule("/api/retail/prices", view_func=self._prices, methods=["GET"])
        app.add_url_rule(
            "/providers/Microsoft.ResourceGraph/resources", view_func=self._resource_graph, methods=["POST"]
        )
        app.add_url_rule(
            "/subscriptions/<subscription>/providers/Microsoft.Compute/locations/<location>"
            "/placementScores/spot/generate",
            view_func=self._placement_scores,
            methods=["POST"],
        )
        app.add_url_rule("/_emulator/config", view_func=self._admin_config, methods=["GET", "POST"])
        app.add_url_rule("/_emulator/clock", view_func=self._admin_clock, methods=["GET", "POST"])
        app.add_url_rule("/_emulator/stats", view_func=lambda: _json(self.stats()), methods=["GET"])
        app.add_url_rule("/_emulator/reset-stats", view_func=self._admin_reset_stats, methods=["POST"])
        return app

    def _prices(self) -> Response:
        with self._lock:
            self._price_urls.append(request.environ.get("RAW_URI") or request.full_path)
        if fault := self._enter("prices"):
            return fault
        cfg = self._config
        with self._lock:
            now = time.monotonic()
            if self._price_window.prune(now) >= cfg.prices_requests_per_second:
                self._throttled["prices"] += 1
                return _rate_limited("prices", cfg.retry_after_seconds, "Too many requests, retry later")
            self._price_window.times.append(now)
        currency = request.args.get("currencyCode", "'USD'")
        if currency.strip("'\"").upper() != "USD":
            return _error(400, "BadRequest", f"currencyCode {currency!r} is not served by the emulator (only 'USD')")
        filter_text = request.args.get("$filter")
        if not _understood_filter(filter_text):
            return _error(
                400,
                "BadRequest",
                f"Invalid OData filter {filter_text!r}: the emulator understands only "
                "\"serviceName eq 'Virtual Machines' and priceType eq 'Consumption'\"",
            )
        try:
            skip = int(request.args.get("$skip", "0"))
            if skip < 0:
                raise ValueError
        except ValueError:
            return _error(400, "BadRequest", f"$skip {request.args.get('$skip')!r} is not a non-negative integer")
        key, size = self._data_key(), cfg.price_page_size
        total = cat.price_count(key.seed, key.scale)
        items = cat.price_page(key, skip, skip + size)
        if 0 < skip <= total and cat.unit(key.seed, "boundary", key.epoch, skip) < cfg.boundary_repeat_rate:
            # Azure's $skip paging sometimes repeats a boundary row on the next page.
            items = cat.price_page(key, skip - 1, skip) + items
        next_link = None
        links_end = cfg.price_links_end_after and skip // size + 1 >= cfg.price_links_end_after
        if skip + size < total and not links_end:  # (Azure's links went missing like this on 2023-03-10)
            query = {"currencyCode": currency, "$filter": filter_text, "$skip": skip + size}
            next_link = f"{request.host_url}api/retail/prices?{urlencode(query, quote_via=quote, safe='$')}"
        items = _with_record_faults(items, cfg.record_faults.get("price"))
        return _json(
            {
                "BillingCurrency": "USD",
                "CustomerEntityId": "Default",
                "CustomerEntityType": "Retail",
                "Items": items,
                "NextPageLink": next_link,
                "Count": len(items),
            }
        )

    def _resource_graph(self) -> Response:
        if fault := self._enter("resource_graph"):
            return fault
        if denied := self._authorized():
            return denied
        if not request.args.get("api-version"):
            return _error(400, "MissingApiVersionParameter", "The api-version query parameter is required.")
        body = request.get_json(silent=True)
        query = body.get("query") if isinstance(body, dict) else None
        if isinstance(query, str):
            with self._lock:
                self._graph_queries[query] += 1
        if not isinstance(query, str) or "skuspotevictionrate" not in query.lower():
            return _error(400, "BadRequest", "The emulator answers only the skuspotevictionrate spotresources query.")
        options = body.get("options") or {}
        try:
            top = int(options.get("$top", 100))
            offset, epoch = (
                _decode_skip_token(options["$skipToken"])
                if options.get("$skipToken")
                else (int(options.get("$skip", 0)), None)
            )
        except (ValueError, TypeError, KeyError) as exc:
            return _error(400, "BadRequest", f"Invalid options $top/$skip/$skipToken: {exc}")
        if not 1 <= top <= ARG_MAX_TOP:
            return _error(400, "BadRequest", f"options.$top must be between 1 and {ARG_MAX_TOP}, got {top}")
        if options.get("resultFormat", "objectArray") != "objectArray":
            return _error(400, "BadRequest", "The emulator serves only resultFormat 'objectArray'.")
        with self._lock:
            now, quota = time.monotonic(), self._config.arg_quota_per_5s
            used = self._arg_window.prune(now)
            resets_in = self._arg_window.times[0] + self._arg_window.width - now if used else 5.0
            if used >= quota:
                self._throttled["resource_graph"] += 1
                return _rate_limited("resource_graph", resets_in, f"Quota of {quota} queries per 5 s used")
            self._arg_window.times.append(now)
        headers = {
            "x-ms-user-quota-remaining": str(quota - used - 1),
            "x-ms-user-quota-resets-after": _hms(resets_in),
        }
        cfg = self._config
        key = self._data_key(epoch)  # a skip token keeps the epoch of the first page
        rows = _eviction_answer(key, query, cfg.arg_sku_name_path, cfg.eviction_rate_style)
        take = min(top, cfg.arg_rows_per_page)
        start = offset
        if cfg.arg_unstable_unsorted_paging and not _SORTED_BY_ID.search(query) and (offset // take) % 2 == 1:
            # Azure keeps pages stable only when the query sorts by a unique column (docs/azure-sources.md):
            # here every second page starts one row early, so it repeats the last row of the page before it and
            # the row just before the next page is never served. Same number of rows, some twice, some never.
            start = offset - 1
        if cfg.arg_result_truncated:  # a truncated answer holds at most half the table
            take = min(take, max(1, len(rows) // 2))
        page = _with_record_faults(
            list(rows[start : start + min(take, max(len(rows) - offset, 0))]), cfg.record_faults.get("eviction")
        )
        answer: dict[str, Any] = {
            "totalRecords": len(rows),
            "count": len(page),
            "data": page,
            "facets": [],
            "resultTruncated": "true" if cfg.arg_result_truncated and len(page) < len(rows) else "false",
        }
        # With resultTruncated "true" Azure sets no $skipToken: the rest of the table cannot be asked for.
        if answer["resultTruncated"] == "false" and offset + take < len(rows):
            answer["$skipToken"] = _encode_skip_token(offset + take, key.epoch)
        return _json(answer, headers=headers)

    def _placement_scores(self, subscription: str, location: str) -> Response:
        answer = self._placement_scores_answer(subscription, location)
        with self._lock:
            self._sps_answers.append(
                {
                    "time": self.now().isoformat(),
                    "subscription": subscription.lower(),
                    "location": location.lower(),
                    "status": answer.status_code,
                }
            )
        return answer

    def _placement_scores_answer(self, subscription: str, location: str) -> Response:
        if fault := self._enter("sps"):
            return fault
        if denied := self._authorized():
            return denied
        cfg = self._config
        supported = cat.url_locations(cfg.url_location_count) + list(cfg.sps_extra_locations)
        if location.lower() not in supported:
            return _error(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location '{location}' and API version "
                f"'{request.args.get('api-version')}' for type 'locations/placementScores'. "
                f"The supported locations are '{', '.join(supported)}'.",
            )
        subscriptions = cat.subscription_ids(cfg.seed, cfg.subscription_count)
        if subscription.lower() not in subscriptions:
            return _error(404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")
        if subscription.lower() in subscriptions[len(subscriptions) - cfg.sps_subscriptions_without_role :]:
            # Azure Resource Manager's answer to a principal without the "Compute Recommendations Role"
            client = cat.service_principal(cfg.seed)["client_id"]
            return _error(
                403,
                "AuthorizationFailed",
                f"The client '{client}' with object id '{client}' does not have authorization to perform action "
                f"'{SPS_ACTION}' over scope '/subscriptions/{subscription}' or the scope is invalid. "
                "If access was recently granted, please refresh your credentials.",
            )
        if location.lower() in cfg.sps_extra_locations:
            # listed as supported, but not a region a public subscription can use
            return _error(
                400,
                "LocationNotAvailableForResourceType",
                f"The provided location '{location}' is not available for resource type "
                "'Microsoft.Compute/locations/placementScores'.",
            )
        pair = (subscription.lower(), location.lower())
        with self._lock:
            now = self.now()
            if limit := cfg.sps_subscription_calls_per_hour:
                recent = [
                    t
                    for (sub, _), times in self._sps_calls.items()
                    if sub == pair[0]
                    for t in times
                    if t > now - SPS_WINDOW
                ]
                if len(recent) >= limit:
                    self._throttled["sps_subscription"] += 1
                    return _subscription_throttled(subscription, (min(recent) + SPS_WINDOW - now).total_seconds())
            calls = self._sps_calls.setdefault(pair, [])
            if sum(t > now - SPS_WINDOW for t in calls) >= cfg.sps_calls_per_hour:
                self._throttled["sps"] += 1
                return Response(SPS_THROTTLE_TEXT, status=429, mimetype="text/plain")
            calls.append(now)
        body = request.get_json(silent=True)
        problem = _sps_request_problem(body)
        if problem:
            return _error(400, "InvalidParameter", problem)
        locations, sizes = body["desiredLocations"], [s["sku"] for s in body["desiredSizes"]]
        catalogue = cat.load_catalogue(cfg.seed, cfg.scale)
        if message := _first_invalid_value(cfg, catalogue, locations, sizes):
            return _error(400, "InvalidParameter", message)
        key, zoned = self._data_key(), body.get("availabilityZones", False) is True
        scores = []
        for size in sizes:
            for code in (region.lower() for region in locations):
                for zone in (_region_zones(catalogue, code) if zoned else ()) or (None,):
                    scores.append(
                        {
                            "sku": size,
                            "region": code,
                            **({"availabilityZone": zone} if zone else {}),
                            "score": cat.placement_score(key, body["desiredCount"], code, size, zone),
                            "isQuotaAvailable": cat.quota_available(cfg.seed, code, size),
                        }
                    )
        scores = _with_record_faults(scores, cfg.record_faults.get("sps"))
        return _json({**body, "availabilityZones": zoned, "placementScores": scores})

    # ---- admin -----------------------------------------------------------------------------------

    def _admin_config(self) -> Response:
        if request.method == "POST":
            knobs = request.get_json(silent=True)
            if not isinstance(knobs, dict):
                return _error(400, "BadRequest", "POST /_emulator/config takes a JSON object of knobs")
            try:
                self.configure(**knobs)
            except (ValueError, TypeError) as exc:
                return _error(400, "InvalidKnob", str(exc))
        return _json(dataclasses.asdict(self._config))

    def _admin_clock(self) -> Response:
        if request.method == "POST":
            body = request.get_json(silent=True)
            try:
                if not isinstance(body, dict) or not ({"now", "advance_seconds"} & body.keys()):
                    raise ValueError('send {"now": iso8601|null} or {"advance_seconds": n}')
                if "now" in body:
                    self.set_time(datetime.fromisoformat(body["now"]) if body["now"] else None)
                if "advance_seconds" in body:
                    self.advance(float(body["advance_seconds"]))
            except (ValueError, TypeError) as exc:
                return _error(400, "BadRequest", f"POST /_emulator/clock: {exc}")
        return _json({"now": self.now().isoformat()})

    def _admin_reset_stats(self) -> Response:
        self.reset_stats()
        return _json(self.stats())

    # ---- the login app (HTTPS) -------------------------------------------------------------------

    def _login_app(self) -> Flask:
        app = Flask("azure_emulator_login")
        app.add_url_rule("/<tenant>/v2.0/.well-known/openid-configuration", view_func=self._openid, methods=["GET"])
        app.add_url_rule("/<tenant>/oauth2/v2.0/token", view_func=self._token, methods=["POST"])
        return app

    def _known_tenant(self, tenant: str) -> bool:
        return tenant.lower() == cat.service_principal(self._config.seed)["tenant_id"]

    def _openid(self, tenant: str) -> Response:
        with self._lock:
            self._requests["openid_configuration"] += 1
        if not self._known_tenant(tenant):
            return _json(
                {
                    "error": "invalid_tenant",
                    "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                },
                400,
            )
        base = f"https://{request.host}/{tenant}"
        return _json(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "tenant_region_scope": None,
            }
        )

    def _token(self, tenant: str) -> Response:
        with self._lock:
            self._requests["token"] += 1
        if not self._known_tenant(tenant):
            return _json(
                {
                    "error": "invalid_request",
                    "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                },
                400,
            )
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return _json(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "The emulator supports only grant_type=client_credentials.",
                },
                400,
            )
        auth = request.authorization
        client_id = form.get("client_id") or (auth.username if auth else None)
        secret = form.get("client_secret") or (auth.password if auth else None)
        principal = cat.service_principal(self._config.seed)
        if client_id != principal["client_id"] or not secrets.compare_digest(str(secret), principal["client_secret"]):
            return _json(
                {
                    "error": "invalid_client",
                    "error_description": f"AADSTS7000215: Invalid secret or unknown client '{client_id}'.",
                    "error_codes": [7000215],
                },
                401,
            )
        token = "emu." + secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + TOKEN_LIFETIME_SECONDS
        return _json(
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECONDS - 1,
                "ext_expires_in": TOKEN_LIFETIME_SECONDS - 1,
                "access_token": token,
            }
        )


@lru_cache(maxsize=32)
def _eviction_answer(key: cat.DataKey, query: str, sku_name_path: str, rate_style: str) -> tuple[dict[str, str], ...]:
    """The rows the eviction-rate query gets: its columns (with `id` when it projects it), sorted by id when it
    sorts by id, none when it reads the size name from a path the rows do not have (`isnotempty(skuName)` then
    drops every row)."""
    reads_sku = _READS_SKU_NAME.search(query) is not None and sku_name_path in ("both", "sku.name")
    reads_props = _READS_PROPERTIES_SKU_NAME.search(query) is not None and sku_name_path in (
        "both",
        "properties.skuName",
    )
    if not (reads_sku or reads_props):
        return ()
    with_id = _PROJECTS_ID.search(query) is not None
    out: list[tuple[str, dict[str, str]]] = []
    for row in cat.eviction_rows(key):
        rate = cat.percent_bucket(row["evictionRate"]) if rate_style == "percent" else row["evictionRate"]
        resource_id = cat.eviction_resource_id(row["location"], row["skuName"])
        answer = {"location": row["location"], "skuName": row["skuName"], "evictionRate": rate}
        out.append((resource_id, {"id": resource_id, **answer} if with_id else answer))
    if _SORTED_BY_ID.search(query):
        out.sort(key=lambda pair: pair[0])
    return tuple(row for _, row in out)


def _hung_response(trickle_seconds: float) -> Response:
    """A 200 whose body never ends: a space every `trickle_seconds` (JSON allows leading white space), so the client
    keeps reading and its read timeout never fires. It ends when the client goes away."""

    def body():
        while True:
            yield b" "
            time.sleep(trickle_seconds)

    return Response(body(), status=200, mimetype="application/json")


def _cut_response() -> Response:
    """A 200 whose chunked body stops halfway: the server closes the connection mid-body (the client sees a broken
    chunked transfer, as when a proxy or the network drops it)."""

    def body():
        yield b'{"Items": [{"meterId": "cut-'
        raise ConnectionAbortedError("the emulator cuts this answer (injected fault)")

    return Response(body(), status=200, mimetype="application/json")


def _rate_limited(endpoint: str, retry_after: float, message: str, header_text: str | None = None) -> Response:
    """A 429 in the style of each API: its error code and its retry header (`header_text` replaces its value)."""
    if endpoint == "prices":
        headers = {"x-ms-ratelimit-retailprices-retry-after": header_text or str(round(retry_after))}
    elif endpoint == "resource_graph":
        headers = {"x-ms-user-quota-remaining": "0", "x-ms-user-quota-resets-after": header_text or _hms(retry_after)}
    else:
        headers = {"Retry-After": header_text or str(round(retry_after))}
    code = "RateLimiting" if endpoint == "resource_graph" else "TooManyRequests"
    return _error(429, code, message, headers)


def _subscription_throttled(subscription: str, wait_seconds: float) -> Response:
    """Azure Resource Manager's 429 for a subscription whose read requests are spent, with its Retry-After."""
    wait = max(1, math.ceil(wait_seconds))
    return _error(
        429,
        "SubscriptionRequestsThrottled",
        f"Number of 'read' requests for subscription '{subscription}' exceeded. Please try again after '{wait}' "
        "seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling",
        {"Retry-After": str(wait)},
    )


def _sps_request_problem(body: Any) -> str | None:
    """What is wrong with an SPS request body (the 400 InvalidParameter message), or None."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    count = body.get("desiredCount")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        return f"The value '{count}' provided for the input parameter 'desiredCount' is not valid"
    locations, sizes = body.get("desiredLocations"), body.get("desiredSizes")
    if not isinstance(locations, list) or not locations or not all(isinstance(x, str) for x in locations):
        return "desiredLocations must be a non-empty list of region names."
    if (
        not isinstance(sizes, list)
        or not sizes
        or not all(isinstance(s, dict) and isinstance(s.get("sku"), str) for s in sizes)
    ):
        return 'desiredSizes must be a non-empty list of {"sku": size name}.'
    if len(locations) > SPS_MAX_LOCATIONS:
        return f"desiredLocations has {len(locations)} entries; at most {SPS_MAX_LOCATIONS} are allowed."
    if len(sizes) > SPS_MAX_SIZES:
        return f"desiredSizes has {len(sizes)} entries; at most {SPS_MAX_SIZES} are allowed."
    return None


def _first_invalid_value(
    cfg: EmulatorConfig, catalogue: cat.Catalogue, locations: list[str], sizes: list[str]
) -> str | None:
    """SPS names one invalid value per answer: the first invalid region, else the first invalid size."""
    public, planted = set(cat.public_region_codes()), {r.lower() for r in cfg.invalid_regions}
    for region in locations:
        if region.lower() not in public or region.lower() in planted:
            return f"The value '{region}' provided for the input parameter 'desiredLocations' is not valid"
    planted = {s.lower() for s in cfg.invalid_sizes}
    for size in sizes:
        if size.lower() not in catalogue.sizes_by_lower_name or size.lower() in planted:
            return (
                f"The value '{size}' provided for the input parameter "
                "'SpotPlacementRecommenderInput.desiredSizes' is not valid"
            )
    return None


def _region_zones(catalogue: cat.Catalogue, code: str) -> tuple[str, ...]:
    """Zones of a region; regions outside a small catalogue get a seeded choice."""
    region = catalogue.regions_by_code.get(code)
    if region is not None:
        return region.zones
    return ("1", "2", "3") if cat.unit(catalogue.seed, "zones", code) < 0.5 else ()


def _densest(times: list[datetime], width: timedelta) -> int:
    """The most of the sorted `times` inside any window of length `width`."""
    best, first = 0, 0
    for last, t in enumerate(times):
        while t - times[first] >= width:
            first += 1
        best = max(best, last - first + 1)
    return best
