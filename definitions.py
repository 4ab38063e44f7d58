"""The Dagster code location: `dagster dev -w workspace.yaml` loads `defs` for SPOTLAKE_ENV (default `local`)."""

from resources.settings import load_settings
from spotlake_assets.defs import build_definitions

defs = build_definitions(load_settings())
