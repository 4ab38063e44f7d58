"""Soak: one day of 10-minute partitions on the local stack with a hostile Azure, killed runs and their retries,
compared with the same day run fault-free.

The emulator answers 20% of requests with 429, 5% with 5xx, 2% with malformed JSON, 1% with a body cut off
mid-stream, every one of them late by `--latency-ms`; runs are SIGKILLed at four write stages (raw snapshots, the
merge, the DynamoDB load, the public files) of four partitions, each followed by what an operator's instance does:
mark the dead run failed (run monitoring) and run the partition again (run retries). Every partition runs at its
own data time, as its schedule would; the day's request pool is built after its first partition.

Run: `python -m benchmarks.soak [--partitions 144] [--seed 3]`; prints one JSON object. `equal_to_fault_free` is
true when the final DynamoDB items, the last partition's state and latest_azure.json equal the fault-free run's
(`partitions_partial` lists any partition whose source was genuinely lost, which would explain a difference).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FAULTS = dict(rate_429=0.20, rate_500=0.05, rate_malformed=0.02, rate_cut=0.01)
STAGES = ("raw snapshot", "merge", "DynamoDB load", "public files")
# Generous budgets so a transient fault never loses a source: the day must equal the fault-free one.
AZURE = dict(max_tries=14, timeout_seconds=2.0, backoff_base_seconds=0.01, backoff_max_seconds=0.05)
STACK = dict(subscriptions=20, url_locations=8, retry_after_seconds=0, timeout_seconds=1.0)


def day_partitions(count: int) -> list[str]:
    start = datetime(2026, 11, 25, tzinfo=UTC)
    return [(start + timedelta(minutes=10 * i)).strftime("%Y-%m-%d-%H:%M") for i in range(count)]


def kill_plan(keys: list[str]) -> dict[str, str]:
    """Which partition is killed at which stage: four spread over the day (never the first, which begins history)."""
    if len(keys) < len(STAGES) + 1:
        return {}
    step = (len(keys) - 1) // len(STAGES)
    return {keys[1 + i * step]: stage for i, stage in enumerate(STAGES)}


def _digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def archive_of(stack, last: str) -> dict[str, Any]:
    """What a run of partitions leaves that must not depend on faults: every DynamoDB item, the last partition's
    state and latest_azure.json (digests)."""
    from spotlake_assets.core import layout, names
    from spotlake_assets.defs import build_resources
    from spotlake_assets.local.aws import local_client

    store = build_resources(stack.settings)["store"]
    client = local_client("dynamodb", stack.aws.endpoint_url, stack.settings.aws_region)
    pages = client.get_paginator("scan").paginate(TableName=stack.settings.dynamodb_table)
    items = sorted(json.dumps(i, sort_keys=True) for page in pages for i in page["Items"])
    return {
        "items": items,
        "state": _digest(store.get(layout.frame_key(names.STATE, last))),
        "latest": _digest(store.get(layout.LATEST_JSON_KEY)),
    }


class Day:
    """One stack, one persistent Dagster instance; partitions run in order at their data times."""

    def __init__(self, keys: list[str], seed: int, hostile: bool, latency_ms: float, home: Path) -> None:
        from spotlake_assets.local.dagster_home import fresh_instance
        from spotlake_assets.local.stack import start_local_stack, use_stack_environment

        knobs = {**STACK, **(FAULTS if hostile else {}), "latency_ms": latency_ms if hostile else 0.0}
        self.keys, self.home, self.label = keys, home, "hostile" if hostile else "fault-free"
        self.stack = start_local_stack(seed=seed, extra_env={"SPOTLAKE_PARTITION_START": keys[0]}, **knobs)
        use_stack_environment(self.stack)  # this process's runs (the workers get the same in _spawn)
        fresh_instance(home)  # `make dev`'s configuration (run queue, retries), shared with the worker processes
        self.env = {**os.environ, "DAGSTER_HOME": str(home)}
        self.kills: list[dict[str, str]] = []
        self.run_retries = 0

    def close(self) -> None:
        self.stack.stop()

    # ---- running partitions ----

    def _instance(self):
        from dagster import DagsterInstance

        os.environ["DAGSTER_HOME"] = str(self.home)
        return DagsterInstance.get()

    def run(self, job: str, partition: str, at: datetime) -> bool:
        from resources.clock import Clock
        from spotlake_assets.defs import build_definitions

        defs = build_definitions(self.stack.settings, clock=Clock(frozen_at=at.isoformat()), azure_overrides=AZURE)
        with self._instance() as instance:
            result = defs.resolve_job_def(job).execute_in_process(
                partition_key=partition,
                instance=instance,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            )
        if not result.success:
            errors = [str(e.event_specific_data.error.message).strip() for e in result.all_events
                      if e.is_step_failure or e.is_run_failure]  # fmt: skip
            print(f"soak: {job} {partition} failed: {errors[:2]}", file=sys.stderr, flush=True)
        return result.success

    def run_killed(self, partition: str, at: datetime, stage: str) -> None:
        """A worker process SIGKILLed when it reaches `stage`, then the retry (a new worker, to completion)."""
        from spotlake_assets.core import layout, names
        from spotlake_assets.defs import build_resources

        store = build_resources(self.stack.settings)["store"]
        reached = {
            "raw snapshot": lambda: store.get(layout.frame_key(names.PRICE_RAW, partition)) is not None,
            "merge": lambda: store.get(layout.frame_key(names.STATE, partition)) is not None,
            "DynamoDB load": lambda: store.get(layout.history_manifest_key(partition)) is not None,
            "public files": lambda: store.get(layout.public_csv_key(partition)) is not None,
        }[stage]
        worker = self._spawn(partition, at)
        deadline = time.monotonic() + 600
        while worker.poll() is None and not reached() and time.monotonic() < deadline:
            time.sleep(0.02)
        killed = worker.poll() is None
        worker.kill()
        worker.wait()
        self.kills.append({"partition": partition, "stage": stage, "killed": killed})
        self._mark_dead_runs_failed()
        self.run_retries += 1
        retry = self._spawn(partition, at)
        if retry.wait(timeout=900) != 0:
            raise RuntimeError(f"the retry of {partition} failed: {retry.stderr.read()[-2000:]}")

    def _spawn(self, partition: str, at: datetime) -> subprocess.Popen:
        from spotlake_assets.local.stack import stack_environ

        env = stack_environ(self.stack, self.env)
        cmd = [sys.executable, "-m", "spotlake_assets.local.worker", "--job", "azure_collect_10min",
               "--partition", partition, "--now", at.isoformat(), "--azure-overrides", json.dumps(AZURE)]  # fmt: skip
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def _mark_dead_runs_failed(self) -> None:
        from dagster import DagsterRunStatus, RunsFilter

        with self._instance() as instance:
            for run in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING])):
                instance.report_run_failed(run, "the run worker was SIGKILLed (run monitoring)")

    def run_day(self, kills: dict[str, str]) -> None:
        from spotlake_assets.core import names
        from spotlake_assets.core.timekeys import data_time

        pools: set[str] = set()
        for key in self.keys:
            begun = time.perf_counter()
            at = data_time(key)
            self.stack.emulator.set_time(at)
            if key in kills:
                self.run_killed(key, at, kills[key])
            elif not self.run(names.COLLECT_JOB, key, at):
                raise RuntimeError(f"partition {key} failed")
            day = f"{at:%Y-%m-%d}"
            if day not in pools:
                self.run(names.REQUEST_POOL_JOB, day, at)
                pools.add(day)
            took = time.perf_counter() - begun
            print(f"soak: {self.label} {key} {kills.get(key, '')} {took:.1f} s", file=sys.stderr, flush=True)

    # ---- what it left ----

    def archive(self) -> dict[str, Any]:
        return archive_of(self.stack, self.keys[-1])

    def outcomes(self) -> dict[str, Any]:
        """Per partition: complete, or partial with its missing sources; HTTP retries from run metadata."""
        from dagster import AssetKey, AssetRecordsFilter

        from spotlake_assets.core import names

        partial: dict[str, list[str]] = {}
        lost: list[str] = []
        retries = 0
        with self._instance() as instance:
            for key in self.keys:
                records = instance.fetch_materializations(
                    AssetRecordsFilter(asset_key=AssetKey(names.SNAPSHOT), asset_partitions=[key]), limit=1
                ).records
                if not records:
                    lost.append(key)
                    continue
                metadata = records[0].asset_materialization.metadata
                missing = list(metadata["missing_sources"].value) if "missing_sources" in metadata else []
                if missing:
                    partial[key] = missing
            for asset in (names.PRICE_RAW, names.EVICTION_RAW, names.SPS_RAW):
                records = instance.fetch_materializations(AssetKey(asset), limit=10_000).records
                retries += sum(int(r.asset_materialization.metadata.get("retries").value) for r in records
                               if r.asset_materialization.metadata.get("retries") is not None)  # fmt: skip
        return {"partial": partial, "lost": lost, "http_retries": retries}


def run_day(keys: list[str], seed: int, hostile: bool, latency_ms: float, home: str, kills: dict[str, str]) -> dict:
    """One day on a stack of its own, in a process of its own (it points its environment at its stack): what it
    left and how it went."""
    day = Day(keys, seed, hostile=hostile, latency_ms=latency_ms, home=Path(home))
    try:
        day.run_day(kills)
        return {
            "archive": day.archive(),
            "outcome": day.outcomes(),
            "kills": day.kills,
            "run_retries": day.run_retries,
            "faults": day.stack.emulator.stats()["faults"],
        }
    finally:
        day.close()


def soak(partitions: int = 144, seed: int = 3, latency_ms: float = 5.0) -> dict[str, Any]:
    keys = day_partitions(partitions)
    kills = kill_plan(keys)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="spotlake-soak-") as tmp:
        # the two days share nothing (own stacks, own instances): they run side by side
        with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
            reference = pool.submit(run_day, keys, seed, False, 0.0, f"{tmp}/fault-free", {})
            hostile = pool.submit(run_day, keys, seed, True, latency_ms, f"{tmp}/hostile", kills)
            expected, day = reference.result()["archive"], hostile.result()
    got, outcome = day["archive"], day["outcome"]
    differences = [name for name in ("state", "latest") if got[name] != expected[name]]
    if got["items"] != expected["items"]:
        differences.append(f"DynamoDB items ({len(got['items'])} vs {len(expected['items'])} fault-free)")
    return {
        "partitions": len(keys),
        "partitions_complete": len(keys) - len(outcome["partial"]) - len(outcome["lost"]),
        "partitions_partial": outcome["partial"],
        "partitions_lost": outcome["lost"],
        "kills": day["kills"],
        "retries": {"runs": day["run_retries"], "http": outcome["http_retries"]},
        "faults_injected": day["faults"],
        "dynamodb_items": len(got["items"]),
        "equal_to_fault_free": not differences,
        "differences": differences,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partitions", type=int, default=144)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    args = parser.parse_args()
    print(json.dumps(soak(args.partitions, args.seed, args.latency_ms)))


if __name__ == "__main__":
    main()
