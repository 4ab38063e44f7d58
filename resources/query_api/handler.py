"""The SpotLake web site's history query over HTTP: one handler, served in production by an AWS Lambda function behind
an API Gateway REST API with WAF and a stage cache (infra/modules/collector/query_api.tf) and by the embedded local
stack (spotlake_assets/local/query_api.py).

What the site sends and how it reads the answer (docs/web-site.md; ddps-lab/spotlake
frontend/src/components/query-section.tsx, `queryCloudFront`):

    GET {endpoint}?TableName=azure&Region=US+East&InstanceType=D2s_v3&InstanceTier=*&AvailabilityZone=*
        &Start=2026-11-28&End=2026-11-28
    axios encodes spaces as '+'; '*' means all; AvailabilityZone is empty when the form's AZ list was not touched;
    Start/End are dates (YYYY-MM-DD: the UTC date of the picked day's local midnight, a day early east of UTC;
    read here as UTC days, End inclusive).
    if (res.data.Data || res.data.Status === 200) show res.data.Data else alert("Error fetching data: " + Status)
    and any HTTP status outside 2xx makes axios throw: the site then shows only "Network error".

So every answer to a GET is HTTP 200 by default, its outcome in the body:
    {"Status": 200, "Data": [records: the fields of latest_azure.json, numbers as JSON numbers]}
    {"Status": 200, "Data": [], "Hint": "<why it may be empty>"}   (resources/query_api/hints.py; the site ignores it)
    {"Status": 400 | 413 | 500 | 502 | 504, "Error": "<code>", "Message": "<what to change>"}   (never a "Data" key)
SPOTLAKE_QUERY_API_ERROR_STATUS=http makes the HTTP status the body's Status instead, for clients other than the site.
Status codes: 400 BadRequest (an unknown or repeated parameter, a value over its length limit, a date, End before Start,
more than one month, a zone other than *, 1, 2, 3, Single), 400 OverBudget (more region-days than the read budget,
docs/web-site.md "The read budget"), 413 TooManyPoints (more than 20,000 points) and TooMuchData (more read units than
the budget), 504 QueryTimeout (the query ran longer than its timeout), 502 HistoryStoreError (DynamoDB failed), 500
InternalError (a fault of ours, the only 500). OPTIONS is the CORS preflight (204, or 403 for an origin not allowed);
HEAD and other methods get 405. Every GET answer carries its cost: X-SpotLake-Read-Requests and X-SpotLake-Read-Units.

CORS is answered here, not by the function URL's own CORS setting: with both, AWS sends Access-Control-Allow-Origin
twice and browsers refuse the answer. An allowed Origin is echoed (Vary: Origin always); any other origin gets no
CORS header, so browsers on other sites cannot read the answer (the data stays public to anyone else).

Settings, from the environment (QueryApiConfig.from_environ): SPOTLAKE_ENV and SPOTLAKE_DYNAMODB_TABLE /
SPOTLAKE_AWS_REGION / SPOTLAKE_AWS_ENDPOINT_URL as everywhere (resources/settings.py);
SPOTLAKE_QUERY_API_ALLOWED_ORIGINS (comma-separated, default https://spotlake.ddps.cloud, `*` for any);
SPOTLAKE_QUERY_API_TIMEOUT_SECONDS (default 20); SPOTLAKE_QUERY_API_ERROR_STATUS (`body`, the default, or `http`).
`TableName` must be `azure` (what the site sends: the dataset's name, served from this environment's table) or the
environment's table name itself.

Imports: the standard library, boto3/botocore (the Lambda Python runtime has them), resources.query_api,
resources.query_api.hints, resources.settings and the pandas-free core modules they use (and azure_regions.csv); never
pandas or Dagster (tests/test_query_api.py imports this module with both blocked), so the Lambda package is those few
files (resources/query_api/package.py lists them; query_api.tf deploys it).
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

from resources.query_api.archive import ArchiveReadError, ArchiveSource
from resources.query_api.config import QueryApiConfig, make_client
from resources.query_api.hints import query_with_hint
from resources.query_api.reader import HistoryQueryError, HistoryQueryTimeout
from resources.query_api.request import (
    ALL,
    MAX_POINTS,
    OverBudgetError,
    ReadLimitError,
    ReadStats,
    TooManyPointsError,
    check_length,
)
from resources.settings import SettingsError

log = logging.getLogger("spotlake.query_api")

PUBLIC_TABLE_NAME = "azure"  # the site's TableName for Azure (vendor.toLowerCase())
# the worker thread gets this much longer than the query's own timeout (which is checked between requests)
HARD_DEADLINE_GRACE_SECONDS = 2.0
METHODS = "GET, OPTIONS"  # HEAD would cost a full query for no answer: refused like every other method
# The site's parameters (docs/web-site.md "The query"); any other name is refused, so that no extra parameter can
# make a new cache entry (the REST stage caches by these names) or a query that is not the site's.
PARAMETERS = ("TableName", "Region", "InstanceType", "InstanceTier", "AvailabilityZone", "Start", "End")
TABLE_NAME_LIMIT = 64
LOGGED_VALUE_CHARS = 80  # a parameter value is logged up to this long
READ_UNITS_HEADER = "X-SpotLake-Read-Units"  # what the answer cost in DynamoDB read units (and requests)
CALLS_HEADER = "X-SpotLake-Read-Requests"
PREFLIGHT_MAX_AGE = "7200"  # seconds; Chromium caps it at two hours
MAX_QUERY_FIELDS = 64
# A Lambda response carries at most 6 MB (function URL, API Gateway): refuse before the runtime fails.
MAX_LAMBDA_BODY_BYTES = 5_500_000
GZIP_MIN_BYTES = 1024
# A CDN in front (the site calls it through CloudFront) may keep an answer a minute; errors ask not to be kept
# (API Gateway's stage cache keeps them anyway, 60 s: docs/security.md "The public query API").
SUCCESS_CACHE = "public, max-age=60"


class ApiError(Exception):
    """An answer other than 200: the body's Status, an error code and a message for the user."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


class QueryApi:
    """The handler: `handle(params, origin, method)` -> (HTTP status, headers, body text)."""

    def __init__(self, config: QueryApiConfig, client: Any = None, s3_client: Any = None) -> None:
        self.config = config
        self._client = client
        self._s3_client = s3_client
        self._lock = threading.Lock()

    def archive(self) -> ArchiveSource | None:
        """A reader of the archive for one request (None when this deployment has none)."""
        if self.config.archive_bucket is None:
            return None
        with self._lock:
            if self._s3_client is None:
                self._s3_client = make_client(self.config, service="s3")
        return ArchiveSource(self._s3_client, self.config.archive_bucket)

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = make_client(self.config)
            return self._client

    def handle(self, params: Mapping[str, str], origin: str | None, method: str = "GET") -> tuple[int, dict, str]:
        began = time.perf_counter()
        method = (method or "GET").upper()
        if method == "OPTIONS":
            if not self.allowed_origin(origin):
                forbidden = ApiError(403, "ForbiddenOrigin", f"origin {origin!r} may not call this API")
                return self.error(forbidden, origin, http_status=True)
            headers = {
                **self.cors_headers(origin),
                "Access-Control-Allow-Methods": METHODS,
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
            }
            return 204, headers, ""
        if method != "GET":
            status, headers, body = self.error(
                ApiError(405, "MethodNotAllowed", f"{safe_text(method)} is not served; use GET"), origin,
                http_status=True,
            )  # fmt: skip
            return status, {**headers, "Allow": METHODS}, body
        stats = ReadStats()
        try:
            records, hint = self._query(params, stats)
        except ApiError as exc:
            self._log(method, params, exc.status, None, began, stats, exc.message)
            status, headers, body = self.error(exc, origin)
            return status, {**headers, **cost_headers(stats)}, body
        # an empty answer says why it may be empty (a key the site does not read: it reads Status and Data only)
        answer = {"Status": 200, "Data": records, **({"Hint": hint} if hint else {})}
        body = json.dumps(answer, separators=(",", ":"), allow_nan=False)
        headers = {**self.cors_headers(origin), "Content-Type": "application/json", "Cache-Control": SUCCESS_CACHE,
                   **cost_headers(stats)}  # fmt: skip
        self._log(method, params, 200, len(records), began, stats)
        return 200, headers, body

    def error(self, exc: ApiError, origin: str | None, *, http_status: bool = False) -> tuple[int, dict, str]:
        """The answer for an error: HTTP 200 with the error in the body (unless `http_status` or the http mode)."""
        body = json.dumps({"Status": exc.status, "Error": exc.error, "Message": exc.message})
        headers = {**self.cors_headers(origin), "Content-Type": "application/json", "Cache-Control": "no-store"}
        status = exc.status if http_status or not self.config.errors_in_body else 200
        return status, headers, body

    def cors_headers(self, origin: str | None) -> dict[str, str]:
        headers = {"Vary": "Origin"}
        allowed = self.allowed_origin(origin)
        if allowed:
            headers["Access-Control-Allow-Origin"] = allowed
        return headers

    def allowed_origin(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for a request's Origin, or None when it is not allowed."""
        if "*" in self.config.allowed_origins:
            return "*"
        if origin and origin.strip().rstrip("/").lower() in self.config.allowed_origins:
            return origin.strip()
        return None

    def _query(self, params: Mapping[str, str], stats: ReadStats) -> tuple[list[dict[str, Any]], str | None]:
        """(records, hint for an empty answer) of a GET's parameters; ApiError for every refusal."""
        unknown = [name for name in params if name not in PARAMETERS]
        if unknown:
            raise ApiError(400, "BadRequest", f"unknown parameter {safe_text(unknown[0])!r}; the parameters are "
                           f"{', '.join(PARAMETERS)}")  # fmt: skip

        def value(name: str) -> str:
            return str(params.get(name) or "").strip()

        try:
            for name in PARAMETERS[1:]:
                check_length(value(name), name)
            if len(value("TableName")) > TABLE_NAME_LIMIT:
                raise ValueError(f"TableName is {len(value('TableName'))} characters long; at most "
                                 f"{TABLE_NAME_LIMIT} are accepted")  # fmt: skip
        except ValueError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from exc
        table = value("TableName")
        if table not in (PUBLIC_TABLE_NAME, self.config.table_name):
            raise ApiError(400, "BadRequest", f"TableName={table!r} is not served here; this endpoint serves "
                           f"TableName={PUBLIC_TABLE_NAME} (table {self.config.table_name})")  # fmt: skip
        request = dict(
            instance_type=value("InstanceType"),
            region=value("Region") or ALL,  # an empty value is what the site sends for a list left untouched
            availability_zone=value("AvailabilityZone") or ALL,
            instance_tier=value("InstanceTier") or ALL,
            start=value("Start") or None,
            end=value("End") or None,
        )
        timeout = self.config.timeout_seconds
        # The query stops itself between requests after `timeout`; the worker thread bounds a request that hangs.
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-query")
        future = worker.submit(
            lambda: query_with_hint(
                self.client, table_name=self.config.table_name, max_points=MAX_POINTS, timeout=timeout, stats=stats,
                archive=self.archive(), **request,
            )
        )  # fmt: skip
        try:
            return future.result(timeout=timeout + HARD_DEADLINE_GRACE_SECONDS)
        except TooManyPointsError as exc:
            raise ApiError(413, "TooManyPoints", str(exc)) from exc
        except ReadLimitError as exc:
            raise ApiError(413, "TooMuchData", str(exc)) from exc
        except OverBudgetError as exc:
            raise ApiError(400, "OverBudget", str(exc)) from exc
        except ValueError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from exc
        except (HistoryQueryTimeout, TimeoutError) as exc:
            raise ApiError(504, "QueryTimeout", f"the query did not finish within {timeout:g} s; narrow the time "
                           "range or pick one region or zone") from exc  # fmt: skip
        except (HistoryQueryError, ArchiveReadError) as exc:
            log.error("history query failed: %s", exc)
            raise ApiError(502, "HistoryStoreError", "reading the history store failed; try again later") from exc
        except Exception as exc:
            log.exception("history query failed unexpectedly")
            raise ApiError(500, "InternalError", "the query failed; try again later") from exc
        finally:
            worker.shutdown(wait=False)

    def _log(
        self, method: str, params: Mapping[str, str], status: int, records: int | None, began: float,
        stats: ReadStats | None = None, message: str | None = None,
    ) -> None:  # fmt: skip
        logged = {safe_text(k, 40): safe_text(v, LOGGED_VALUE_CHARS) for k, v in list(params.items())[:16]}
        entry = {"method": method, "params": logged, "status": status, "records": records,
                 "ms": round((time.perf_counter() - began) * 1000), "message": message}  # fmt: skip
        if stats is not None:
            entry.update(calls=stats.calls, read_units=stats.read_units)
        log.info("query %s", json.dumps(entry))


def safe_text(value: object, limit: int = 40) -> str:
    """A value as it may appear in a message or a log line: at most `limit` characters, then its length."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def cost_headers(stats: ReadStats) -> dict[str, str]:
    return {READ_UNITS_HEADER: f"{stats.read_units:g}", CALLS_HEADER: str(stats.calls)}


# ---- transports: the Lambda entry point here, the local server in spotlake_assets/local/query_api.py


def parse_query(raw: str) -> dict[str, str]:
    """A raw query string as the handler's parameters: `+` and %XX decoded. Raises ApiError for more than
    MAX_QUERY_FIELDS fields or a name given twice (each parameter has one value)."""
    params: dict[str, str] = {}
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError as exc:
        raise ApiError(400, "BadRequest", f"the query string has more than {MAX_QUERY_FIELDS} fields") from exc
    for name, value in pairs:
        if name in params:
            raise ApiError(400, "BadRequest", f"parameter {safe_text(name)!r} is given more than once")
        params[name] = value
    return params


def encode_body(headers: dict[str, str], body: str, accept_encoding: str | None) -> tuple[dict[str, str], bytes]:
    """The body as bytes, gzipped when the client accepts it (browsers do) and it is worth it: 20,000 records are
    about 5 MB of JSON, close to what a Lambda response may carry, and a tenth of that gzipped."""
    data = body.encode()
    tokens = {t.split(";")[0].strip().lower() for t in (accept_encoding or "").split(",")}
    if len(data) >= GZIP_MIN_BYTES and "gzip" in tokens:
        data = gzip.compress(data, compresslevel=6, mtime=0)
        headers = {**headers, "Content-Encoding": "gzip", "Vary": "Origin, Accept-Encoding"}
    return headers, data


_default_api: QueryApi | None = None
_default_lock = threading.Lock()


def default_api() -> QueryApi:
    """The process's QueryApi from the environment, made on first use (a warm Lambda reuses it and its client)."""
    global _default_api
    with _default_lock:
        if _default_api is None:
            _default_api = QueryApi(QueryApiConfig.from_environ())
        return _default_api


def handle(params: Mapping[str, str], origin: str | None, method: str = "GET") -> tuple[int, dict, str]:
    """The handler with the environment's settings (see the module docstring)."""
    return default_api().handle(params, origin, method)


def parse_event(event: Mapping[str, Any]) -> tuple[str, dict[str, str], dict[str, str]]:
    """(method, query parameters, headers with lower-case names) of an API Gateway HTTP API / function URL event
    (payload 2.0: requestContext.http.method, rawQueryString) or an API Gateway REST event (payload 1.0:
    httpMethod, multiValueQueryStringParameters / queryStringParameters, already decoded by API Gateway)."""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    context = event.get("requestContext") or {}
    if event.get("version") == "2.0" or "http" in context:
        method = context.get("http", {}).get("method", "GET")
        if "rawQueryString" in event:  # decoded here exactly as the local server decodes its URL
            return method, parse_query(event["rawQueryString"] or ""), headers
        return method, {k: str(v) for k, v in (event.get("queryStringParameters") or {}).items()}, headers
    method = event.get("httpMethod") or context.get("httpMethod") or "GET"
    multi = event.get("multiValueQueryStringParameters")
    if multi:
        repeated = [name for name, values in multi.items() if len(values) > 1]
        if repeated:
            raise ApiError(400, "BadRequest", f"parameter {safe_text(repeated[0])!r} is given more than once")
        return method, {k: str(v[0]) for k, v in multi.items()}, headers
    return method, {k: str(v) for k, v in (event.get("queryStringParameters") or {}).items()}, headers


def lambda_handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """AWS Lambda entry point (handler `resources.query_api.handler.lambda_handler`)."""
    payload_v2 = event.get("version") == "2.0" or "http" in (event.get("requestContext") or {})
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    origin = headers.get("origin")
    try:
        api = default_api()
    except SettingsError as exc:
        log.error("query API misconfigured: %s", exc)
        return _lambda_error(500, "InternalError", "the query API is misconfigured; see its log")
    try:
        method, params, _ = parse_event(event)
    except ApiError as exc:
        status, out_headers, body = api.error(exc, origin)
    else:
        status, out_headers, body = api.handle(params, origin, method)
    # REST APIs pass binary bodies only for configured media types: gzip for payload 2.0 (function URL, HTTP API)
    out_headers, data = encode_body(out_headers, body, headers.get("accept-encoding") if payload_v2 else None)
    if len(data) > MAX_LAMBDA_BODY_BYTES:
        too_big = ApiError(413, "TooManyPoints", f"the answer is {len(data)} bytes, more than a Lambda response "
                           "carries; narrow the time range or pick one zone")  # fmt: skip
        status, out_headers, body = api.error(too_big, origin)
        data = body.encode()
    gzipped = out_headers.get("Content-Encoding") == "gzip"
    return {
        "statusCode": status,
        "headers": out_headers,
        "body": base64.b64encode(data).decode() if gzipped else data.decode(),
        "isBase64Encoded": gzipped,
    }


def _lambda_error(status: int, error: str, message: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store", "Vary": "Origin"},
        "body": json.dumps({"Status": status, "Error": error, "Message": message}),
        "isBase64Encoded": False,
    }
