"""A day's checkpoint built a chunk of markets at a time (spotlake_assets/core/history_items.CheckpointChunks) gives
exactly the items of the whole checkpoint, and the history load writes them (against a real moto server over HTTP)."""

from __future__ import annotations

import json
import uuid

import pandas as pd

from resources.history_table import HistoryTable
from spotlake_assets.core.history_items import CheckpointChunks, checkpoint_items
from spotlake_assets.core.layout import history_manifest_key
from spotlake_assets.core.transforms.state import ROW_COLUMNS

from .test_dynamodb_history import all_items, make_rows

AS_OF = "2026-11-02 00:00:00"


def state_rows() -> pd.DataFrame:
    """Series of several markets, in an order where one market's rows are far apart (two tiers, two spellings of
    one type), as the state sorts them by tier first."""
    rows = [
        {"InstanceTier": tier, "InstanceType": kind, "Region": region, "AvailabilityZone": zone, "DesiredCount": n}
        for tier in ("Basic", "Standard")
        for kind in ("D2s_v3", "E4s_v5", "d2s_V3 ")
        for region in ("US East", "Korea Central")
        for zone in ("1", "Single")
        for n in (1, 50)
        if not (kind == "d2s_V3 " and tier == "Basic")  # the variant spelling names other series of a market
    ]
    frame = make_rows(*rows)
    frame["Time"] = "2026-11-01 23:50:00"
    return frame[ROW_COLUMNS]


def by_pk(items: list[dict]) -> dict[str, dict]:
    assert len({i["pk"]["S"] for i in items}) == len(items)
    return {i["pk"]["S"]: i for i in items}


def test_chunks_hold_whole_markets_and_give_the_whole_checkpoints_items():
    state = state_rows()
    whole = by_pk(checkpoint_items(state, AS_OF))
    for size in (1, 7, 10_000):
        chunks = CheckpointChunks(state, AS_OF, rows_per_chunk=size)
        items = [item for rows in chunks.rows() for item in checkpoint_items(rows, AS_OF)]
        assert by_pk(items) == whole  # no market split across chunks: each item whole, once
        assert chunks.keys == {(pk, item["sk"]["S"]) for pk, item in whole.items()}
    assert len(list(CheckpointChunks(state, AS_OF, rows_per_chunk=1).rows())) == len(whole)


def test_the_history_load_writes_and_lists_the_checkpoint(aws_endpoint, make_store):
    from spotlake_assets.local.aws import local_client

    admin = local_client("dynamodb", aws_endpoint, "us-west-2")
    tables = []
    for _ in range(2):
        history = HistoryTable(table_name=f"azure-t-{uuid.uuid4().hex[:10]}", endpoint_url=aws_endpoint)
        history.ensure_table()
        tables.append(history)
    state, s3 = state_rows(), make_store()
    tables[0].write_checkpoint(state, AS_OF)
    # the partition whose data time is 2026-11-02 00:00, with no changed rows: only its checkpoint
    counts = tables[1].load_partition(s3, "2026-11-01-23:50", state.iloc[:0], checkpoint_of=state)
    assert counts == (0, 0, 4)  # points written, stale deleted, checkpoint items
    assert all_items(admin, tables[1].table_name) == all_items(admin, tables[0].table_name)
    listed = json.loads(s3.get(history_manifest_key("2026-11-01-23:50")))
    assert sorted(pk for pk, _ in listed) == sorted(by_pk(checkpoint_items(state, AS_OF)))
