"""The public query endpoint under load: the site's queries and the worst allowed one, at 8 and 32 clients at once.

Run: `python -m benchmarks.query_load [--days 30] [--json]` (about 15 minutes here, all of it moto). It writes
`--days` of one instance type's full-scale history (every public region, 4 zones x 11 desired counts,
benchmarks/history_query.synthetic_history) into a moto server, serves it with the local query server
(spotlake_assets/local/query_api.py: the production handler over HTTP), and sends, from N client threads at once,
a mix of what the site's form asks (docs/web-site.md "The query"), each client one request, the kinds taken in
turn from a fixed cycle of ten (PATTERN: 4 region_day, 2 region_week_zone, 1 each of the others); first one client
sending one request of each kind after the other (the time of one request alone, which sizes the Lambda's
concurrency: docs/security.md "Sizing the query API"):

| kind | share | request |
|---|---|---|
| region_day | 40% | one region, all zones, one day (the form's usual question) |
| region_week_zone | 20% | one region, one zone, a week |
| region_month | 10% | one region, all zones, the longest month the date picker allows (33 region-days) |
| all_regions_zone_day | 10% | all regions, one zone, one day |
| worst_allowed | 10% | all regions, all zones, one day: the most region-days the budget lets one request read |
| over_budget | 10% | all regions over a month, what the form also allows: refused after one small read |

Per concurrency and per kind it prints p50 and p95 latency, the answers' statuses, and the DynamoDB requests and
read units per request as the answers report them (`X-SpotLake-Read-Requests`, `X-SpotLake-Read-Units`: the
larger of DynamoDB's `ConsumedCapacity` and the items' sizes, since moto reports a flat half unit per request).
`worst_allowed_read_units_before` is what the worst request the site's form allowed before the budget (all
regions over a month, every page read to count the points) reads: measured by running that query without a
budget. Latencies are moto's: they compare the kinds with each other and the two concurrencies, not with
production. moto's Query works through the whole table and sizes every item of the partition (seconds a call
over a month) where DynamoDB reads one key range, so the benchmark makes moto read the key range
(`moto_reads_one_partition`): a request's time then grows with what it reads, as on DynamoDB.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import requests

from benchmarks.history_query import public_region_names, synthetic_history, write_history

TYPE = "D2s_v3"
START = datetime(2026, 11, 1)
PATTERN = ("region_day", "region_week_zone", "region_day", "region_month", "all_regions_zone_day", "region_day",
           "worst_allowed", "region_week_zone", "region_day", "over_budget")  # fmt: skip
CONCURRENCY = (8, 32)


def moto_reads_one_partition() -> None:
    """Make moto's Query read only the items of its key range, as DynamoDB does.

    moto filters every item of the table by partition key, then sizes every item of the partition (about 1 ms each)
    before testing its sort key, so a Query's time grows with the table, not with what it reads. Only for this
    benchmark's in-process moto server: moto's own query code still runs, on the items DynamoDB would read, and
    gives the same items, pages and sizes."""
    from moto.dynamodb.models.table import Table

    original = Table.query
    if getattr(original, "one_partition", False):
        return

    class KeyRange:
        def __init__(self, table: Any, hash_key: Any, comparison: str | None, bounds: list[Any]) -> None:
            self._table, self._hash_key, self._comparison, self._bounds = table, hash_key, comparison, bounds

        def __getattr__(self, name: str) -> Any:
            return getattr(self._table, name)

        def all_items(self) -> list[Any]:
            items = list(self._table.items.get(self._hash_key, {}).values())
            if not self._comparison:
                return items
            return [item for item in items if item.range_key.compare(self._comparison, self._bounds)]

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # moto's arguments after hash_key: range_comparison, range_objs, limit, exclusive_start_key,
        # scan_index_forward, projection_expressions, index_name
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or not self.range_key_attr or hash_key is None or len(args) < 2:
            return original(self, hash_key, *args, **kwargs)
        return original(KeyRange(self, hash_key, args[0], args[1]), hash_key, *args, **kwargs)

    query.one_partition = True  # type: ignore[attr-defined]
    Table.query = query


def site_params(region: str, zone: str, start: str, end: str) -> dict[str, str]:
    """The site's query (its parameters and their order); `*` for ALL."""
    return {"TableName": "azure", "Region": region, "InstanceType": TYPE, "InstanceTier": "*",
            "AvailabilityZone": zone, "Start": start, "End": end}  # fmt: skip


def request_of(kind: str, rng: random.Random, regions: list[str], days: int) -> dict[str, str]:
    """A request of `kind` at a random place in the history (dates within it, so that every answer has data)."""
    last = days - 1

    def day(offset: int = 0) -> str:
        return (START + timedelta(days=offset)).date().isoformat()

    d = rng.randint(1, last)
    if kind == "region_day":
        return site_params(rng.choice(regions), "*", day(d), day(d))
    if kind == "region_week_zone":
        d = rng.randint(1, max(1, last - 7))
        return site_params(rng.choice(regions), rng.choice(["1", "2", "3", "Single"]), day(d), day(d + 6))
    if kind == "region_month":
        return site_params(rng.choice(regions), "*", day(0), day(min(last, 30)))
    if kind == "all_regions_zone_day":
        return site_params("*", rng.choice(["1", "2", "3", "Single"]), day(d), day(d))
    if kind == "worst_allowed":
        return site_params("*", "*", day(d), day(d))
    if kind == "over_budget":
        return site_params("*", "*", day(0), day(min(last, 30)))
    raise ValueError(kind)


def send(url: str, params: dict[str, str]) -> dict[str, Any]:
    began = time.perf_counter()
    response = requests.get(url, params=params, headers={"Accept-Encoding": "gzip"}, timeout=600)
    elapsed = time.perf_counter() - began
    body = response.json()
    return {
        "s": elapsed,
        "status": body.get("Status", response.status_code),
        "error": body.get("Error"),
        "records": len(body.get("Data") or []),
        "calls": int(response.headers.get("X-SpotLake-Read-Requests", 0)),
        "read_units": float(response.headers.get("X-SpotLake-Read-Units", 0)),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [r["s"] for r in results]
    statuses: dict[str, int] = defaultdict(int)
    for r in results:
        statuses[str(r["status"]) + (f" {r['error']}" if r["error"] else "")] += 1
    return {
        "requests": len(results),
        "p50_s": round(statistics.median(seconds), 3),
        "p95_s": round(percentile(seconds, 0.95), 3),
        "statuses": dict(sorted(statuses.items())),
        "errors": sum(1 for r in results if r["status"] != 200 and r["error"] != "OverBudget"),
        "calls_mean": round(statistics.fmean(r["calls"] for r in results), 1),
        "calls_max": max(r["calls"] for r in results),
        "read_units_mean": round(statistics.fmean(r["read_units"] for r in results), 1),
        "read_units_max": max(r["read_units"] for r in results),
    }


def load_clients(url: str, plan: list[list[tuple[str, dict[str, str]]]]) -> dict:
    """One thread per client of `plan`, all at once, each sending its requests one after the other."""

    def client(requests_: list[tuple[str, dict[str, str]]]) -> list[dict[str, Any]]:
        return [{"kind": kind, **send(url, params)} for kind, params in requests_]

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(plan)) as pool:
        results = [r for done in pool.map(client, plan) for r in done]
    wall = time.perf_counter() - began
    by_kind = defaultdict(list)
    for r in results:
        by_kind[r["kind"]].append(r)
    return {
        "clients": len(plan),
        "wall_s": round(wall, 1),
        "all": summarise(results),
        "by_kind": {kind: summarise(rs) for kind, rs in sorted(by_kind.items())},
    }


def main(argv: list[str] | None = None) -> int:
    from resources.history_table import HistoryTable
    from resources.query_api.config import QueryApiConfig, make_client
    from resources.query_api.handler import QueryApi
    from resources.query_api.reader import query_history
    from resources.query_api.request import ReadStats
    from spotlake_assets.local.aws import LOCAL_AWS_CREDENTIALS, LOCAL_AWS_ENV, start_moto_server
    from spotlake_assets.local.query_api import QueryApiServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="days of history (at least 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="only the JSON summary")
    args = parser.parse_args(argv)
    if args.days < 8:
        parser.error("--days must be at least 8 (the week-long queries)")
    say = (lambda *a: None) if args.json else print
    os.environ.update(LOCAL_AWS_ENV)  # moto only: fake credentials for the boto3 chain
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    moto_reads_one_partition()
    local = start_moto_server()
    try:
        regions = public_region_names()
        began = time.perf_counter()
        synthetic = synthetic_history(TYPE, START, args.days, regions=regions, seed=args.seed)
        table = HistoryTable(table_name=f"azure-load-{uuid.uuid4().hex[:8]}", endpoint_url=local.endpoint_url,
                             write_workers=16)  # fmt: skip
        table.ensure_table()
        items = write_history(table, synthetic)
        say(f"history: {len(synthetic.points)} points, {items} items, {len(regions)} regions, {args.days} days, "
            f"written in {time.perf_counter() - began:.0f} s")  # fmt: skip

        before = ReadStats()
        began = time.perf_counter()
        end = (START + timedelta(days=min(args.days - 1, 30))).date().isoformat()
        config = QueryApiConfig(table_name=table.table_name, aws_region="us-west-2",
                                endpoint_url=local.endpoint_url, timeout_seconds=600)  # fmt: skip
        patient = make_client(config, read_timeout=600, **LOCAL_AWS_CREDENTIALS)  # a month of all regions, unbudgeted
        query_history(patient, table_name=table.table_name,
                      instance_type=TYPE, start=START.date().isoformat(), end=end, max_points=10**9,
                      max_region_days=None, stats=before)  # fmt: skip
        say(f"before the budget, all regions over {START.date()}..{end}: {before.calls} requests, "
            f"{before.read_units:g} read units, {time.perf_counter() - began:.0f} s")  # fmt: skip

        server = QueryApiServer(QueryApi(config, make_client(config, read_timeout=600, **LOCAL_AWS_CREDENTIALS)))
        rng = random.Random(args.seed)
        try:
            alone = load_clients(server.url, [[(kind, request_of(kind, rng, regions, args.days))
                                               for kind in dict.fromkeys(PATTERN)]])  # fmt: skip
            say(json.dumps(alone))
            runs = []
            for clients in CONCURRENCY:
                kinds = [PATTERN[i % len(PATTERN)] for i in range(clients)]
                run = load_clients(server.url, [[(kind, request_of(kind, rng, regions, args.days))] for kind in kinds])
                say(json.dumps(run))
                runs.append(run)
        finally:
            server.stop()
    finally:
        local.stop()

    worst_after = max(run["by_kind"].get("worst_allowed", {}).get("read_units_max", 0) for run in [alone, *runs])
    summary = {
        "query_history_days": args.days,
        "query_regions": len(regions),
        "worst_allowed_read_units_before": before.read_units,
        "worst_allowed_requests_before": before.calls,
        "worst_allowed_read_units_after": worst_after,
        "over_budget_read_units": max(run["by_kind"].get("over_budget", {}).get("read_units_max", 0) for run in runs),
        **{f"query_alone_s_{kind}": stats["p50_s"] for kind, stats in alone["by_kind"].items()},
        **{f"query_alone_read_units_{kind}": stats["read_units_max"] for kind, stats in alone["by_kind"].items()},
        **{f"query_p50_s_{run['clients']}": run["all"]["p50_s"] for run in runs},
        **{f"query_p95_s_{run['clients']}": run["all"]["p95_s"] for run in runs},
        **{f"query_errors_{run['clients']}": run["all"]["errors"] for run in runs},
        **{f"query_read_units_mean_{run['clients']}": run["all"]["read_units_mean"] for run in runs},
        "alone": alone,
        "runs": runs,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
