"""The production run launcher: dagster-aws's EcsRunLauncher, without the run tags that rewrite the run's task.

EcsRunLauncher reads three run tags and passes them to ECS RunTask: `ecs/container_overrides` (the container's
command and environment), `ecs/task_overrides` (the task's roles, its containers) and `ecs/run_task_kwargs` (any
RunTask argument, `overrides` included). Anyone who can launch a run can set run tags (the launchpad edits them), and
IAM cannot tell RunTask's overrides apart: with those tags a run's container could run any command with the run
role, which reads the Azure secret, or start with SPOTLAKE_ENV=prod and another authority. This launcher refuses a
run that carries any of them, before RunTask (docs/security.md "Run tags cannot rewrite the run's task"). The task
definition, its environment and its command are Terraform's (infra/modules/collector/ecs.tf). The size tags
(`ecs/cpu`, `ecs/memory`, `ecs/ephemeral_storage`) stay allowed: they change what a run costs, not what it runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from dagster._core.launcher import LaunchRunContext, ResumeRunContext
from dagster_aws.ecs import EcsRunLauncher

REFUSED_TAGS = ("ecs/container_overrides", "ecs/task_overrides", "ecs/run_task_kwargs")


class RunTagRefused(RuntimeError):
    """A run's tags would have rewritten its ECS task."""


def refuse_task_overrides(tags: Mapping[str, str]) -> None:
    found = [tag for tag in REFUSED_TAGS if tag in tags]
    if found:
        raise RunTagRefused(
            f"run tags {', '.join(found)} are refused: the run's task (command, environment, roles) is the "
            "deployment's task definition; remove the tags and launch again"
        )


class LockedEcsRunLauncher(EcsRunLauncher):
    """EcsRunLauncher that refuses runs whose tags would override the ECS task (see the module's docstring)."""

    def launch_run(self, context: LaunchRunContext) -> None:
        refuse_task_overrides(context.dagster_run.tags)
        super().launch_run(context)

    def resume_run(self, context: ResumeRunContext) -> None:
        refuse_task_overrides(context.dagster_run.tags)
        super().resume_run(context)
