"""SpotLake's Azure collector: assets, checks, jobs and the embedded local stack."""

import warnings

# BackfillPolicy.single_run() is how a day of backfill becomes one run (design.md); the beta notice about it
# would otherwise print once per asset at every load. Matched by its text, without importing Dagster here: the
# query API (resources/history_api.py) imports spotlake_assets.core in an AWS Lambda that has no Dagster.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`")
