"""Dagster's production topology on this machine: a code server, a daemon and a webserver as separate processes over
one instance, each restarted when it exits as an ECS service restarts its task.

The tests of the orchestration (tests/test_orchestration.py, over `make dev`'s instance) and the production rehearsal
(benchmarks/rehearsal.py, over production's instance and Postgres) start it on the embedded local stack; runs are
submitted through the webserver's GraphQL API, as the UI does, and land in the instance's run queue.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
INSTANCE_TEMPLATE = ROOT / "infra" / "modules" / "collector" / "dagster.yaml.tftpl"
LOCATION = "spotlake_azure"  # workspace.yaml's location name
REPOSITORY = "__repository__"  # the repository of a Definitions object
STARTUP_SECONDS = 180


def render_instance_template(values: Mapping[str, str], template: Path = INSTANCE_TEMPLATE) -> str:
    """Production's dagster.yaml as Terraform's templatefile renders it: every `${expression}` of the template
    replaced by `values[expression]` (a KeyError names one the caller did not give)."""
    return re.sub(r"\$\{([^{}]*)\}", lambda match: values[match.group(1)], template.read_text())


def write_production_instance(home: Path, db_port: int, db_host: str = "127.0.0.1") -> None:
    """Production's dagster.yaml in `home`: infra's template rendered as Terraform does, with two changes only: the
    database is this machine's (spotlake_assets/local/postgres.py), and runs are started by the local run launcher
    (no ECS here), which applies the same launch rules."""
    import yaml

    rendered = render_instance_template(
        {
            "db_host": db_host,
            "db_port": str(db_port),
            "db_name": "dagster",
            "db_username": "dagster",
            # the ECS launcher's values, replaced below
            "run_task_definition_arn": "unused",
            "cluster_arn": "unused",
            "capacity_provider": "FARGATE",
            "jsonencode(subnet_ids)": "[]",
            "security_group_id": "unused",
        }
    )
    config = yaml.safe_load(rendered)
    config["run_launcher"] = {"module": "resources.run_launcher", "class": "LocalRunLauncher"}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Service:
    """One long-running process (its own session: signals to it never reach this one), restarted after
    `restart_delay` seconds whenever it exits unless it was stopped on purpose. `exits` records each unplanned exit."""

    name: str
    command: list[str]
    env: Mapping[str, str]
    log: Path
    cwd: Path = ROOT
    restart_delay: float = 3.0
    exits: list[tuple[float, int]] = field(default_factory=list)  # (time, exit code) of every unplanned exit
    _proc: subprocess.Popen | None = None
    _stopping: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _watcher: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        with self._lock:
            self._stopping = False
            with self.log.open("ab") as out:
                out.write(f"\n--- {self.name} starting at {time.strftime('%H:%M:%S')} ---\n".encode())
                self._proc = subprocess.Popen(
                    self.command, env=dict(self.env), cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )  # fmt: skip
        if self._watcher is None or not self._watcher.is_alive():
            self._watcher = threading.Thread(target=self._watch, name=f"watch-{self.name}", daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        while True:
            proc = self._proc
            code = proc.wait() if proc else None
            with self._lock:
                if self._stopping or proc is not self._proc:
                    if self._stopping:
                        return
                    continue
                self.exits.append((time.time(), code if code is not None else -1))
            time.sleep(self.restart_delay)
            with self._lock:
                if self._stopping:
                    return
            self.start()

    def send(self, sig: int) -> None:
        """Send `sig` to the process and every process of its session."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        """Stop it on purpose (no restart), SIGKILL after `timeout`."""
        with self._lock:
            self._stopping = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            self.send(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.send(signal.SIGKILL)
                proc.wait()
        if self._watcher is not None:
            self._watcher.join(timeout=10)  # it sees the stop and ends: a later start() watches afresh

    def kill_and_restart(self, down_seconds: float) -> None:
        """SIGKILL (the process and its session), stay down `down_seconds`, start again: a task ECS replaces."""
        self.stop(signal.SIGKILL)
        time.sleep(down_seconds)
        self.start()


class GraphQLError(RuntimeError):
    pass


def graphql(base_url: str, query: str, **variables: Any) -> dict[str, Any]:
    """The `data` of a query to a Dagster webserver's GraphQL API; GraphQLError names the status and the errors."""
    response = requests.post(f"{base_url}/graphql", json={"query": query, "variables": variables}, timeout=30)
    body = response.json() if response.ok else {}
    if not response.ok or body.get("errors"):
        problem = body.get("errors") or response.text
        raise GraphQLError(f"{base_url}/graphql answered {response.status_code}: {problem}")
    return body["data"]


class WebhookReceiver:
    """The failure channel on this machine: a Slack-like webhook on 127.0.0.1 that keeps every text posted to it
    (the sensors, run in the code server, post to `url` when SPOTLAKE_SLACK_WEBHOOK_URL says so)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        texts = self.texts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                texts.append(json.loads(body).get("text", ""))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T0/B0/local"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Deployment:
    """A code server, a webserver and a daemon over the instance in `home` (its dagster.yaml is the caller's)."""

    home: Path
    env: dict[str, str]
    logs: Path
    grpc_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    restart_delay: float = 3.0  # how long a process that exited stays down before it is started again
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def __post_init__(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        workspace = self.home / "workspace.yaml"
        workspace.write_text(
            f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {self.grpc_port}\n"
            f"      location_name: {LOCATION}\n"
        )
        env = {**self.env, "DAGSTER_HOME": str(self.home)}
        dagster = [sys.executable, "-m", "dagster"]
        commands = {
            # the image's command (Dockerfile), on this machine's port
            "code-server": [*dagster, "code-server", "start", "-h", "127.0.0.1", "-p", str(self.grpc_port),
                            "-f", "definitions.py", "--location-name", LOCATION],
            "webserver": [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(self.web_port),
                          "-w", str(workspace)],
            "daemon": [sys.executable, "-m", "dagster._daemon", "run", "-w", str(workspace)],
        }  # fmt: skip
        for name, command in commands.items():
            log = self.logs / f"{name}.log"
            self.services[name] = Service(name, command, env, log, restart_delay=self.restart_delay)

    # ---- lifecycle ----

    def start(self) -> None:
        self.services["code-server"].start()
        self.wait_for(self.code_server_ready, "the code server")
        self.services["webserver"].start()
        self.wait_for(self.webserver_ready, "the webserver")
        self.services["daemon"].start()
        self.wait_for(self.daemon_ready, "the daemon")

    def stop(self) -> None:
        for name in ("daemon", "webserver", "code-server"):
            self.services[name].stop()

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = STARTUP_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.5)
        raise TimeoutError(f"{what} was not ready within {timeout:.0f} s (logs in {self.logs})")

    def code_server_ready(self) -> bool:
        check = [sys.executable, "-m", "dagster", "api", "grpc-health-check", "-p", str(self.grpc_port)]
        return subprocess.run(check, capture_output=True, env=self.services["code-server"].env).returncode == 0

    def webserver_ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/server_info", timeout=2).ok
        except requests.RequestException:
            return False

    def storage_ready(self) -> bool:
        """The webserver reads the instance's storage (after a database restart its first queries may fail: a run
        launched then could be created and not queued)."""
        try:
            return self.graphql(RUNS)["runsOrError"]["__typename"] == "Runs"
        except (GraphQLError, requests.RequestException, ValueError):
            return False

    def daemon_ready(self) -> bool:
        """Every daemon of the instance has a recent heartbeat (`dagster-daemon liveness-check`)."""
        check = [sys.executable, "-m", "dagster._daemon", "liveness-check"]
        return subprocess.run(check, capture_output=True, env=self.services["daemon"].env).returncode == 0

    # ---- the GraphQL API (what the UI sends) ----

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        return graphql(self.url, query, **variables)

    def log_tails(self, lines: int = 40) -> str:
        """The last lines of every process's log (tests print them at teardown: pytest shows them on failure)."""
        return "\n".join(
            f"--- tail of {log.name} ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
            for log in sorted(self.logs.glob("*.log"))
        )

    def submit(self, job: str, partition: str, tags: Mapping[str, str] | None = None, tries: int = 5) -> str:
        """Launch `job` for one partition as the UI's launchpad does: the run is queued; returns its id.

        After a database restart the webserver's pooled connections fail once each (dagster-postgres keeps them
        without a liveness check), and a launch can fail after its run was created: as an operator would, such a
        run, never queued, is deleted and the launch tried again (`tries` times in all)."""
        all_tags = {"dagster/partition": partition, **(tags or {})}
        params = {
            "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job},
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in all_tags.items()]},
        }
        for attempt in range(tries):
            try:
                data = self.graphql(LAUNCH_RUN, executionParams=params)["launchRun"]
            except (GraphQLError, requests.RequestException) as exc:
                if attempt == tries - 1:
                    raise
                failure = exc
            else:
                if data["__typename"] == "LaunchRunSuccess":
                    return data["run"]["runId"]
                failure = GraphQLError(f"launchRun of {job} {partition}: {data}")
                if attempt == tries - 1:
                    raise failure
            time.sleep(1 + attempt)
            self.delete_unqueued(partition)
        raise failure  # pragma: no cover - the loop returns or raises

    def delete_unqueued(self, partition: str) -> None:
        """Delete the runs of `partition` a failed launch created and never queued (status NOT_STARTED)."""
        for run in self.graphql(NOT_STARTED, partition=partition)["runsOrError"].get("results", []):
            self.graphql(DELETE_RUN, runId=run["runId"])

    def set_schedule(self, name: str, running: bool) -> None:
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "scheduleName": name}
        if running:
            answer = self.graphql(START_SCHEDULE, scheduleSelector=selector)["startSchedule"]
        else:
            state = self.graphql(SCHEDULE_STATE, scheduleSelector=selector)["scheduleOrError"]
            answer = self.graphql(
                STOP_SCHEDULE, id=state["scheduleState"]["id"], selectorId=state["scheduleState"]["selectorId"]
            )["stopRunningSchedule"]
        if answer["__typename"] != "ScheduleStateResult":
            raise GraphQLError(f"{'starting' if running else 'stopping'} schedule {name}: {answer}")


RUNS = "query { runsOrError(limit: 1) { __typename } }"
NOT_STARTED = """
query ($partition: String!) {
  runsOrError(filter: {statuses: [NOT_STARTED], tags: [{key: "dagster/partition", value: $partition}]}) {
    ... on Runs { results { runId } }
  }
}"""
DELETE_RUN = "mutation ($runId: String!) { deleteRun(runId: $runId) { __typename } }"
LAUNCH_RUN = """
mutation ($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
  }
}"""
START_SCHEDULE = """
mutation ($scheduleSelector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $scheduleSelector) { __typename ... on PythonError { message } }
}"""
SCHEDULE_STATE = """
query ($scheduleSelector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $scheduleSelector) { ... on Schedule { scheduleState { id selectorId } } }
}"""
STOP_SCHEDULE = """
mutation ($id: String!, $selectorId: String!) {
  stopRunningSchedule(id: $id, scheduleSelectorId: $selectorId) { __typename ... on PythonError { message } }
}"""
