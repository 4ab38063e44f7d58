"""The raw snapshot assets: prices, eviction rates, Spot Placement Scores and the daily request pool."""
