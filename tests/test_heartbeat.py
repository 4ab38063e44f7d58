"""The heartbeat an alarm outside Dagster watches (resources/heartbeat.py): one CloudWatch datapoint per run that
committed partitions, put after the commit and only then, against moto's CloudWatch over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from resources.heartbeat import DIMENSION, METRIC, NAMESPACE, Heartbeat, HeartbeatError
from spotlake_assets.core import names
from spotlake_assets.local.aws import LOCAL_AWS_CREDENTIALS
from spotlake_assets.local.run import run_partitions

from .stack import graph, materialize_only, metadata, start, use_stack

P0, P1, P2, P3 = "2026-11-26-10:00", "2026-11-26-10:10", "2026-11-26-10:20", "2026-11-26-10:30"


def beats(stack) -> list[float]:
    """The values of every PartitionsCommitted datapoint of the stack's environment, one per put (the puts are
    seconds apart at most, so each minute's samples are summed: Sum and SampleCount of every minute)."""
    client = boto3.client(
        "cloudwatch", endpoint_url=stack.aws.endpoint_url, region_name="us-west-2", **LOCAL_AWS_CREDENTIALS
    )
    now = datetime.now(UTC)
    answer = client.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=METRIC,
        Dimensions=[{"Name": DIMENSION, "Value": stack.settings.env}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum", "SampleCount"],
    )
    return sorted((p["Sum"], p["SampleCount"]) for p in answer["Datapoints"])


def totals(stack) -> tuple[float, float]:
    points = beats(stack)
    return sum(p[0] for p in points), sum(p[1] for p in points)


def test_a_beat_is_one_datapoint_of_the_environment(monkeypatch):
    with start() as stack:
        heartbeat = Heartbeat.from_settings(stack.settings)
        use_stack(stack, monkeypatch)
        heartbeat.beat(2)
        assert totals(stack) == (2.0, 1.0)
        with pytest.raises(ValueError, match="committed partitions"):
            heartbeat.beat(0)


def test_the_heartbeat_is_put_when_partitions_commit_and_only_then(monkeypatch):
    with start() as stack:
        use_stack(stack, monkeypatch)
        assert run_partitions(stack, [P0]).success
        assert totals(stack) == (1.0, 1.0)
        # a partition collected too late, with nothing stored: refused, nothing merged, nothing committed, no beat
        late = run_partitions(stack, [P1], at={P1: datetime(2026, 11, 26, 11, 0, tzinfo=UTC)})
        assert not late.success and sorted(late.failures) == [f"{P1} {names.EVICTION_RAW}", f"{P1} {names.PRICE_RAW}"]
        assert totals(stack) == (1.0, 1.0)
        # a run whose DynamoDB load fails before its commit: no beat
        resources = use_stack(stack, monkeypatch)
        table = resources["history"].table_name
        resources["history"].client.delete_table(TableName=table)
        resources["history"].client.get_waiter("table_not_exists").wait(TableName=table)
        failed = run_partitions(stack, [P2])
        assert any(names.HISTORY in f for f in failed.failures)
        assert totals(stack) == (1.0, 1.0)
        # the table back: the next run commits P3 (P2 stays uncommitted: it is recovered, collected but not
        # loaded) and beats once for both
        resources["history"].ensure_table()
        assert run_partitions(stack, [P3]).success
        assert totals(stack) == (3.0, 2.0)


def test_a_heartbeat_that_cannot_be_sent_does_not_undo_the_commit(monkeypatch):
    """The partitions are committed: the step succeeds and says the heartbeat was not sent (the alarm outside
    Dagster will notice it missing), naming the namespace and the endpoint."""
    with start() as stack:
        resources = use_stack(stack, monkeypatch)
        assert run_partitions(stack, [P0]).success
        closed = Heartbeat(environment="local", endpoint_url="http://127.0.0.1:9", region_name="us-west-2")
        with pytest.raises(HeartbeatError, match=r"PutMetricData of SpotLake/Azure/PartitionsCommitted at http://127"):
            closed.beat(1)
        resources["heartbeat"] = closed
        from dagster import DagsterInstance

        from resources.clock import Clock
        from spotlake_assets.core.timekeys import data_time

        stack.emulator.set_time(data_time(P1))
        resources["clock"] = Clock(frozen_at=data_time(P1).isoformat())
        with DagsterInstance.ephemeral() as instance:
            result = materialize_only(graph(*names.TEN_MINUTE_ASSETS), resources, instance, partition_key=P1)
        assert result.success
        assert metadata(result, names.HISTORY)["heartbeat"].startswith("not sent: PutMetricData of SpotLake/Azure")
