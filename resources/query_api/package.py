"""The AWS Lambda package of the web site's query API: a zip of exactly the modules resources/query_api/handler.py
imports from this repository (the Lambda Python runtime provides boto3 and botocore; nothing else is needed).

    python3 -m resources.query_api.package [build/spotlake-query-api.zip]      (or: make query-api-zip)

The zip is deterministic (sorted entries, fixed timestamps and modes), so Terraform's source_code_hash changes only
when one of these files does. tests/test_infra.py checks that FILES is the handler's import closure plus the data
files it reads (DATA_FILES).
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = ROOT / "build" / "spotlake-query-api.zip"
HANDLER = "resources.query_api.handler.lambda_handler"
FILES = (
    "resources/__init__.py",
    "resources/query_api/__init__.py",
    "resources/query_api/archive.py",
    "resources/query_api/config.py",
    "resources/query_api/handler.py",
    "resources/query_api/hints.py",
    "resources/query_api/reader.py",
    "resources/query_api/request.py",
    "resources/settings.py",
    "spotlake_assets/__init__.py",
    "spotlake_assets/core/__init__.py",
    "spotlake_assets/core/archive_keys.py",
    "spotlake_assets/core/azure_regions.py",
    "spotlake_assets/core/azure_regions.csv",  # data, not an import: the hints' region display names
    "spotlake_assets/core/columns.py",
    "spotlake_assets/core/history_keys.py",
    "spotlake_assets/core/item_size.py",
    "spotlake_assets/core/timekeys.py",
)
DATA_FILES = tuple(name for name in FILES if not name.endswith(".py"))
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def build(output: Path = DEFAULT_OUTPUT) -> Path:
    """Write the zip (atomically) and return its path."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".zip.tmp")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(FILES):
            entry = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            entry.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, (ROOT / name).read_bytes())
    partial.replace(output)
    return output


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    output = build(Path(args[0]).resolve() if args else DEFAULT_OUTPUT)
    print(f"{output} ({output.stat().st_size} bytes, handler {HANDLER})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
