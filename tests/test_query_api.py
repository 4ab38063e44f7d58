"""The web site's query endpoint over real HTTP: the local server (spotlake_assets/local/query_api.py) serving the
production handler (resources/query_api/handler.py) on a moto-backed history table, asked with the exact query strings
the SpotLake site builds (ddps-lab/spotlake frontend/src/components/query-section.tsx, `queryCloudFront`, through
axios 1.x); the AWS Lambda entry point run as a Lambda runs it (a fresh process on the unpacked zip that
`make query-api-zip` builds, settings from the environment, pandas and Dagster not importable) with function URL /
HTTP API (payload 2.0) and REST API (payload 1.0) events; the association file fetched over HTTP as the site
fetches it, anonymously, and parsed with the site's logic."""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import pandas as pd
import pytest
import requests

from benchmarks.history_query import synthetic_history, write_history
from resources.history_table import HistoryTable
from resources.query_api.config import QueryApiConfig, make_client
from resources.query_api.handler import CALLS_HEADER, READ_UNITS_HEADER, QueryApi
from resources.query_api.package import build as build_package
from resources.query_api.reader import query_history
from resources.query_api.request import RECORD_FIELDS
from resources.s3 import S3Store
from spotlake_assets.core.layout import ASSOCIATION_KEY
from spotlake_assets.core.transforms.outputs import merge_association
from spotlake_assets.local.aws import LOCAL_AWS_CREDENTIALS, LOCAL_AWS_ENV, local_client
from spotlake_assets.local.query_api import QueryApiServer
from spotlake_assets.local.stack import start_local_stack
from tests.test_outputs import site_form_lists

ROOT = Path(__file__).resolve().parent.parent
AWS_REGION = "us-west-2"
SITE = "https://spotlake.ddps.cloud"
TYPE = "D2s_v3"
REGIONS = ["US East", "US West 2", "KR Central", "EU West"]
# the headers a browser on the site sends with axios's GET
BROWSER = {"Origin": SITE, "Accept": "application/json, text/plain, */*", "Accept-Encoding": "gzip, deflate, br"}
FLOAT_FIELDS = ["OndemandPrice", "SpotPrice", "Savings", "IF"]
INT_FIELDS = ["id", "DesiredCount", "Score", "T2", "T3"]
# moto sorts and serialises a whole table for every Query page: on a shared machine a page of the 25,000-point
# table can take seconds (DynamoDB: milliseconds), so the servers here wait longer than production's 20 s.
MOTO_PATIENCE = 300.0


def axios_encode(value: str) -> str:
    """axios 1.x lib/helpers/buildURL.js `encode`: encodeURIComponent, then `:`, `$`, `,`, `[`, `]` restored and
    %20 as `+` (so `*` stays `*` and "US East" becomes US+East)."""
    encoded = quote(value, safe="-_.!~*'()")
    for escaped, plain in (("%3A", ":"), ("%24", "$"), ("%2C", ","), ("%20", "+"), ("%5B", "["), ("%5D", "]")):
        encoded = encoded.replace(escaped, plain)
    return encoded


def site_query(instance: str, region: str = "ALL", az: str = "", start: str = "", end: str = "") -> str:
    """The query string of the site's Azure query: the params object of `queryCloudFront`, in its key order,
    serialised by axios. `az` is "" until the user picks one of ALL, 1, 2, 3, Single (the site then sends it
    empty), "ALL" becomes "*"."""
    params = {
        "TableName": "azure",
        "Region": "*" if region == "ALL" else region,
        "InstanceType": "*" if instance == "ALL" else instance,
        "InstanceTier": "*",
        "AvailabilityZone": "*" if az == "ALL" else az,
        "Start": start or "*",
        "End": end or "*",
    }
    return "&".join(f"{name}={axios_encode(value)}" for name, value in params.items())


def get(server: QueryApiServer, query: str, **headers: str) -> requests.Response:
    return requests.get(f"{server.url}?{query}", headers={**BROWSER, **headers}, timeout=MOTO_PATIENCE)


def load_table(endpoint: str, days: float, *, regions: list[str], price_change_rate: float) -> str:
    synthetic = synthetic_history(
        TYPE, datetime(2026, 11, 1), days, regions=regions, price_change_rate=price_change_rate,
        score_change_rate=0.05, seed=3,
    )  # fmt: skip
    store = HistoryTable(
        table_name=f"azure-api-{uuid.uuid4().hex[:8]}", endpoint_url=endpoint, region_name=AWS_REGION, write_workers=8
    )
    store.ensure_table()
    write_history(store, synthetic)
    return store.table_name


def serve(endpoint: str, table: str, **config: Any) -> QueryApiServer:
    """The handler on a free port; moto (shared, on a busy machine) gets more time than DynamoDB would need."""
    settings = QueryApiConfig(
        table_name=table, aws_region=AWS_REGION, endpoint_url=endpoint, **{"timeout_seconds": MOTO_PATIENCE, **config}
    )
    client = make_client(settings, read_timeout=MOTO_PATIENCE, **LOCAL_AWS_CREDENTIALS)
    return QueryApiServer(QueryApi(settings, client))


@pytest.fixture(scope="module")
def table(aws_endpoint: str) -> str:
    """Three days of four regions (11 desired counts x 4 zones each), a few changes every 10 minutes."""
    return load_table(aws_endpoint, 3, regions=REGIONS, price_change_rate=0.02)


@pytest.fixture(scope="module")
def server(aws_endpoint: str, table: str) -> Iterator[QueryApiServer]:
    running = serve(aws_endpoint, table)
    yield running
    running.stop()


@pytest.fixture
def client(aws_endpoint: str) -> Any:
    return local_client("dynamodb", aws_endpoint, AWS_REGION)


def body_of(response: requests.Response) -> dict[str, Any]:
    assert response.headers["Content-Type"] == "application/json"
    return response.json()  # axios parses the JSON body the same way


def assert_site_cors(response: requests.Response) -> None:
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    assert "Origin" in response.headers["Vary"]


def assert_records_as_the_site_reads_them(records: list[dict[str, Any]]) -> None:
    """The fields of latest_azure.json; numbers are JSON numbers (the chart plots only `typeof value === 'number'`
    fields, the table shows -1 as N/A), Time as the table's YYYY-MM-DD HH:MM:SS."""
    for record in records:
        assert list(record) == RECORD_FIELDS
        assert all(type(record[f]) is int for f in INT_FIELDS), record
        assert all(type(record[f]) is float for f in FLOAT_FIELDS), record
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", record["Time"])


# --- the site's queries --------------------------------------------------------------------------------------


def test_all_regions_and_zones_with_the_sites_wildcards(server, client, table):
    query = site_query(TYPE, "ALL", "ALL", "2026-11-02", "2026-11-02")
    assert query == "TableName=azure&Region=*&InstanceType=D2s_v3&InstanceTier=*&AvailabilityZone=*&Start=2026-11-02&End=2026-11-02"  # noqa: E501
    response = get(server, query)

    assert response.status_code == 200
    assert_site_cors(response)
    assert response.headers["Content-Encoding"] == "gzip"  # the browser accepts it; requests decodes it
    body = body_of(response)
    assert list(body) == ["Status", "Data"] and body["Status"] == 200
    want = query_history(client, table_name=table, instance_type=TYPE, start="2026-11-02", end="2026-11-02")
    assert body["Data"] == want
    assert {r["Region"] for r in want} == set(REGIONS)
    assert {r["AvailabilityZone"] for r in want} == {"1", "2", "3", "Single"}
    assert_records_as_the_site_reads_them(body["Data"])


def test_the_issues_literal_query_string_and_an_instance_without_history(server):
    query = "TableName=azure&InstanceType=A1&Region=*&InstanceTier=*&AvailabilityZone=*&Start=2026-11-28&End=2026-11-28"
    response = get(server, query)
    hint = "no such instance type 'A1': the history holds nothing for it"
    assert (response.status_code, response.json()) == (200, {"Status": 200, "Data": [], "Hint": hint})
    assert_site_cors(response)


# --- mistyped queries (issue 17): Azure's spelling served, a zone the form never sends refused, empty answers hinted


@pytest.mark.parametrize("spelling", ["Standard_D2s_v3", "standard_d2s_v3"])
def test_azures_standard_spelling_answers_like_the_stored_size(server, spelling):
    ours = body_of(get(server, site_query(TYPE, "KR Central", "ALL", "2026-11-02", "2026-11-02")))
    azures = body_of(get(server, site_query(spelling, "KR Central", "ALL", "2026-11-02", "2026-11-02")))
    assert ours["Data"] and azures == ours


@pytest.mark.parametrize("zone", ["7", "0", "Zone 1"])
def test_a_zone_the_form_never_sends_is_one_400_naming_the_parameter(server, zone):
    response = get(server, site_query(TYPE, "US East", zone, "2026-11-02", "2026-11-02"))
    message = f"AvailabilityZone {zone!r} is not a zone; use one of '*', '1', '2', '3', 'Single'"
    body = assert_refused(response, 400, "BadRequest", message)
    assert body["Message"] == message
    assert response.headers.get(CALLS_HEADER, "0") == "0"  # refused before any request to the store


@pytest.mark.parametrize("zone", ["1", "single", "Single", "", "ALL"])
def test_the_forms_zones_are_served_in_any_case(server, zone):
    assert body_of(get(server, site_query(TYPE, "US East", zone, "2026-11-02", "2026-11-02")))["Data"]


def test_an_empty_answer_hints_why_at_the_cost_of_one_small_read(server):
    """The site reads only Status and Data: the hint is a key beside them, on empty answers only. Region=* has read
    the type's regions index already; one region reads it once more (one GetItem, half a unit), nothing else."""
    body = body_of(get(server, site_query("NoSuchType_v9", "ALL", "ALL", "2026-11-02", "2026-11-02")))
    assert body == {"Status": 200, "Data": [],
                    "Hint": "no such instance type 'NoSuchType_v9': the history holds nothing for it"}  # fmt: skip

    response = get(server, site_query(TYPE, "Mars North", "ALL", "2026-11-02", "2026-11-02"))
    body = body_of(response)
    assert (body["Status"], body["Data"]) == (200, [])
    assert body["Hint"] == "no such region 'Mars North'; nearest known for D2s_v3: KR Central"
    alone = get(server, site_query(TYPE, "Mars North", "ALL", "2026-11-02", "2026-11-02").replace("Mars+North", "Qq"))
    calls_without_hint = 3  # the points, the newest checkpoint before Start, the changes after it
    assert int(response.headers[CALLS_HEADER]) == int(alone.headers[CALLS_HEADER]) == calls_without_hint + 1

    body = body_of(get(server, site_query(TYPE, "US East", "Single", "2026-10-01", "2026-10-02")))
    assert body == {"Status": 200, "Data": [], "Hint": "no data for D2s_v3 in US East for zone Single between "
                    "2026-10-01 00:00:00 and 2026-10-02 23:59:59"}  # fmt: skip
    assert "Hint" not in body_of(get(server, site_query(TYPE, "US East", "ALL", "2026-11-02", "2026-11-02")))


@pytest.mark.parametrize("encoded", ["US+East", "US%20East", "us%20east"])
def test_a_region_display_name_with_a_space(server, client, table, encoded):
    query = f"TableName=azure&Region={encoded}&InstanceType={TYPE}&InstanceTier=*&AvailabilityZone=*&Start=2026-11-03&End=2026-11-03"  # noqa: E501
    if encoded == "US+East":
        assert query == site_query(TYPE, "US East", "ALL", "2026-11-03", "2026-11-03")  # axios's own spelling
    body = body_of(get(server, query))

    want = query_history(client, table_name=table, instance_type=TYPE, region="US East", start="2026-11-03",
                         end="2026-11-03")  # fmt: skip
    assert body == {"Status": 200, "Data": want}
    assert want and {r["Region"] for r in want} == {"US East"}
    # every series of the region has its value as of Start, even one that did not change that day
    assert len({(r["AvailabilityZone"], r["DesiredCount"]) for r in want}) == 44


def test_one_zone_and_the_empty_zone_the_site_sends_for_an_untouched_list(server, client, table):
    one_zone = body_of(get(server, site_query(TYPE, "KR Central", "2", "2026-11-02", "2026-11-03")))
    assert one_zone["Data"]
    assert {(r["Region"], r["AvailabilityZone"]) for r in one_zone["Data"]} == {("KR Central", "2")}
    assert one_zone["Data"] == query_history(client, table_name=table, instance_type=TYPE, region="KR Central",
                                             availability_zone="2", start="2026-11-02", end="2026-11-03")  # fmt: skip

    untouched = site_query(TYPE, "KR Central", "", "2026-11-02", "2026-11-02")
    assert "&AvailabilityZone=&" in untouched
    every_zone = site_query(TYPE, "KR Central", "ALL", "2026-11-02", "2026-11-02")
    assert body_of(get(server, untouched)) == body_of(get(server, every_zone))


# --- refusals, as the site displays them: HTTP 200 (axios throws on anything else), Status in the body ---------


def assert_refused(response: requests.Response, status: int, error: str, message: str) -> dict[str, Any]:
    assert response.status_code == 200
    assert_site_cors(response)
    assert response.headers["Cache-Control"] == "no-store"
    body = body_of(response)
    assert list(body) == ["Status", "Error", "Message"]  # no "Data": the site would take `Data` as a success
    assert (body["Status"], body["Error"]) == (status, error)
    assert message in body["Message"], body["Message"]
    return body


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-11-31", "2026-12-01", "Start '2026-11-31' is not a date (YYYY-MM-DD)"),
        ("2026/11/28", "2026-11-28", "Start '2026/11/28' is not a date"),
        ("2026-11-28", "28-11-2026", "End '28-11-2026' is not a date"),
        ("", "", "Start '*' is not a date"),  # what the site sends for an empty date
        ("2026-11-05", "2026-11-04", "End 2026-11-04 23:59:59 is before Start 2026-11-05 00:00:00"),
    ],
)
def test_bad_dates_and_end_before_start(server, start, end, message):
    assert_refused(get(server, site_query(TYPE, "ALL", "ALL", start, end)), 400, "BadRequest", message)


def test_a_range_over_one_month(server):
    # the site's date picker lets End reach Start + 1 month (2026-11-01 -> 2026-12-01): one day more is refused
    response = get(server, site_query(TYPE, "US East", "ALL", "2026-11-01", "2026-12-02"))
    message = "longer than one month: with Start 2026-11-01, End may be at most 2026-12-01"
    assert_refused(response, 400, "BadRequest", message)
    assert body_of(get(server, site_query(TYPE, "US East", "ALL", "2026-11-01", "2026-12-01")))["Status"] == 200


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("TableName=azure&Region=*&InstanceTier=*&AvailabilityZone=*&Start=2026-11-02&End=2026-11-02",
         "InstanceType is required"),
        ("TableName=azure&Region=*&InstanceType=&InstanceTier=*&AvailabilityZone=*&Start=2026-11-02&End=2026-11-02",
         "InstanceType is required"),
        ("TableName=azure&Region=*&InstanceType=*&InstanceTier=*&AvailabilityZone=*&Start=2026-11-02&End=2026-11-02",
         "must be one instance type"),
        ("TableName=aws&Region=*&InstanceType=D2s_v3&AvailabilityZone=*&Start=2026-11-02&End=2026-11-02",
         "TableName='aws' is not served here; this endpoint serves TableName=azure"),
        ("Region=*&InstanceType=D2s_v3&Start=2026-11-02&End=2026-11-02", "TableName='' is not served here"),
        ("TableName=azure&InstanceType=D2s_v3&Start=2026-11-02", "Start and End are required"),
    ],
)  # fmt: skip
def test_missing_or_wrong_parameters(server, query, message):
    assert_refused(get(server, query), 400, "BadRequest", message)


def test_the_environments_own_table_name_is_served_too(server, table):
    response = get(server, f"TableName={table}&InstanceType=D2s_v3&Start=2026-11-02&End=2026-11-02")
    assert body_of(response)["Status"] == 200


@pytest.fixture(scope="module")
def crowded(aws_endpoint: str) -> Iterator[QueryApiServer]:
    """A day in which every series of four regions changes every 10 minutes: 145 x 176 = 25,520 points, 25,344 of
    them in 2026-11-01 (the 145th partition is 2026-11-02 00:00)."""
    running = serve(aws_endpoint, load_table(aws_endpoint, 1, regions=REGIONS, price_change_rate=1.0))
    yield running
    running.stop()


def test_more_than_20000_points_is_refused(crowded):
    response = get(crowded, site_query(TYPE, "ALL", "ALL", "2026-11-01", "2026-11-01"))
    body = assert_refused(response, 413, "TooManyPoints", "more than 20000 points match")
    assert body["Message"].endswith("narrow the time range or pick one region or zone")
    assert float(response.headers[READ_UNITS_HEADER]) > 0 and int(response.headers[CALLS_HEADER]) > 1


def test_a_query_that_runs_out_of_time_answers_504(aws_endpoint, table):
    hurried = serve(aws_endpoint, table, timeout_seconds=0)
    try:
        response = get(hurried, site_query(TYPE, "ALL", "ALL", "2026-11-02", "2026-11-03"))
    finally:
        hurried.stop()
    assert_refused(response, 504, "QueryTimeout", "did not finish within 0 s; narrow the time range")


def test_a_store_that_never_answers_still_gets_an_answer_before_the_function_would_time_out():
    """A DynamoDB endpoint that accepts connections and never replies: the worker thread's deadline (the query's
    timeout plus a grace) answers 504 long before the client's read timeout would."""
    silent = socket.create_server(("127.0.0.1", 0))
    endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
    settings = QueryApiConfig(
        table_name="azure-local", aws_region=AWS_REGION, endpoint_url=endpoint, timeout_seconds=0.5
    )
    hung = QueryApiServer(QueryApi(settings, make_client(settings, read_timeout=60, **LOCAL_AWS_CREDENTIALS)))
    try:
        began = time.monotonic()
        response = get(hung, site_query(TYPE, "US East", "ALL", "2026-11-02", "2026-11-02"))
        elapsed = time.monotonic() - began
    finally:
        hung.stop()
        silent.close()
    assert_refused(response, 504, "QueryTimeout", "did not finish within 0.5 s")
    assert elapsed < 10


def test_http_error_status_mode_for_other_clients(aws_endpoint, table):
    strict = serve(aws_endpoint, table, errors_in_body=False)
    try:
        response = get(strict, site_query(TYPE, "ALL", "ALL", "2026-11-05", "2026-11-04"))
    finally:
        strict.stop()
    assert response.status_code == 400 and response.json()["Status"] == 400
    assert_site_cors(response)


# --- CORS and methods ------------------------------------------------------------------------------------------


def test_preflight_and_cors_for_the_site_only(server):
    preflight = requests.options(
        server.url, headers={"Origin": SITE, "Access-Control-Request-Method": "GET"}, timeout=10
    )
    assert (preflight.status_code, preflight.content) == (204, b"")
    assert_site_cors(preflight)
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET, OPTIONS"
    assert preflight.headers["Access-Control-Max-Age"] == "7200"

    other = "https://evil.example"
    refused = requests.options(
        server.url, headers={"Origin": other, "Access-Control-Request-Method": "GET"}, timeout=10
    )
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers
    assert refused.json()["Error"] == "ForbiddenOrigin"

    query = site_query(TYPE, "US East", "1", "2026-11-02", "2026-11-02")
    from_elsewhere = get(server, query, Origin=other)
    assert "Access-Control-Allow-Origin" not in from_elsewhere.headers  # a browser there cannot read it
    assert from_elsewhere.headers["Vary"].startswith("Origin")
    assert body_of(from_elsewhere) == body_of(get(server, query))  # the data itself is public
    no_origin = requests.get(f"{server.url}?{query}", timeout=10)  # curl, scripts
    assert no_origin.status_code == 200 and "Access-Control-Allow-Origin" not in no_origin.headers


def test_other_methods_and_head_are_refused_in_json(server):
    query = site_query(TYPE, "US East", "1", "2026-11-02", "2026-11-02")
    for method in ("POST", "DELETE", "BREW"):  # BREW: a method the standard library's server does not know
        answer = requests.request(method, f"{server.url}?{query}", headers=BROWSER, data=b"{}", timeout=10)
        assert (answer.status_code, answer.headers["Allow"]) == (405, "GET, OPTIONS")
        assert answer.headers["Content-Type"] == "application/json"
        refusal = {"Status": 405, "Error": "MethodNotAllowed", "Message": f"{method} is not served; use GET"}
        assert answer.json() == refusal
    # HEAD would read the whole range to send nothing: refused before any read
    head = requests.head(f"{server.url}?{query}", headers=BROWSER, timeout=10)
    assert (head.status_code, head.content, head.headers["Allow"]) == (405, b"", "GET, OPTIONS")
    assert CALLS_HEADER not in head.headers  # nothing was read


def raw_request(server: QueryApiServer, request_line: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one request line (and a Host header) over a socket; (status, headers, body) of the answer."""
    host, port = server.url.removeprefix("http://").rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request_line + b"\r\nHost: x\r\nOrigin: " + SITE.encode() + b"\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    return int(status_line.split()[1]), dict(line.split(": ", 1) for line in lines), body


def test_the_local_servers_own_errors_are_json_like_the_lambdas(server):
    status, headers, body = raw_request(server, b"GET /?" + b"x" * 70_000 + b" HTTP/1.1")
    assert (status, headers["Content-Type"]) == (414, "application/json")
    assert json.loads(body)["Status"] == 414 and json.loads(body)["Error"] == "URITooLong"
    status, headers, body = raw_request(server, b"GET / HTTP/1.1 extra")
    assert (status, headers["Content-Type"], json.loads(body)["Status"]) == (400, "application/json", 400)


# --- bad input: one 400 naming the parameter, in JSON, before anything is read -----------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (site_query(TYPE, "US East", "ALL", "2026-11-02", "9999-12-31T23:59:59-23:59"),
         "End '9999-12-31T23:59:59-23:59' is out of range"),
        (site_query(TYPE, "US East", "ALL", "1970-01-01", "1970-01-02"),
         "Start 1970-01-01 00:00:00 is out of range: dates are from 2000-01-01 to 2099-12-31"),
        (site_query(TYPE, "x" * 60_000, "ALL", "2026-11-02", "2026-11-02"),
         "Region is 60000 characters long; at most 64 are accepted"),
        (site_query("D" * 65, "US East", "ALL", "2026-11-02", "2026-11-02"), "InstanceType is 65 characters long"),
        (site_query(TYPE, "US East", "1" * 17, "2026-11-02", "2026-11-02"), "AvailabilityZone is 17 characters long"),
        (site_query(TYPE, "US East", "ALL", "2026-11-02", "2026-11-02") + "&nocache=42",
         "unknown parameter 'nocache'; the parameters are TableName, Region, InstanceType, InstanceTier"),
        (site_query(TYPE, "US East", "ALL", "2026-11-02", "2026-11-02") + "&" + "k" * 5000 + "=1",
         "unknown parameter 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk... (5000 characters)'"),
        (site_query(TYPE, "US East", "ALL", "2026-11-02", "2026-11-02") + "&Region=EU+West",
         "parameter 'Region' is given more than once"),
        ("TableName=" + "t" * 100 + "&InstanceType=D2s_v3&Start=2026-11-02&End=2026-11-02",
         "TableName is 100 characters long; at most 64"),
    ],
)  # fmt: skip
def test_bad_input_is_one_400_naming_the_parameter(server, query, message, caplog):
    with caplog.at_level("INFO", logger="spotlake.query_api"):
        response = get(server, query)
    body = assert_refused(response, 400, "BadRequest", message)
    assert len(body["Message"]) < 300
    assert response.headers.get(CALLS_HEADER, "0") == "0"  # refused before any request to the store
    assert all(len(record.getMessage()) < 2000 for record in caplog.records)  # never logged whole


def test_a_request_over_the_budget_is_refused_after_one_small_read(server):
    """The table's type has four regions: all of them over the longest month the site allows is 4 x 33 = 132
    region-days, over the 128 budget; one GetItem (the regions index, half a read unit) tells, then the 400."""
    response = get(server, site_query(TYPE, "ALL", "ALL", "2027-01-31", "2027-03-03"))
    body = assert_refused(response, 400, "OverBudget", "4 regions x (32 days + 1) = 132 region-days, more than")
    assert "pick one region (a whole month is 33 region-days) or at most 31 days for all 4 regions" in body["Message"]
    assert (response.headers[CALLS_HEADER], response.headers[READ_UNITS_HEADER]) == ("1", "0.5")
    fits = get(server, site_query(TYPE, "ALL", "ALL", "2027-01-31", "2027-03-02"))  # 4 x 32 = 128
    assert body_of(fits)["Status"] == 200


# --- the Lambda entry point: the same handler, as AWS runs it -----------------------------------------------------

# A fresh interpreter in the unpacked Lambda zip, like a cold start: settings come from the environment only, and
# importing pandas or Dagster fails (the package holds neither); events are read as JSON lines, answers written the
# same way, then where the handler was loaded from and which blocked modules got imported (none).
LAMBDA_RUNNER = """
import json, sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pandas", "dagster", "numpy", "pyarrow"):
            raise ImportError(f"{name} is not in the Lambda package")
        return None

sys.meta_path.insert(0, Blocked())
from resources.query_api.handler import lambda_handler

for line in sys.stdin:
    print(json.dumps(lambda_handler(json.loads(line), None)), flush=True)
print(json.dumps(sys.modules["resources.query_api.handler"].__file__))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("pandas", "dagster", "numpy"))))
"""


@pytest.fixture(scope="module")
def lambda_package(tmp_path_factory) -> Path:
    """The Lambda zip as `make query-api-zip` builds it, unpacked as Lambda unpacks it into /var/task."""
    task = tmp_path_factory.mktemp("var-task")
    with zipfile.ZipFile(build_package(task / "spotlake-query-api.zip")) as archive:
        archive.extractall(task)
    return task


def run_lambda(
    package: Path, events: list[dict[str, Any]], environ: dict[str, str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """lambda_handler's answers to `events` in a fresh process on the unpacked package; also the blocked modules it
    imported (none). boto3 comes from this interpreter, as the Lambda runtime provides it."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTLAKE_", "AWS_", "PYTHON"))}
    done = subprocess.run(
        [sys.executable, "-c", LAMBDA_RUNNER],
        input="".join(json.dumps(e) + "\n" for e in events),
        env={**keep, **LOCAL_AWS_ENV, **environ, "PYTHONPATH": str(package)},
        cwd=package, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    *answers, loaded_from, imported = [json.loads(line) for line in done.stdout.splitlines()]
    assert Path(loaded_from).is_relative_to(package), loaded_from
    return answers, imported


def function_url_event(query: str, method: str = "GET", **headers: str) -> dict[str, Any]:
    """A Lambda function URL request (payload 2.0, as an HTTP API sends too) for `?{query}`."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/query-api/",
        "rawQueryString": query,
        "headers": {"origin": SITE, "accept": "application/json, text/plain, */*",
                    "accept-encoding": "gzip, deflate, br", "host": "abcdefgh.lambda-url.us-west-2.on.aws",
                    **{k.lower(): v for k, v in headers.items()}},  # fmt: skip
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefgh",
            "domainName": "abcdefgh.lambda-url.us-west-2.on.aws",
            "domainPrefix": "abcdefgh",
            "http": {"method": method, "path": "/query-api/", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                     "userAgent": "Mozilla/5.0"},  # fmt: skip
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": "02/Dec/2026:10:00:00 +0000",
            "timeEpoch": 1796205600000,
        },
        "isBase64Encoded": False,
    }
    if query:  # absent without a query string; the handler reads rawQueryString
        event["queryStringParameters"] = dict(parse_qsl(query, keep_blank_values=True))
    return event


def rest_api_event(params: dict[str, str], method: str = "GET") -> dict[str, Any]:
    """An API Gateway REST API proxy request (payload 1.0): parameters already decoded by API Gateway."""
    headers = {"Origin": SITE, "Accept": "application/json, text/plain, */*", "Accept-Encoding": "gzip, deflate, br"}
    return {
        "resource": "/query-api",
        "path": "/query-api/",
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": params,
        "multiValueQueryStringParameters": {k: [v] for k, v in params.items()},
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {"httpMethod": method, "resourcePath": "/query-api", "stage": "prod",
                           "requestId": str(uuid.uuid4()), "identity": {"sourceIp": "203.0.113.7"}},  # fmt: skip
        "body": None,
        "isBase64Encoded": False,
    }


def decoded(answer: dict[str, Any]) -> bytes:
    data = base64.b64decode(answer["body"]) if answer["isBase64Encoded"] else answer["body"].encode()
    return gzip.decompress(data) if answer["headers"].get("Content-Encoding") == "gzip" else data


def test_lambda_handler_answers_as_the_local_server_for_both_event_shapes(server, aws_endpoint, table, lambda_package):
    region_query = site_query(TYPE, "US West 2", "ALL", "2026-11-02", "2026-11-02")
    bad_query = site_query(TYPE, "ALL", "ALL", "2026-11-02", "2026-10-01")
    params = {"TableName": "azure", "Region": "US West 2", "InstanceType": TYPE, "InstanceTier": "*",
              "AvailabilityZone": "*", "Start": "2026-11-02", "End": "2026-11-02"}  # fmt: skip
    events = [
        function_url_event(region_query),
        rest_api_event(params),
        function_url_event(bad_query),
        function_url_event("", method="OPTIONS", **{"Access-Control-Request-Method": "GET"}),
        function_url_event(region_query, origin="https://evil.example"),
    ]
    environ = {"SPOTLAKE_ENV": "local", "SPOTLAKE_DYNAMODB_TABLE": table, "SPOTLAKE_AWS_ENDPOINT_URL": aws_endpoint}

    (v2, v1, bad, preflight, elsewhere), imported = run_lambda(lambda_package, events, environ)

    assert imported == []
    served = get(server, region_query)
    assert served.status_code == 200 and json.loads(served.content)["Data"]
    for answer in (v2, v1):
        assert answer["statusCode"] == 200
        assert answer["headers"]["Access-Control-Allow-Origin"] == SITE
        assert answer["headers"]["Content-Type"] == "application/json"
        assert decoded(answer) == served.content  # byte for byte the local server's body
    assert v2["isBase64Encoded"] and v2["headers"]["Content-Encoding"] == "gzip"  # a function URL passes gzip
    assert not v1["isBase64Encoded"] and "Content-Encoding" not in v1["headers"]  # REST: plain JSON
    assert bad["statusCode"] == 200 and decoded(bad) == get(server, bad_query).content
    assert json.loads(decoded(bad))["Status"] == 400
    assert (preflight["statusCode"], preflight["headers"]["Access-Control-Allow-Origin"]) == (204, SITE)
    assert "Access-Control-Allow-Origin" not in elsewhere["headers"] and decoded(elsewhere) == served.content


def test_lambda_settings_come_from_the_environment_with_clear_errors(aws_endpoint, table, lambda_package):
    query = site_query(TYPE, "US East", "1", "2026-11-02", "2026-11-02")
    base = {"SPOTLAKE_ENV": "local", "SPOTLAKE_DYNAMODB_TABLE": table, "SPOTLAKE_AWS_ENDPOINT_URL": aws_endpoint}
    two_origins = {**base, "SPOTLAKE_QUERY_API_ALLOWED_ORIGINS": f"{SITE}, http://localhost:3000"}
    (answer,), _ = run_lambda(lambda_package, [function_url_event(query, origin="http://localhost:3000")], two_origins)
    assert answer["headers"]["Access-Control-Allow-Origin"] == "http://localhost:3000"

    misconfigured = {**base, "SPOTLAKE_QUERY_API_ALLOWED_ORIGINS": "spotlake"}
    (answer,), _ = run_lambda(lambda_package, [function_url_event(query)], misconfigured)
    assert answer["statusCode"] == 500
    assert json.loads(answer["body"]) == {
        "Status": 500, "Error": "InternalError", "Message": "the query API is misconfigured; see its log"
    }  # fmt: skip


# --- the association file, fetched as the site fetches it -------------------------------------------------------


def test_association_file_over_http_drives_queries_that_find_data(server, aws_endpoint, buckets, make_store, client,
                                                                   table):  # fmt: skip
    records = query_history(client, table_name=table, instance_type=TYPE, start="2026-11-02", end="2026-11-02")
    store: S3Store = make_store()
    body, _ = merge_association(None, pd.DataFrame(records))
    store.put(ASSOCIATION_KEY, body, content_type="application/json", public=True)

    # the site's axios.get of the public object: no credentials, no signature
    fetched = requests.get(f"{aws_endpoint}/{buckets.write}/{ASSOCIATION_KEY}", timeout=10)
    assert fetched.status_code == 200 and fetched.content == body
    grants = local_client("s3", aws_endpoint, AWS_REGION).get_object_acl(Bucket=buckets.write, Key=ASSOCIATION_KEY)
    assert {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"} in [
        g["Grantee"] for g in grants["Grants"] if g["Permission"] == "READ"
    ]

    instances, regions, per_instance = site_form_lists(fetched.content)
    assert instances == [TYPE] and regions == ["ALL", *sorted(REGIONS)]
    for region in per_instance[TYPE][1:]:  # each region the form offers for the type finds its records
        answer = body_of(get(server, site_query(TYPE, region, "ALL", "2026-11-02", "2026-11-02")))
        assert answer["Data"] and {r["Region"] for r in answer["Data"]} == {region}


# --- the embedded stack serves it ----------------------------------------------------------------------------------


def test_the_local_stack_serves_the_endpoint_and_exports_its_url():
    with start_local_stack(seed=1) as stack:
        assert stack.query_api_url and stack.env["SPOTLAKE_QUERY_API_URL"] == stack.query_api_url
        response = requests.get(
            f"{stack.query_api_url}?{site_query(TYPE, 'US East', '', '2026-11-28', '2026-11-28')}",
            headers=BROWSER, timeout=30,
        )  # fmt: skip
        hint = f"no such instance type {TYPE!r}: the history holds nothing for it"  # the stack starts empty
        assert (response.status_code, response.json()) == (200, {"Status": 200, "Data": [], "Hint": hint})
        assert response.headers["Access-Control-Allow-Origin"] == SITE
    with pytest.raises(requests.ConnectionError):
        requests.get(stack.query_api_url, timeout=5)
