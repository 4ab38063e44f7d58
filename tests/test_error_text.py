"""What a failure says once it leaves the process: endpoint, HTTP status and Azure's error code; never a subscription,
tenant or client id, never the body's text. Failing Azure calls over HTTP, through real Dagster runs, their
metadata, checks and the alert posted to a local webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from resources.clock import Clock
from resources.error_text import error_code, login_error_code, redact
from resources.http import HttpRequestError, RetryingClient, RetryPolicy
from resources.retry import Backoff
from resources.settings import load_settings
from resources.slack import SlackWebhook
from spotlake_assets.core.timekeys import data_time
from spotlake_assets.defs import azure_resource, build_resources
from spotlake_assets.sensors import RESOURCE_KEY, failed_check_alert

from .stack import FAST_AZURE, check_evaluations, graph, materialize_only, metadata, run_assets, start, use_stack

SUBSCRIPTION = "0b1f6c2e-5a7d-4c39-9e41-2f8d3b6a7c10"
CLIENT = "6f0e4d1c-2b3a-4958-8c7d-1e2f3a4b5c6d"
OBJECT = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
AZURE_403 = {
    "error": {
        "code": "AuthorizationFailed",
        "message": f"The client '{CLIENT}' with object id '{OBJECT}' does not have authorization to perform action "
        f"'Microsoft.ResourceGraph/resources/read' over scope '/subscriptions/{SUBSCRIPTION}' or the scope is "
        "invalid. If access was recently granted, please refresh your credentials.",
    }
}
PLAIN_400 = f"Bad Request: subscription {SUBSCRIPTION} is not registered (request id {OBJECT})"
BODY_WORDS = ("does not have authorization", "refresh your credentials", "not registered", "Bad Request")
IDS = (SUBSCRIPTION, CLIENT, OBJECT)


# --- the pure rules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (json.dumps(AZURE_403), "AuthorizationFailed"),
        (json.dumps({"error": {"code": "SubscriptionRequestsThrottled", "message": "x"}}), "SubscriptionRequestsThrottled"),  # noqa: E501
        (json.dumps({"error": "invalid_client", "error_description": f"client '{CLIENT}'"}), "invalid_client"),
        (json.dumps({"code": "InvalidParameter", "message": "y"}), "InvalidParameter"),
        (json.dumps({"error": {"code": f"Failed for {SUBSCRIPTION}", "message": "z"}}), "unrecognized error code"),
        (json.dumps({"data": [1, 2]}), "JSON body without an error code"),
        (PLAIN_400, "text body"),
        ("Please try again after '20' seconds.", "text body"),
        ("<html><body>502 Bad Gateway</body></html>", "HTML body"),
        ("   ", "empty body"),
    ],
)  # fmt: skip
def test_error_code_is_the_code_or_a_fixed_description(body, shown):
    assert error_code(body) == shown


def test_login_error_code_and_redaction():
    message = f"ClientSecretCredential.get_token failed: AADSTS7000215: Invalid client secret for app '{CLIENT}'."
    assert login_error_code(message) == "AADSTS7000215"
    assert login_error_code("invalid_client: unknown") == "invalid_client"
    assert login_error_code("connection refused") is None
    text = redact(f"User: arn:aws:sts::123456789012:assumed-role/run/x on /subscriptions/{SUBSCRIPTION}")
    assert text == "User: arn:aws:sts::<account>:assumed-role/run/x on /subscriptions/<id>"


# --- a local Azure that answers with bodies full of ids ------------------------------------------------------


@dataclass
class Hostile:
    url: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    """Answers Resource Graph with Azure's 403 (its message names client, object and subscription ids) and every
    other path with a plain-text 400 naming a subscription."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            seen.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if "Microsoft.ResourceGraph" in self.path:
                status, body, kind = 403, json.dumps(AZURE_403), "application/json"
            else:
                status, body, kind = 400, PLAIN_400, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.end_headers()
            self.wfile.write(body.encode())

        do_GET = do_POST = answer  # noqa: N815 - http.server's naming

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield Hostile(f"http://127.0.0.1:{server.server_port}", seen)
    finally:
        server.shutdown()
        server.server_close()


def test_a_failed_call_names_endpoint_status_and_code_only(hostile):
    client = RetryingClient(policy=RetryPolicy(max_tries=2, timeout_seconds=2, backoff=Backoff(base_seconds=0.001)))
    with pytest.raises(HttpRequestError) as caught:
        client.request_json("POST", f"{hostile.url}/providers/Microsoft.ResourceGraph/resources", endpoint="POST graph")
    assert str(caught.value) == "POST graph: HTTP 403 after 1 tries: AuthorizationFailed"
    with pytest.raises(HttpRequestError) as caught:
        client.request_json("GET", f"{hostile.url}/api/retail/prices", endpoint="GET prices")
    assert str(caught.value) == "GET prices: HTTP 400 after 1 tries: text body"


# --- end to end: the sources' metadata, their checks and the alert -------------------------------------------

PARTITION = "2026-11-27-10:20"
T = datetime.fromisoformat("2026-11-27T10:30:00+00:00")


@pytest.fixture
def webhook(monkeypatch) -> Iterator[list[str]]:
    posted: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["text"])
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    monkeypatch.setenv("SPOTLAKE_SLACK_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/services/T0/B0/x")
    try:
        yield posted
    finally:
        server.shutdown()
        server.server_close()


def collect_and_alert(stack, monkeypatch, posted: list[str], **env: str):
    """Price and IF of PARTITION with the environment's resources (after `env`), then the check alert."""
    use_stack(stack, monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    stack.emulator.set_time(T)
    resources = {
        **build_resources(settings),
        "azure": azure_resource(settings, max_tries=2, **FAST_AZURE),
        "clock": Clock(frozen_at=T.isoformat()),
    }
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_only(
            graph("azure_price_raw", "azure_eviction_raw"), resources, instance, partition_key=PARTITION,
            raise_on_error=False,
        )  # fmt: skip
        assert result.success  # a failed source does not fail its step: its check does
        context = dg.build_run_status_sensor_context(
            sensor_name=failed_check_alert.name,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_success_event(),
            resources={RESOURCE_KEY: SlackWebhook(timeout_seconds=2)},  # SPOTLAKE_SLACK_WEBHOOK_URL
        )
        failed_check_alert(context)
    return result


def outgoing_text(result, posted: list[str]) -> str:
    """Everything the run and its alert let out: metadata, check results, event messages, the alert."""
    parts = list(posted)
    for event in result.all_events:
        parts.append(event.message or "")
        data = event.event_specific_data
        materialization = getattr(data, "materialization", None)
        for meta in (getattr(data, "metadata", None), getattr(materialization, "metadata", None)):
            for value in (meta or {}).values():
                parts.append(str(getattr(value, "value", value)))
    return "\n".join(parts)


def test_failed_sources_report_status_and_code_but_no_id_and_no_body(monkeypatch, hostile, webhook):
    with start() as stack:
        result = collect_and_alert(
            stack, monkeypatch, webhook,
            SPOTLAKE_AZURE_MANAGEMENT_URL=hostile.url,
            SPOTLAKE_AZURE_PRICES_URL=f"{hostile.url}/api/retail/prices",
        )  # fmt: skip
    assert hostile.requests  # both sources did reach the server and got its answers
    checks = check_evaluations(result)
    graph_error = checks[("azure_eviction_raw", "collected")].metadata["error"].value
    price_error = checks[("azure_price_raw", "collected")].metadata["error"].value
    assert graph_error == metadata(result, "azure_eviction_raw")["collection_failed"]
    assert graph_error.endswith("Microsoft.ResourceGraph/resources: HTTP 403 after 1 tries: AuthorizationFailed")
    assert price_error.endswith("/api/retail/prices: HTTP 400 after 1 tries: text body")
    [alert] = webhook
    assert "HTTP 403 after 1 tries: AuthorizationFailed" in alert and "HTTP 400 after 1 tries: text body" in alert
    out = outgoing_text(result, webhook)
    for secret in (*IDS, *BODY_WORDS):
        assert secret not in out


def test_a_refused_login_says_the_authority_and_entra_ids_code_only(monkeypatch, webhook):
    """A wrong client secret: Entra ID's answer names the client id; the source reports AADSTS7000215 only."""
    with start() as stack:
        creds = stack.emulator.credentials
        result = collect_and_alert(
            stack, monkeypatch, webhook,
            AZURE_TENANT_ID=creds["tenant_id"], AZURE_CLIENT_ID=creds["client_id"], AZURE_CLIENT_SECRET="wrong",
        )  # fmt: skip
        authority = stack.emulator.authority
    error = check_evaluations(result)[("azure_eviction_raw", "collected")].metadata["error"].value
    assert error == f"AzureCredentialsError: Azure login at {authority}: AADSTS7000215"
    assert check_evaluations(result)[("azure_price_raw", "collected")].passed  # prices need no login
    [alert] = webhook
    assert "AADSTS7000215" in alert
    out = outgoing_text(result, webhook)
    for secret in (creds["client_id"], creds["tenant_id"], "wrong", "Invalid secret"):
        assert secret not in out


def test_sps_errors_name_status_and_code_but_no_subscription(monkeypatch):
    """A subscription without the Compute Recommendations Role answers 403 AuthorizationFailed, with its id and the
    client's in the body: the run's metadata and checks count it by status and code only."""
    day, partition = "2026-11-26", "2026-11-26-10:00"
    with start(subscriptions=3, sps_subscriptions_without_role=1) as stack:
        first = f"{day}-00:00"
        assert run_assets(stack, monkeypatch, graph("azure_price_raw"), first, data_time(first)).success
        assert run_assets(stack, monkeypatch, graph("azure_sps_request_pool"), day, data_time(first)).success
        result = run_assets(stack, monkeypatch, graph("azure_sps_raw"), partition, data_time(partition))
        assert result.success
        subscriptions = stack.emulator.credentials["subscriptions"]
        client = stack.emulator.credentials["client_id"]
        forbidden = [a for a in stack.emulator.stats()["sps_answers"] if a["status"] == 403]
    assert forbidden  # the role-less subscription was asked and refused
    errors = metadata(result, "azure_sps_raw")["errors"]
    assert errors.get("403 forbidden AuthorizationFailed", 0) >= 1
    assert not check_evaluations(result)[("azure_sps_raw", "sps_subscriptions")].passed
    out = outgoing_text(result, [])
    for secret in (*subscriptions, client, "does not have authorization"):
        assert secret not in out
