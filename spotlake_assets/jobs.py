"""Jobs and schedules: the whole 10-minute graph every 10 minutes, the SPS request pool once a day."""

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

from .partitions import DAILY_PARTITIONS, TEN_MINUTE_PARTITIONS

TEN_MINUTE_ASSETS = AssetSelection.assets(
    "azure_price_raw",
    "azure_eviction_raw",
    "azure_sps_raw",
    "azure_spot_snapshot",
    "azure_spot_changes",
    "azure_spot_state",
    "azure_dynamodb_history",
    "azure_public_outputs",
)

collect_job = define_asset_job(
    "azure_collect_10min",
    selection=TEN_MINUTE_ASSETS,
    partitions_def=TEN_MINUTE_PARTITIONS,
    description="Collect price, IF and SPS for a 10-minute partition, merge, store the changes, publish.",
)
request_pool_job = define_asset_job(
    "azure_sps_request_pool_daily",
    selection=AssetSelection.assets("azure_sps_request_pool"),
    partitions_def=DAILY_PARTITIONS,
    description="Rebuild the day's SPS request pool from its first price snapshot.",
)

# At each 10-minute boundary, the partition whose window just closed (its data time is the tick).
collect_schedule = build_schedule_from_partitioned_job(collect_job)
# Today's pool at 00:15, after the first partition of the day (collected at 00:10) has its price snapshot.
request_pool_schedule = build_schedule_from_partitioned_job(request_pool_job, hour_of_day=0, minute_of_hour=15)
