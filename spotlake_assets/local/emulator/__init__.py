"""A local Azure emulator: Retail Prices API, Resource Graph, Spot Placement Scores and an Entra ID login.

It answers with the exact shapes and errors of docs/contract.md "Sources", over real HTTP (and HTTPS with a
trustme CA for the login endpoint, so the real azure-identity/MSAL client works against it), and, on knobs, with
the behaviours Azure documents that a well-behaved run never meets (docs/azure-sources.md): price pages of another
size, unstable Resource Graph pages for an unsorted query, truncated answers, '%'-suffixed eviction buckets, a size
name at only one field path, subscriptions without the SPS role, subscription-wide SPS throttling and non-public
names among the supported SPS locations. Its data are a pure function of seed, scale and the 10-minute epoch of
the emulator clock: what exists from `spotlake_assets.local.catalogue`, how values move per epoch from
`spotlake_assets.local.drift`, the price list's items from `spotlake_assets.local.price_list`.

How the parts fit:
- `server`: `AzureEmulator`, the only entry point. It owns one `EmulatorState`, builds the HTTP app from the API
  modules' routes plus the /_emulator/... admin routes, and the HTTPS app from `login`, and serves both on
  werkzeug daemon threads.
- `state`: `EmulatorState`, everything shared behind one lock: the knobs, the clock, the tokens the login issued,
  the burst windows and the counters behind `stats()`. API modules hold no state of their own.
- one module per API, each a set of view functions of the state: `prices` (Retail Prices), `resource_graph`
  (eviction rates), `sps` (Spot Placement Scores), `login` (Entra ID discovery and tokens over TLS, and the
  bearer-token check the other management APIs call).
- `knobs`: `EmulatorConfig`, every knob with its default and validation, changeable while running, in-process
  (`AzureEmulator.configure`) or over HTTP (`POST /_emulator/config`).
- `faults`: the injected failures every API request may meet first, and the bad records of `record_faults`.
- `responses`: the JSON, error and 429 answers the APIs share.
- `clock`: the emulator clock and the sliding windows of request times.

Time: the SPS hourly limit and the data epoch read the emulator clock (settable, so tests move time instead of
waiting); burst limits (prices per second, Resource Graph per 5 s) and token lifetimes use real time.
"""

from .knobs import EmulatorConfig
from .server import AzureEmulator
from .sps import SPS_THROTTLE_TEXT

__all__ = ["SPS_THROTTLE_TEXT", "AzureEmulator", "EmulatorConfig"]
