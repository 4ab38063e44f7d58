"""Spot Placement Scores: the daily request pool, every (region, size) pair of the day's first price snapshot
that SPS is asked about, packed into requests (spotlake_assets/sources/sps.py collects the scores)."""

from datetime import datetime

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, AssetsDefinition, Failure, Output, asset

from resources.clock import Clock
from resources.io_manager import StoredPartitions
from resources.s3 import S3Store
from resources.sps_state import SpsStateStore

from ..core import names
from ..core.sps.packing import baseline_requests
from ..core.sps.pool import build_pool
from ..core.sps.rotation import invalid_in_force
from ..core.timekeys import parse_partition_key, partition_key_for_data_time
from ..monitoring import measure, run_metadata
from ..partitions import DAY_AND_DAY_BEFORE, Partitions


def first_price_of_day(day: str, prices: StoredPartitions) -> tuple[str, pd.DataFrame]:
    """The day's first stored price snapshot by data time: partitions from the day before's last one (data time
    00:00) to the day's last but one (data time 23:50)."""
    first = partition_key_for_data_time(parse_partition_key(f"{day}-00:00"))
    last = partition_key_for_data_time(parse_partition_key(f"{day}-23:50"))
    for key in sorted(k for k in prices if first <= k <= last):
        frame = prices[key]
        if frame is not None:
            return key, frame
    raise Failure(
        f"no azure_price_raw snapshot with a data time on {day}; materialize azure_price_raw for the day first"
    )


def pool_of_prices(price: pd.DataFrame, store: S3Store, now: datetime) -> tuple[pd.DataFrame, tuple[int, int]]:
    """The request pool of a price snapshot without the regions and sizes SPS answered invalid in the day before
    `now` (older ones are asked again), and how many regions and sizes that left out."""
    invalid_regions, invalid_sizes = invalid_in_force(SpsStateStore(store).load(), now)
    return build_pool(price, invalid_regions, invalid_sizes), (len(invalid_regions), len(invalid_sizes))


def build_sps_pool_asset(partitions: Partitions) -> AssetsDefinition:
    @asset(
        name=names.SPS_REQUEST_POOL,
        partitions_def=partitions.days,
        group_name="sps",
        kinds={"pandas"},
        ins={"prices": AssetIn(names.PRICE_RAW, partition_mapping=DAY_AND_DAY_BEFORE)},
    )
    def azure_sps_request_pool(
        context: AssetExecutionContext, store: S3Store, clock: Clock, prices: StoredPartitions
    ):
        """Every (region code, size) pair of the day's first price snapshot, minus the regions and sizes SPS has
        answered as invalid in the last day (persisted; older ones are asked again), packed into requests of at
        most 8 regions x 5 sizes. One row per pair with the id of the request that asks for it, the region's
        display name and the size's tier and type."""
        day = context.partition_key
        with measure() as m:
            source, price = first_price_of_day(day, prices)
            pool, left_out = pool_of_prices(price, store, clock.now())
            pairs = list(zip(pool["RegionCodeSPS"], pool["InstanceTypeSPS"], strict=True))
            baseline = len(baseline_requests(pairs))
        return Output(
            [(day, pool)],
            metadata={
                "rows": len(pool),
                "pairs": len(pool),
                "requests": int(pool["request_id"].nunique()),
                "baseline_requests": baseline,
                "price_partition": source,
                "invalid_regions_left_out": left_out[0],
                "invalid_sizes_left_out": left_out[1],
                **run_metadata(m),
            },
        )

    return azure_sps_request_pool
