"""The run launchers (resources/run_launcher.py).

The production launcher refuses run tags that would rewrite the run's ECS task, against moto's ECS over HTTP:
dagster-aws's EcsRunLauncher passes `ecs/container_overrides`, `ecs/task_overrides` and `ecs/run_task_kwargs` run
tags to RunTask, so a launchpad user could run any command with the run role (which reads the Azure secret) or change
the container's environment. Both launchers apply the 10-minute job's launch rules (bounded by the partition's window,
ended at once when launched after it); the local one runs each run in a process group of its own, watched and
stopped as ECS does a task."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from datetime import timedelta
from types import SimpleNamespace

import boto3
import dagster as dg
import pytest
from dagster._core.launcher import LaunchRunContext, WorkerStatus

from resources.clock import Clock
from resources.run_launcher import (
    PID_TAG,
    REFUSED_TAGS,
    WINDOW_GRACE,
    Launch,
    LocalRunLauncher,
    LockedEcsRunLauncher,
    RunTagRefused,
    decide,
    wait_for_exit,
)
from resources.settings import SettingsError


@dg.op
def step() -> None:
    pass


@dg.job
def some_job() -> None:
    step()


def get_job() -> dg.JobDefinition:
    return some_job


@pytest.fixture
def ecs(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch):
    """A cluster with one EC2 container instance and a task definition with a `run` container, in moto's ECS
    (moto's Fargate tasks fail on their network interface, so the runs go to EC2 here)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    client, ec2 = boto3.client("ecs"), boto3.client("ec2")
    name = f"spotlake-{uuid.uuid4().hex[:8]}"
    cluster = client.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    [instance] = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"]
    client.register_container_instance(
        cluster=cluster, instanceIdentityDocument=json.dumps({"instanceId": instance["InstanceId"]})
    )
    task_definition = client.register_task_definition(
        family=f"{name}-run",
        containerDefinitions=[{"name": "run", "image": "spotlake-azure:test", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    return SimpleNamespace(client=client, cluster=cluster, task_definition=task_definition)


def launcher_config(ecs) -> dict:
    """The run launcher of infra/modules/collector/dagster.yaml.tftpl, on EC2 instead of a Fargate capacity
    provider (moto)."""
    return {
        "module": "resources.run_launcher",
        "class": "LockedEcsRunLauncher",
        "config": {
            "task_definition": ecs.task_definition,
            "container_name": "run",
            "secrets_tag": None,
            "use_current_ecs_task_config": False,
            "run_task_kwargs": {"cluster": ecs.cluster, "launchType": "EC2"},
        },
    }


def launch(instance: dg.DagsterInstance, tags: dict[str, str]) -> None:
    run = instance.create_run_for_job(
        some_job, job_code_origin=dg.reconstructable(get_job).get_python_origin(), tags=tags
    )
    instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))


ATTACK = {
    "ecs/container_overrides": json.dumps(
        {"command": ["sh", "-c", "env"], "environment": [{"name": "SPOTLAKE_ENV", "value": "prod"}]}
    ),
    "ecs/task_overrides": json.dumps({"taskRoleArn": "arn:aws:iam::123456789012:role/other"}),
    "ecs/run_task_kwargs": json.dumps({"overrides": {"containerOverrides": [{"name": "run", "command": ["id"]}]}}),
}


@pytest.mark.parametrize("tag", REFUSED_TAGS)
def test_a_run_tag_that_rewrites_the_task_is_refused_before_run_task(ecs, tag):
    with dg.instance_for_test(overrides={"run_launcher": launcher_config(ecs)}) as instance:
        assert isinstance(instance.run_launcher, LockedEcsRunLauncher)
        with pytest.raises(RunTagRefused, match=tag):
            launch(instance, {tag: ATTACK[tag]})
    assert ecs.client.list_tasks(cluster=ecs.cluster)["taskArns"] == []


def test_a_run_without_them_is_launched_with_dagsters_command(ecs):
    with dg.instance_for_test(overrides={"run_launcher": launcher_config(ecs)}) as instance:
        launch(instance, {"ecs/memory": "1024", "dagster/partition": "2026-11-27-10:20"})
    [arn] = ecs.client.list_tasks(cluster=ecs.cluster)["taskArns"]
    [task] = ecs.client.describe_tasks(cluster=ecs.cluster, tasks=[arn])["tasks"]
    [container] = task["overrides"]["containerOverrides"]
    assert container["command"][:3] == ["dagster", "api", "execute_run"]
    assert "environment" not in container or container["environment"] == []


def test_in_prod_the_ecs_launcher_refuses_boto3s_endpoint_variable_before_any_request(monkeypatch):
    """The daemon and the webserver build the launcher from the instance without loading the code location, and
    EcsRunLauncher's constructor sends DescribeTaskDefinition: AWS_ENDPOINT_URL is refused before it."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        monkeypatch.setenv("SPOTLAKE_ENV", "prod")
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{listener.getsockname()[1]}")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        refused = r"^AWS_ENDPOINT_URL \(host 127\.0\.0\.1\) is refused in SPOTLAKE_ENV=prod"
        with pytest.raises(SettingsError, match=refused):
            LockedEcsRunLauncher(task_definition="arn:aws:ecs:us-west-2:123456789012:task-definition/spotlake-run:1")
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected


# --- the launch rules of the 10-minute job (resources/run_launcher.py) ---------------------------------------------

P = "2026-11-26-10:00"  # window [10:00, 10:10), data time 10:10, collectable until 10:20
SCHEDULED = {"dagster/partition": P, "dagster/schedule_name": "azure_collect_10min_schedule"}
RETRY = {**SCHEDULED, "dagster/parent_run_id": "r0", "dagster/root_run_id": "r0", "dagster/retry_number": "1"}


def at(hh_mm_ss: str) -> Clock:
    return Clock(frozen_at=f"2026-11-26T{hh_mm_ss}+00:00")


def test_a_run_launched_in_its_window_is_bounded_by_the_window_and_the_grace():
    launch = decide("azure_collect_10min", SCHEDULED, at("10:10:30"))
    bound = WINDOW_GRACE + timedelta(minutes=9, seconds=30)  # the window's rest, then the grace
    assert (launch.end, launch.max_runtime_s) == (None, int(bound.total_seconds()))
    # whoever launched it: an operator's run of the newest partition, a retry in time
    assert decide("azure_collect_10min", {"dagster/partition": P}, at("10:19:00")).max_runtime_s == 60 + 300
    assert decide("azure_collect_10min", RETRY, at("10:15:00")).max_runtime_s == 300 + 300


def test_the_schedules_run_launched_after_its_window_fails_at_once_naming_the_lost_partition():
    launch = decide("azure_collect_10min", SCHEDULED, at("10:50:00"))
    assert launch.status == dg.DagsterRunStatus.FAILURE and launch.max_runtime_s is None
    assert f"partition {P} can no longer be collected" in launch.end and "30 min after its window" in launch.end


def test_a_retry_launched_after_the_window_is_canceled_the_next_run_recovers_the_partition():
    launch = decide("azure_collect_10min", RETRY, at("10:20:01"))
    assert launch.status == dg.DagsterRunStatus.CANCELED
    assert "recovers it" in launch.end


@pytest.mark.parametrize(
    "job, tags",
    [
        ("azure_collect_10min", {"dagster/partition": P}),  # an operator's run of a past partition: it imports
        ("azure_collect_10min", {**SCHEDULED, "dagster/parent_run_id": "r0"}),  # an operator's re-execution
        ("azure_collect_10min", {"dagster/asset_partition_range_start": P, "dagster/asset_partition_range_end": P}),
        ("azure_sps_request_pool_daily", {"dagster/partition": "2026-11-26"}),
    ],
)
def test_other_runs_are_left_to_the_instance_bound(job, tags):
    assert decide(job, tags, at("23:00:00")) == Launch()


@dg.op
def nap() -> None:
    import time

    time.sleep(float(os.environ.get("SPOTLAKE_TEST_NAP_S", "60")))


@dg.job(name="azure_collect_10min")
def collect_like() -> None:
    nap()


def get_collect_like() -> dg.JobDefinition:
    return collect_like


def local_instance(tmp_path, monkeypatch: pytest.MonkeyPatch, **config):
    """An instance whose runs the LocalRunLauncher starts; `test`'s settings (the wall clock, no local stack)."""
    monkeypatch.setenv("SPOTLAKE_ENV", "test")
    tmp_path.mkdir(exist_ok=True)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    launcher = {
        "module": "resources.run_launcher",
        "class": "LocalRunLauncher",
        "config": {"stop_grace_seconds": 2, **config},
    }
    return dg.instance_for_test(overrides={"run_launcher": launcher}, temp_dir=str(tmp_path))


def start_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.DagsterRun:
    run = instance.create_run_for_job(
        collect_like, job_code_origin=dg.reconstructable(get_collect_like).get_python_origin(), tags=tags
    )
    instance.run_launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    return instance.get_run_by_id(run.run_id)


def test_a_late_scheduled_run_ends_at_once_without_a_worker(tmp_path, monkeypatch):
    with local_instance(tmp_path, monkeypatch) as instance:
        late = start_run(instance, SCHEDULED)
        assert late.status == dg.DagsterRunStatus.FAILURE and PID_TAG not in late.tags
        assert late.tags["dagster/max_retries"] == "0"
        [event] = instance.all_logs(late.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert "can no longer be collected" in event.message
        retry = start_run(instance, RETRY)
        assert retry.status == dg.DagsterRunStatus.CANCELED and PID_TAG not in retry.tags


def test_the_local_worker_is_watched_and_terminated_as_ecs_does_a_task(tmp_path, monkeypatch):
    """A run in its own process group: healthy while it runs, failed once it is gone (SIGKILL), and terminating a
    run stops its whole group."""
    with local_instance(tmp_path, monkeypatch) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, LocalRunLauncher) and launcher.supports_check_run_worker_health
        running = start_run(instance, {})  # not the schedule's: no window rule
        pid = int(running.tags[PID_TAG])
        assert os.getpgid(pid) == pid  # a session of its own
        assert launcher.check_run_worker_health(running).status == WorkerStatus.RUNNING
        assert launcher.terminate(running.run_id)
        assert wait_for_exit(pid, timeout=10)
        gone = launcher.check_run_worker_health(instance.get_run_by_id(running.run_id))
        # SIGTERM before Dagster's handler is installed kills the worker (FAILED); after it, Dagster ends the run
        # and the worker exits 0 (SUCCESS, the run itself CANCELED): either way it is no longer RUNNING
        assert gone.status in (WorkerStatus.FAILED, WorkerStatus.SUCCESS) and str(pid) in gone.msg
        assert instance.get_run_by_id(running.run_id).status in (
            dg.DagsterRunStatus.CANCELING,
            dg.DagsterRunStatus.CANCELED,
        )

        killed = start_run(instance, {})
        pid = int(killed.tags[PID_TAG])
        os.killpg(pid, signal.SIGKILL)
        assert wait_for_exit(pid, timeout=10)
        time.sleep(0.2)  # the launcher's reaper records the exit code
        health = launcher.check_run_worker_health(killed)
        assert health.status == WorkerStatus.FAILED and "exited with code -9" in health.msg


def test_runs_outlive_their_launcher_unless_it_stops_them_on_exit(tmp_path, monkeypatch):
    """As ECS tasks outlive a restarted daemon, a local run outlives the process that launched it; `make dev`'s
    instance stops them on exit instead (Ctrl-C leaves nothing running)."""
    with local_instance(tmp_path / "kept", monkeypatch) as instance:
        kept = int(start_run(instance, {}).tags[PID_TAG])
    assert not wait_for_exit(kept, timeout=1)
    os.killpg(kept, signal.SIGKILL)
    with local_instance(tmp_path / "stopped", monkeypatch, stop_runs_on_exit=True) as instance:
        stopped = int(start_run(instance, {}).tags[PID_TAG])
    assert wait_for_exit(stopped, timeout=10)
