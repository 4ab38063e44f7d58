"""Where data goes and where credentials are sent come from the deployment's environment only.

Real Dagster runs of the production job: a run config that sets any protected field is refused before anything is
contacted (every endpoint points at a loopback server that counts TCP connections, and the Azure emulator counts
its requests), with an error naming the field; a resource bound with values other than the environment's is refused
too; `test` never gets the production bucket or table, however they are set.
"""

from __future__ import annotations

import json
import re
import socketserver
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from resources.azure import AzureResource
from resources.clock import Clock
from resources.history_table import HistoryTable
from resources.lockdown import ProtectedSettingError, protected_fields
from resources.s3 import S3Store
from resources.settings import SettingsError, load_settings
from resources.slack import SlackWebhook
from spotlake_assets.core import names
from spotlake_assets.defs import build_definitions, build_resources
from spotlake_assets.local.aws import LOCAL_AWS_ENV
from spotlake_assets.sensors import RESOURCE_KEY, run_failure_alert

from .stack import bucket_state, graph, start, use_stack

PARTITION = "2026-11-27-10:20"
T = datetime.fromisoformat("2026-11-27T10:30:00+00:00")  # data time of PARTITION


class ConnectionCounter:
    """A TCP server on 127.0.0.1 that counts connections and closes each at once: every endpoint points here, so
    any request the collector tries, AWS or Azure, HTTP or TLS, is counted."""

    def __init__(self) -> None:
        self.count = 0
        lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with lock:
                    outer.count += 1

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[ConnectionCounter]:
    counter = ConnectionCounter()
    try:
        yield counter
    finally:
        counter.stop()


@pytest.fixture
def test_env(sink: ConnectionCounter, monkeypatch: pytest.MonkeyPatch):
    """SPOTLAKE_ENV=test with every endpoint (AWS, Azure login, management, prices) at the counting server."""
    here = f"127.0.0.1:{sink.port}"
    env = {
        "SPOTLAKE_ENV": "test",
        "SPOTLAKE_AWS_ENDPOINT_URL": f"http://{here}",
        "SPOTLAKE_AZURE_PRICES_URL": f"http://{here}/api/retail/prices",
        "SPOTLAKE_AZURE_MANAGEMENT_URL": f"http://{here}",
        "SPOTLAKE_AZURE_AUTHORITY": here,
        "AWS_EC2_METADATA_DISABLED": "true",
        **LOCAL_AWS_ENV,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "SPOTLAKE_SLACK_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    return load_settings()


def errors_of(result: dg.ExecuteInProcessResult) -> str:
    """Every error of the run's events (run and step failures, resource init failures) with their causes."""
    text = []
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        while error is not None:
            text.append(error.message)
            error = error.cause
    return "\n".join(text)


def names_field(errors: str, key: str, field: str) -> bool:
    """Whether the refusal names `field` of resource `key`."""
    return re.search(rf"protected fields of .*resources\.{key}\.config \([^)]*\b{field}\b", errors) is not None


def collect_job(settings, clock: Clock | None = None) -> dg.JobDefinition:
    return build_definitions(settings, clock=clock).resolve_job_def(names.COLLECT_JOB)


def config_setting(settings, key: str, field: str, value) -> dict:
    """A run config for resource `key` that sets `field` to `value`. Dagster replaces a resource's whole config when
    a run gives one, so the other fields carry the environment's values (the launchpad's scaffold does the same)."""
    resource = build_resources(settings)[key]
    current = {name: v for name, v in type(resource).settings_values(settings).items() if v is not None}
    return {"resources": {key: {"config": {**current, field: value}}}}


ATTACKER = "https://attacker.example.com"
# every protected field of every resource of the definitions, with a value an attacker would want
OVERRIDES = [
    ("store", "write_bucket", "spotlake"),
    ("store", "read_bucket", "attacker-bucket"),
    ("store", "env", "prod"),
    ("store", "endpoint_url", ATTACKER),
    ("store", "region_name", "us-east-1"),
    ("history", "table_name", "azure"),
    ("history", "env", "prod"),
    ("history", "endpoint_url", ATTACKER),
    ("history", "region_name", "us-east-1"),
    ("azure", "authority", "attacker.example.com"),
    ("azure", "management_url", ATTACKER),
    ("azure", "prices_url", f"{ATTACKER}/api/retail/prices"),
    ("azure", "ca_bundle", "/tmp/attacker-ca.pem"),
    ("azure", "auth_table", "AttackerAuth"),
    ("azure", "aws_endpoint_url", ATTACKER),
    ("azure", "aws_region", "us-east-1"),
    ("azure", "env", "prod"),
    ("azure", "sps_max_calls_per_run", 100000),
    ("clock", "frozen_at", "2026-11-27T10:30:00+00:00"),
    ("clock", "max_lateness_minutes", 100000),
    ("clock", "follow_url", f"{ATTACKER}/_emulator/clock"),
    ("heartbeat", "namespace", "Attacker/Metrics"),
    ("heartbeat", "environment", "prod"),
    ("heartbeat", "endpoint_url", ATTACKER),
    ("heartbeat", "region_name", "us-east-1"),
    ("slack_webhook", "url_env_var", "AZURE_CLIENT_SECRET"),
    ("slack_webhook", "ssm_parameter", "attacker_parameter"),
    ("slack_webhook", "ssm_endpoint_url", ATTACKER),
    ("slack_webhook", "region_name", "us-east-1"),
]


def test_every_protected_field_is_covered():
    covered = {(key, field) for key, field, _ in OVERRIDES}
    resources = build_resources(load_settings({"SPOTLAKE_ENV": "test"}))
    for key, resource in resources.items():
        for field in getattr(type(resource), "PROTECTED", {}):
            assert (key, field) in covered, f"{key}.{field} is protected but not tested"
    assert set(protected_fields()) == {field for _, field, _ in OVERRIDES}


def test_a_run_that_sets_no_protected_field_does_reach_the_endpoints(test_env, sink):
    """The counter sees what a run sends: the same job without an override connects (and fails: nothing answers)."""
    with dg.DagsterInstance.ephemeral() as instance:
        result = collect_job(test_env).execute_in_process(
            partition_key=PARTITION, instance=instance, raise_on_error=False
        )
    assert not result.success
    assert sink.count > 0
    assert "protected fields" not in errors_of(result)


@pytest.mark.parametrize(("key", "field", "value"), OVERRIDES, ids=[f"{k}.{f}" for k, f, _ in OVERRIDES])
def test_a_run_config_that_sets_a_protected_field_is_refused_before_any_request(test_env, sink, key, field, value):
    run_config = config_setting(test_env, key, field, value)
    with dg.DagsterInstance.ephemeral() as instance:
        result = collect_job(test_env).execute_in_process(
            run_config=run_config, partition_key=PARTITION, instance=instance, raise_on_error=False
        )
    assert not result.success
    errors = errors_of(result)
    assert "ProtectedSettingError" in errors or "run config sets protected fields" in errors
    assert names_field(errors, key, field)
    assert sink.count == 0
    assert result.get_asset_materialization_events() == []


def test_even_the_environments_own_value_cannot_be_given_by_run_config(test_env, sink):
    run_config = config_setting(test_env, "store", "write_bucket", test_env.write_bucket)
    with dg.DagsterInstance.ephemeral() as instance:
        result = collect_job(test_env).execute_in_process(
            run_config=run_config, partition_key=PARTITION, instance=instance, raise_on_error=False
        )
    assert not result.success and names_field(errors_of(result), "store", "write_bucket")
    assert sink.count == 0


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A webhook on 127.0.0.1 (SPOTLAKE_SLACK_WEBHOOK_URL) that records the text of every post."""
    posted: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
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


def test_the_failure_alert_names_the_refused_field(test_env, sink, receiver):
    run_config = config_setting(test_env, "azure", "authority", "attacker.example.com")
    with dg.DagsterInstance.ephemeral() as instance:
        result = collect_job(test_env).execute_in_process(
            run_config=run_config, partition_key=PARTITION, instance=instance, raise_on_error=False
        )
        context = dg.build_run_status_sensor_context(
            sensor_name=run_failure_alert.name,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
            resources={RESOURCE_KEY: SlackWebhook.from_settings(test_env, timeout_seconds=2)},
        )
        run_failure_alert(context)
    [text] = receiver
    assert "ProtectedSettingError: run config sets protected fields of resources.azure.config" in text
    assert names_field(text, "azure", "authority")
    assert sink.count == 0


def multiprocess_collect_job() -> dg.JobDefinition:
    return collect_job(load_settings())


def test_the_production_executor_refuses_in_the_first_steps_too(test_env, sink, tmp_path):
    """Production runs each step in its own process, each initializing only its resources: a run that overrides
    the Azure authority fails in every step it starts (price, IF, pool, SPS need the store) before any request."""
    run_config = config_setting(test_env, "azure", "authority", "attacker.example.com")
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        # (not `with`: entering the result initializes the resources again, here, to load outputs)
        result = dg.execute_job(
            dg.reconstructable(multiprocess_collect_job),
            instance=instance,
            run_config=run_config,
            tags={"dagster/partition": PARTITION},
            raise_on_error=False,
        )
        assert not result.success
        failures = [e for e in result.all_events if e.is_step_failure]
        # the steps that started (those without upstream steps in this job) each refused; the rest never ran
        assert {e.step_key for e in failures} >= {names.PRICE_RAW, names.EVICTION_RAW}
        assert all(names_field(errors_of_event(e), "azure", "authority") for e in failures)
        assert not any(e.is_successful_output for e in result.all_events)
    assert sink.count == 0


def errors_of_event(event) -> str:
    error, text = event.event_specific_data.error, []
    while error is not None:
        text.append(error.message)
        error = error.cause
    return " | ".join(text)


# --- resources bound in code with values other than the environment's ------------------------------------


@dg.asset
def writes_somewhere(store: S3Store) -> None:
    store.put("latest_data/latest_azure.json", b"{}")


@dg.asset
def writes_history(history: HistoryTable) -> None:
    history.count_items()


@dg.asset
def logs_in(azure: AzureResource) -> None:
    azure.bearer_token()


def materialize_with(asset, **resources) -> dg.ExecuteInProcessResult:
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize([asset], resources=resources, instance=instance, raise_on_error=False)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (dict(write_bucket="spotlake"), "S3Store.write_bucket"),  # `test` aimed at production's bucket
        (dict(env="prod", write_bucket="spotlake", read_bucket="spotlake"), "S3Store.env"),
        (dict(write_bucket="spotlake-test", read_bucket="attacker-bucket"), "S3Store.read_bucket"),
    ],
)
def test_a_store_bound_with_other_values_than_the_environments_is_refused(test_env, sink, fields, named):
    values = {**S3Store.settings_values(test_env), **fields}
    result = materialize_with(writes_somewhere, store=S3Store(**values))
    assert not result.success
    assert named in errors_of(result) and "cannot be changed for a run" in errors_of(result)
    assert sink.count == 0


def test_test_with_the_production_table_is_refused_every_way(test_env, sink):
    # from the environment: the settings refuse it
    with pytest.raises(SettingsError, match="production table 'azure'"):
        load_settings({"SPOTLAKE_ENV": "test", "SPOTLAKE_DYNAMODB_TABLE": "azure"})
    # bound in code: refused when the run starts
    values = {**HistoryTable.settings_values(test_env), "table_name": "azure"}
    result = materialize_with(writes_history, history=HistoryTable(**values))
    assert not result.success and "HistoryTable.table_name" in errors_of(result)
    # used directly, outside a run: the client refuses before its first request
    with pytest.raises(RuntimeError, match="production table 'azure' in environment 'test'"):
        HistoryTable(**values).count_items()
    # and by run config (test_a_run_config_that_sets_a_protected_field_is_refused_before_any_request)
    assert sink.count == 0


def test_a_foreign_authority_bound_in_code_is_refused_before_any_credential(test_env, sink, monkeypatch):
    monkeypatch.setenv("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000001")
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000002")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-a-real-secret")
    values = {**AzureResource.settings_values(test_env), "authority": "attacker.example.com"}
    result = materialize_with(logs_in, azure=AzureResource(**values))
    assert not result.success and "AzureResource.authority" in errors_of(result)
    # used directly in `prod`, whose authority must be Microsoft's: no credential, no connection (the loopback
    # authority is the counting server)
    prod = AzureResource(**{**AzureResource.settings_values(test_env), "env": "prod"})
    with pytest.raises(SettingsError, match="SPOTLAKE_AZURE_AUTHORITY"):
        prod.bearer_token()
    assert prod._credential is None
    assert sink.count == 0


def test_protected_fields_cannot_be_overridden_in_code_by_the_builders(test_env):
    with pytest.raises(ProtectedSettingError, match="AzureResource.authority"):
        AzureResource.from_settings(test_env, authority="attacker.example.com")
    assert AzureResource.from_settings(test_env, max_tries=2).max_tries == 2


def test_local_lets_tests_bind_their_own_endpoints_but_not_another_environment(monkeypatch, sink):
    monkeypatch.delenv("SPOTLAKE_ENV", raising=False)
    for name in ("SPOTLAKE_WRITE_BUCKET", "SPOTLAKE_READ_BUCKET", "SPOTLAKE_AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    here = f"http://127.0.0.1:{sink.port}"
    # the store of a test: its own buckets and endpoint (the run then fails on the counting server)
    ok = materialize_with(writes_somewhere, store=S3Store(write_bucket="w", read_bucket="r", endpoint_url=here))
    assert "cannot be changed for a run" not in errors_of(ok)
    refused = materialize_with(
        writes_somewhere, store=S3Store(env="prod", write_bucket="w", read_bucket="r", endpoint_url=here)
    )
    assert not refused.success and "S3Store.env" in errors_of(refused)


# --- the scenario on the embedded stack: `test`, the Azure emulator and moto -------------------------


def test_the_reported_overrides_are_refused_on_the_stack_before_azure_or_s3_hear_of_them(monkeypatch):
    """azure.authority="attacker.example.com", store.write_bucket="spotlake" and history.env="prod" in a `test`
    deployment: refused, the emulator (login included) gets no request, production's bucket is untouched; without
    them the same job collects from the emulator."""
    with start(env_name="test") as stack:
        use_stack(stack, monkeypatch)
        settings = load_settings()
        stack.emulator.set_time(T)
        job = collect_job(settings, clock=Clock(frozen_at=T.isoformat()))
        prod_before = bucket_state(stack, "spotlake")
        test_before = bucket_state(stack, settings.write_bucket)
        stack.emulator.reset_stats()
        for key, field, value in [
            ("azure", "authority", "attacker.example.com"),
            ("store", "write_bucket", "spotlake"),
            ("history", "env", "prod"),
        ]:
            with dg.DagsterInstance.ephemeral() as instance:
                result = job.execute_in_process(
                    run_config=config_setting(settings, key, field, value),
                    partition_key=PARTITION,
                    instance=instance,
                    raise_on_error=False,
                )
            assert not result.success and names_field(errors_of(result), key, field)
            assert stack.emulator.stats()["requests"] == {}
            assert bucket_state(stack, "spotlake") == prod_before
            assert bucket_state(stack, settings.write_bucket) == test_before

        with dg.DagsterInstance.ephemeral() as instance:
            ok = dg.materialize(
                graph(names.PRICE_RAW),
                resources={**build_resources(settings), "clock": Clock(frozen_at=T.isoformat())},
                partition_key=PARTITION,
                instance=instance,
            )
        assert ok.success
        assert stack.emulator.stats()["requests"]["prices"] > 0
        assert bucket_state(stack, "spotlake") == prod_before
