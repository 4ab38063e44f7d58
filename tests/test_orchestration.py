"""Never silently stopped: a real daemon, code server and webserver (separate processes) over `make dev`'s instance,
runs submitted through the GraphQL API as the UI does, the run queue, run monitoring and run retries at work.

- A run SIGKILLed mid-merge while the next partition is already queued: the next partition's run recovers it, and
  the archive equals the uninterrupted one.
- A run that hangs (the emulator's SPS API never finishes its answer) is ended by its bound, the failure alert
  posts it, and the next partition runs and recovers what the hung run stored.

The instance is `make dev`'s dagster.yaml (SQLite, run queue, retries, monitoring, the local run launcher), with
the launcher's window grace shortened from 5 minutes to GRACE_S so that the hang ends within the test's time. The
collector's clock is the emulator's (`local`), which the test sets for each partition as the schedule's tick would
find it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.instance.ref import InstanceRef

from resources.continuity import StateChain
from resources.run_launcher import PID_TAG
from spotlake_assets.core import layout, names
from spotlake_assets.core.timekeys import data_time
from spotlake_assets.local.dagster_home import DEV_CONFIG, fresh_instance
from spotlake_assets.local.deployment import Deployment, WebhookReceiver
from spotlake_assets.local.run import run_partitions
from spotlake_assets.local.stack import stack_environ

from .stack import start, use_stack
from .test_continuity import archive, differences

SEED = 31
P0, P1, P2, P3, P4 = (f"2026-11-26-10:{i}0" for i in range(5))
GRACE_S = 20
RUN_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> Iterator[tuple]:
    home = tmp_path_factory.mktemp("home")
    config = yaml.safe_load(DEV_CONFIG.read_text())
    config["run_launcher"]["config"]["window_grace_seconds"] = GRACE_S
    dagster_yaml = home / "dev-dagster.yaml"
    dagster_yaml.write_text(yaml.safe_dump(config))
    fresh_instance(home, dagster_yaml)
    receiver = WebhookReceiver()
    with start(seed=SEED, extra_env={"SPOTLAKE_PARTITION_START": P0}) as stack, pytest.MonkeyPatch.context() as mp:
        use_stack(stack, mp)
        env = {**stack_environ(stack, os.environ), "SPOTLAKE_SLACK_WEBHOOK_URL": receiver.url}
        deployment = Deployment(home=home, env=env, logs=home.parent / "service-logs")
        try:
            deployment.start()
            yield stack, deployment, receiver
        finally:
            deployment.stop()
            receiver.close()
            print(deployment.log_tails())  # pytest shows it when a test failed


def instance(deployment: Deployment) -> DagsterInstance:
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(deployment.home)))


def wait_until(condition, what: str, timeout: float = RUN_TIMEOUT_S, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def run_of(deployment: Deployment, run_id: str):
    with instance(deployment) as inst:
        return inst.get_run_record_by_id(run_id)


def finished(deployment: Deployment, run_id: str):
    record = run_of(deployment, run_id)
    return record if record.dagster_run.is_finished else None


def step_started(deployment: Deployment, run_id: str, step: str) -> bool:
    with instance(deployment) as inst:
        return any(e.dagster_event.step_key == step for e in inst.all_logs(run_id, of_type=DagsterEventType.STEP_START))


def runs_of(deployment: Deployment, partition: str):
    with instance(deployment) as inst:
        return inst.get_run_records(RunsFilter(tags={"dagster/partition": partition}), ascending=True)


def collect_at(stack, partition: str, after: timedelta = timedelta(seconds=30)) -> None:
    """The emulator's clock, which is the collector's in `local`: `after` past the partition's data time."""
    stack.emulator.set_time(data_time(partition) + after)


def test_a_run_killed_mid_merge_with_the_next_partition_queued_is_recovered_exactly(deployed, monkeypatch):
    stack, deployment, _ = deployed
    at = {key: data_time(key) + timedelta(seconds=30) for key in (P0, P1, P2)}
    # the history begins at P0, run in this process (the stack is this process's)
    assert run_partitions(stack, [P0], request_pools=False, at=at).success

    collect_at(stack, P1)
    killed = deployment.submit(names.COLLECT_JOB, P1)
    wait_until(lambda: step_started(deployment, killed, "azure_spot_snapshot"), "P1's merge to start", every=0.05)
    # the tick of P2 comes while P1 is still merging: its run waits in the queue
    collect_at(stack, P2)
    queued = deployment.submit(names.COLLECT_JOB, P2)
    os.killpg(int(run_of(deployment, killed).dagster_run.tags[PID_TAG]), signal.SIGKILL)  # the worker and its steps

    assert wait_until(lambda: finished(deployment, queued), "P2's run").dagster_run.status == DagsterRunStatus.SUCCESS
    dead = run_of(deployment, killed)
    assert dead.dagster_run.status == DagsterRunStatus.FAILURE
    # P1 died after collecting: P2's run merged, loaded and published it first
    chain = StateChain(use_stack(stack, monkeypatch)["store"])
    assert chain.commit_of(P1).continues == P0 and chain.commit_of(P2).continues == P1
    # the daemon's retry of P1 came after P2 (queued first) and ended at once: nothing was left for it to do

    def retry_ended():
        # asked anew each time: under load the daemon may create the retry only after P2 has finished
        retries = [r for r in runs_of(deployment, P1) if r.dagster_run.tags.get("dagster/retry_number")]
        return retries and finished(deployment, retries[0].dagster_run.run_id)

    retry = wait_until(retry_ended, "P1's retry to end")
    assert retry.dagster_run.status == DagsterRunStatus.CANCELED
    assert retry.start_time is None or retry.start_time >= run_of(deployment, queued).end_time

    with start(seed=SEED, extra_env={"SPOTLAKE_PARTITION_START": P0}) as reference:
        use_stack(reference, monkeypatch)
        report = run_partitions(reference, [P0, P1, P2], request_pools=False, at=at)
        assert report.success, report.failures
        expected = archive(reference)
    use_stack(stack, monkeypatch)
    assert differences(archive(stack), expected) == []


def test_a_hung_run_ends_within_its_bound_and_the_next_partition_runs(deployed, monkeypatch):
    stack, deployment, receiver = deployed
    store = use_stack(stack, monkeypatch)["store"]
    if StateChain(store).commit_of(P2) is None:  # run alone: the partition before the hung one, committed
        collect_at(stack, P2)
        before = deployment.submit(names.COLLECT_JOB, P2)
        assert wait_until(lambda: finished(deployment, before), "P2's run").dagster_run.status.value == "SUCCESS"
    # P3's SPS answers never end; its run is launched with 20 s of its window left: its bound is 20 s + the grace
    stack.emulator.configure(hang=["sps"])
    collect_at(stack, P3, after=timedelta(minutes=10) - timedelta(seconds=20))
    hung = deployment.submit(names.COLLECT_JOB, P3)
    wait_until(
        lambda: all(store.head(layout.frame_key(a, P3)) for a in (names.PRICE_RAW, names.EVICTION_RAW)),
        "P3's price and eviction snapshots",
    )
    wait_until(lambda: stack.emulator.stats()["faults"].get("hang"), "P3's first SPS call, which never ends")
    stack.emulator.configure(hang=[])
    collect_at(stack, P4)
    following = deployment.submit(names.COLLECT_JOB, P4)

    # the worker reports itself canceled when SIGTERM reaches it; run monitoring then marks the run failed
    done = (DagsterRunStatus.FAILURE, DagsterRunStatus.SUCCESS)
    ended = wait_until(lambda: (r := run_of(deployment, hung)).dagster_run.status in done and r, "the hung run to end")
    assert ended.dagster_run.status == DagsterRunStatus.FAILURE
    bound = int(ended.dagster_run.tags["dagster/max_runtime"])
    assert bound <= 20 + GRACE_S
    # run monitoring looks every 30 s (make dev's dagster.yaml) and stops a run in at most 10 s
    assert ended.end_time - ended.start_time <= bound + 30 + 10 + 15
    nxt = wait_until(lambda: finished(deployment, following), "P4's run")
    assert nxt.dagster_run.status == DagsterRunStatus.SUCCESS
    assert nxt.start_time >= ended.end_time
    # what P3 stored (price and IF) was merged by P4's run, SPS missing; P3 was not retried (its window had closed)
    chain = StateChain(store)
    assert chain.commit_of(P4).continues == P3
    assert [r.dagster_run.run_id for r in runs_of(deployment, P3)] == [hung]
    # the failure alert said which run, which partition and why
    alert = wait_until(lambda: [t for t in receiver.texts if P3 in t], "the failure alert", timeout=120)
    assert "maximum runtime" in alert[0]
