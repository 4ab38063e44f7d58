"""The Azure Resource Graph API the emulator serves, for Spot eviction rates:
POST /providers/Microsoft.ResourceGraph/resources.

It answers only the skuspotevictionrate query of spotresources: rows of the catalogue's eviction buckets for the
data epoch, in pages of `$top` rows linked by $skipToken (which keeps the epoch of the first page), behind a
bearer token and a quota of `arg_quota_per_5s` queries per 5 s reported in x-ms-user-quota-* headers. The query
text matters as in Azure: which size-name path it reads, whether it projects and sorts by `id`. On knobs, as Azure
documents (docs/azure-sources.md): short pages, unstable pages of an unsorted query, truncated answers, size names
at one path only, '%'-suffixed buckets.
"""

from __future__ import annotations

import base64
import json
import re
import time
from functools import lru_cache
from typing import Any

from flask import Flask, Response, request

from .. import drift
from .faults import enter, with_record_faults
from .knobs import ARG_MAX_TOP
from .login import authorized
from .responses import error, hms, json_answer, rate_limited
from .state import EmulatorState

_SORTED_BY_ID = re.compile(r"\|\s*(order|sort)\s+by\s+id\b", re.IGNORECASE)
_PROJECTS_ID = re.compile(r"\|\s*project\s+(id\s*,|[^|]*,\s*id\s*(,|\||$))", re.IGNORECASE)
_READS_SKU_NAME = re.compile(r"\bsku\.name\b", re.IGNORECASE)
_READS_PROPERTIES_SKU_NAME = re.compile(r"\b(properties|props)\.skuName\b", re.IGNORECASE)


def add_routes(app: Flask, state: EmulatorState) -> None:
    app.add_url_rule(
        "/providers/Microsoft.ResourceGraph/resources",
        "resource_graph",
        view_func=lambda: resource_graph_answer(state),
        methods=["POST"],
    )


def resource_graph_answer(state: EmulatorState) -> Response:
    """One page of the eviction-rate query, or the error Azure gives for the request."""
    if fault := enter(state, "resource_graph"):
        return fault
    if denied := authorized(state):
        return denied
    if not request.args.get("api-version"):
        return error(400, "MissingApiVersionParameter", "The api-version query parameter is required.")
    body = request.get_json(silent=True)
    query = body.get("query") if isinstance(body, dict) else None
    if isinstance(query, str):
        with state.lock:
            state.graph_queries[query] += 1
    if not isinstance(query, str) or "skuspotevictionrate" not in query.lower():
        return error(400, "BadRequest", "The emulator answers only the skuspotevictionrate spotresources query.")
    options = body.get("options") or {}
    try:
        top = int(options.get("$top", 100))
        offset, epoch = (
            _decode_skip_token(options["$skipToken"])
            if options.get("$skipToken")
            else (int(options.get("$skip", 0)), None)
        )
    except (ValueError, TypeError, KeyError) as exc:
        return error(400, "BadRequest", f"Invalid options $top/$skip/$skipToken: {exc}")
    if not 1 <= top <= ARG_MAX_TOP:
        return error(400, "BadRequest", f"options.$top must be between 1 and {ARG_MAX_TOP}, got {top}")
    if options.get("resultFormat", "objectArray") != "objectArray":
        return error(400, "BadRequest", "The emulator serves only resultFormat 'objectArray'.")
    with state.lock:
        now, quota = time.monotonic(), state.config.arg_quota_per_5s
        used = state.arg_window.prune(now)
        resets_in = state.arg_window.times[0] + state.arg_window.width - now if used else 5.0
        if used >= quota:
            state.throttled["resource_graph"] += 1
            return rate_limited("resource_graph", resets_in, f"Quota of {quota} queries per 5 s used")
        state.arg_window.times.append(now)
    headers = {
        "x-ms-user-quota-remaining": str(quota - used - 1),
        "x-ms-user-quota-resets-after": hms(resets_in),
    }
    cfg = state.config
    key = state.data_key(epoch)  # a skip token keeps the epoch of the first page
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
    page = with_record_faults(
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
    return json_answer(answer, headers=headers)


def _encode_skip_token(offset: int, epoch: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "e": epoch}).encode()).decode()


def _decode_skip_token(token: str) -> tuple[int, int]:
    data = json.loads(base64.urlsafe_b64decode(token.encode()))
    return int(data["o"]), int(data["e"])


@lru_cache(maxsize=32)
def _eviction_answer(key: drift.DataKey, query: str, sku_name_path: str, rate_style: str) -> tuple[dict[str, str], ...]:
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
    for row in drift.eviction_rows(key):
        rate = drift.percent_bucket(row["evictionRate"]) if rate_style == "percent" else row["evictionRate"]
        resource_id = drift.eviction_resource_id(row["location"], row["skuName"])
        answer = {"location": row["location"], "skuName": row["skuName"], "evictionRate": rate}
        out.append((resource_id, {"id": resource_id, **answer} if with_id else answer))
    if _SORTED_BY_ID.search(query):
        out.sort(key=lambda pair: pair[0])
    return tuple(row for _, row in out)
