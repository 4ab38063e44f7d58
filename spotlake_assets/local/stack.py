"""The embedded local stack: moto's server for S3 and DynamoDB, the Azure emulator, buckets, tables and the
legacy credentials item, wired to the collector through SPOTLAKE_* environment variables."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from resources.azure_auth import ENV_NAMES, SUBSCRIPTIONS_ENV
from resources.query_api.config import ARCHIVE_BUCKET_ENV
from resources.settings import (
    LOCAL_AWS_PORT,
    LOCAL_AZURE_LOGIN_PORT,
    LOCAL_AZURE_PORT,
    Settings,
    load_settings,
)

from ..defs import history_resource
from .aws import LOCAL_AWS_ENV, LocalAws, local_client, provision, seed_azure_auth, start_moto_server
from .emulator import AzureEmulator, EmulatorConfig
from .query_api import LOCAL_QUERY_API_PORT, QUERY_API_URL_ENV, QueryApiServer, start_query_api


class PortInUseError(RuntimeError):
    """A fixed port of the local stack is taken (by another `make dev` or `spotlake local-stack`, most likely)."""


# what listens on each fixed port
FIXED_PORTS = {
    LOCAL_AWS_PORT: "S3 and DynamoDB",
    LOCAL_AZURE_PORT: "the Azure emulator",
    LOCAL_AZURE_LOGIN_PORT: "the emulator's login endpoint",
    LOCAL_QUERY_API_PORT: "the history query API",
}


def check_fixed_ports_free(host: str = "127.0.0.1", ports: Mapping[int, str] = FIXED_PORTS) -> None:
    """Raise PortInUseError naming the first fixed port something listens on. Checked before anything starts:
    moto's server thread cannot report a failed bind (its start() would wait forever), and the stack's reset of moto
    would otherwise reach the other stack's server."""
    for port, what in ports.items():
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is no conflict
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise PortInUseError(f"port {port} ({what}) is already in use") from None


@dataclass
class LocalStack:
    aws: LocalAws
    emulator: AzureEmulator
    env: dict[str, str]  # the variables that point the collector at this stack
    settings: Settings
    query_api: QueryApiServer | None = None  # the web site's history query endpoint (resources/query_api/handler.py)
    _stopped: bool = field(default=False, repr=False)

    @property
    def query_api_url(self) -> str | None:
        return self.query_api.url if self.query_api else None

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            if self.query_api:
                self.query_api.stop()
            self.emulator.stop()
            self.aws.stop()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_local_stack(
    *,
    env_name: str = "local",
    seed: int = 0,
    scale: str = "small",
    fixed_ports: bool = False,
    extra_env: Mapping[str, str] | None = None,
    separate_moto: bool = False,
    **emulator_knobs: Any,
) -> LocalStack:
    """Start both servers (free ports, or the documented fixed ones for `dagster dev`), create the
    environment's buckets and the AzureAuth item holding the emulator's service principal.

    `separate_moto` runs moto's server in a child process (the CLI's commands: moto holds every S3 object and
    DynamoDB item in memory, about 200 MiB more per full-scale partition, and that is then not the collector's
    memory); without it moto runs in this process, where tests and benchmarks reach into its backends.

    `env_name` may be `test` too: a test then runs the test environment's code against local servers.
    """
    # moto's server and the emulator log every request through werkzeug: keep the console for what matters.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if fixed_ports:
        check_fixed_ports_free()
    aws = start_moto_server(port=LOCAL_AWS_PORT if fixed_ports else 0, separate_process=separate_moto)
    try:
        # moto keeps its data per process, not per server: a new stack starts from nothing.
        requests.post(f"{aws.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
        emulator = AzureEmulator(EmulatorConfig(seed=seed, scale=scale, **emulator_knobs))
    except BaseException:
        aws.stop()
        raise
    try:
        emulator.start(
            port=LOCAL_AZURE_PORT if fixed_ports else 0, login_port=LOCAL_AZURE_LOGIN_PORT if fixed_ports else 0
        )
        env = {
            "SPOTLAKE_ENV": env_name,
            "SPOTLAKE_AWS_ENDPOINT_URL": aws.endpoint_url,
            "SPOTLAKE_AZURE_PRICES_URL": f"{emulator.base_url}/api/retail/prices",
            "SPOTLAKE_AZURE_MANAGEMENT_URL": emulator.base_url,
            "SPOTLAKE_AZURE_AUTHORITY": emulator.authority,
            "SPOTLAKE_AZURE_CA_BUNDLE": emulator.ca_file,
            **LOCAL_AWS_ENV,
            **(extra_env or {}),
        }
        # Credentials come from the AzureAuth item, as in the legacy; drop any real ones from the shell.
        settings = load_settings({**os.environ, **env})
        provision(aws.endpoint_url, sorted({settings.write_bucket, settings.read_bucket}), settings.aws_region)
        seed_azure_auth(aws.endpoint_url, settings.azure_auth_table, emulator.credentials, settings.aws_region)
        history_resource(settings).ensure_table(local_client("dynamodb", aws.endpoint_url, settings.aws_region))
        # as in production, the query reads archived months from the environment's write bucket
        query_env = {**os.environ, **env, ARCHIVE_BUCKET_ENV: settings.write_bucket}
        query_api = start_query_api(query_env, port=LOCAL_QUERY_API_PORT if fixed_ports else 0)
        env[QUERY_API_URL_ENV] = query_api.url
    except BaseException:
        emulator.stop()
        aws.stop()
        raise
    return LocalStack(aws=aws, emulator=emulator, env=env, settings=settings, query_api=query_api)


# the stack's AzureAuth item holds the emulator's service principal; real credentials must never reach it
SHELL_CREDENTIALS = (*ENV_NAMES, SUBSCRIPTIONS_ENV)


def stack_environ(stack: LocalStack, base: Mapping[str, str]) -> dict[str, str]:
    """`base` pointed at the stack, without the shell's Azure credentials."""
    return {**{k: v for k, v in base.items() if k not in SHELL_CREDENTIALS}, **stack.env}


def use_stack_environment(stack: LocalStack) -> None:
    """Point this process at the stack, without the shell's Azure credentials."""
    for name in SHELL_CREDENTIALS:
        os.environ.pop(name, None)
    os.environ.update(stack.env)


# ---- a stack served by another process ----

AWS_ENDPOINT_ENV = "SPOTLAKE_AWS_ENDPOINT_URL"
EMULATOR_URL_ENV = "SPOTLAKE_AZURE_MANAGEMENT_URL"  # the emulator's base URL (its /_emulator/... admin routes too)


@dataclass
class RemoteAws:
    """The S3/DynamoDB endpoint of a stack another process serves."""

    endpoint_url: str


@dataclass
class RemoteEmulator:
    """The Azure emulator of a stack another process serves, its clock set over HTTP (`/_emulator/clock`)."""

    base_url: str

    def set_time(self, t: datetime | None) -> None:
        """Freeze its clock at `t`; None returns it to the wall clock."""
        body = {"now": t.isoformat() if t else None}
        requests.post(f"{self.base_url}/_emulator/clock", json=body, timeout=10).raise_for_status()


@dataclass
class StandingStack:
    """A running `spotlake local-stack` (or `spotlake dev`), found through its environment file: `run_partitions`
    drives it as it does an embedded stack. Leaving `with` returns the emulator's clock to the wall clock (the
    runs freeze it at each partition's data time) and leaves the stack running."""

    aws: RemoteAws
    emulator: RemoteEmulator
    env: dict[str, str]  # the file's variables (and `extra_env`): they point the collector at the stack
    settings: Settings

    def __enter__(self) -> StandingStack:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(requests.RequestException):
            self.emulator.set_time(None)


def standing_stack(file_env: Mapping[str, str], extra_env: Mapping[str, str] | None = None) -> StandingStack:
    """The stack an environment file describes (its AWS_ENDPOINT_ENV and EMULATOR_URL_ENV are set: the caller checks
    that, and that both answer)."""
    env = {**file_env, **(extra_env or {})}
    settings = load_settings({**{k: v for k, v in os.environ.items() if k not in SHELL_CREDENTIALS}, **env})
    return StandingStack(
        aws=RemoteAws(env[AWS_ENDPOINT_ENV]), emulator=RemoteEmulator(env[EMULATOR_URL_ENV]), env=env, settings=settings
    )
