"""The Dagster UI in a real browser: `spotlake dev` on the embedded local stack, driven by headless Chromium.

It checks what a developer does by hand in a fresh `make dev`: the instance starts empty even though its
DAGSTER_HOME held an earlier instance's history (the stack's data is new too); the catalog lists every asset of the
graph; materializing the newest partition of azure_price_raw from its asset page gives a successful run whose
`collected` check passed; materializing the whole job azure_collect_10min for the newest partition from the job's
page gives a non-empty snapshot, every ERROR check passing, a non-empty latest_azure.json and history that
`spotlake history` reads with no extra step; Ctrl-C stops it all cleanly. Screenshots go to the test's tmp dir; the
last one is also kept in build/test-results/ui/ for CI.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest
import requests
from dagster import AssetMaterialization, DagsterInstance
from dagster._core.instance.ref import InstanceRef
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from resources.clock import Clock
from resources.settings import load_settings
from spotlake_assets.core.layout import LATEST_JSON_KEY
from spotlake_assets.core.timekeys import data_time, newest_closed_partition
from spotlake_assets.local.aws import LOCAL_AWS_CREDENTIALS
from spotlake_assets.local.deployment import graphql
from spotlake_assets.local.envfile import read_env_file

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "build" / "test-results" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
GRAPH_ASSETS = (
    "azure_price_raw",
    "azure_eviction_raw",
    "azure_sps_request_pool",
    "azure_sps_raw",
    "azure_spot_snapshot",
    "azure_spot_changes",
    "azure_spot_state",
    "azure_dynamodb_history",
    "azure_public_outputs",
)
JOB = "azure_collect_10min"
STARTUP_SECONDS = 120
RUN_SECONDS = 240
STOP_SECONDS = 45
# Time from choosing the partition in the UI to the asset's live check inside the run (the run worker's start
# dominates: a few seconds here, more on a slow CI machine).
LAUNCH_MARGIN = timedelta(seconds=75)
# The same for the whole job: its last collection step (SPS, after the price snapshot) starts about 30 s after the
# launch here, 60 s on a machine loaded 2.5 times over.
JOB_LAUNCH_MARGIN = timedelta(seconds=100)
UI_TIMEOUT_MS = 30_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason=f"{CHROMIUM} is missing (Debian package `chromium`; .ci/run installs it, CI fails without it)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class DevServer:
    """A running `spotlake dev --free-ports` (its own process group), its log, DAGSTER_HOME and stack env file."""

    base: str
    proc: subprocess.Popen
    log: Path
    home: Path
    env_file: Path


def _wait_for_server(base: str, proc: subprocess.Popen) -> None:
    """Poll /server_info until the webserver answers; fail early if `spotlake dev` has exited."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"`spotlake dev` exited with code {proc.returncode} before {base} answered")
        try:
            if requests.get(f"{base}/server_info", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{base}/server_info did not answer within {STARTUP_SECONDS} s")


def _descendants(proc: subprocess.Popen) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        return psutil.Process(proc.pid).children(recursive=True)
    return []


def _kill_instance_processes(home: Path) -> None:
    """Kill what is left of this test's Dagster processes (dagster dev, its webserver, daemon, code servers, run
    workers): exactly those whose DAGSTER_HOME is this test's own tmp directory."""
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get("DAGSTER_HOME") == str(home):
                process.kill()


def _stop(proc: subprocess.Popen) -> tuple[int | None, list[psutil.Process]]:
    """Ctrl-C to `spotlake dev` (as a terminal sends it: to its process group; dagster dev has a group of its own and
    gets it forwarded), then wait up to STOP_SECONDS. Returns its exit status (None: still running) and the processes
    it had started that are still alive."""
    descendants = _descendants(proc)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_SECONDS)
    _, alive = psutil.wait_procs(descendants, timeout=5)
    return proc.poll(), alive


def _seed_stale_history(home: Path) -> None:
    """An earlier instance's materialization in DAGSTER_HOME, as a previous `make dev` leaves it."""
    stale = newest_closed_partition(datetime.now(UTC))
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        instance.report_runless_asset_event(AssetMaterialization("azure_spot_snapshot", partition=stale))


@pytest.fixture
def dagster_ui(tmp_path: Path) -> Iterator[DevServer]:
    """`spotlake dev` (stack on free ports, a DAGSTER_HOME holding an earlier instance's history); whatever it
    started is killed afterwards if the test did not stop it. The log tail is printed at teardown, which pytest
    shows only when the test failed."""
    port = _free_port()
    log = tmp_path / "spotlake-dev.log"
    home = tmp_path / "home"
    env_file = tmp_path / "stack.env"
    home.mkdir()
    _seed_stale_history(home)
    cmd = [sys.executable, "-m", "spotlake_assets.cli", "dev", "--free-ports", "--dagster-home", str(home)]
    cmd += ["--env-file", str(env_file), "--", "-p", str(port), "-h", "127.0.0.1"]
    with log.open("wb") as out:
        # a session of its own, so that Ctrl-C can be sent to its process group as a terminal would
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_server(base, proc)
        yield DevServer(base=base, proc=proc, log=log, home=home, env_file=env_file)
    finally:
        if proc.poll() is None:
            _stop(proc)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        _kill_instance_processes(home)
        print(f"--- tail of {log} ---\n{_tail(log)}")


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Headless Chromium; set up before the server so that a missing binary fails at once."""
    if not CHROMIUM.exists():
        pytest.fail(f"CI is set but {CHROMIUM} is missing: install the Debian package `chromium`")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, dagster_ui: DevServer, tmp_path: Path) -> Iterator[Page]:
    """A page that dismisses Dagster's sign-up dialog whenever it shows up. Its state at the end (the run
    page, or wherever a failure stopped) is saved as final.png and kept in build/test-results/ui/."""
    pg = browser.new_page(viewport={"width": 1600, "height": 1100})
    pg.set_default_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    skip = pg.get_by_role("button", name="Skip", exact=True)
    # dispatch the click to the button itself: while the UI loads, a loading overlay intercepts pointer clicks
    pg.add_locator_handler(skip, lambda button: button.dispatch_event("click"))
    yield pg
    if not pg.is_closed():  # the test closes it after keeping its own final screenshot
        _keep_final(pg, tmp_path)


def _keep_final(page: Page, tmp_path: Path) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_screenshot(page, tmp_path, "final"), RESULTS / "final.png")


def _screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=path)
    return path


_graphql = graphql  # the webserver's GraphQL API, as spotlake_assets/local/deployment.py asks it


RUN_QUERY = """
query ($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      status tags { key value }
      assetMaterializations {
        assetKey { path } partition
        metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
    }
  }
}"""
RUN_CHECKS_QUERY = """
query ($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run {
      eventConnection(limit: 100000) {
        hasMore
        events { ... on AssetCheckEvaluationEvent { evaluation { assetKey { path } checkName severity success } } }
      }
    }
  }
}"""
DEFINED_CHECKS_QUERY = """
query { assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } } }"""
MATERIALIZATIONS_QUERY = """
query ($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    __typename
    ... on Asset { assetMaterializations(limit: 10) { partition runId } }
  }
}"""
CHECK_QUERY = """
query {
  assetCheckExecutions(assetKey: {path: ["azure_price_raw"]}, checkName: "collected", limit: 10) {
    runId evaluation { success }
  }
}"""


def _wait_for_run(base: str, run_id: str) -> dict[str, Any]:
    """Poll the run's status until it ends; returns the run."""
    deadline, run = time.monotonic() + RUN_SECONDS, {"status": "not seen"}
    while time.monotonic() < deadline:
        run = _graphql(base, RUN_QUERY, runId=run_id)["runOrError"]
        assert run["__typename"] == "Run", f"run {run_id}: {run['__typename']}"
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return run
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not end within {RUN_SECONDS} s (last status {run['status']})")


def _newest_partition_with_room(margin: timedelta = LAUNCH_MARGIN) -> str:
    """The newest closed partition, once it stays collectable for at least `margin`: the asset collects a partition
    only until `max_lateness_minutes` after its window closes; near that edge, wait for the next one. (The lateness
    is one partition long, so the UI's "Latest" stays this partition for `margin` too.)"""
    lateness = timedelta(minutes=Clock().max_lateness_minutes)
    while True:
        now = datetime.now(UTC)
        key = newest_closed_partition(now)
        if data_time(key) + lateness - now >= margin:
            return key
        time.sleep(1)


def _run_links(page: Page) -> Locator:
    """The "View" links of the launch toasts, each to a run's page."""
    return page.get_by_role("region", name=re.compile("Notifications")).get_by_role("link", name="View")


def _launched_run(page: Page, before: set[str]) -> str:
    """The path of the run whose launch toast appeared after the toasts in `before` (earlier ones may linger)."""
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        new = {link.get_attribute("href") for link in _run_links(page).all()} - before - {None}
        if new:
            [run_path] = new
            assert run_path.startswith("/runs/"), f"launch toast links to {run_path!r}, not a run"
            return run_path
        time.sleep(0.25)
    raise AssertionError("no launch toast linked to a new run")


def _toasts(page: Page) -> set[str]:
    return {href for link in _run_links(page).all() if (href := link.get_attribute("href"))}


def _name_pattern(asset: str) -> re.Pattern[str]:
    # a catalog row's link reads the name twice (label and tooltip); match the whole word, not a prefix
    return re.compile(rf"(^|\s){re.escape(asset)}(\s|$)")


def test_fresh_dev_catalog_materialize_partition_and_job_then_stop(
    page: Page, dagster_ui: DevServer, tmp_path: Path
) -> None:
    base = dagster_ui.base
    # the earlier instance's materialization is gone: the stack's S3 and DynamoDB are empty, so is the instance
    stale = _graphql(base, MATERIALIZATIONS_QUERY, path=["azure_spot_snapshot"])["assetOrError"]
    assert stale.get("assetMaterializations", []) == [], f"a fresh `spotlake dev` shows old history: {stale}"
    # a second `spotlake dev` on the same DAGSTER_HOME is refused before it touches anything
    second = subprocess.run(
        [sys.executable, "-m", "spotlake_assets.cli", "dev", "--free-ports", "--dagster-home", str(dagster_ui.home),
         "--env-file", str(tmp_path / "second.env")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (second.returncode, second.stdout, len(second.stderr.splitlines())) == (1, "", 1), second.stderr
    assert f"is using {dagster_ui.home}: stop it first" in second.stderr

    page.goto(f"{base}/")
    page.get_by_role("link", name="Catalog").click()
    for asset in GRAPH_ASSETS:
        # the first name waits for the code location to load
        expect(page.get_by_role("link", name=_name_pattern(asset))).to_be_visible(timeout=60_000)
    _screenshot(page, tmp_path, "catalog")

    _materialize_price_from_its_asset_page(page, base, tmp_path)
    run_id, partition, snapshot_rows = _materialize_job_from_its_page(page, base, tmp_path)
    _published_and_queryable(dagster_ui, partition, snapshot_rows)

    # Ctrl-C: dagster dev shuts down, then the stack; exit 130 and a line saying so, no traceback, nothing left
    # running, the env file removed
    _keep_final(page, tmp_path)  # the job's run page
    page.close()
    logged = dagster_ui.log.stat().st_size
    code, alive = _stop(dagster_ui.proc)
    shutdown = dagster_ui.log.read_bytes()[logged:].decode(errors="replace")
    assert code == 130, f"`spotlake dev` ended {code} after Ctrl-C:\n{shutdown}"
    assert "Traceback" not in shutdown, shutdown
    assert "spotlake dev: interrupted; dagster dev has shut down, the local stack has stopped" in shutdown, shutdown
    assert alive == [], f"still running after `spotlake dev` ended: {alive}"
    assert not dagster_ui.env_file.exists()


def _materialize_price_from_its_asset_page(page: Page, base: str, tmp_path: Path) -> None:
    expected = _newest_partition_with_room()
    page.get_by_role("link", name=_name_pattern("azure_price_raw")).click()
    expect(page).to_have_url(re.compile(r"/assets/azure_price_raw"))
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize azure_price_raw")
    dialog.get_by_role("button", name="Latest", exact=True).click()
    expect(dialog.get_by_role("textbox")).to_have_value(expected)
    _screenshot(page, tmp_path, "partition-dialog")
    before = _toasts(page)
    dialog.get_by_role("button", name="Launch 1 run", exact=True).click()
    run_path = _launched_run(page, before)
    run_id = run_path.removeprefix("/runs/")

    run = _wait_for_run(base, run_id)
    page.goto(f"{base}{run_path}")
    assert run["status"] == "SUCCESS", f"run {run_id} ended {run['status']}; its page: {RESULTS}/final.png"
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags.get("dagster/partition") == expected, f"run {run_id} has tags {tags}"
    assert [(m["assetKey"]["path"], m["partition"]) for m in run["assetMaterializations"]] == [
        (["azure_price_raw"], expected)
    ]
    executions = _graphql(base, CHECK_QUERY)["assetCheckExecutions"]
    checks = [e["evaluation"] for e in executions if e["runId"] == run_id]
    assert {"success": True} in checks, f"check `collected` of run {run_id} did not pass: {checks}"


def _materialize_job_from_its_page(page: Page, base: str, tmp_path: Path) -> tuple[str, str, int]:
    """Jobs -> azure_collect_10min -> Materialize all -> Latest -> Launch 1 run, in an instance that has never
    built the daily SPS request pool; returns (run id, partition, snapshot rows)."""
    expected = _newest_partition_with_room(JOB_LAUNCH_MARGIN)
    page.goto(f"{base}/")
    page.get_by_role("link", name=re.compile(r"(^|\s)Jobs$")).click()  # the navigation's (an icon name, then Jobs)
    page.get_by_role("link", name=_name_pattern(JOB)).click()
    expect(page).to_have_url(re.compile(rf"/jobs/{JOB}"))
    page.get_by_role("button", name="Materialize all…").click()
    launch = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    # Dagster first warns that an upstream asset (the daily SPS request pool) was never materialized; the SPS asset
    # builds a pool from its partition's own prices then (docs/design.md)
    warning = page.get_by_role("dialog").filter(has_text="Are you sure?")
    expect(launch.or_(warning)).to_be_visible()
    if warning.is_visible():
        _screenshot(page, tmp_path, "job-upstream-warning")
        warning.get_by_role("button", name="Confirm", exact=True).click()
    launch.get_by_role("button", name="Latest", exact=True).click()
    expect(launch.get_by_role("textbox")).to_have_value(expected)
    _screenshot(page, tmp_path, "job-partition-dialog")
    before = _toasts(page)
    launch.get_by_role("button", name="Launch 1 run", exact=True).click()
    run_path = _launched_run(page, before)
    run_id = run_path.removeprefix("/runs/")

    run = _wait_for_run(base, run_id)
    page.goto(f"{base}{run_path}")
    assert run["status"] == "SUCCESS", f"run {run_id} ended {run['status']}; its page: {RESULTS}/final.png"
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags.get("dagster/partition") == expected, f"run {run_id} has tags {tags}"
    materialized = {m["assetKey"]["path"][0]: m for m in run["assetMaterializations"]}
    assert set(materialized) == set(GRAPH_ASSETS) - {"azure_sps_request_pool"}, sorted(materialized)
    assert {m["partition"] for m in materialized.values()} == {expected}
    rows = {e["label"]: e.get("intValue") for e in materialized["azure_spot_snapshot"]["metadataEntries"]}["rows"]
    assert rows > 0, f"run {run_id} made an empty snapshot of {expected}"

    # every check of the job's assets was evaluated in the run, and every ERROR one passed (but the freshness
    # checks, which their sensor runs: spotlake_assets/freshness.py)
    nodes = _graphql(base, DEFINED_CHECKS_QUERY)["assetNodes"]
    defined = {
        (node["assetKey"]["path"][0], check["name"])
        for node in nodes
        if node["assetKey"]["path"][0] in materialized
        for check in node["assetChecksOrError"].get("checks", [])
        if check["name"] != "freshness_check"
    }
    events = _graphql(base, RUN_CHECKS_QUERY, runId=run_id)["runOrError"]["eventConnection"]
    assert not events["hasMore"]
    evaluations = {
        (e["evaluation"]["assetKey"]["path"][0], e["evaluation"]["checkName"]): e["evaluation"]
        for e in events["events"]
        if e.get("evaluation")
    }
    assert set(evaluations) == defined and defined, f"defined {sorted(defined)}, evaluated {sorted(evaluations)}"
    failed = {k: v["severity"] for k, v in evaluations.items() if not v["success"]}
    assert [k for k, severity in failed.items() if severity == "ERROR"] == [], f"failed checks: {failed}"
    return run_id, expected, rows


def _published_and_queryable(dev: DevServer, partition: str, snapshot_rows: int) -> None:
    """latest_azure.json in the stack's bucket holds the rows, and `spotlake history` (from a shell with no AWS or
    SPOTLAKE variable) reads the partition's history from the running stack through its env file."""
    stack_env = read_env_file(dev.env_file)
    assert stack_env, f"`spotlake dev` wrote no {dev.env_file}"
    settings = load_settings(stack_env)
    s3 = boto3.client("s3", endpoint_url=settings.aws_endpoint_url, region_name=settings.aws_region,
                      **LOCAL_AWS_CREDENTIALS)  # fmt: skip
    latest = json.loads(s3.get_object(Bucket=settings.write_bucket, Key=LATEST_JSON_KEY)["Body"].read())
    assert len(latest) >= snapshot_rows > 0

    day = f"{data_time(partition):%Y-%m-%d}"
    shell = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SPOTLAKE_"))}
    history = subprocess.run(
        [sys.executable, "-m", "spotlake_assets.cli", "history", "--instance-type", "D2s_v3", "--region", "*",
         "--start", day, "--end", day, "--env-file", str(dev.env_file)],
        cwd=ROOT, env=shell, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (history.returncode, history.stderr) == (0, ""), history.stderr
    rows = list(csv.DictReader(io.StringIO(history.stdout)))
    assert rows and {r["InstanceType"] for r in rows} == {"D2s_v3"}, history.stdout[:500]
