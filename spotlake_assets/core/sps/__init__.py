"""Pure (no I/O) core of Spot Placement Score collection: request packing, quota rotation, answer rows.

- packing: cover the (region, size) pairs with few requests of at most 8 regions x 5 sizes.
- rotation: round-robin over (subscription, URL location) pairs within the observed rate limit, as JSON state.
- answers: HTTP 400 error bodies -> learned facts; SPS answers -> dataset rows.
"""
