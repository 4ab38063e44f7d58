"""SpotLake's Azure collector: assets, checks, jobs and the embedded local stack."""

import warnings

from dagster import BetaWarning

# BackfillPolicy.single_run() is how a day of backfill becomes one run (design.md); the beta notice about it
# would otherwise print once per asset at every load.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)
