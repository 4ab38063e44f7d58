"""The development stack's `spotlake` commands: `run-local` (the graph on the embedded local stack), `local-stack`
(serve it until interrupted) and `dev` (`dagster dev` on it), with what they share: starting a stack, finding a
standing one, stopping on a signal. The entry point, spotlake_assets/cli.py, registers them when this package is
installed (the production image does not ship spotlake_assets/local/); `spotlake history` in `local` finds the
running stack through `history_endpoint` here.

Only the standard library, the core and spotlake_assets.cli_base are imported at load: the stack (moto, Flask,
Dagster) is imported by the command that runs it, so `spotlake --help` and the operator commands stay quick.
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
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from ..cli_base import (
    PARTITIONS_PER_DAY,
    START_A_STACK,
    Interrupted,
    Unavailable,
    UsageError,
    closed_partition,
    count,
    file_option,
    local_settings,
)
from ..core.timekeys import newest_closed_partition, partitions_ending_at
from .envfile import DEFAULT_ENV_FILE, published, read_env_file

ROOT = Path(__file__).resolve().parent.parent.parent
RUN_LOCAL_MAX_PARTITIONS = 7 * PARTITIONS_PER_DAY  # a week, replayed one partition after another
ENV_HELP = f"the running stack's environment file (default {DEFAULT_ENV_FILE})"


def _start_stack(args: argparse.Namespace, fixed_ports: bool, **kwargs: Any) -> Any:
    from .stack import PortInUseError, start_local_stack

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
    local_settings("run-local")
    count(args.partitions, RUN_LOCAL_MAX_PARTITIONS)
    end = closed_partition(args.end) if args.end is not None else newest_closed_partition(datetime.now(UTC))
    keys = partitions_ending_at(end, args.partitions)
    # the definitions start at the first partition run here, so any range can be replayed
    extra_env = {"SPOTLAKE_PARTITION_START": keys[0]}
    standing = _standing_stack_env(args) if args.stack is not None else None
    stack_file = standing[0] if standing else None
    import requests

    from .interrupts import InterruptWatch, quiet_stderr_once_interrupted
    from .run import RunInterrupted, run_partitions, summary_lines
    from .stack import standing_stack, use_stack_environment

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
    env_file = file_option(args.stack, "--stack")
    env = read_env_file(env_file)
    if env is None:
        raise Unavailable(f"no local stack is running: no {env_file}; {START_A_STACK}")
    from .stack import AWS_ENDPOINT_ENV, EMULATOR_URL_ENV

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
    from .run import newest_committed

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


def local_stack(args: argparse.Namespace) -> int:
    """Serve the stack until interrupted; its environment is in the env file meanwhile."""
    local_settings("local-stack")
    env_file = file_option(args.env_file, "--env-file")
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
    local_settings("dev")
    env_file = file_option(args.env_file, "--env-file")
    home = Path(args.dagster_home).resolve()
    if home.exists() and not home.is_dir():
        raise UsageError(f"--dagster-home {args.dagster_home}: is a file, not a directory")
    # argparse keeps the `--` that separates our options from dagster's
    passthrough = args.dagster_args[1:] if args.dagster_args[:1] == ["--"] else args.dagster_args
    from . import dagster_home
    from .stack import stack_environ

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




def history_endpoint(settings: Any, args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """(endpoint, credentials) of the history's DynamoDB in `local`: --endpoint-url, else SPOTLAKE_AWS_ENDPOINT_URL,
    else the running local stack's endpoint from its env file (--env-file), with the stack's fake credentials; it
    must answer."""
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
    from .aws import LOCAL_AWS_CREDENTIALS

    return endpoint, LOCAL_AWS_CREDENTIALS


# ---- the parser (spotlake_assets/cli.py's build_parser calls these, in the order `spotlake --help` lists) ----


def _stack_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="emulator data seed (default 0)")
    parser.add_argument("--scale", choices=("small", "full"), default="small", help="emulator catalogue size")


def add_run_local(sub: Any) -> None:
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


def add_serving_commands(sub: Any) -> None:
    p = sub.add_parser("local-stack", help="serve the local stack until interrupted")
    _stack_args(p)
    p.add_argument("--free-ports", action="store_true", help="let the OS pick ports instead of the fixed local ones")
    p.add_argument("--env-file", default=str(DEFAULT_ENV_FILE), help=ENV_HELP)
    p.set_defaults(func=local_stack)

    p = sub.add_parser("dev", help="dagster dev on the embedded local stack, with a fresh instance")
    _stack_args(p)
    p.add_argument("--free-ports", action="store_true", help="let the OS pick the stack's ports")
    p.add_argument("--dagster-home", default=str(ROOT / ".dagster_home"), help="DAGSTER_HOME for the instance")
    p.add_argument("--env-file", default=str(DEFAULT_ENV_FILE), help=ENV_HELP)
    p.add_argument("dagster_args", nargs=argparse.REMAINDER, help="after --: passed to dagster dev")
    p.set_defaults(func=dev)
