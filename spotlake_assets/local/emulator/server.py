"""The emulator's server: `AzureEmulator`, which wires the API modules into two Flask apps on werkzeug threads.

One app over HTTP serves the Retail Prices API (`prices`), Resource Graph (`resource_graph`), the SPS API
(`sps`) and the admin routes /_emulator/config, /_emulator/clock, /_emulator/stats and /_emulator/reset-stats;
the other, over HTTPS, serves the Entra ID login (`login`). `AzureEmulator` owns the one `EmulatorState` they
all share and is the in-process face of the emulator: lifecycle, addresses, credentials, knobs, clock, stats.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .. import catalogue as cat
from . import login, prices, resource_graph, sps
from .knobs import EmulatorConfig
from .responses import error, json_answer
from .state import EmulatorState


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per request would drown test output
        pass


class AzureEmulator:
    """Two Flask apps (prices/management/admin over HTTP, login over HTTPS) on werkzeug daemon threads."""

    def __init__(self, config: EmulatorConfig | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self._state = EmulatorState(config, clock)
        self._servers: list[BaseWSGIServer] = []
        self._threads: list[threading.Thread] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._base_url = self._authority = self._ca_file = ""

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0, login_port: int = 0) -> AzureEmulator:
        """Serve on `port` (prices, management, admin) and `login_port` (HTTPS login); 0 picks a free port."""
        if self._servers:
            raise RuntimeError(f"the Azure emulator already runs at {self._base_url}")
        self._tmp = tempfile.TemporaryDirectory(prefix="azure-emulator-")
        tls, self._ca_file = login.tls_context(host, self._tmp.name)
        try:
            api = self._serve(make_server(host, port, self._api_app(), threaded=True, request_handler=_QuietHandler))
            login_server = self._serve(
                make_server(
                    host,
                    login_port,
                    login.login_app(self._state),
                    threaded=True,
                    request_handler=_QuietHandler,
                    ssl_context=tls,
                )
            )
        except BaseException:
            self.stop()
            raise
        self._base_url = f"http://{host}:{api.server_port}"
        self._authority = f"{host}:{login_server.server_port}"
        return self

    def _serve(self, server: BaseWSGIServer) -> BaseWSGIServer:
        thread = threading.Thread(target=server.serve_forever, name=f"azure-emulator-{server.server_port}", daemon=True)
        thread.start()
        self._servers.append(server)
        self._threads.append(thread)
        return server

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> AzureEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def authority(self) -> str:
        return self._authority

    @property
    def ca_file(self) -> str:
        return self._ca_file

    @property
    def credentials(self) -> dict[str, Any]:
        """The service principal and subscriptions the emulator accepts (deterministic from the seed)."""
        cfg = self._state.config
        return {
            **cat.service_principal(cfg.seed),
            "subscriptions": cat.subscription_ids(cfg.seed, cfg.subscription_count),
        }

    # ---- knobs, clock, stats ---------------------------------------------------------------------

    @property
    def config(self) -> EmulatorConfig:
        return self._state.config

    def configure(self, **knobs: Any) -> None:
        self._state.configure(**knobs)

    def now(self) -> datetime:
        return self._state.now()

    def set_time(self, t: datetime | None) -> None:
        """Freeze the emulator clock at `t` (aware); None returns to the base clock."""
        self._state.set_time(t)

    def advance(self, seconds: float) -> None:
        self._state.advance(seconds)

    def reset_stats(self) -> None:
        """Forget counters and quota state: SPS call history, burst windows of prices and Resource Graph."""
        self._state.reset_stats()

    def stats(self) -> dict[str, Any]:
        """Requests per endpoint, the query text of Resource Graph requests (with counts), the raw path and query
        of the last price requests (as sent, before any decoding), injected faults per kind, throttled answers per
        endpoint (`sps_subscription`: subscription-wide), accepted SPS call times per 'subscription/location' pair
        (ISO, emulator clock), the last SPS answers (time, subscription, location, status), most calls of a pair in
        62 min."""
        return self._state.stats()

    # ---- the management / prices / admin app -----------------------------------------------------

    def _api_app(self) -> Flask:
        app = Flask("azure_emulator_api")
        prices.add_routes(app, self._state)
        resource_graph.add_routes(app, self._state)
        sps.add_routes(app, self._state)
        app.add_url_rule("/_emulator/config", view_func=self._admin_config, methods=["GET", "POST"])
        app.add_url_rule("/_emulator/clock", view_func=self._admin_clock, methods=["GET", "POST"])
        app.add_url_rule("/_emulator/stats", view_func=lambda: json_answer(self.stats()), methods=["GET"])
        app.add_url_rule("/_emulator/reset-stats", view_func=self._admin_reset_stats, methods=["POST"])
        return app

    def _admin_config(self) -> Response:
        if request.method == "POST":
            knobs = request.get_json(silent=True)
            if not isinstance(knobs, dict):
                return error(400, "BadRequest", "POST /_emulator/config takes a JSON object of knobs")
            try:
                self.configure(**knobs)
            except (ValueError, TypeError) as exc:
                return error(400, "InvalidKnob", str(exc))
        return json_answer(dataclasses.asdict(self._state.config))

    def _admin_clock(self) -> Response:
        if request.method == "POST":
            body = request.get_json(silent=True)
            try:
                if not isinstance(body, dict) or not ({"now", "advance_seconds"} & body.keys()):
                    raise ValueError('send {"now": iso8601|null} or {"advance_seconds": n}')
                if "now" in body:
                    self.set_time(datetime.fromisoformat(body["now"]) if body["now"] else None)
                if "advance_seconds" in body:
                    self.advance(float(body["advance_seconds"]))
            except (ValueError, TypeError) as exc:
                return error(400, "BadRequest", f"POST /_emulator/clock: {exc}")
        return json_answer({"now": self.now().isoformat()})

    def _admin_reset_stats(self) -> Response:
        self.reset_stats()
        return json_answer(self.stats())
