"""Production's Dagster instance really runs: infra's dagster.yaml template rendered with a PostgreSQL server of this
machine (Debian's package, TLS as RDS) and the local run launcher in place of ECS, the code server, the daemon and
the webserver as separate processes, runs through the queue; and it goes on after PostgreSQL restarts.

The shorter version of the production rehearsal (benchmarks/rehearsal.py, `make rehearsal`), which injects every
fault and compares with a fault-free run; it takes 20 to 30 minutes, too long for the suite.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus

from resources.continuity import StateChain
from spotlake_assets.core import names
from spotlake_assets.core.timekeys import data_time
from spotlake_assets.local.deployment import Deployment, write_production_instance
from spotlake_assets.local.postgres import Postgres, PostgresUnavailable, bin_dir
from spotlake_assets.local.stack import stack_environ

from .stack import start, use_stack

P0, P1 = "2026-11-26-10:00", "2026-11-26-10:10"


def postgres_installed() -> bool:
    try:
        bin_dir()
        return True
    except PostgresUnavailable:
        return False


pytestmark = pytest.mark.skipif(
    not postgres_installed() and not os.environ.get("CI"),
    reason="Debian's postgresql is missing (`make postgres` installs it; .ci/run does, CI fails without it)",
)


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> Iterator[tuple]:
    work = tmp_path_factory.mktemp("production")
    postgres = Postgres(log=work / "postgres.log")
    postgres.init()
    postgres.start()
    postgres.create_database()
    home = work / "home"
    home.mkdir()
    write_production_instance(home, postgres.port)
    with start(seed=5, extra_env={"SPOTLAKE_PARTITION_START": P0}) as stack, pytest.MonkeyPatch.context() as mp:
        use_stack(stack, mp)
        mp.setenv("DAGSTER_HOME", str(home))
        mp.setenv("DAGSTER_PG_PASSWORD", "test")  # trust authentication on loopback
        env = {**stack_environ(stack, os.environ), "DAGSTER_HOME": str(home), "DAGSTER_PG_PASSWORD": "test"}
        deployment = Deployment(home=home, env=env, logs=work / "service-logs")
        try:
            deployment.start()
            yield stack, deployment, postgres
        finally:
            deployment.stop()
            postgres.remove()
            print(deployment.log_tails())  # pytest shows it when a test failed


def run_partition(stack, deployment: Deployment, key: str, timeout: float = 300):
    stack.emulator.set_time(data_time(key) + timedelta(seconds=30))
    run_id = deployment.submit(names.COLLECT_JOB, key)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with DagsterInstance.get() as instance:
                record = instance.get_run_record_by_id(run_id)
            if record.dagster_run.is_finished:
                return record
        except Exception:  # noqa: BLE001 - the database restarting
            pass
        time.sleep(0.5)
    raise AssertionError(f"the run of {key} did not end within {timeout} s")


def test_the_rendered_instance_is_production_s_with_only_the_database_and_the_launcher_changed(production):
    _, deployment, postgres = production
    config = yaml.safe_load((deployment.home / "dagster.yaml").read_text())
    database = config["storage"]["postgres"]["postgres_db"]
    assert (database["hostname"], database["port"]) == ("127.0.0.1", postgres.port)
    assert database["params"] == {"sslmode": "require"} and database["scheme"] == "postgresql+psycopg2"
    assert config["run_launcher"] == {"module": "resources.run_launcher", "class": "LocalRunLauncher"}
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_monitoring"]["poll_interval_seconds"] == 30


def test_runs_go_through_the_queue_on_postgres_and_go_on_after_a_database_restart(production, monkeypatch):
    stack, deployment, postgres = production
    first = run_partition(stack, deployment, P0)
    assert first.dagster_run.status == DagsterRunStatus.SUCCESS
    assert int(first.dagster_run.tags["dagster/max_runtime"]) > 300  # bounded by its window and the grace

    deployment.delete_unqueued(P0)  # what a failed launch leaves (nothing here): the webserver's query and mutation
    postgres.restart(down_seconds=5)
    # the daemon, the webserver and the code server are still there (or restarted, as ECS would) and serve
    deployment.wait_for(deployment.webserver_ready, "the webserver after the restart", timeout=120)
    deployment.wait_for(deployment.daemon_ready, "the daemon after the restart", timeout=180)
    deployment.wait_for(deployment.storage_ready, "the webserver's storage after the restart", timeout=120)
    second = run_partition(stack, deployment, P1)
    assert second.dagster_run.status == DagsterRunStatus.SUCCESS
    store = use_stack(stack, monkeypatch)["store"]
    assert StateChain(store).commit_of(P1).continues == P0
