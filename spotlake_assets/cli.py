"""`spotlake` command line: run the graph on the embedded local stack, serve the stack, start `dagster dev`."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from .partitions import data_time, newest_closed_partition

ROOT = Path(__file__).resolve().parent.parent


def _stack_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="emulator data seed (default 0)")
    parser.add_argument("--scale", choices=("small", "full"), default="small", help="emulator catalogue size")


def run_local(args: argparse.Namespace) -> int:
    """Materialize the collection assets for one partition on a fresh local stack and print a summary."""
    from dagster import DagsterInstance, materialize

    from resources.clock import Clock
    from resources.settings import load_settings

    from .defs import ASSETS, build_resources
    from .local.stack import start_local_stack, use_stack_environment

    partition = args.partition or newest_closed_partition(datetime.now(UTC))
    with start_local_stack(seed=args.seed, scale=args.scale) as stack:
        use_stack_environment(stack)
        settings = load_settings()
        resources = build_resources(settings)
        if args.partition:
            # A chosen partition is replayed: the emulator and the collector both live at its data time.
            t = data_time(partition)
            stack.emulator.set_time(t)
            resources["clock"] = Clock(frozen_at=t.isoformat())
        print(f"local stack: S3/DynamoDB {stack.aws.endpoint_url}, Azure emulator {stack.emulator.base_url}")
        print(f"materializing partition {partition} (env {settings.env}, write bucket {settings.write_bucket})")
        with DagsterInstance.ephemeral() as instance:
            result = materialize(
                ASSETS, partition_key=partition, resources=resources, instance=instance,
                raise_on_error=False, run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            )
        print_summary(result)
        return 0 if result.success else 1


def print_summary(result) -> None:  # noqa: ANN001 - dagster's ExecuteInProcessResult
    print("\nasset                          rows  s3 key")
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        print(f"{mat.asset_key.to_user_string():<28} {meta.get('rows', '?'):>6}  s3://{meta.get('s3_bucket')}/{meta.get('s3_key')}")
    for event in result.all_events:
        if event.is_step_failure:
            print(f"FAILED {event.step_key}: {event.event_specific_data.error.message.strip()}", file=sys.stderr)


def local_stack(args: argparse.Namespace) -> int:
    """Serve the stack until interrupted; writes the variables that point a collector at it to an env file."""
    from .local.stack import start_local_stack

    with start_local_stack(seed=args.seed, scale=args.scale, fixed_ports=not args.free_ports) as stack:
        env_file = Path(args.env_file)
        env_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = env_file.with_suffix(".tmp")
        tmp.write_text("".join(f"export {k}={v}\n" for k, v in sorted(stack.env.items())))
        tmp.replace(env_file)  # readers never see half a file
        print(f"local stack up; environment in {env_file}", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


def dev(args: argparse.Namespace) -> int:
    """`dagster dev` on the embedded local stack (the stack runs in this process, dagster as a child)."""
    from .local.stack import start_local_stack

    with start_local_stack(seed=args.seed, scale=args.scale, fixed_ports=True) as stack:
        env = {**os.environ, **stack.env}
        for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_SUBSCRIPTIONS"):
            env.pop(name, None)
        cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(ROOT / "workspace.yaml"), *args.dagster_args]
        return subprocess.call(cmd, env=env, cwd=ROOT)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="spotlake", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run-local", help="materialize the newest closed partition on the embedded local stack")
    p.add_argument("--partition", help="partition key YYYY-MM-DD-HH:MM (default: newest closed)")
    _stack_args(p)
    p.set_defaults(func=run_local)
    p = sub.add_parser("local-stack", help="serve the local stack until interrupted")
    _stack_args(p)
    p.add_argument("--free-ports", action="store_true", help="let the OS pick ports instead of the fixed local ones")
    p.add_argument("--env-file", default=str(ROOT / ".spotlake-local" / "stack.env"), help="where to write the env")
    p.set_defaults(func=local_stack)
    p = sub.add_parser("dev", help="dagster dev on the embedded local stack")
    _stack_args(p)
    p.add_argument("dagster_args", nargs=argparse.REMAINDER, help="passed to dagster dev")
    p.set_defaults(func=dev)
    args = parser.parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
