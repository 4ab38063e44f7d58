"""The installed `spotlake` command, run as a user runs it (a subprocess): a wrong argument or SPOTLAKE_ENV is one
line on stderr with exit status 2 and never a traceback; `spotlake history` finds the running local stack by
itself and says so in one line when none is running; `spotlake local-stack` publishes its environment file while
it runs and removes it when interrupted; `spotlake run-local --stack` fills that standing stack, so the README's
`history` example prints rows; `spotlake dev` starts from a fresh Dagster instance."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
import requests
from dagster import AssetKey, AssetMaterialization, DagsterInstance
from dagster._core.instance.ref import InstanceRef

from benchmarks.history_query import synthetic_history, write_history
from resources.history_table import HistoryTable
from resources.query_api.request import RECORD_FIELDS
from spotlake_assets.core.timekeys import data_time, newest_closed_partition
from spotlake_assets.local import dagster_home
from spotlake_assets.local.aws import LOCAL_AWS_ENV
from spotlake_assets.local.envfile import read_env_file, write_env_file
from spotlake_assets.local.interrupts import InterruptWatch, quiet_stderr_once_interrupted
from spotlake_assets.local.stack import PortInUseError, check_fixed_ports_free

ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = Path(sys.executable).with_name("spotlake")
SPOTLAKE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "spotlake_assets.cli"]
STACK_SECONDS = 90
SNAPSHOT = AssetKey("azure_spot_snapshot")
HISTORY_ARGS = ["history", "--instance-type", "D2s_v3", "--start", "2026-11-01", "--end", "2026-11-02"]


def clean_environ(**extra: str) -> dict[str, str]:
    """The test process's environment without any SPOTLAKE_* or AWS_* variable: a fresh shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTLAKE_", "AWS_"))}
    return {**env, **extra}


def spotlake(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SPOTLAKE, *args], cwd=ROOT, env=env or clean_environ(), capture_output=True, text=True, timeout=timeout
    )


def one_error_line(proc: subprocess.CompletedProcess, status: int) -> str:
    """The single stderr line of a refused command (and nothing on stdout)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert (proc.returncode, len(lines), proc.stdout) == (status, 1, ""), proc.stderr
    return lines[0]


def in_future(minutes: int) -> str:
    """A partition key whose window ends `minutes` after the newest closed one's."""
    return (data_time(newest_closed_partition(datetime.now(UTC))) + timedelta(minutes=minutes - 10)).strftime(
        "%Y-%m-%d-%H:%M"
    )


UNKNOWN_ENV = "SPOTLAKE_ENV='nope' is not a known environment; valid ones: prod, test, local"


@pytest.mark.parametrize(
    "command",
    [
        ["run-local"],
        ["local-stack", "--free-ports"],
        ["dev", "--free-ports"],
        ["import-legacy", "--bucket", "legacy", "--end", "2026-11-28-08:40"],
        HISTORY_ARGS,
    ],
    ids=lambda c: c[0],
)
def test_every_command_refuses_an_unknown_environment_first(command):
    proc = spotlake(*command, env=clean_environ(SPOTLAKE_ENV="nope"))
    assert one_error_line(proc, 2) == f"spotlake {command[0]}: error: {UNKNOWN_ENV}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run-local", "--partitions", "0"], "--partitions 0: must be 1..1008"),
        (["run-local", "--partitions", "-3"], "--partitions -3: must be 1..1008"),
        (["run-local", "--partitions", "1009"], "--partitions 1009: must be 1..1008"),
        (["run-local", "--partitions", "three"], "argument --partitions: invalid int value: 'three'"),
        (["run-local", "--end", "2026-13-01-00:00"], "'2026-13-01-00:00' is not a partition key: YYYY-MM-DD-HH:MM"),
        (["run-local", "--end", "yesterday"], "--end 'yesterday' is not a partition key: YYYY-MM-DD-HH:MM"),
        (["run-local", "--end", "2026-11-28-08:45"], "not on a 10-minute boundary (HH:00, HH:10, ... HH:50); the "
                                                     "partition containing it is 2026-11-28-08:40"),
        (["run-local", "--scale", "huge"], "argument --scale: invalid choice: 'huge'"),
        (["import-legacy", "--bucket", " ", "--end", "2026-11-28-08:40"], "--bucket must name the legacy bucket"),
        (["import-legacy", "--bucket", "b", "--end", "2026-11-28-08:40", "--partitions", "0"],
         "--partitions 0: must be 1..52704"),
        (["import-legacy", "--bucket", "b", "--end", "2026-11-28-8:05"], "not on a 10-minute boundary"),
        (["import-legacy", "--bucket", "b"], "the following arguments are required: --end"),
        (["history", "--instance-type", "D2s_v3", "--start", "2026-11-31", "--end", "2026-12-01"],
         "Start '2026-11-31' is not a date (YYYY-MM-DD) or time (YYYY-MM-DD HH:MM:SS)"),
        (["history", "--instance-type", "D2s_v3", "--start", "2026-11-01", "--end", "2026-12-08"],
         "longer than one month: with Start 2026-11-01, End may be at most 2026-12-01"),
        (["history", "--instance-type", "D2s_v3", "--start", "2026-11-05", "--end", "2026-11-04 23:00:00"],
         "is before Start"),
        (["history", "--instance-type", "*", "--start", "2026-11-01", "--end", "2026-11-02"],
         "must be one instance type"),
        (["history", "--instance-type", "D2s_v3", "--zone", "7", "--start", "2026-11-01", "--end", "2026-11-02"],
         "--zone '7' is not a zone; use one of '*', '1', '2', '3', 'Single'"),
        (["history", "--instance-type", "D2s_v3", "--start", "2026-11-01"], "arguments are required: --end"),
        ([], "the following arguments are required: command"),
    ],
)  # fmt: skip
def test_a_bad_argument_is_one_line_and_exit_2(args, message):
    line = one_error_line(spotlake(*args), 2)
    assert line.startswith(f"spotlake{' ' + args[0] if args else ''}: error: ") and message in line, line


@pytest.mark.parametrize("command", ["run-local", "import-legacy"])
def test_an_end_in_the_future_is_not_closed_and_the_newest_closed_partition_is_named(command):
    end = in_future(30)
    extra = ["--bucket", "legacy"] if command == "import-legacy" else []
    before = newest_closed_partition(datetime.now(UTC))
    line = one_error_line(spotlake(command, *extra, "--end", end), 2)
    after = newest_closed_partition(datetime.now(UTC))
    closes = f"{data_time(end):%Y-%m-%d %H:%M}"
    assert f"--end {end} is not closed yet (its window ends at {closes} UTC)" in line
    assert line.endswith((f"the newest closed partition is {before}", f"the newest closed partition is {after}"))


def test_local_commands_refuse_another_environment_and_bad_settings():
    line = one_error_line(spotlake("run-local", env=clean_environ(SPOTLAKE_ENV="prod")), 2)
    assert "SPOTLAKE_ENV=prod: `spotlake run-local` runs on the embedded local stack" in line
    line = one_error_line(spotlake("dev", env=clean_environ(SPOTLAKE_PARTITION_START="2026-11-01-00:05")), 2)
    assert line.startswith("spotlake dev: error: SPOTLAKE_PARTITION_START: ") and "10-minute boundary" in line


def endpoint_nobody_listens_at() -> str:
    """A loopback URL whose port was just free: what a stack that has gone away leaves in its env file."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_history_says_when_no_local_stack_is_running(tmp_path):
    missing = tmp_path / "stack.env"
    line = one_error_line(spotlake(*HISTORY_ARGS, "--env-file", str(missing)), 1)
    assert line == (
        f"spotlake history: error: no local stack is running at http://127.0.0.1:4566 (no {missing}); "
        "start one with `make dev` or `spotlake local-stack`"
    )
    gone = endpoint_nobody_listens_at()  # a stack that has gone away
    write_env_file(missing, {"SPOTLAKE_ENV": "local", "SPOTLAKE_AWS_ENDPOINT_URL": gone})
    started = time.monotonic()
    line = one_error_line(spotlake(*HISTORY_ARGS, "--env-file", str(missing)), 1)
    assert line == f"spotlake history: error: no local stack is running at {gone}; " + (
        "start one with `make dev` or `spotlake local-stack`"
    )
    assert time.monotonic() - started < 20


@contextlib.contextmanager
def standing_local_stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Path, Path]]:
    """`spotlake local-stack --free-ports` in the background, as in a first terminal: (process, its env file, its
    stderr file) once the env file is there; killed afterwards if it still runs."""
    env_file = tmp_path / "stack.env"
    log, errors = tmp_path / "local-stack.log", tmp_path / "local-stack.err"
    with log.open("wb") as out, errors.open("wb") as err:
        stack = subprocess.Popen(
            [*SPOTLAKE, "local-stack", "--free-ports", "--env-file", str(env_file)],
            cwd=ROOT, env=clean_environ(), stdout=out, stderr=err,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + STACK_SECONDS
        while not env_file.exists():
            assert stack.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no {env_file} after {STACK_SECONDS} s: {log.read_text()}"
            time.sleep(0.2)
        yield stack, env_file, errors
    finally:
        if stack.poll() is None:
            stack.kill()
            stack.wait()
    output = log.read_text() + errors.read_text()
    assert "Traceback" not in output, output


def test_history_queries_the_running_local_stack_with_no_extra_step(tmp_path, monkeypatch):
    """`spotlake local-stack` in the background, then `spotlake history` from a shell with no AWS variable: it
    finds the stack through the env file and answers from its table; Ctrl-C stops the stack and removes the file,
    with exit status 130 and one line on stderr."""
    with standing_local_stack(tmp_path) as (stack, env_file, errors):
        stack_env = read_env_file(env_file)
        assert stack_env and stack_env["SPOTLAKE_ENV"] == "local"

        for name, value in LOCAL_AWS_ENV.items():  # this test writes the history with the stack's credentials
            monkeypatch.setenv(name, value)
        synthetic = synthetic_history("D2s_v3", datetime(2026, 11, 1), 0.25, regions=["US East", "US West 2"], seed=3)
        table = HistoryTable(table_name="azure-local", endpoint_url=stack_env["SPOTLAKE_AWS_ENDPOINT_URL"])
        assert write_history(table, synthetic) > 0

        args = ["--region", "US East", "--zone", "1", "--start", "2026-11-01 01:00:00", "--end", "2026-11-01 03:00:00"]
        proc = spotlake("history", "--instance-type", "D2s_v3", *args, "--env-file", str(env_file))
        assert (proc.returncode, proc.stderr) == (0, "")
        rows = list(csv.DictReader(io.StringIO(proc.stdout)))
        points = synthetic.points
        chosen = points[(points["Region"] == "US East") & (points["AvailabilityZone"] == "1")]
        in_range = chosen[(chosen["Time"] >= "2026-11-01 01:00:00") & (chosen["Time"] <= "2026-11-01 03:00:00")]
        assert rows and list(rows[0]) == RECORD_FIELDS
        assert {(r["Region"], r["AvailabilityZone"]) for r in rows} == {("US East", "1")}
        assert len(in_range) <= len(rows) <= len(in_range) + 11  # plus each series' value as of start

        # `| head`: the reader is gone before the answer is written; exit 141 as a shell's SIGPIPE, no traceback
        read, write = os.pipe()
        os.close(read)
        try:
            gone = subprocess.run(
                [*SPOTLAKE, "history", "--instance-type", "D2s_v3", *args, "--env-file", str(env_file)],
                cwd=ROOT, env=clean_environ(), stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
            )  # fmt: skip
        finally:
            os.close(write)
        assert (gone.returncode, gone.stderr) == (141, "")

        stack.send_signal(signal.SIGINT)
        assert stack.wait(timeout=30) == 130, errors.read_text()
    assert errors.read_text().splitlines() == [
        "spotlake local-stack: interrupted; the local stack has stopped (its S3 and DynamoDB data is gone) and "
        f"{env_file} is removed"
    ]
    assert not env_file.exists()


def readme_block(containing: str) -> list[str]:
    """The lines of the README's one ```bash block that contains `containing`."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    [block] = [b for b in blocks if containing in b]
    return block.splitlines()


def test_a_standing_stack_is_filled_and_queried_as_the_readme_says(tmp_path):
    """The README's order, its commands as written: `spotlake local-stack` in a first terminal; in a second,
    `spotlake run-local --stack .spotlake-local/stack.env --partitions 1`, then the `history` example, which prints
    data rows, not only the header. (Here the stack's ports are free ones and its env file is the test's own.)
    Run again, run-local skips the partition the stack has; the stack is still running."""
    assert readme_block("spotlake local-stack\n") == [".venv/bin/spotlake local-stack"]
    fill, query = readme_block("run-local --stack")
    assert ".spotlake-local/stack.env" in fill and query.startswith(".venv/bin/spotlake history ")

    with standing_local_stack(tmp_path) as (stack, env_file, errors):

        def as_written(line: str) -> subprocess.CompletedProcess:
            line = line.replace(".venv/bin/spotlake", shlex.join(SPOTLAKE), 1)
            line = line.replace(".spotlake-local/stack.env", shlex.quote(str(env_file)))
            if " history " in line:
                line += f" --env-file {shlex.quote(str(env_file))}"  # history's option for a stack's env file
            return subprocess.run(
                ["bash", "-c", line], cwd=ROOT, env=clean_environ(), capture_output=True, text=True, timeout=300
            )

        filled = as_written(fill)
        assert (filled.returncode, filled.stderr) == (0, ""), filled.stderr
        lines = filled.stdout.splitlines()
        assert lines[0].startswith(f"local stack of {env_file} (left running): S3/DynamoDB http://127.0.0.1:")
        key = re.fullmatch(r"partitions (\S+) \.\. \1 .*", lines[1])[1]
        progress = re.fullmatch(PROGRESS, lines[2])
        assert (progress["key"], progress["n"], progress["of"]) == (key, "1", "1"), lines
        assert any(line.startswith(f"{key}  ") for line in lines[4:]) and "FAILED" not in filled.stdout

        answer = as_written(query)
        assert (answer.returncode, answer.stderr) == (0, ""), answer.stderr
        rows = list(csv.DictReader(io.StringIO(answer.stdout)))
        assert rows and list(rows[0]) == RECORD_FIELDS
        assert {r["InstanceType"] for r in rows} == {"D2s_v3"}
        assert {r["Time"] for r in rows} == {f"{data_time(key):%Y-%m-%d %H:%M:%S}"}

        again = as_written(fill)
        assert (again.returncode, again.stderr) == (0, ""), again.stderr
        assert again.stdout.splitlines()[2:] == [f"skipped {key}: the stack already holds partitions up to {key}; "
                                                 "nothing to run"]  # fmt: skip
        assert stack.poll() is None and env_file.exists()
        stack.send_signal(signal.SIGINT)
        assert stack.wait(timeout=30) == 130, errors.read_text()


def test_run_local_says_when_the_stack_it_is_given_is_not_running(tmp_path):
    missing = tmp_path / "stack.env"
    line = one_error_line(spotlake("run-local", "--stack", str(missing)), 1)
    assert line == (
        f"spotlake run-local: error: no local stack is running: no {missing}; "
        "start one with `make dev` or `spotlake local-stack`"
    )
    gone = endpoint_nobody_listens_at()  # a stack that has gone away
    urls = {"SPOTLAKE_AWS_ENDPOINT_URL": gone, "SPOTLAKE_AZURE_MANAGEMENT_URL": gone}
    write_env_file(missing, {"SPOTLAKE_ENV": "local", **urls})
    line = one_error_line(spotlake("run-local", "--stack", str(missing)), 1)
    assert line == (
        f"spotlake run-local: error: no local stack is running at {gone} (from {missing}); "
        "start one with `make dev` or `spotlake local-stack`"
    )
    write_env_file(missing, {"SPOTLAKE_ENV": "local"})
    line = one_error_line(spotlake("run-local", "--stack", str(missing)), 2)
    assert line == (
        f"spotlake run-local: error: --stack {missing}: no SPOTLAKE_AWS_ENDPOINT_URL in it; it is not the "
        "environment file of `spotlake local-stack`"
    )
    line = one_error_line(spotlake("run-local", "--stack", str(missing), "--scale", "full"), 2)
    assert line.endswith("--seed and --scale set up a new stack; with --stack, the running stack's are used")


def test_dev_starts_from_a_fresh_dagster_instance(tmp_path):
    """What `spotlake dev` does to its DAGSTER_HOME before `dagster dev` starts: the previous instance's runs and
    materializations are gone (the stack's data is too), its configuration and the UI's state are kept."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".nux").mkdir()
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        instance.report_runless_asset_event(AssetMaterialization("azure_spot_snapshot", partition="2026-11-01-00:00"))
        assert instance.get_latest_materialization_event(SNAPSHOT) is not None
    assert {"history", "schedules"} <= {p.name for p in home.iterdir()}

    with dagster_home.exclusive(home):
        dagster_home.reset(home, ROOT / "dagster.yaml")

    assert (home / "dagster.yaml").read_text() == (ROOT / "dagster.yaml").read_text()
    assert (home / ".nux" / "nux.yaml").exists()
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        assert instance.get_latest_materialization_event(SNAPSHOT) is None
        assert instance.get_runs() == []


def test_dagster_home_is_held_by_one_process_at_a_time(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from spotlake_assets.local.dagster_home import exclusive\n"
         f"with exclusive(Path({str(tmp_path)!r})):\n    print('held', flush=True); time.sleep(60)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(dagster_home.DagsterHomeInUse, match=rf"\(pid {holder.pid}\) is using {tmp_path}"):
            with dagster_home.exclusive(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with dagster_home.exclusive(tmp_path):  # the lock goes with its process, however it ended
        pass


def test_a_taken_fixed_port_is_named_before_anything_starts():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUseError, match=rf"^port {port} \(the thing\) is already in use$"):
            check_fixed_ports_free(ports={port: "the thing"})
    check_fixed_ports_free(ports={port: "the thing"})


# ---- Ctrl-C and progress in run-local ----

PROGRESS = r"(?P<key>\d{4}-\d\d-\d\d-\d\d:\d0) done \((?P<n>\d+)/(?P<of>\d+)\) in \d+\.\d s, \d+ s elapsed"


def test_ctrl_c_during_run_local_says_what_was_done_and_a_rerun_completes(tmp_path):
    """Ctrl-C while the second of two partitions runs: exit status 130, one line on stderr naming the partition done
    and the one not done, no traceback and none of Dagster's failure logging. Run again (--quiet): it completes."""
    errors = tmp_path / "run-local.err"
    with errors.open("w") as err:
        proc = subprocess.Popen(
            [*SPOTLAKE, "run-local", "--partitions", "2"],
            cwd=ROOT, env=clean_environ(), stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
    try:
        out = []
        while not (out and re.fullmatch(PROGRESS, out[-1])):  # the first partition's line: the second one is running
            line = proc.stdout.readline()
            assert line, f"run-local ended before a partition finished: {''.join(out)}{errors.read_text()}"
            out.append(line.rstrip("\n"))
        proc.send_signal(signal.SIGINT)
        out += proc.stdout.read().splitlines()
        assert proc.wait(timeout=120) == 130, errors.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    first, second = re.fullmatch(r"partitions (\S+) \.\. (\S+) .*", out[1]).groups()
    assert re.fullmatch(PROGRESS, out[2])["key"] == first and len(out) == 3, out  # no summary
    stderr = errors.read_text()
    assert "Traceback" not in stderr + "\n".join(out)
    assert stderr.splitlines() == [
        f"spotlake run-local: interrupted; 1 of 2 partitions done ({first}), not done: {second}; the local stack is "
        "discarded: run the same command to replay them"
    ]

    again = spotlake("run-local", "--partitions", "2", "--end", second, "--quiet", timeout=300)
    assert (again.returncode, again.stderr) == (0, ""), again.stderr
    assert not [line for line in again.stdout.splitlines() if re.fullmatch(PROGRESS, line)]
    rows = [line.split()[0] for line in again.stdout.splitlines() if re.match(r"\d{4}-\d\d-\d\d-\d\d:\d0 ", line)]
    assert rows == [first, second] and "FAILED" not in again.stdout


def test_the_interrupt_watch_sees_ctrl_c_that_another_handler_swallowed(capsys):
    """As Dagster's runs do: their SIGINT handler only records the signal; the watch still knows, and from then
    on stderr is dropped while stdout is not."""
    swallowed = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: swallowed.append(signum))
    try:
        with InterruptWatch() as watch, quiet_stderr_once_interrupted(watch):
            print("before", file=sys.stderr)
            assert not watch.interrupted
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)  # the handler runs between bytecodes of the main thread
            assert swallowed == [signal.SIGINT] and watch.interrupted
            print("after", file=sys.stderr)
            print("stdout still")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert capsys.readouterr() == ("stdout still\n", "before\n")


def test_run_local_prints_a_line_per_partition_as_it_finishes(tmp_path):
    proc = spotlake("run-local", "--partitions", "2", timeout=300)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    lines = proc.stdout.splitlines()
    first, second = re.fullmatch(r"partitions (\S+) \.\. (\S+) .*", lines[1]).groups()
    progress = [re.fullmatch(PROGRESS, line) for line in lines[2:4]]
    assert [(m["key"], m["n"], m["of"]) for m in progress] == [(first, "1", "2"), (second, "2", "2")], lines
    assert lines[4:6] == ["", "partition         count  price     IF    SPS  merged  changes written  missing"]


# ---- the local stack's moto server: a child process that ends with the command ----

PEAK_RSS = r"peak RSS: collector (?P<ours>\d+) MiB, local stack \(moto\) (?P<moto>\d+) MiB"


def moto_child(parent: psutil.Process, endpoint: str) -> psutil.Process:
    """The child of `parent` that serves the stack's S3 and DynamoDB at `endpoint`."""
    port = int(endpoint.rsplit(":", 1)[1])
    [child] = [c for c in parent.children() if any("moto_child.py" in part for part in c.cmdline())]
    assert any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in child.net_connections("tcp"))
    return child


def test_run_local_serves_s3_and_dynamodb_from_a_child_and_reports_both_peak_rss(tmp_path):
    """moto (which holds the stack's data in memory) runs in a process of its own, gone when run-local ends; the
    summary's last line gives the peak RSS of the collector's process and of moto's."""
    proc = subprocess.Popen(
        [*SPOTLAKE, "run-local", "--partitions", "1", "--quiet"],
        cwd=ROOT, env=clean_environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        header = proc.stdout.readline()
        endpoint = re.match(r"local stack: S3/DynamoDB (\S+),", header)[1]
        child = moto_child(psutil.Process(proc.pid), endpoint)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, err) == (0, ""), err
    assert not child.is_running()
    peak = re.fullmatch(PEAK_RSS, out.splitlines()[-1])
    assert peak and 100 < int(peak["ours"]) < 1536 and 30 < int(peak["moto"]) < 1536, out


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_the_stack_moto_child_ends_with_local_stack_even_when_it_is_killed(tmp_path, how):
    """Ctrl-C stops `spotlake local-stack` and its moto child, with the usual one line (nothing from the child);
    SIGKILL, which the command cannot handle, leaves no orphan serving the port either."""
    with standing_local_stack(tmp_path) as (stack, env_file, errors):
        endpoint = read_env_file(env_file)["SPOTLAKE_AWS_ENDPOINT_URL"]
        child = moto_child(psutil.Process(stack.pid), endpoint)
        stack.send_signal(getattr(signal, how))
        assert stack.wait(timeout=30) == (130 if how == "SIGINT" else -signal.SIGKILL), errors.read_text()
        gone, alive = psutil.wait_procs([child], timeout=10)
        assert not alive, f"moto's child {child.pid} outlived `spotlake local-stack`"
    if how == "SIGINT":
        assert len(errors.read_text().splitlines()) == 1, errors.read_text()
    with pytest.raises(requests.ConnectionError):
        requests.get(endpoint, timeout=5)


# ---- AWS credentials outside local ----

NO_AWS_CONFIG = {
    "AWS_CONFIG_FILE": "/nonexistent/aws/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws/credentials",
    "AWS_EC2_METADATA_DISABLED": "true",  # no instance role either
}
HOW_TO_PROVIDE = (
    "provide them with AWS_PROFILE (a profile in ~/.aws/config or ~/.aws/credentials), or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or run where an instance or task role applies"
)


@pytest.mark.parametrize(
    ("env", "extra", "command", "said"),
    [
        ("prod", {}, HISTORY_ARGS, "no AWS credentials found for SPOTLAKE_ENV=prod"),
        ("test", {}, HISTORY_ARGS, "no AWS credentials found for SPOTLAKE_ENV=test"),
        ("prod", {}, ["import-legacy", "--bucket", "legacy", "--end", "2026-11-28-08:40"],
         "no AWS credentials found for SPOTLAKE_ENV=prod"),
        ("test", {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"}, HISTORY_ARGS,
         "incomplete AWS credentials for SPOTLAKE_ENV=test (Partial credentials found in env, missing: "
         "AWS_SECRET_ACCESS_KEY)"),
    ],
    ids=["history-prod", "history-test", "import-legacy-prod", "history-partial"],
)  # fmt: skip
def test_missing_aws_credentials_are_one_line_saying_how_to_provide_them(env, extra, command, said):
    """Not boto3's text about the failed call (the table and item keys), but what is missing and how to provide it."""
    proc = spotlake(*command, env=clean_environ(SPOTLAKE_ENV=env, **NO_AWS_CONFIG, **extra))
    assert one_error_line(proc, 1) == f"spotlake {command[0]}: error: {said}: {HOW_TO_PROVIDE}"
