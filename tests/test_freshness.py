"""Freshness in the graph (spotlake_assets/freshness.py): the checks fail when nothing new was published, the check
alert posts them, and a run that published nothing records no publication that would hide it."""

from __future__ import annotations

import time
from datetime import timedelta

import dagster as dg

from resources.clock import Clock
from resources.io_manager import PartitionStore
from resources.settings import load_settings
from spotlake_assets.core import names
from spotlake_assets.core.timekeys import data_time
from spotlake_assets.defs import build_definitions, build_resources
from spotlake_assets.freshness import FRESH_ASSETS, FRESHNESS_BOUND, SENSOR_NAME, build_freshness_checks
from spotlake_assets.sensors import RESOURCE_KEY, failed_check_alert

from .stack import start, use_stack
from .test_alerts import Receiver, receiver, webhook  # noqa: F401 - pytest fixtures

P0, P1 = "2026-11-26-10:00", "2026-11-26-10:10"


def test_the_definitions_check_the_snapshot_and_the_public_files_and_run_the_sensor_in_prod_only():
    for env, running in (("local", False), ("test", False), ("prod", True)):
        defs = build_definitions(load_settings({"SPOTLAKE_ENV": env}))
        graph = defs.resolve_asset_graph()
        checked = {key.asset_key.to_user_string() for key in graph.asset_check_keys if key.name == "freshness_check"}
        assert checked == set(FRESH_ASSETS)
        sensor = defs.resolve_sensor_def(SENSOR_NAME)
        assert (sensor.default_status == dg.DefaultSensorStatus.RUNNING) is running
        # the schedules too: production collects from its first deployment on
        schedules = {s.name: s.default_status for s in defs.schedules}
        expected = dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
        assert set(schedules.values()) == {expected}
    # the 10-minute job does not run them (a step in every run): their sensor does, when they could have gone stale
    job = build_definitions(load_settings({})).resolve_job_def(names.COLLECT_JOB)
    assert "freshness_check" not in {key.name for key in job.asset_layer.asset_graph.asset_check_keys}
    assert FRESHNESS_BOUND == timedelta(minutes=30)


def run_checks(instance: dg.DagsterInstance, bound: timedelta) -> dg.ExecuteInProcessResult:
    checks = build_freshness_checks(bound)
    defs = dg.Definitions(
        asset_checks=checks, jobs=[dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(*checks))]
    )
    return defs.resolve_job_def("freshness").execute_in_process(instance=instance)


def evaluations(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        e.event_specific_data.asset_key.to_user_string(): e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def latest(instance: dg.DagsterInstance, asset: str) -> float:
    return instance.get_latest_materialization_event(dg.AssetKey(asset)).timestamp


def test_nothing_new_published_fails_the_check_and_the_alert_posts_it(monkeypatch, webhook, receiver):  # noqa: F811
    with start() as stack, dg.DagsterInstance.ephemeral() as instance:
        use_stack(stack, monkeypatch)

        def collect(partition: str, at) -> dg.ExecuteInProcessResult:
            stack.emulator.set_time(at)
            defs = build_definitions(stack.settings, clock=Clock(frozen_at=at.isoformat()))
            job = defs.resolve_job_def(names.COLLECT_JOB)
            return job.execute_in_process(partition_key=partition, instance=instance)

        assert collect(P0, data_time(P0)).success
        published = latest(instance, names.PUBLIC_OUTPUTS)
        assert all(e.passed for e in evaluations(run_checks(instance, FRESHNESS_BOUND)).values())

        # P1's sources all failed while it was live (their failure markers are stored) and its run is re-run 30
        # minutes late: nothing is collected, nothing is published, and the public files record no
        # materialization (the merge still ran, and says so). (With nothing stored at all the run would be refused:
        # docs/operations.md "Past partitions".)
        store = PartitionStore(build_resources(stack.settings)["store"])
        for source in names.RAW_SOURCES:
            store.save(source, P1, None, "an earlier run of P1")
        time.sleep(1.0)
        late = collect(P1, data_time(P1) + timedelta(minutes=30))
        assert late.success
        assert [e.asset_key.to_user_string() for e in late.get_asset_materialization_events()].count(
            names.PUBLIC_OUTPUTS
        ) == 0
        assert latest(instance, names.PUBLIC_OUTPUTS) == published
        merged = latest(instance, names.SNAPSHOT)
        assert merged > published

        # nothing published for longer than the bound: the public files' check fails, the snapshot's passes
        bound = timedelta(seconds=time.time() - (published + merged) / 2)
        result = run_checks(instance, bound)
        checked = evaluations(result)
        assert not checked[names.PUBLIC_OUTPUTS].passed and checked[names.SNAPSHOT].passed
        assert checked[names.PUBLIC_OUTPUTS].severity == dg.AssetCheckSeverity.ERROR

        context = dg.build_run_status_sensor_context(
            sensor_name=failed_check_alert.name,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_success_event(),
            resources={RESOURCE_KEY: webhook},
        )
        failed_check_alert(context)
    [post] = receiver.posts
    text = post["json"]["text"]
    assert f"`{names.PUBLIC_OUTPUTS} / freshness_check`: Asset is overdue for an update" in text
