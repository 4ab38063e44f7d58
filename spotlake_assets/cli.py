"""`spotlake` command line: run the graph on the embedded local stack, serve the stack, start `dagster dev`."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from .core.timekeys import newest_closed_partition, partitions_ending_at

ROOT = Path(__file__).resolve().parent.parent


def _stack_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="emulator data seed (default 0)")
    parser.add_argument("--scale", choices=("small", "full"), default="small", help="emulator catalogue size")


def run_local(args: argparse.Namespace) -> int:
    """Run the whole graph for consecutive partitions on a fresh local stack and print a summary."""
    end = args.end or newest_closed_partition(datetime.now(UTC))
    keys = partitions_ending_at(end, args.partitions)
    from .local.run import run_partitions, summary_lines
    from .local.stack import start_local_stack, use_stack_environment

    # the definitions start at the first partition run here, so any range can be replayed
    with start_local_stack(seed=args.seed, scale=args.scale, extra_env={"SPOTLAKE_PARTITION_START": keys[0]}) as stack:
        use_stack_environment(stack)
        print(f"local stack: S3/DynamoDB {stack.aws.endpoint_url}, Azure emulator {stack.emulator.base_url}")
        print(
            f"partitions {keys[0]} .. {keys[-1]} (env {stack.settings.env}, write bucket {stack.settings.write_bucket})"
        )
        report = run_partitions(stack, keys)
        print("\n".join(summary_lines(report, stack.settings.write_bucket)))
        return 0 if report.success else 1


def import_legacy(args: argparse.Namespace) -> int:
    """Convert legacy .pkl.gz snapshots of a range of partitions into Parquet in the environment's write bucket."""
    from resources.aws import make_client
    from resources.legacy_history import import_partitions
    from resources.settings import load_settings

    from .defs import build_resources

    settings = load_settings()
    keys = partitions_ending_at(args.end, args.partitions)
    client = make_client("s3", endpoint_url=settings.aws_endpoint_url, region_name=settings.aws_region)
    report = import_partitions(client, args.bucket, build_resources(settings)["store"], keys)  # type: ignore[arg-type]
    print(f"converted {len(report.written)} legacy snapshots of {len(keys)} partitions to s3://{settings.write_bucket}")
    for where in report.missing:
        print(f"  not found: {where}")
    return 0


def local_stack(args: argparse.Namespace) -> int:
    """Serve the stack until interrupted; writes the variables that point a collector at it to an env file."""
    from .local.stack import start_local_stack

    with start_local_stack(seed=args.seed, scale=args.scale, fixed_ports=not args.free_ports) as stack:
        env_file = Path(args.env_file)
        env_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = env_file.with_suffix(".tmp")
        tmp.write_text("".join(f"export {k}={v}\n" for k, v in sorted(stack.env.items())))
        tmp.replace(env_file)  # readers never see half a file
        print(f"local stack up; environment in {env_file}; history query API {stack.query_api_url}", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


def dev(args: argparse.Namespace) -> int:
    """`dagster dev` on the embedded local stack (the stack runs in this process, dagster as a child)."""
    from .local.stack import stack_environ, start_local_stack

    home = Path(args.dagster_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")  # the SPS concurrency pool of 1
    with start_local_stack(seed=args.seed, scale=args.scale, fixed_ports=not args.free_ports) as stack:
        env = {**stack_environ(stack, os.environ), "DAGSTER_HOME": str(home)}
        print(f"history query API (the web site's endpoint): {stack.query_api_url}", flush=True)
        # argparse keeps the `--` that separates our options from dagster's
        passthrough = args.dagster_args[1:] if args.dagster_args[:1] == ["--"] else args.dagster_args
        cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(ROOT / "workspace.yaml"), *passthrough]
        return subprocess.call(cmd, env=env, cwd=ROOT)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["history"]:  # the query has its own parser (spotlake_assets/history/query.py)
        from resources.history_query import main as history_main

        sys.exit(history_main(argv[1:]))
    parser = argparse.ArgumentParser(prog="spotlake", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run-local", help="run the whole graph for consecutive partitions on the embedded local stack")
    p.add_argument("--end", help="last partition key YYYY-MM-DD-HH:MM (default: the newest closed one)")
    p.add_argument("--partitions", type=int, default=3, help="how many consecutive partitions (default 3)")
    _stack_args(p)
    p.set_defaults(func=run_local)
    p = sub.add_parser(
        "import-legacy",
        help="convert the legacy collector's .pkl.gz snapshots to Parquet (run on a trusted machine only)",
    )
    p.add_argument("--bucket", required=True, help="the legacy bucket to read (a bucket you trust: pickles run code)")
    p.add_argument("--end", required=True, help="last partition key YYYY-MM-DD-HH:MM")
    p.add_argument("--partitions", type=int, default=1, help="how many consecutive partitions up to --end")
    p.set_defaults(func=import_legacy)
    p = sub.add_parser("local-stack", help="serve the local stack until interrupted")
    _stack_args(p)
    p.add_argument("--free-ports", action="store_true", help="let the OS pick ports instead of the fixed local ones")
    p.add_argument("--env-file", default=str(ROOT / ".spotlake-local" / "stack.env"), help="where to write the env")
    p.set_defaults(func=local_stack)
    p = sub.add_parser("dev", help="dagster dev on the embedded local stack")
    _stack_args(p)
    p.add_argument("--free-ports", action="store_true", help="let the OS pick the stack's ports")
    p.add_argument("--dagster-home", default=str(ROOT / ".dagster_home"), help="DAGSTER_HOME for the instance")
    p.add_argument("dagster_args", nargs=argparse.REMAINDER, help="passed to dagster dev")
    p.set_defaults(func=dev)
    sub.add_parser("history", help="query the DynamoDB history: spotlake history --help", add_help=False)
    args = parser.parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
