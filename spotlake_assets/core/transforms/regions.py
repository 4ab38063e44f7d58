"""Which Azure regions belong to sovereign clouds (excluded from the dataset).

Matched by region code, not display name: the legacy matched the display name's first word
(GOV/DoD/China/Germany), but Azure's names start with a country code ('US Gov Virginia'), so it
matched almost nothing. Public regions such as germanywestcentral stay in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SOVEREIGN_PREFIXES = ("usgov", "usdod", "ussec", "usnat", "china")
SOVEREIGN_CODES = frozenset({"germanycentral", "germanynortheast"})


def sovereign_mask(region_codes: pd.Series) -> pd.Series:
    """Which region codes of a column belong to a sovereign cloud."""
    # a column holds a few dozen distinct codes: judge each distinct code once
    positions, uniques = pd.factorize(region_codes.astype("string"))
    codes = pd.Series(uniques, dtype="string").str.strip().str.casefold()
    sovereign = (codes.str.startswith(SOVEREIGN_PREFIXES) | codes.isin(SOVEREIGN_CODES)).fillna(False).astype(bool)
    flags = np.append(sovereign.to_numpy(dtype=bool), False)  # position -1 (missing) is not sovereign
    return pd.Series(flags[positions], index=region_codes.index)


def join_key(values: pd.Series) -> pd.Series:
    """Join-key normalisation used on every side of every join: strip and case-fold; a missing value stays missing
    (it joins nothing). The merge's series keys add the published fill for missing values: `state.series_key`."""
    return values.astype("string").str.strip().str.casefold()
