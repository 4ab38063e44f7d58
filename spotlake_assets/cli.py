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
import os
import sys
from types import ModuleType
from typing import Any

from .cli_base import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    PARTITIONS_PER_DAY,
    Interrupted,
    Parser,
    Unavailable,
    UsageError,
    checked_settings,
    closed_partition,
    count,
)
from .core.timekeys import partitions_ending_at

IMPORT_MAX_PARTITIONS = 366 * PARTITIONS_PER_DAY  # a year
DEV_STACK_MISSING = (
    "the development stack (spotlake_assets/local/) is not installed here; in a checkout of the repository, "
    "`pip install -e '.[dev,local]'` or `make run` installs it"
)


def _dev_stack() -> ModuleType | None:
    """spotlake_assets.local.commands, or None where spotlake_assets/local/ is not installed (the production
    image). Any other import error is a bug and is raised."""
    try:
        from .local import commands
    except ModuleNotFoundError as exc:
        if exc.name is None or not (exc.name + ".").startswith("spotlake_assets.local."):
            raise
        return None
    return commands


def _not_installed(args: argparse.Namespace) -> int:
    raise UsageError(DEV_STACK_MISSING)


# ---- the operator commands (the development stack's are spotlake_assets/local/commands.py) ----


def import_legacy(args: argparse.Namespace) -> int:
    """Convert legacy .pkl.gz snapshots of a range of partitions into Parquet in the environment's write bucket."""
    settings = checked_settings()
    bucket = args.bucket.strip()
    if not bucket:
        raise UsageError("--bucket must name the legacy bucket to read")
    count(args.partitions, IMPORT_MAX_PARTITIONS)
    keys = partitions_ending_at(closed_partition(args.end), args.partitions)
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


def history(args: argparse.Namespace) -> int:
    """Query the DynamoDB history; in `local`, the running local stack's (from its env file)."""
    settings = checked_settings()
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
    boto3's usual credentials. In `local`: the running local stack's (spotlake_assets/local/commands.py)."""
    if settings.env != "local":
        return args.endpoint_url or settings.aws_endpoint_url, None
    dev = _dev_stack()
    if dev is None:
        raise UsageError(
            f"SPOTLAKE_ENV={settings.env}: `spotlake history` in local queries the running local stack, and "
            f"{DEV_STACK_MISSING}; or set SPOTLAKE_ENV to the environment whose history to query"
        )
    return dev.history_endpoint(settings, args)


# ---- the parser ----


def _add_missing_dev_commands(sub: Any, *names: str) -> None:
    """The development stack's commands where it is not installed: listed by --help, each failing in one line
    (exit 2) whatever its arguments; no option prefix, so that they are all taken as words, --help included."""
    for name in names:
        p = sub.add_parser(name, help="(the development stack: not installed here)", prefix_chars="\0", add_help=False)
        p.add_argument("words", nargs="*")
        p.set_defaults(func=_not_installed)


def build_parser() -> argparse.ArgumentParser:
    from resources.query_api.request import ALL, MAX_POINTS

    dev = _dev_stack()
    parser = Parser(prog="spotlake", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    if dev is None:
        _add_missing_dev_commands(sub, "run-local")
    else:
        dev.add_run_local(sub)

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

    if dev is None:
        _add_missing_dev_commands(sub, "local-stack", "dev")
    else:
        dev.add_serving_commands(sub)

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
    if dev is None:
        p.add_argument("--env-file", help="in local: the running stack's environment file (the development stack's)")
    else:
        p.add_argument("--env-file", default=str(dev.DEFAULT_ENV_FILE), help=f"in local: {dev.ENV_HELP}")
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
