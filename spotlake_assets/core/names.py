"""Names of the assets and jobs, in one place: the UI shows them, the key layout and the jobs use them."""

PRICE_RAW = "azure_price_raw"
EVICTION_RAW = "azure_eviction_raw"
SPS_REQUEST_POOL = "azure_sps_request_pool"
SPS_RAW = "azure_sps_raw"
SNAPSHOT = "azure_spot_snapshot"
CHANGES = "azure_spot_changes"
STATE = "azure_spot_state"
HISTORY = "azure_dynamodb_history"
PUBLIC_OUTPUTS = "azure_public_outputs"
# Monthly: the history of a month as Parquet on S3 (docs/contract.md "The archive").
ARCHIVE = "azure_history_archive"

RAW_SOURCES = (PRICE_RAW, EVICTION_RAW, SPS_RAW)
# Every asset of the 10-minute graph, in the order a run materializes them.
TEN_MINUTE_ASSETS = (*RAW_SOURCES, SNAPSHOT, CHANGES, STATE, HISTORY, PUBLIC_OUTPUTS)

COLLECT_JOB = "azure_collect_10min"
REQUEST_POOL_JOB = "azure_sps_request_pool_daily"
ARCHIVE_JOB = "azure_history_archive_monthly"
