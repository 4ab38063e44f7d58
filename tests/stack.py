"""Helpers for tests that run assets on the embedded local stack (moto's server and the Azure emulator, over HTTP)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import boto3
from dagster import AssetsDefinition, DagsterInstance, materialize

from resources.clock import Clock
from resources.io_manager import PartitionStore
from resources.s3 import S3Store
from spotlake_assets.core.timekeys import DEFAULT_PARTITION_START
from spotlake_assets.defs import azure_resource, build_assets, build_resources
from spotlake_assets.local.aws import LOCAL_AWS_CREDENTIALS
from spotlake_assets.local.dagster_home import fresh_instance
from spotlake_assets.local.stack import LocalStack, start_local_stack
from spotlake_assets.partitions import Partitions

FAST_FAULTS = dict(retry_after_seconds=0, timeout_seconds=1.5)
FAST_AZURE = dict(timeout_seconds=0.5, backoff_base_seconds=0.01, backoff_max_seconds=0.05)


def graph(*names: str, start: str = DEFAULT_PARTITION_START) -> list[AssetsDefinition]:
    """The assets of the definitions that produce any of `names` (all of them when none is given)."""
    assets = build_assets(Partitions.starting_at(start))
    if not names:
        return assets
    return [a for a in assets if {k.to_user_string() for k in a.keys} & set(names)]


def load_frame(store: S3Store, asset: str, partition_key: str):
    """The stored frame of an asset partition (None when failed or never stored), as the IO manager reads it."""
    return PartitionStore(store).load(asset, partition_key)


def start(env_name: str = "local", seed: int = 11, **knobs) -> LocalStack:
    return start_local_stack(
        env_name=env_name, seed=seed, scale=knobs.pop("scale", "small"), **{**FAST_FAULTS, **knobs}
    )


def use_stack(stack: LocalStack, monkeypatch) -> dict:
    """Point this test at the stack; returns the resources its environment builds."""
    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    return build_resources(stack.settings)


def fail_sps_source(stack: LocalStack, monkeypatch) -> None:
    """Credentials from the environment with no subscription list: SPS cannot run, price and IF can."""
    creds = stack.emulator.credentials
    monkeypatch.setenv("AZURE_TENANT_ID", creds["tenant_id"])
    monkeypatch.setenv("AZURE_CLIENT_ID", creds["client_id"])
    monkeypatch.setenv("AZURE_CLIENT_SECRET", creds["client_secret"])
    monkeypatch.delenv("AZURE_SUBSCRIPTIONS", raising=False)


def table_items(stack: LocalStack) -> list[dict]:
    """Every item of the history table, sorted by key."""
    client = boto3.client(
        "dynamodb", endpoint_url=stack.aws.endpoint_url, region_name="us-west-2", **LOCAL_AWS_CREDENTIALS
    )
    pages = client.get_paginator("scan").paginate(TableName=stack.settings.dynamodb_table)
    return sorted((item for page in pages for item in page["Items"]), key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def forget_merged(stack: LocalStack, resources: dict) -> None:
    """Delete what the merge made (history items, snapshots, changes, states, public CSVs); keep the raw
    snapshots, as before re-merging a range after a logic fix."""
    history = resources["history"]
    for item in table_items(stack):
        history.client.delete_item(TableName=history.table_name, Key={"pk": item["pk"], "sk": item["sk"]})
    store, s3 = resources["store"], s3_client(stack)
    for key in store.list_keys("dagster/azure/azure_spot") + store.list_keys("rawdata/azure/2026"):
        s3.delete_object(Bucket=stack.settings.write_bucket, Key=key)


def run_assets(
    stack: LocalStack,
    monkeypatch,
    assets: Sequence[AssetsDefinition],
    partition: str,
    now: datetime,
    *,
    instance: DagsterInstance | None = None,
    max_tries: int = 8,
    set_emulator_time: bool = True,
    **azure_overrides,
):
    """Materialize `assets` for one partition with the environment's resources, the collector's clock frozen at
    `now` (and the emulator's too), fast retries; returns Dagster's result (raise_on_error=False)."""
    resources = use_stack(stack, monkeypatch)
    if set_emulator_time:
        stack.emulator.set_time(now)
    resources["azure"] = azure_resource(stack.settings, max_tries=max_tries, **{**FAST_AZURE, **azure_overrides})
    resources["clock"] = Clock(frozen_at=now.isoformat())
    if instance is not None:
        return materialize_only(assets, resources, instance, partition_key=partition, raise_on_error=False)
    with DagsterInstance.ephemeral() as ephemeral:
        return materialize_only(assets, resources, ephemeral, partition_key=partition, raise_on_error=False)


def materialize_only(assets: Sequence[AssetsDefinition], resources: dict, instance: DagsterInstance, **kwargs):
    """Materialize `assets` (their upstream assets are loaded from storage, as in a job that selects them)."""
    selection = [key for a in assets for key in a.keys]
    return materialize(graph(), selection=selection, resources=resources, instance=instance, **kwargs)


def metadata(result, asset: str) -> dict:
    [mat] = list(result.asset_materializations_for_node(asset))
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def failure_messages(result) -> list[str]:
    """Each failed step's error with its causes (Dagster wraps the asset's exception)."""
    out = []
    for event in result.all_events:
        if event.is_step_failure:
            error, text = event.event_specific_data.error, []
            while error is not None:
                text.append(error.message)
                error = error.cause
            out.append(" | ".join(text))
    return out


def s3_client(stack: LocalStack):
    return boto3.client("s3", endpoint_url=stack.aws.endpoint_url, region_name="us-west-2", **LOCAL_AWS_CREDENTIALS)


def bucket_state(stack: LocalStack, bucket: str) -> dict[str, str]:
    pages = s3_client(stack).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


def check_evaluations(result) -> dict[tuple[str, str], object]:
    """(asset name, check name) -> the check's evaluation in this run."""
    out = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            out[(evaluation.asset_key.to_user_string(), evaluation.check_name)] = evaluation
    return out


# ---- runs in processes of their own (crash tests) ------------------------------------------------------------


def spawn_worker(stack: LocalStack, dagster_home, partition: str, now: datetime, *, job: str = "azure_collect_10min",
                 range_end: str | None = None):  # fmt: skip
    """Start spotlake_assets.local.worker for one run in a new process on the stack and a shared instance."""
    import os
    import subprocess
    import sys

    from spotlake_assets.local.stack import stack_environ

    if not os.path.exists(os.path.join(dagster_home, "dagster.yaml")):  # the first worker on this instance
        fresh_instance(Path(dagster_home))
    env = {**stack_environ(stack, os.environ), "DAGSTER_HOME": str(dagster_home)}
    cmd = [sys.executable, "-m", "spotlake_assets.local.worker", "--job", job, "--partition", partition,
           "--now", now.isoformat()] + (["--range-end", range_end] if range_end else [])  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_when(proc, ready, timeout: float = 120.0) -> bool:
    """SIGKILL `proc` as soon as `ready()` holds; False if the process ended first (then it was not killed)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            proc.kill()
            proc.wait()
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    proc.kill()
    raise TimeoutError("the stage to kill at never came")


def mark_dead_runs_failed(dagster_home) -> int:
    """What the instance's run monitoring does for a run whose worker died: mark it failed (so that nothing waits
    for it). Returns how many runs were marked."""
    import os

    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    try:
        with DagsterInstance.get() as instance:
            dead = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING]))
            for run in dead:
                instance.report_run_failed(run, "the run worker died (SIGKILL)")
            return len(dead)
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def point_items(items: list[dict]) -> list[dict]:
    """The items holding time-series points (not the checkpoints or the regions index)."""
    return [i for i in items if not i["sk"]["S"].startswith("~")]


def points(items: list[dict]) -> list[tuple[str, str, dict]]:
    """(pk, series id, point) of every time-series point the items hold, either item shape, as the query reads
    them (resources/query_api/request.points_of_item): a point has every row column, its `Time` included."""
    from resources.query_api.request import points_of_item

    return [(item["pk"]["S"], sid, point) for item in point_items(items) for sid, point in points_of_item(item)]


def history_points(stack: LocalStack) -> list[tuple[str, str, dict]]:
    """The time-series points of the table (see `points`)."""
    return points(table_items(stack))


COMPARED = ("OndemandPrice", "SpotPrice", "IF", "Score", "T2", "T3")


def assert_history_is_change_only(stack: LocalStack, state_series) -> None:
    """The archive's promise: per series, consecutive points differ in a compared column (a point only when
    something changed), and each series' newest point is what the state holds as its last stored value."""
    from collections import defaultdict

    series = defaultdict(list)
    for pk, sid, point in history_points(stack):
        series[(pk, sid)].append((point["Time"]["S"], tuple(point[c]["N"] for c in COMPARED)))
    for key, points in series.items():
        points.sort()
        for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
            assert v0 != v1, f"series {key}: the point at {t1} repeats the one at {t0}"
    stored = {}
    for row in state_series.itertuples(index=False):
        pk = f"{str(row.InstanceType).strip().casefold()}#{str(row.Region).strip().casefold()}"
        sid = "#".join([str(row.AvailabilityZone).strip().casefold(), f"{int(row.DesiredCount):02d}",
                        str(row.InstanceTier).strip().casefold()])  # fmt: skip
        stored[(pk, sid)] = row.Time
    assert {k: v[-1][0] for k, v in series.items()} == stored
