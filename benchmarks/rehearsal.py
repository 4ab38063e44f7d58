"""Production rehearsal: production's Dagster instance and topology on this machine, with faults injected one after
another, compared with the same partitions run without faults.

What runs, each in its own process:
- PostgreSQL (Debian's package) in a temporary directory, with TLS, as production's RDS (spotlake_assets/local/
  postgres.py);
- production's dagster.yaml rendered from infra's template (infra/modules/collector/dagster.yaml.tftpl) with two
  changes only: the database address, and the run launcher (no ECS here: resources.run_launcher.LocalRunLauncher,
  which starts each run in a process group of its own and applies the same launch rules);
- `dagster code-server start` (the image's command), `dagster-daemon run` and `dagster-webserver`, over the embedded
  local stack (moto's S3, DynamoDB and CloudWatch, the Azure emulator), each restarted when it exits as an ECS
  service restarts its task (spotlake_assets/local/deployment.py).

How partitions are driven. The last one comes from a real tick of the production schedule, turned on through the
GraphQL API as an operator does in the UI, collected at the wall clock's present. The ones before are driven faster
than the wall clock: the collector's clock in `local` is the Azure emulator's, which the rehearsal sets to each
partition's data time, then submits the partition's run through the GraphQL API as the UI does; the daemon queues,
launches, monitors and retries them as in production. Why not a backfill: a backfill of the 10-minute job is one
run over stored snapshots (BackfillPolicy.single_run), which would rehearse neither live collection nor the run
queue. The driven partitions end in the wall clock's past (Dagster's partitions end at the present), so they start
about as many partitions back as the faults need, and filler partitions close the distance before the tick.

Faults, one after another (each on its own partitions): a run worker SIGKILLed mid-merge while the next partition
is queued; a run that hangs (the emulator's SPS API never finishes its answer), launched with `--hang-budget-s` of
its window left, so that its bound (the window plus the production grace of 5 minutes) ends it; the daemon
SIGKILLed while a run is in progress and the next is queued, restarted after `--down-s`; PostgreSQL restarted (fast
shutdown, `--down-s` down) while a run merges; the code server restarted while a run is queued.

The fault-free reference: a fresh stack with the same seed runs the same partitions in one process at the same
times, collecting for each partition exactly the sources the rehearsal stored (the hung SPS answer is a source lost
for good: the reference loses it too). `equal_to_fault_free` compares the DynamoDB items, the last partition's
state and latest_azure.json.

Run: `python -m benchmarks.rehearsal [--seed 7] [--hang-budget-s 30] [--down-s 20] [--no-tick]`; progress on
stderr, one JSON object as the last line of stdout. Takes 20 to 30 minutes (the hang is bounded by production's
5-minute grace; the tick comes at the next 10-minute boundary of the wall clock).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

STACK_KNOBS = dict(subscriptions=6, url_locations=6, retry_after_seconds=1, timeout_seconds=2.0)
SCHEDULE = "azure_collect_10min_schedule"
DRIVEN = 12  # partitions driven before the fillers: two normal, then the faults and their next partitions
RUN_TIMEOUT_S = 900


def log(message: str) -> None:
    print(f"rehearsal {datetime.now(UTC):%H:%M:%S}: {message}", file=sys.stderr, flush=True)


class Rehearsal:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.faults: list[dict[str, Any]] = []
        self.collected_at: dict[str, datetime] = {}  # partition -> the emulator's time its run collected at
        self.keys: list[str] = []

    # ---- setup ----

    def start(self) -> None:
        from spotlake_assets.core.timekeys import newest_closed_partition, partitions_ending_at
        from spotlake_assets.local.deployment import Deployment, WebhookReceiver, write_production_instance
        from spotlake_assets.local.postgres import Postgres
        from spotlake_assets.local.stack import stack_environ, start_local_stack, use_stack_environment

        newest = newest_closed_partition(datetime.now(UTC))
        # the driven partitions end where the wall clock is now; the tick continues them a few minutes later
        self.first = partitions_ending_at(newest, DRIVEN)[0]
        self.postgres = Postgres(log=self.work / "postgres.log")
        self.postgres.init()
        self.postgres.start()
        self.postgres.create_database()
        log(f"PostgreSQL on port {self.postgres.port} ({self.postgres.root})")
        self.receiver = WebhookReceiver()
        self.stack = start_local_stack(
            seed=self.args.seed, extra_env={"SPOTLAKE_PARTITION_START": self.first}, **STACK_KNOBS
        )
        use_stack_environment(self.stack)
        home = self.work / "dagster_home"
        home.mkdir()
        write_production_instance(home, self.postgres.port)
        os.environ.update(DAGSTER_HOME=str(home), DAGSTER_PG_PASSWORD="rehearsal")
        env = {
            **stack_environ(self.stack, os.environ),
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_PASSWORD": "rehearsal",  # trust authentication on loopback: any value
            "SPOTLAKE_SLACK_WEBHOOK_URL": self.receiver.url,
        }
        self.deployment = Deployment(home=home, env=env, logs=self.work / "logs", restart_delay=self.args.down_s)
        self.deployment.start()
        log(f"code server, webserver ({self.deployment.url}) and daemon up; logs in {self.deployment.logs}")

    def stop(self) -> None:
        for part in ("deployment", "stack"):
            if hasattr(self, part):
                getattr(self, part).stop()
        if hasattr(self, "postgres"):
            self.postgres.remove()

    # ---- instance reads ----

    def instance(self):
        from dagster import DagsterInstance

        return DagsterInstance.get()

    def record(self, run_id: str):
        for _ in range(60):  # through a PostgreSQL restart
            try:
                with self.instance() as instance:
                    return instance.get_run_record_by_id(run_id)
            except Exception:  # noqa: BLE001 - the database is down for a moment
                time.sleep(1)
        raise RuntimeError(f"run {run_id} could not be read")

    def wait(self, condition, what: str, timeout: float = RUN_TIMEOUT_S, every: float = 0.5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if value := condition():
                    return value
            except Exception as exc:  # noqa: BLE001 - e.g. the database restarting
                log(f"waiting for {what}: {type(exc).__name__}")
            time.sleep(every)
        raise TimeoutError(f"{what}: not within {timeout:.0f} s (logs in {self.deployment.logs})")

    def finished(self, run_id: str):
        record = self.record(run_id)
        status = record.dagster_run.status.value
        return record if status in ("SUCCESS", "FAILURE", "CANCELED") else None

    def settled(self, run_id: str):
        """Finished, and not the passing CANCELED of a run that monitoring then marks failed (its bound)."""
        record = self.finished(run_id)
        if record is None:
            return None
        if record.dagster_run.status.value == "CANCELED" and "dagster/max_runtime" in record.dagster_run.tags:
            time.sleep(2)
            record = self.record(run_id)
        return record

    def step_started(self, run_id: str, step: str) -> bool:
        from dagster import DagsterEventType

        with self.instance() as instance:
            events = instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
        return any(e.dagster_event.step_key == step for e in events)

    # ---- driving ----

    def at(self, key: str, after: timedelta = timedelta(seconds=30)) -> None:
        from spotlake_assets.core.timekeys import data_time

        when = data_time(key) + after
        self.stack.emulator.set_time(when)
        self.collected_at[key] = when
        if key not in self.keys:
            self.keys.append(key)

    def submit(self, key: str) -> str:
        from spotlake_assets.core import names

        return self.wait(lambda: self.deployment.submit(names.COLLECT_JOB, key), f"the launch of {key}", timeout=120)

    def run(self, key: str, after: timedelta = timedelta(seconds=30)) -> str:
        self.at(key, after)
        run_id = self.submit(key)
        record = self.wait(lambda: self.settled(run_id), f"the run of {key}")
        log(f"{key}: {record.dagster_run.status.value}")
        return run_id

    def key(self, index: int) -> str:
        return self.next_after(self.first, index)

    @staticmethod
    def next_after(key: str, steps: int) -> str:
        from spotlake_assets.core.timekeys import data_time, partition_key_for_data_time

        return partition_key_for_data_time(data_time(key) + timedelta(minutes=10 * steps))

    def fault(self, name: str, **details: Any) -> None:
        self.faults.append({"fault": name, "at": datetime.now(UTC).isoformat(timespec="seconds"), **details})
        log(f"fault: {name} {details}")

    def drive(self) -> None:
        from resources.run_launcher import PID_TAG

        k = self.key
        self.run(k(0))
        self.run(k(1))

        # 1. a run worker SIGKILLed mid-merge, the next partition already queued
        self.at(k(2))
        killed = self.submit(k(2))
        self.wait(lambda: self.step_started(killed, "azure_spot_snapshot"), "the merge of the killed run", every=0.05)
        self.at(k(3))
        queued = self.submit(k(3))
        pid = int(self.record(killed).dagster_run.tags[PID_TAG])
        os.killpg(pid, signal.SIGKILL)
        self.fault("SIGKILL of a run worker mid-merge, the next partition queued", partition=k(2), pid=pid)
        self.wait(lambda: self.settled(queued), f"the run of {k(3)}")
        self.wait(lambda: self.settled(killed), f"the killed run of {k(2)} to be marked")

        # 2. a run that hangs: SPS never finishes its answer
        self.stack.emulator.configure(hang=["sps"])
        self.at(k(4), after=timedelta(minutes=10) - timedelta(seconds=self.args.hang_budget_s))
        hung = self.submit(k(4))
        store = self.store()
        from spotlake_assets.core import layout, names

        self.wait(
            lambda: all(store.head(layout.frame_key(a, k(4))) for a in (names.PRICE_RAW, names.EVICTION_RAW)),
            "the hung run's price and IF",
        )
        self.wait(lambda: self.stack.emulator.stats()["faults"].get("hang"), "the hung SPS call")
        self.stack.emulator.configure(hang=[])
        self.fault("a run that hangs (SPS never answers)", partition=k(4), window_left_s=self.args.hang_budget_s)
        self.at(k(5))
        after_hang = self.submit(k(5))
        self.hung = self.wait(lambda: self.settled(hung), "the hung run to be ended", timeout=1200)
        self.wait(lambda: self.settled(after_hang), f"the run of {k(5)}")

        # 3. the daemon SIGKILLed while a run is in progress and the next is queued, restarted by its "service"
        self.at(k(6))
        running = self.submit(k(6))
        self.wait(lambda: self.record(running).dagster_run.status.value == "STARTED", f"the run of {k(6)} to start")
        daemon = self.deployment.services["daemon"]
        restart = threading.Thread(target=daemon.kill_and_restart, args=(self.args.down_s,))
        restart.start()
        self.fault("SIGKILL of the daemon, restarted", down_s=self.args.down_s, running=k(6))
        self.wait(lambda: self.settled(running), f"the run of {k(6)}")
        self.at(k(7))
        while_down = self.submit(k(7))
        restart.join()
        self.wait(lambda: self.settled(while_down), f"the run of {k(7)}")

        # 4. PostgreSQL restarted while a run merges
        self.at(k(8))
        merging = self.submit(k(8))
        self.wait(lambda: self.step_started(merging, "azure_spot_snapshot"), "the merge of the run", every=0.1)
        self.fault("restart of PostgreSQL", down_s=self.args.down_s, partition=k(8))
        self.postgres.restart(self.args.down_s)
        self.wait(lambda: self.settled(merging), f"the run of {k(8)}")
        # the webserver reads the database again before anything is launched through it (a launch into a stale
        # connection can create a run and fail to queue it)
        self.deployment.wait_for(lambda: self.deployment.storage_ready() and self.deployment.storage_ready(), "the UI")
        # a retry, if the daemon made one, is queued: let it end before the next partition
        self.wait(lambda: self.queue_empty(), "the queue to drain")

        # 5. the code server restarted (stopped, down, started) as a run is launched
        self.at(k(9))
        launched = self.submit(k(9))
        code_server = self.deployment.services["code-server"]
        code_server.stop()
        self.fault("restart of the code server", partition=k(9), down_s=self.args.down_s)
        time.sleep(self.args.down_s)
        code_server.start()
        self.deployment.wait_for(self.deployment.code_server_ready, "the code server")
        self.wait(lambda: self.settled(launched), f"the run of {k(9)}")
        for i in range(10, DRIVEN):
            self.run(k(i))

    def queue_empty(self) -> bool:
        from dagster import DagsterRunStatus, RunsFilter

        with self.instance() as instance:
            waiting = instance.get_run_records(
                RunsFilter(statuses=[DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED])
            )
        return not waiting

    def store(self):
        from spotlake_assets.defs import build_resources

        return build_resources(self.stack.settings)["store"]

    def fill_and_tick(self) -> None:
        """Filler partitions up to the wall clock's newest closed partition, then the schedule's real tick."""
        from spotlake_assets.core.timekeys import newest_closed_partition

        while True:
            nxt = self.next_after(self.keys[-1], 1)
            if nxt > newest_closed_partition(datetime.now(UTC)):
                break
            self.run(nxt)
        if self.args.no_tick:
            return
        self.stack.emulator.set_time(None)  # the wall clock: the present a real tick collects
        self.deployment.set_schedule(SCHEDULE, running=True)
        tick_key = self.next_after(self.keys[-1], 1)
        if tick_key <= newest_closed_partition(datetime.now(UTC)):  # a boundary passed meanwhile: it is not ticked
            self.run(tick_key)
            tick_key = self.next_after(tick_key, 1)
        self.keys.append(tick_key)
        log(f"waiting for the schedule's tick for {tick_key}")
        tick = self.wait(lambda: self.scheduled_run(tick_key), "the schedule's tick", timeout=700, every=2)
        record = self.wait(lambda: self.settled(tick), f"the scheduled run of {tick_key}")
        self.collected_at[tick_key] = datetime.fromtimestamp(record.start_time, UTC)
        self.deployment.set_schedule(SCHEDULE, running=False)
        log(f"{tick_key} (schedule tick): {record.dagster_run.status.value}")
        self.tick = {"partition": tick_key, "run": tick, "status": record.dagster_run.status.value}

    def scheduled_run(self, key: str) -> str | None:
        from dagster import RunsFilter

        with self.instance() as instance:
            tags = {"dagster/schedule_name": SCHEDULE, "dagster/partition": key}
            runs = instance.get_run_records(RunsFilter(tags=tags))
        return runs[0].dagster_run.run_id if runs else None

    # ---- results ----

    def report(self) -> dict[str, Any]:
        from dagster import DagsterEventType, RunsFilter

        from resources.continuity import StateChain

        chain = StateChain(self.store())
        committed = [k for k in self.keys if chain.commit_of(k) is not None]
        with self.instance() as instance:
            records = instance.get_run_records(RunsFilter(job_name="azure_collect_10min"), ascending=True)
            waits = []
            for record in records:
                run_id = record.dagster_run.run_id
                enqueued = instance.get_records_for_run(run_id, of_type=DagsterEventType.PIPELINE_ENQUEUED).records
                starting = instance.get_records_for_run(run_id, of_type=DagsterEventType.PIPELINE_STARTING).records
                if enqueued and starting:
                    waits.append(starting[0].event_log_entry.timestamp - enqueued[0].event_log_entry.timestamp)
        runs = [
            {
                "partition": r.dagster_run.tags.get("dagster/partition"),
                "status": r.dagster_run.status.value,
                "retry": r.dagster_run.tags.get("dagster/retry_number"),
                "seconds": round((r.end_time or time.time()) - (r.start_time or r.create_timestamp.timestamp()), 1),
            }
            for r in records
        ]
        hung = self.hung
        return {
            "partitions": len(self.keys),
            "partitions_committed": len(committed),
            "partitions_lost": [k for k in self.keys if k not in committed],
            "daemon_retries": sum(1 for r in records if r.dagster_run.tags.get("dagster/retry_number")),
            "max_queue_wait_s": round(max(waits, default=0.0), 1),
            "hang_bound_s": int(hung.dagster_run.tags.get("dagster/max_runtime", 0)),
            "hang_ended_after_s": round(hung.end_time - hung.start_time, 1),
            "faults": self.faults,
            "service_restarts": {name: len(s.exits) for name, s in self.deployment.services.items()},
            "schedule_tick": getattr(self, "tick", None),
            "runs": runs,
            "alerts": self.receiver.texts,
        }

    def reference(self) -> dict[str, Any]:
        """The same partitions, fault-free, in this process, each collecting the sources the rehearsal stored."""
        from dagster import AssetKey, DagsterInstance

        from resources.clock import Clock
        from spotlake_assets.core import layout, names
        from spotlake_assets.defs import build_definitions
        from spotlake_assets.local.stack import start_local_stack, use_stack_environment

        from .soak import archive_of

        store = self.store()
        stored = {k: [a for a in names.RAW_SOURCES if store.head(layout.frame_key(a, k))] for k in self.keys}
        rehearsed = archive_of(self.stack, self.keys[-1])
        with start_local_stack(
            seed=self.args.seed, extra_env={"SPOTLAKE_PARTITION_START": self.first}, **STACK_KNOBS
        ) as stack, DagsterInstance.ephemeral() as instance:
            use_stack_environment(stack)
            for key in self.keys:
                at = self.collected_at[key]
                stack.emulator.set_time(at)
                defs = build_definitions(stack.settings, clock=Clock(frozen_at=at.isoformat()))
                selection = [AssetKey(a) for a in (*stored[key], *names.TEN_MINUTE_ASSETS[3:])]
                result = defs.resolve_job_def(names.COLLECT_JOB).execute_in_process(
                    partition_key=key, instance=instance, asset_selection=selection, raise_on_error=False,
                    run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
                )  # fmt: skip
                if not result.success:
                    log(f"reference {key}: failed")
            reference = archive_of(stack, self.keys[-1])
        use_stack_environment(self.stack)
        return {
            "equal_to_fault_free": rehearsed == reference,
            "differs_in": sorted(k for k in rehearsed if rehearsed[k] != reference[k]),
            "sources_lost": {k: sorted(set(names.RAW_SOURCES) - set(v)) for k, v in stored.items() if len(v) < 3},
        }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hang-budget-s", type=int, default=30, help="the window left when the hung run launches")
    parser.add_argument("--down-s", type=float, default=20.0, help="how long the daemon and PostgreSQL stay down")
    parser.add_argument("--no-tick", action="store_true", help="skip the schedule's real tick (no wait for it)")
    parser.add_argument("--json", action="store_true", help="(always on) the JSON object is the last stdout line")
    parser.add_argument("--keep", type=Path, help="keep the logs and the instance in this directory")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spotlake-rehearsal-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rehearsal = Rehearsal(args, work)
        try:
            rehearsal.start()
            rehearsal.drive()
            rehearsal.fill_and_tick()
            result = rehearsal.report()
            result.update(rehearsal.reference())
        finally:
            rehearsal.stop()
    result["seconds"] = round(time.monotonic() - started)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
