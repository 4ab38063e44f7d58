"""The Dagster UI in a real browser: `spotlake dev` on the embedded local stack, driven by headless Chromium.

It checks what a developer does by hand: the catalog lists every asset of the graph, and materializing the
newest partition of azure_price_raw from its asset page gives a successful run whose `collected` check passed.
Screenshots go to the test's tmp dir; the last one is also kept in build/test-results/ui/ for CI.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from resources.clock import Clock
from spotlake_assets.core.timekeys import data_time, newest_closed_partition

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
STARTUP_SECONDS = 120
RUN_SECONDS = 180
STOP_SECONDS = 30
# Time from choosing the partition in the UI to the asset's live check inside the run (the run worker's start
# dominates: a few seconds here, more on a slow CI machine).
LAUNCH_MARGIN = timedelta(seconds=75)
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


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group (`dagster dev` takes it as Ctrl-C and stops its services), then SIGKILL
    whatever is left after STOP_SECONDS (a background shell job starts with SIGINT, so SIGTERM, ignored)."""
    with contextlib.suppress(ProcessLookupError):  # raised once the group is empty
        os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader: a zombie still counts as a member of the group
            os.killpg(proc.pid, 0)
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture
def dagster_ui(tmp_path: Path) -> Iterator[str]:
    """Base URL of `spotlake dev` (stack on free ports, a fresh DAGSTER_HOME); the whole process group is
    stopped afterwards. The log tail is printed at teardown, which pytest shows only when the test failed."""
    port = _free_port()
    log = tmp_path / "spotlake-dev.log"
    home = tmp_path / "home"
    cmd = [sys.executable, "-m", "spotlake_assets.cli", "dev", "--free-ports", "--dagster-home", str(home)]
    cmd += ["--", "-p", str(port), "-h", "127.0.0.1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_server(base, proc)
        yield base
    finally:
        _stop_group(proc)
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
def page(browser: Browser, dagster_ui: str, tmp_path: Path) -> Iterator[Page]:
    """A page that dismisses Dagster's sign-up dialog whenever it shows up. Its state at the end (the run
    page, or wherever a failure stopped) is saved as final.png and kept in build/test-results/ui/."""
    pg = browser.new_page(viewport={"width": 1600, "height": 1100})
    pg.set_default_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    skip = pg.get_by_role("button", name="Skip", exact=True)
    # dispatch the click to the button itself: while the UI loads, a loading overlay intercepts pointer clicks
    pg.add_locator_handler(skip, lambda button: button.dispatch_event("click"))
    yield pg
    RESULTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_screenshot(pg, tmp_path, "final"), RESULTS / "final.png")


def _screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=path)
    return path


def _graphql(base: str, query: str, **variables: Any) -> dict[str, Any]:
    response = requests.post(f"{base}/graphql", json={"query": query, "variables": variables}, timeout=10)
    body = response.json() if response.ok else {}
    if not response.ok or body.get("errors"):
        problem = body.get("errors") or response.text
        raise AssertionError(f"{base}/graphql answered {response.status_code}: {problem}")
    return body["data"]


RUN_QUERY = """
query ($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status tags { key value } assetMaterializations { assetKey { path } partition } }
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


def _newest_partition_with_room() -> str:
    """The newest closed partition, once it stays collectable for at least LAUNCH_MARGIN: the asset collects
    a partition only until `max_lateness_minutes` after its window closes; near that edge, wait for the next
    one."""
    lateness = timedelta(minutes=Clock().max_lateness_minutes)
    while True:
        now = datetime.now(UTC)
        key = newest_closed_partition(now)
        if data_time(key) + lateness - now >= LAUNCH_MARGIN:
            return key
        time.sleep(1)


def _name_pattern(asset: str) -> re.Pattern[str]:
    # a catalog row's link reads the name twice (label and tooltip); match the whole word, not a prefix
    return re.compile(rf"(^|\s){re.escape(asset)}(\s|$)")


def test_catalog_and_materialize_newest_partition(page: Page, dagster_ui: str, tmp_path: Path) -> None:
    page.goto(f"{dagster_ui}/")
    page.get_by_role("link", name="Catalog").click()
    for asset in GRAPH_ASSETS:
        # the first name waits for the code location to load
        expect(page.get_by_role("link", name=_name_pattern(asset))).to_be_visible(timeout=60_000)
    _screenshot(page, tmp_path, "catalog")

    expected = _newest_partition_with_room()
    page.get_by_role("link", name=_name_pattern("azure_price_raw")).click()
    expect(page).to_have_url(re.compile(r"/assets/azure_price_raw"))
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize azure_price_raw")
    dialog.get_by_role("button", name="Latest", exact=True).click()
    expect(dialog.get_by_role("textbox")).to_have_value(expected)
    _screenshot(page, tmp_path, "partition-dialog")
    dialog.get_by_role("button", name="Launch 1 run", exact=True).click()

    view = page.get_by_role("region", name=re.compile("Notifications")).get_by_role("link", name="View")
    run_path = view.get_attribute("href")
    assert run_path and run_path.startswith("/runs/"), f"launch toast links to {run_path!r}, not a run"
    run_id = run_path.removeprefix("/runs/")

    run = _wait_for_run(dagster_ui, run_id)
    page.goto(f"{dagster_ui}{run_path}")
    assert run["status"] == "SUCCESS", f"run {run_id} ended {run['status']}; its page: {RESULTS}/final.png"
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags.get("dagster/partition") == expected, f"run {run_id} has tags {tags}"
    assert [(m["assetKey"]["path"], m["partition"]) for m in run["assetMaterializations"]] == [
        (["azure_price_raw"], expected)
    ]
    executions = _graphql(dagster_ui, CHECK_QUERY)["assetCheckExecutions"]
    checks = [e["evaluation"] for e in executions if e["runId"] == run_id]
    assert {"success": True} in checks, f"check `collected` of run {run_id} did not pass: {checks}"
