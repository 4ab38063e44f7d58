"""The production run launcher refuses run tags that would rewrite the run's ECS task, against moto's ECS over HTTP.

dagster-aws's EcsRunLauncher passes `ecs/container_overrides`, `ecs/task_overrides` and `ecs/run_task_kwargs` run
tags to RunTask: a launchpad user could run any command with the run role (which reads the Azure secret) or change
the container's environment. resources/run_launcher.py refuses them before RunTask."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import boto3
import dagster as dg
import pytest
from dagster._core.launcher import LaunchRunContext

from resources.run_launcher import REFUSED_TAGS, LockedEcsRunLauncher, RunTagRefused


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
