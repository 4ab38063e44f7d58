"""The run launchers: production's ECS launcher and the local one, both with the 10-minute job's launch rules.

**Launch rules** (`decide`, docs/operations.md "Bounded runs"). Azure serves only the present: a partition can be
collected until 10 minutes after its data time, when the next partition's run is due. So a run of
`azure_collect_10min` for one partition:
- launched before that moment is given until then plus WINDOW_GRACE to finish (a collection that started in time
  may merge and load after it): the launcher sets its `dagster/max_runtime` tag, which the daemon's run monitoring
  enforces by terminating the run. A hung run cannot hold the queue for more than the grace past the next tick, and
  what it stored before it was ended is merged by the next partition's run (docs/design.md "Continuity", rule 4),
  so a run ended after its window is not retried;
- launched after it ends at once, without a worker, if the schedule started it (FAILED, "can no longer be
  collected": its partition is lost, and the failure alert says so) or it is an automatic retry (CANCELED: the next
  partition's run recovers what was stored). Neither is retried.
Other runs (an operator's past partitions, backfills, the daily pool) are bounded by the instance's
`run_monitoring.max_runtime_seconds`.

**LockedEcsRunLauncher**, production: dagster-aws's EcsRunLauncher, without the run tags that rewrite the run's task.
EcsRunLauncher reads three run tags and passes them to ECS RunTask: `ecs/container_overrides` (the container's
command and environment), `ecs/task_overrides` (the task's roles, its containers) and `ecs/run_task_kwargs` (any
RunTask argument, `overrides` included). Anyone who can launch a run can set run tags (the launchpad edits them), and
IAM cannot tell RunTask's overrides apart: with those tags a run's container could run any command with the run
role, which reads the Azure secret, or start with SPOTLAKE_ENV=prod and another authority. This launcher refuses a
run that carries any of them, before RunTask (docs/security.md "Run tags cannot rewrite the run's task"). The task
definition, its environment and its command are Terraform's (infra/modules/collector/ecs.tf). The size tags
(`ecs/cpu`, `ecs/memory`, `ecs/ephemeral_storage`) stay allowed: they change what a run costs, not what it runs.

**LocalRunLauncher**, `make dev` and the production rehearsal (benchmarks/rehearsal.py): each run in a process of its
own, started by the daemon in a session of its own, as ECS runs each in a task: independent of the code server and
the daemon, so restarting either leaves running runs alone. Unlike Dagster's DefaultRunLauncher it has a worker
health check (the process is gone: the run is failed, and retried), and terminating a run stops its whole process
group as ECS stops a task (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psutil
from dagster import DagsterRun, DagsterRunStatus
from dagster._core.launcher import (
    CheckRunHealthResult,
    LaunchRunContext,
    ResumeRunContext,
    RunLauncher,
    WorkerStatus,
)
from dagster._core.storage.tags import (
    MAX_RETRIES_TAG,
    MAX_RUNTIME_SECONDS_TAG,
    PARENT_RUN_ID_TAG,
    PARTITION_NAME_TAG,
    RETRY_NUMBER_TAG,
    SCHEDULE_NAME_TAG,
)
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import ConfigurableClass, ConfigurableClassData, serialize_value
from dagster_aws.ecs import EcsRunLauncher

from spotlake_assets.core import names
from spotlake_assets.core.timekeys import data_time

from .clock import Clock
from .settings import load_settings

REFUSED_TAGS = ("ecs/container_overrides", "ecs/task_overrides", "ecs/run_task_kwargs")
# How long after its partition's window a run may go on (its merge, load and publication). A full-scale partition
# takes about two minutes from the first request to the public files (docs/operations.md "Bounded runs"): a run
# started on time has 15 minutes, and after a hang the next partition starts at most this late, still in its window.
WINDOW_GRACE = timedelta(minutes=5)
# What a run tag says about a run the launch rules ended (the UI shows it beside the run's status).
ENDED_TAG = "spotlake/launch"


class RunTagRefused(RuntimeError):
    """A run's tags would have rewritten its ECS task."""


def refuse_task_overrides(tags: Mapping[str, str]) -> None:
    found = [tag for tag in REFUSED_TAGS if tag in tags]
    if found:
        raise RunTagRefused(
            f"run tags {', '.join(found)} are refused: the run's task (command, environment, roles) is the "
            "deployment's task definition; remove the tags and launch again"
        )


@dataclass(frozen=True)
class Launch:
    """What the launch rules decide for one run: launch it (with a bound, or the instance's), or end it at once."""

    max_runtime_s: int | None = None  # None: the instance's run_monitoring.max_runtime_seconds
    end: str | None = None  # why the run ends without a worker
    status: DagsterRunStatus = DagsterRunStatus.FAILURE  # how it ends: FAILURE (a lost partition) or CANCELED


def collected_partition(job_name: str, tags: Mapping[str, str]) -> str | None:
    """The partition of a one-partition run of the 10-minute job (None for any other run)."""
    return tags.get(PARTITION_NAME_TAG) if job_name == names.COLLECT_JOB else None


def decide(job_name: str, tags: Mapping[str, str], clock: Clock, grace: timedelta = WINDOW_GRACE) -> Launch:
    """The launch rules (see the module's docstring): the run's job and tags, the time now (read from `clock` only
    for a run of the 10-minute job).

    - A one-partition run of the 10-minute job launched while its partition can still be collected is bounded by
      the end of that window plus `grace` (whoever launched it: the schedule, a retry, an operator).
    - Launched after it: the schedule's run fails at once (its partition is lost), an automatic retry is canceled
      (the next partition's run recovers what was stored); an operator's run of a past partition goes on (it
      imports what was stored) under the instance's bound.
    """
    partition = collected_partition(job_name, tags)
    if partition is None:
        return Launch()
    deadline = clock.live_until(data_time(partition))
    now = clock.now()
    if now < deadline:
        return Launch(max_runtime_s=max(1, int((deadline + grace - now).total_seconds())))
    late = f"{(now - deadline).total_seconds() / 60:.0f} min"
    if RETRY_NUMBER_TAG in tags:
        return Launch(
            end=f"retry of partition {partition} not needed: its window closed at {deadline:%H:%M} UTC ({late} "
            "ago); what its run stored is merged by the next partition's run, which recovers it",
            status=DagsterRunStatus.CANCELED,
        )
    if SCHEDULE_NAME_TAG in tags and PARENT_RUN_ID_TAG not in tags:
        return Launch(
            end=f"partition {partition} can no longer be collected: its run was queued until {late} after its "
            f"window closed at {deadline:%H:%M} UTC (Azure serves only the present); it is lost, and the next "
            "partition continues without it",
        )
    return Launch()


class LaunchRules:
    """The launch rules as a mixin of a RunLauncher: `launch_run` applies them before the worker starts."""

    _instance: Any  # set by Dagster (MayHaveInstanceWeakref)
    window_grace: timedelta = WINDOW_GRACE

    def _clock(self) -> Clock:
        # the deployment's clock (the wall clock; the embedded emulator's in `local`), read when a run launches
        return Clock.from_settings(load_settings())

    def apply_launch_rules(self, run: DagsterRun) -> bool:
        """Tag the run's bound, or end the run; True when it is to be launched."""
        launch = decide(run.job_name, run.tags, self._clock(), self.window_grace)
        if launch.end is None:
            if launch.max_runtime_s is not None:
                self._instance.add_run_tags(run.run_id, {MAX_RUNTIME_SECONDS_TAG: str(launch.max_runtime_s)})
            return True
        self._instance.add_run_tags(run.run_id, {MAX_RETRIES_TAG: "0", ENDED_TAG: "window closed"})
        self._instance.report_engine_event(launch.end, run, cls=type(self))
        if launch.status == DagsterRunStatus.CANCELED:
            self._instance.report_run_canceled(run, launch.end)
        else:
            self._instance.report_run_failed(run, launch.end)
        return False

    def no_retry_after_window(self, run_id: str) -> None:
        """A run terminated after its window closed (its bound) is not retried: the next partition's run recovers
        what it stored, and a retry could do nothing more."""
        run = self._instance.get_run_by_id(run_id)
        if run is None:
            return
        partition = collected_partition(run.job_name, run.tags)
        if partition is None:
            return
        clock = self._clock()
        if clock.now() >= clock.live_until(data_time(partition)):
            self._instance.add_run_tags(run_id, {MAX_RETRIES_TAG: "0", ENDED_TAG: "bound: window closed"})


class LockedEcsRunLauncher(LaunchRules, EcsRunLauncher):
    """EcsRunLauncher that refuses runs whose tags would override the ECS task, with the launch rules."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The daemon and the webserver build this from the instance without loading the code location, and
        # EcsRunLauncher's constructor already sends a signed request (DescribeTaskDefinition): the environment's
        # guards first, boto3's own endpoint variables included (resources/settings.py check_boto_endpoints).
        load_settings()
        super().__init__(*args, **kwargs)

    def launch_run(self, context: LaunchRunContext) -> None:
        refuse_task_overrides(context.dagster_run.tags)
        if self.apply_launch_rules(context.dagster_run):
            super().launch_run(context)

    def resume_run(self, context: ResumeRunContext) -> None:
        refuse_task_overrides(context.dagster_run.tags)
        super().resume_run(context)

    def terminate(self, run_id: str) -> bool:
        self.no_retry_after_window(run_id)
        return super().terminate(run_id)


# Run tags of a local run worker: its process id and start time (a pid alone may be reused by another process).
PID_TAG = "spotlake/worker_pid"
STARTED_TAG = "spotlake/worker_started"


class LocalRunLauncher(LaunchRules, RunLauncher, ConfigurableClass):
    """Each run in a process of its own, in a session of its own (see the module's docstring).

    Config: `stop_grace_seconds`, how long a terminated run has between SIGTERM and SIGKILL (ECS gives 30);
    `window_grace_seconds`, WINDOW_GRACE (tests shorten it to see a bound end a run within seconds);
    `stop_runs_on_exit`, stop the runs this launcher started when its process ends cleanly (`make dev`'s Ctrl-C:
    nothing is left running). Off by default: as ECS tasks, runs outlive a daemon that is restarted."""

    def __init__(
        self,
        inst_data: ConfigurableClassData | None = None,
        stop_grace_seconds: float = 10.0,
        window_grace_seconds: float = WINDOW_GRACE.total_seconds(),
        stop_runs_on_exit: bool = False,
    ) -> None:
        self._inst_data = inst_data
        self.stop_grace_seconds = stop_grace_seconds
        self.window_grace = timedelta(seconds=window_grace_seconds)
        self.stop_runs_on_exit = stop_runs_on_exit
        self._workers: dict[int, subprocess.Popen] = {}  # the workers this process started and not yet reaped
        self._exits: dict[int, int] = {}  # pid -> exit code, for the workers this process started
        self._lock = threading.Lock()
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        from dagster import Field

        return {
            "stop_grace_seconds": Field(float, is_required=False, default_value=10.0),
            "window_grace_seconds": Field(float, is_required=False, default_value=WINDOW_GRACE.total_seconds()),
            "stop_runs_on_exit": Field(bool, is_required=False, default_value=False),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data, **config_value)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        if not self.apply_launch_rules(run):
            return
        origin = context.job_code_origin
        if origin is None:
            raise RuntimeError(f"run {run.run_id} has no job origin: it cannot be started in a process")
        args = ExecuteRunArgs(job_origin=origin, run_id=run.run_id, instance_ref=self._instance.get_ref())
        # the Python that loaded the code (the code server's), not whatever `dagster` is first on PATH
        command = [origin.executable_path, "-m", "dagster", "api", "execute_run", serialize_value(args)]
        # A session of its own: stopping the daemon (or Ctrl-C in `make dev`'s terminal) does not stop the run, and
        # terminating the run stops its step processes with it.
        worker = subprocess.Popen(command, start_new_session=True)
        started = psutil.Process(worker.pid).create_time()
        self._instance.add_run_tags(run.run_id, {PID_TAG: str(worker.pid), STARTED_TAG: repr(started)})
        self._instance.report_engine_event(
            f"Launching run in a local process (pid {worker.pid}, process group {worker.pid})", run, cls=type(self)
        )
        # reap it when it exits (no zombie in the daemon) and keep its exit code for the health check
        with self._lock:
            self._workers[worker.pid] = worker
        threading.Thread(target=self._reap, args=(worker,), daemon=True, name=f"reap-{worker.pid}").start()

    def _reap(self, worker: subprocess.Popen) -> None:
        code = worker.wait()
        with self._lock:
            self._exits[worker.pid] = code
            self._workers.pop(worker.pid, None)

    def _worker(self, run: DagsterRun) -> psutil.Process | None:
        """The run's worker process if it is still running (not the same pid reused by another process)."""
        try:
            pid, started = int(run.tags[PID_TAG]), float(run.tags[STARTED_TAG])
            process = psutil.Process(pid)
            if abs(process.create_time() - started) > 0.01 or process.status() == psutil.STATUS_ZOMBIE:
                return None
            return process
        except (KeyError, ValueError, psutil.Error):
            return None

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        if PID_TAG not in run.tags:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "no local worker process was recorded for the run")
        if self._worker(run) is not None:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        pid = int(run.tags[PID_TAG])
        with self._lock:
            code = self._exits.get(pid)
        how = f"exited with code {code}" if code is not None else "is gone"
        if code == 0:
            return CheckRunHealthResult(WorkerStatus.SUCCESS, f"run worker process {pid} {how}")
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} {how}")

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        self.no_retry_after_window(run_id)
        self._instance.report_run_canceling(run)
        worker = self._worker(run)
        if worker is None:
            return False
        # as ECS stops a task: SIGTERM to the whole group, SIGKILL to what is left after the grace period
        self._signal_group(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=self.stop_grace_seconds)
        except psutil.TimeoutExpired:
            pass
        self._signal_group(worker.pid, signal.SIGKILL)
        return True

    @staticmethod
    def _signal_group(pgid: int, sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass

    def dispose(self) -> None:
        """The process is ending: its workers are left running (as ECS tasks outlive the daemon that started them)
        unless `stop_runs_on_exit`."""
        if not self.stop_runs_on_exit:
            return
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            self._signal_group(worker.pid, signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=self.stop_grace_seconds)
            except subprocess.TimeoutExpired:
                self._signal_group(worker.pid, signal.SIGKILL)


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Whether process `pid` ended within `timeout` seconds (tests and the rehearsal)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid):
            return True
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False
