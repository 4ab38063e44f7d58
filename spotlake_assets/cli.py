"""`spotlake` command line: run the graph on the embedded local stack, serve the stack, start `dagster dev`, query
the history, import legacy snapshots.

Every command checks SPOTLAKE_ENV (and the other SPOTLAKE_* settings) and its arguments before doing anything.
A wrong one is reported in one line on stderr, naming what is wrong and what is valid, with exit status 2; when
something the command needs is not there (no local stack running, a port taken, AWS failing) it says so in one
line with exit status 1. Ctrl-C ends a command with exit status 130 and one line saying what was done and what was
not, never a traceback; `local-stack` and `dev`, which serve until interrupted, end that way too. Output into a
pipe whose reader has gone (`| head`) ends with status 141, as SIGPIPE would, and nothing on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from .core.timekeys import (
    PARTITION_FMT,
    PARTITION_MINUTES,
    data_time,
    newest_closed_partition,
    parse_partition_key,
    partitions_ending_at,
)
from .local.envfile import DEFAULT_ENV_FILE, published, read_env_file

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS_PER_DAY = 24 * 60 // PARTITION_MINUTES
RUN_LOCAL_MAX_PARTITIONS = 7 * PARTITIONS_PER_DAY  # a week, replayed one partition after another
IMPORT_MAX_PARTITIONS = 366 * PARTITIONS_PER_DAY  # a year
START_A_STACK = "start one with `make dev` or `spotlake local-stack`"
EXIT_UNAVAILABLE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
EXIT_BROKEN_PIPE = 128 + 13  # as a shell reports a program ended by SIGPIPE


class UsageError(Exception):
    """A wrong argument or SPOTLAKE_* variable: one line, exit status 2."""


class Unavailable(Exception):
    """Something the command needs is missing or failed (no local stack, a taken port, AWS): one line, exit 1."""


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM, SIGHUP): one line saying what was done and what was not, exit 128 + the signal's number
    (130 for Ctrl-C)."""

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.status = 128 + signum


class _Parser(argparse.ArgumentParser):
    """argparse's own errors in one line too (its default prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ---- checks shared by the commands ----


def _settings() -> Any:
    from resources.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


def _local_settings(command: str) -> Any:
    settings = _settings()
    if settings.env != "local":
        raise UsageError(
            f"SPOTLAKE_ENV={settings.env}: `spotlake {command}` runs on the embedded local stack, whose environment "
            "is local; unset SPOTLAKE_ENV or set it to local"
        )
    return settings


def _count(value: int, maximum: int, option: str = "--partitions") -> int:
    if not 1 <= value <= maximum:
        raise UsageError(f"{option} {value}: must be 1..{maximum}")
    return value


def _closed_partition(value: str, option: str = "--end", now: datetime | None = None) -> str:
    """`value` as a partition key, if it names a 10-minute partition whose window has closed at `now`."""
    now = now or datetime.now(UTC)
    newest = newest_closed_partition(now)
    try:
        start = parse_partition_key(value.strip())
    except ValueError:
        raise UsageError(
            f"{option} {value!r} is not a partition key: YYYY-MM-DD-HH:MM (UTC) on a 10-minute boundary, "
            f"e.g. {newest}"
        ) from None
    key = start.strftime(PARTITION_FMT)
    if start.minute % PARTITION_MINUTES:
        containing = (start - timedelta(minutes=start.minute % PARTITION_MINUTES)).strftime(PARTITION_FMT)
        raise UsageError(
            f"{option} {value!r} is not on a 10-minute boundary (HH:00, HH:10, ... HH:50); "
            f"the partition containing it is {containing}"
        )
    if data_time(key) > now:
        raise UsageError(
            f"{option} {key} is not closed yet (its window ends at {data_time(key):%Y-%m-%d %H:%M} UTC); "
            f"the newest closed partition is {newest}"
        )
    return key


def _file_option(value: str, option: str) -> Path:
    path = Path(value)
    if path.is_dir():
        raise UsageError(f"{option} {value}: is a directory, not a file")
    return path


def _start_stack(args: argparse.Namespace, fixed_ports: bool, **kwargs: Any) -> Any:
    from .local.stack import PortInUseError, start_local_stack

    try:
        # moto in a child process: it holds the stack's data in memory, which is then not the collector's
        return start_local_stack(
            seed=args.seed, scale=args.scale, fixed_ports=fixed_ports, separate_moto=True, **kwargs
        )
    except PortInUseError as exc:
        raise Unavailable(
            f"{exc}: is another `make dev` or `spotlake local-stack` running? Stop it, or pass --free-ports"
        ) from None


class _StopSignals:
    """SIGINT, SIGTERM and SIGHUP ask this process to stop instead of killing it. While a child runs (in its own
    process group, so a terminal's Ctrl-C reaches only this process), the first such signal is forwarded to the
    child's group as SIGINT, which is Ctrl-C to `dagster dev`; a second one kills the group."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, command: str) -> None:
        self.command = command
        self.received = 0
        self.signum: int = signal.SIGINT  # the last signal received
        self.event = threading.Event()
        self.child: subprocess.Popen | None = None
        self._forwarded = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def attach(self, child: subprocess.Popen) -> None:
        self.child = child
        self._forward()  # a signal that came while it started

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1
        self.signum = signum
        self.event.set()
        self._forward()

    def _forward(self) -> None:
        if self.child is None or self._forwarded >= self.received:
            return
        self._forwarded = self.received
        if self._forwarded == 1:
            print(f"spotlake {self.command}: stopping (Ctrl-C again to kill it)", file=sys.stderr, flush=True)
            sig = signal.SIGINT
        else:
            print(f"spotlake {self.command}: killing it", file=sys.stderr, flush=True)
            sig = signal.SIGKILL
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.child.pid, sig)


# ---- the commands ----


def run_local(args: argparse.Namespace) -> int:
    """Run the whole graph for consecutive partitions on a fresh local stack, or with --stack on a running one (left
    running), and print a summary; a line per partition as it finishes unless --quiet."""
    _local_settings("run-local")
    _count(args.partitions, RUN_LOCAL_MAX_PARTITIONS)
    end = _closed_partition(args.end) if args.end is not None else newest_closed_partition(datetime.now(UTC))
    keys = partitions_ending_at(end, args.partitions)
    # the definitions start at the first partition run here, so any range can be replayed
    extra_env = {"SPOTLAKE_PARTITION_START": keys[0]}
    standing = _standing_stack_env(args) if args.stack is not None else None
    stack_file = standing[0] if standing else None
    import requests

    from .local.interrupts import InterruptWatch, quiet_stderr_once_interrupted
    from .local.run import RunInterrupted, run_partitions, summary_lines
    from .local.stack import standing_stack, use_stack_environment

    done: list[str] = []
    started = time.monotonic()

    def progress(summary: Any, seconds: float) -> None:
        done.append(summary.partition)
        if not args.quiet:
            elapsed = time.monotonic() - started
            print(f"{summary.partition} done ({len(done)}/{len(keys)}) in {seconds:.1f} s, {elapsed:.0f} s elapsed")
            sys.stdout.flush()

    try:
        # Ctrl-C: Dagster's logging of the interrupted step is dropped; the one line below says what happened
        with InterruptWatch() as watch, quiet_stderr_once_interrupted(watch):
            if standing is None:
                stack = _start_stack(args, fixed_ports=False, extra_env=extra_env)
                where = "local stack"
            else:
                stack = standing_stack(standing[1], extra_env)
                where = f"local stack of {standing[0]} (left running)"
            with stack:
                use_stack_environment(stack)  # type: ignore[arg-type]
                print(f"{where}: S3/DynamoDB {stack.aws.endpoint_url}, Azure emulator {stack.emulator.base_url}")
                print(
                    f"partitions {keys[0]} .. {keys[-1]} "
                    f"(env {stack.settings.env}, write bucket {stack.settings.write_bucket})",
                    flush=True,
                )
                if standing is not None:
                    keys = _after_newest_committed(stack, keys)
                    if not keys:
                        return 0
                started = time.monotonic()
                report = run_partitions(stack, keys, on_partition=progress, interrupts=watch)
    except (KeyboardInterrupt, RunInterrupted):
        raise Interrupted(_run_local_interrupted(keys, done, stack_file)) from None
    except requests.RequestException as exc:  # only a standing stack's clock is set over HTTP
        raise Unavailable(
            f"the local stack of {stack_file} stopped answering ({type(exc).__name__}) after {len(done)} of "
            f"{len(keys)} partitions; {START_A_STACK}"
        ) from None
    print("\n".join(summary_lines(report, stack.settings.write_bucket)))
    print(_peak_rss_line(stack))
    return 0 if report.success else 1


def _mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


def _peak_rss_line(stack: Any) -> str:
    """The peak resident memory of this process (the collector: Dagster and the graph, the Azure emulator) and of
    the stack's moto server, a child process (its S3 objects and DynamoDB items: it grows with every partition)."""
    import resource

    ours = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ours *= 1 if sys.platform == "darwin" else 1024  # bytes there, KiB elsewhere
    line = f"peak RSS: collector {_mib(ours)}"
    moto = getattr(stack.aws, "peak_rss", None)
    if moto is not None:
        line += f", local stack (moto) {_mib(moto)}"
    return line


def _standing_stack_env(args: argparse.Namespace) -> tuple[Path, dict[str, str]]:
    """(file, variables) of the running local stack that --stack names; it must answer."""
    if args.seed != 0 or args.scale != "small":
        raise UsageError("--seed and --scale set up a new stack; with --stack, the running stack's are used")
    env_file = _file_option(args.stack, "--stack")
    env = read_env_file(env_file)
    if env is None:
        raise Unavailable(f"no local stack is running: no {env_file}; {START_A_STACK}")
    from .local.stack import AWS_ENDPOINT_ENV, EMULATOR_URL_ENV

    for name in (AWS_ENDPOINT_ENV, EMULATOR_URL_ENV):
        if not env.get(name):
            raise UsageError(
                f"--stack {env_file}: no {name} in it; it is not the environment file of `spotlake local-stack`"
            )
    if env.get("SPOTLAKE_ENV", "local") != "local":
        raise UsageError(f"--stack {env_file}: its SPOTLAKE_ENV is {env['SPOTLAKE_ENV']}, not local")
    import requests

    for url in (env[AWS_ENDPOINT_ENV], f"{env[EMULATOR_URL_ENV]}/_emulator/clock"):
        try:
            requests.get(url, timeout=(1, 3))
        except requests.RequestException:
            endpoint = url.removesuffix("/_emulator/clock")
            raise Unavailable(f"no local stack is running at {endpoint} (from {env_file}); {START_A_STACK}") from None
    return env_file, env


def _after_newest_committed(stack: Any, keys: list[str]) -> list[str]:
    """The partitions of `keys` after the standing stack's newest committed one: the others are in it already (a
    re-run skips them) or cannot run one at a time after it (only a backfill up to the newest fills them)."""
    from .local.run import newest_committed

    newest = newest_committed(stack, keys[0])
    skipped = [key for key in keys if newest is not None and key <= newest]
    if skipped:
        nothing = "; nothing to run" if len(skipped) == len(keys) else ""
        print(f"skipped {_span(skipped)}: the stack already holds partitions up to {newest}{nothing}", flush=True)
    return keys[len(skipped) :]


def _span(keys: list[str]) -> str:
    return keys[0] if len(keys) == 1 else f"{keys[0]} .. {keys[-1]}"


def _run_local_interrupted(keys: list[str], done: list[str], stack_file: Path | None = None) -> str:
    """What an interrupted run-local did: the partitions run in full (a prefix of `keys`) and the rest. Its own
    stack (this process and its moto child) is gone, so a re-run replays the whole range from scratch, exactly; a
    standing stack (--stack) keeps what was done, and a re-run of the range is exact too (the continuity rules)."""
    rest = keys[len(done) :]
    finished = f"{len(done)} of {len(keys)} partitions done ({_span(done)})" if done else "no partition done"
    not_done = f"not done: {_span(rest)}" if rest else "all done, the summary was not printed"
    if stack_file is not None:
        return (
            f"interrupted; {finished}, {not_done}; the local stack of {stack_file} is still running and keeps the "
            "partitions done: run the same command to run the rest (it skips them)"
        )
    return f"interrupted; {finished}, {not_done}; the local stack is discarded: run the same command to replay them"


def import_legacy(args: argparse.Namespace) -> int:
    """Convert legacy .pkl.gz snapshots of a range of partitions into Parquet in the environment's write bucket."""
    settings = _settings()
    bucket = args.bucket.strip()
    if not bucket:
        raise UsageError("--bucket must name the legacy bucket to read")
    _count(args.partitions, IMPORT_MAX_PARTITIONS)
    keys = partitions_ending_at(_closed_partition(args.end), args.partitions)
    from botocore.exceptions import BotoCoreError, ClientError

    from resources.aws import make_client
    from resources.legacy_history import ImportReport, LegacyImportError, import_partitions
    from resources.s3 import S3StoreError

    from .defs import build_resources

    client = make_client("s3", endpoint_url=settings.aws_endpoint_url, region_name=settings.aws_region)
    report = ImportReport()
    try:
        import_partitions(client, bucket, build_resources(settings)["store"], keys, report)  # type: ignore[arg-type]
    except (LegacyImportError, S3StoreError, BotoCoreError, ClientError) as exc:
        raise Unavailable(_aws_error(exc, settings)) from None
    except KeyboardInterrupt:
        # each Parquet file is one S3 put, there whole or not at all; converting again overwrites it the same
        whole = f"partitions up to {report.partition} in full" if report.partition else "no partition in full"
        raise Interrupted(
            f"interrupted; {len(report.written)} snapshots converted to s3://{settings.write_bucket} ({whole}); "
            "run the same command again to convert the whole range"
        ) from None
    print(f"converted {len(report.written)} legacy snapshots of {len(keys)} partitions to s3://{settings.write_bucket}")
    for where in report.missing:
        print(f"  not found: {where}")
    return 0


def local_stack(args: argparse.Namespace) -> int:
    """Serve the stack until interrupted; its environment is in the env file meanwhile."""
    _local_settings("local-stack")
    env_file = _file_option(args.env_file, "--env-file")
    with _StopSignals("local-stack") as stop, _start_stack(args, fixed_ports=not args.free_ports) as stack:
        with published(env_file, stack.env):
            print(f"local stack up; environment in {env_file}; history query API {stack.query_api_url}", flush=True)
            stop.event.wait()
    # serving until interrupted is its whole job, and its data lived in this process and its moto child
    raise Interrupted(
        f"interrupted; the local stack has stopped (its S3 and DynamoDB data is gone) and {env_file} is removed",
        stop.signum,
    )


def dev(args: argparse.Namespace) -> int:
    """`dagster dev` on the embedded local stack (the stack runs in this process and a moto child, dagster as another
    child), with a fresh Dagster instance: the stack's S3 and DynamoDB start empty, so its run history must too."""
    _local_settings("dev")
    env_file = _file_option(args.env_file, "--env-file")
    home = Path(args.dagster_home).resolve()
    if home.exists() and not home.is_dir():
        raise UsageError(f"--dagster-home {args.dagster_home}: is a file, not a directory")
    # argparse keeps the `--` that separates our options from dagster's
    passthrough = args.dagster_args[1:] if args.dagster_args[:1] == ["--"] else args.dagster_args
    from .local import dagster_home
    from .local.stack import stack_environ

    with contextlib.ExitStack() as scope:
        stop = scope.enter_context(_StopSignals("dev"))
        try:
            scope.enter_context(dagster_home.exclusive(home))
        except dagster_home.DagsterHomeInUse as exc:
            raise Unavailable(f"{exc}: stop it first, or pass another --dagster-home") from None
        stack = scope.enter_context(_start_stack(args, fixed_ports=not args.free_ports))
        dagster_home.reset(home, dagster_home.DEV_CONFIG)
        scope.enter_context(published(env_file, stack.env))
        print(f"history query API (the web site's endpoint): {stack.query_api_url}", flush=True)
        print(f"fresh Dagster instance in {home}; local stack environment in {env_file}", flush=True)
        code = None
        if not stop.received:
            env = {**stack_environ(stack, os.environ), "DAGSTER_HOME": str(home)}
            cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(ROOT / "workspace.yaml"), *passthrough]
            # its own process group: Ctrl-C reaches only this process, which forwards it once (see _StopSignals)
            child = subprocess.Popen(cmd, env=env, cwd=home, stdin=subprocess.DEVNULL, process_group=0)
            stop.attach(child)
            code = child.wait()
    if code is not None and code < 0:
        return 128 - code  # killed (a second Ctrl-C): 128 + its number, as a shell reports it
    if stop.received:
        # Ctrl-C is how one stops it; by now dagster dev has shut down and the stack with it
        started = "dagster dev has shut down" if code is not None else "dagster dev was not started"
        raise Interrupted(
            f"interrupted; {started}, the local stack has stopped (its data is gone) and {env_file} is removed",
            stop.signum,
        )
    return code or 0


def history(args: argparse.Namespace) -> int:
    """Query the DynamoDB history; in `local`, the running local stack's (from its env file)."""
    settings = _settings()
    from resources.query_api.hints import query_with_hint
    from resources.query_api.reader import HistoryQueryError
    from resources.query_api.request import check_request, check_zone, render_csv, render_json

    request = dict(
        instance_type=args.instance_type,
        region=args.region,
        availability_zone=args.zone,
        instance_tier=args.tier,
        start=args.start,
        end=args.end,
        max_points=args.max_points,
    )
    try:
        check_zone(args.zone, name="--zone")
        check_request(**request)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    endpoint, credentials = _history_endpoint(settings, args)
    from resources.aws import make_client

    client = make_client("dynamodb", endpoint_url=endpoint, region_name=settings.aws_region, credentials=credentials)

    def known_types() -> list[str]:  # only for a type without data: one GetObject of the site's type list
        from resources.known_types import association_types

        s3 = make_client("s3", endpoint_url=endpoint, region_name=settings.aws_region, credentials=credentials)
        return association_types(s3, settings.write_bucket)

    try:
        records, hint = query_with_hint(
            client, table_name=args.table or settings.dynamodb_table, known_types=known_types, **request
        )
    except ValueError as exc:  # too many points
        raise UsageError(str(exc)) from None
    except HistoryQueryError as exc:
        raise Unavailable(_aws_error(exc, settings)) from None
    except KeyboardInterrupt:
        raise Interrupted("interrupted before the answer came; nothing was printed (a query only reads)") from None
    sys.stdout.write(render_json(records) + "\n" if args.format == "json" else render_csv(records))
    if hint:  # an empty answer is still an answer (exit 0, the header on stdout); stderr says why it is empty
        print(f"spotlake history: {hint}", file=sys.stderr)
    return 0


def _aws_error(exc: BaseException, settings: Any) -> str:
    """The message of a failed AWS call, or what `_missing_credentials` says when that was the cause."""
    return _missing_credentials(exc, settings.env) or str(exc)


def _missing_credentials(exc: BaseException, env: str) -> str | None:
    """When boto3 found no AWS credentials (or half of them) behind `exc`: which ones, and how to provide them,
    instead of the failed call's details (its table and item keys). None for any other error."""
    if "botocore" not in sys.modules:
        return None
    from resources.aws import missing_credentials

    return missing_credentials(exc, f"SPOTLAKE_ENV={env}")


def _history_endpoint(settings: Any, args: argparse.Namespace) -> tuple[str | None, dict[str, str] | None]:
    """(endpoint, credentials) of the history's DynamoDB. Outside `local`: the settings' (or --endpoint-url) and
    boto3's usual credentials. In `local`: --endpoint-url, else SPOTLAKE_AWS_ENDPOINT_URL, else the running local
    stack's endpoint from its env file, with the stack's fake credentials; it must answer."""
    if settings.env != "local":
        return args.endpoint_url or settings.aws_endpoint_url, None
    from resources.settings import ENV_VARS

    endpoint_var = ENV_VARS["aws_endpoint_url"]
    endpoint = (args.endpoint_url or os.environ.get(endpoint_var, "")).strip()
    if not endpoint:
        env_file = Path(args.env_file)
        endpoint = (read_env_file(env_file) or {}).get(endpoint_var, "")
        if not endpoint:
            where = settings.aws_endpoint_url
            raise Unavailable(f"no local stack is running at {where} (no {env_file}); {START_A_STACK}")
    import requests

    try:
        requests.get(endpoint, timeout=(1, 3))
    except requests.RequestException:
        raise Unavailable(f"no local stack is running at {endpoint}; {START_A_STACK}") from None
    from .local.aws import LOCAL_AWS_CREDENTIALS

    return endpoint, LOCAL_AWS_CREDENTIALS


# ---- the parser ----


def _stack_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="emulator data seed (default 0)")
    parser.add_argument("--scale", choices=("small", "full"), default="small", help="emulator catalogue size")


def build_parser() -> argparse.ArgumentParser:
    from resources.query_api.request import ALL, MAX_POINTS

    parser = _Parser(prog="spotlake", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    p = sub.add_parser("run-local", help="run the whole graph for consecutive partitions on the embedded local stack")
    p.add_argument("--end", help="last partition YYYY-MM-DD-HH:MM, closed (default: the newest closed one)")
    p.add_argument(
        "--partitions", type=int, default=3, help=f"how many consecutive partitions, 1..{RUN_LOCAL_MAX_PARTITIONS}"
    )
    _stack_args(p)
    p.add_argument(
        "--stack",
        nargs="?",
        const=str(DEFAULT_ENV_FILE),
        metavar="ENV_FILE",
        help="run on the running local stack (`spotlake local-stack`) this environment file describes, and leave it "
        f"running, instead of starting a new one (default file: {DEFAULT_ENV_FILE})",
    )
    p.add_argument("--quiet", action="store_true", help="no line per partition as it finishes, only the summary")
    p.set_defaults(func=run_local)

    p = sub.add_parser(
        "import-legacy",
        help="convert the legacy collector's .pkl.gz snapshots to Parquet (run on a trusted machine only)",
    )
    p.add_argument("--bucket", required=True, help="the legacy bucket to read (a bucket you trust: pickles run code)")
    p.add_argument("--end", required=True, help="last partition YYYY-MM-DD-HH:MM, closed")
    p.add_argument(
        "--partitions", type=int, default=1, help=f"how many partitions up to --end, 1..{IMPORT_MAX_PARTITIONS}"
    )
    p.set_defaults(func=import_legacy)

    env_help = f"the running stack's environment file (default {DEFAULT_ENV_FILE})"
    p = sub.add_parser("local-stack", help="serve the local stack until interrupted")
    _stack_args(p)
    p.add_argument("--free-ports", action="store_true", help="let the OS pick ports instead of the fixed local ones")
    p.add_argument("--env-file", default=str(DEFAULT_ENV_FILE), help=env_help)
    p.set_defaults(func=local_stack)

    p = sub.add_parser("dev", help="dagster dev on the embedded local stack, with a fresh instance")
    _stack_args(p)
    p.add_argument("--free-ports", action="store_true", help="let the OS pick the stack's ports")
    p.add_argument("--dagster-home", default=str(ROOT / ".dagster_home"), help="DAGSTER_HOME for the instance")
    p.add_argument("--env-file", default=str(DEFAULT_ENV_FILE), help=env_help)
    p.add_argument("dagster_args", nargs=argparse.REMAINDER, help="after --: passed to dagster dev")
    p.set_defaults(func=dev)

    p = sub.add_parser("history", help="query the DynamoDB history (in local: the running local stack's)")
    p.add_argument("--instance-type", required=True, help="one instance type, e.g. D2s_v3 (or Standard_D2s_v3)")
    p.add_argument("--region", default=ALL, help="display name, e.g. 'US East', or '*' (default)")
    p.add_argument("--zone", default=ALL, help="'1', '2', '3', 'Single' or '*' (default)")
    p.add_argument("--tier", default=ALL, help="'Standard', 'Basic' or '*' (default)")
    p.add_argument("--start", required=True, help="YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS' (UTC)")
    p.add_argument("--end", required=True, help="YYYY-MM-DD (whole day) or 'YYYY-MM-DD HH:MM:SS' (UTC)")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--max-points", default=str(MAX_POINTS))
    p.add_argument("--table", help="default: the SPOTLAKE_ENV environment's table")
    p.add_argument("--endpoint-url", help="default: the environment's AWS endpoint (local: the running stack's)")
    p.add_argument("--env-file", default=str(DEFAULT_ENV_FILE), help=f"in local: {env_help}")
    p.set_defaults(func=history)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"spotlake {args.command}"

    def one_line(exc: Exception) -> str:
        return " ".join(str(exc).split())

    try:
        status = args.func(args)
        sys.stdout.flush()  # a reader that has gone (`| head`) shows here, in our handling, not at the exit
        return status
    except BrokenPipeError:
        # whoever read the output stopped reading: not an error to report; stdout goes nowhere from now on so
        # that Python's own flush at exit does not print a traceback either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except UsageError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Unavailable as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except Interrupted as exc:
        print(f"{prog}: {one_line(exc)}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        # boto3 checks credentials when a client is made, outside the commands' handling of failed calls
        env = os.environ.get("SPOTLAKE_ENV", "").strip() or "local"
        line = _missing_credentials(exc, env)
        if line is None:
            raise
        print(f"{prog}: error: {line}", file=sys.stderr)
        return EXIT_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
