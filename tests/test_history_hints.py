"""The mistyped queries of issue 17 (`spotlake history`, in-process through the CLI's main()): Azure's
`Standard_` spelling answers like the stored size, a zone outside the documented ones is refused with exit 2, and an
empty answer says on stderr why it may be empty, with the nearest known names; the hint costs at most one small
read. The query API's side is in tests/test_query_api.py."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import pytest

from benchmarks.history_query import OperationCounter, synthetic_history, write_history
from resources.history_table import HistoryTable
from resources.known_types import association_types
from resources.query_api.hints import query_with_hint
from resources.query_api.reader import query_history
from resources.query_api.request import instance_type_name
from spotlake_assets.cli import main
from spotlake_assets.core.layout import ASSOCIATION_KEY
from spotlake_assets.local.aws import local_client, provision

AWS_REGION = "us-west-2"
TYPE = "D2s_v3"
REGIONS = ["US East", "US West 2", "KR Central"]
RANGE = ["--start", "2026-11-01 01:00:00", "--end", "2026-11-01 03:00:00"]


@pytest.fixture(scope="module")
def table(aws_endpoint: str) -> str:
    """Half a day of D2s_v3 in three regions."""
    store = HistoryTable(table_name=f"azure-hints-{uuid.uuid4().hex[:8]}", endpoint_url=aws_endpoint,
                         region_name=AWS_REGION, write_workers=8)  # fmt: skip
    store.ensure_table()
    write_history(store, synthetic_history(TYPE, datetime(2026, 11, 1), 0.5, regions=REGIONS, seed=5))
    return store.table_name


@pytest.fixture
def client(aws_endpoint: str) -> Any:
    return local_client("dynamodb", aws_endpoint, AWS_REGION)


@pytest.fixture
def association(aws_endpoint: str, monkeypatch) -> str:
    """The site's association file, in a fresh write bucket the command line is pointed at."""
    bucket = f"spotlake-hints-{uuid.uuid4().hex[:12]}"
    provision(aws_endpoint, [bucket], AWS_REGION)
    document = [{t: {"Region": REGIONS} for t in (TYPE, "D4s_v3", "E2s_v5", "NC6s_v3", "B1s")}]
    local_client("s3", aws_endpoint, AWS_REGION).put_object(Bucket=bucket, Key=ASSOCIATION_KEY,
                                                           Body=json.dumps(document).encode())  # fmt: skip
    monkeypatch.setenv("SPOTLAKE_WRITE_BUCKET", bucket)
    return bucket


def history(capsys, table: str, endpoint: str, *args: str) -> tuple[int, str, list[str]]:
    """(exit status, stdout, stderr lines) of `spotlake history` in-process."""
    status = main(["history", *args, "--table", table, "--endpoint-url", endpoint])
    out, err = capsys.readouterr()
    return status, out, err.splitlines()


@pytest.mark.parametrize("spelling", ["Standard_D2s_v3", "standard_d2s_v3", "STANDARD_D2S_V3", " Standard_D2s_v3 "])
def test_azures_standard_spelling_answers_like_the_stored_size(table, client, aws_endpoint, capsys, spelling):
    request = dict(table_name=table, region="US East", start="2026-11-01 01:00:00", end="2026-11-01 03:00:00")
    want = query_history(client, instance_type=TYPE, **request)
    assert want and {r["InstanceType"] for r in want} == {TYPE}
    assert query_history(client, instance_type=spelling, **request) == want

    status, out, err = history(capsys, table, aws_endpoint, "--instance-type", spelling, "--region", "US East",
                               *RANGE, "--format", "json")  # fmt: skip
    assert (status, err) == (0, [])
    assert json.loads(out)["Data"] == want


def test_only_a_tier_prefix_is_dropped():
    assert [instance_type_name(n) for n in ("Standard_D2s_v3", "Basic_A1", "D2s_v3", "Standard_", "StandardD2")] == [
        "D2s_v3", "A1", "D2s_v3", "Standard_", "StandardD2"
    ]  # fmt: skip


@pytest.mark.parametrize("zone", ["7", "0", "4", "Zone1", " "])
def test_a_zone_outside_the_documented_ones_is_refused_with_exit_2(aws_endpoint, capsys, zone):
    status, out, err = history(capsys, "unused", aws_endpoint, "--instance-type", TYPE, "--zone", zone, *RANGE)
    assert (status, out, len(err)) == (2, "", 1)
    assert err[0] == (f"spotlake history: error: --zone {zone.strip()!r} is not a zone; use one of "
                      "'*', '1', '2', '3', 'Single'")  # fmt: skip


@pytest.mark.parametrize("zone", ["1", "single", "Single", "*"])
def test_the_documented_zones_are_accepted_in_any_case(table, aws_endpoint, capsys, zone):
    status, out, err = history(capsys, table, aws_endpoint, "--instance-type", TYPE, "--region", "US East",
                               "--zone", zone, *RANGE)  # fmt: skip
    assert (status, err) == (0, [])
    assert out.count("\n") > 1  # rows, not only the header


def test_an_unknown_type_names_the_nearest_known_types(table, aws_endpoint, capsys, association):
    status, out, err = history(capsys, table, aws_endpoint, "--instance-type", "NoSuchType_v9", *RANGE)
    assert (status, out.count("\n")) == (0, 1)  # an empty answer is an answer: the header, exit 0
    assert err == ["spotlake history: no such instance type 'NoSuchType_v9'; nearest known: NC6s_v3"]
    status, _, err = history(capsys, table, aws_endpoint, "--instance-type", "D2sv3", "--region", "US East", *RANGE)
    assert err == ["spotlake history: no such instance type 'D2sv3'; nearest known: D2s_v3, D4s_v3, E2s_v5"]


def test_an_unknown_type_without_a_type_list_still_says_so(table, aws_endpoint, capsys, monkeypatch):
    monkeypatch.setenv("SPOTLAKE_WRITE_BUCKET", f"no-such-bucket-{uuid.uuid4().hex[:8]}")
    status, out, err = history(capsys, table, aws_endpoint, "--instance-type", "NoSuchType_v9", *RANGE)
    assert (status, out.count("\n")) == (0, 1)
    assert err == ["spotlake history: no such instance type 'NoSuchType_v9': the history holds nothing for it"]


def test_an_unknown_region_names_the_types_nearest_regions(table, aws_endpoint, capsys):
    status, out, err = history(capsys, table, aws_endpoint, "--instance-type", TYPE, "--region", "Mars North", *RANGE)
    assert (status, out.count("\n")) == (0, 1)
    assert err == ["spotlake history: no such region 'Mars North'; nearest known for D2s_v3: KR Central"]
    _, _, err = history(capsys, table, aws_endpoint, "--instance-type", TYPE, "--region", "Qq", *RANGE)
    assert err == ["spotlake history: no such region 'Qq'; D2s_v3 is stored in 3 regions, e.g. KR Central, US East, "
                   "US West 2"]  # fmt: skip
    _, _, err = history(capsys, table, aws_endpoint, "--instance-type", TYPE, "--region", "US Eats", *RANGE)
    assert err == ["spotlake history: no such region 'US Eats'; nearest known for D2s_v3: US East, US West 2"]
    # a real Azure region where the type has no data
    _, _, err = history(capsys, table, aws_endpoint, "--instance-type", TYPE, "--region", "eu west", *RANGE)
    assert err[0].startswith("spotlake history: no data for D2s_v3 in region 'EU West'; ")


def test_a_known_type_and_region_without_data_in_the_range_says_so(table, aws_endpoint, capsys):
    before = ["--start", "2026-10-01", "--end", "2026-10-02"]
    status, out, err = history(capsys, table, aws_endpoint, "--instance-type", "Standard_D2s_v3", "--region",
                               "us east", "--zone", "2", *before)  # fmt: skip
    assert (status, out.count("\n")) == (0, 1)
    assert err == ["spotlake history: no data for D2s_v3 in US East for zone 2 between 2026-10-01 00:00:00 and "
                   "2026-10-02 23:59:59"]  # fmt: skip
    _, _, err = history(capsys, table, aws_endpoint, "--instance-type", TYPE, "--tier", "Basic", *RANGE)
    assert err == ["spotlake history: no data for D2s_v3 in any of its 3 regions for tier Basic between "
                   "2026-11-01 01:00:00 and 2026-11-01 03:00:00"]  # fmt: skip


def test_a_hint_reads_at_most_one_small_item_and_none_when_there_are_rows(table, client):
    counter = OperationCounter(client)
    one_region = dict(table_name=table, region="Mars North", start="2026-11-01", end="2026-11-01")
    records, hint = query_with_hint(client, instance_type=TYPE, **one_region)
    assert records == [] and hint and hint.startswith("no such region")
    assert counter.calls.count("GetItem") == 1  # the regions index, read for the hint only

    counter = OperationCounter(client)
    records, hint = query_with_hint(client, instance_type="NoSuchType_v9", table_name=table, start="2026-11-01",
                                    end="2026-11-01")  # fmt: skip
    assert (records, counter.calls) == ([], ["GetItem"])  # Region=*: the query's own index read serves the hint
    assert hint == "no such instance type 'NoSuchType_v9': the history holds nothing for it"

    counter = OperationCounter(client)
    records, hint = query_with_hint(client, instance_type=TYPE, table_name=table, region="US East",
                                    start="2026-11-01", end="2026-11-01")  # fmt: skip
    assert records and hint is None and "GetItem" not in counter.calls


def test_the_type_list_is_the_association_files_and_empty_when_unreadable(aws_endpoint, association):
    s3 = local_client("s3", aws_endpoint, AWS_REGION)
    assert association_types(s3, association) == ["B1s", "D2s_v3", "D4s_v3", "E2s_v5", "NC6s_v3"]
    assert association_types(s3, f"missing-{uuid.uuid4().hex[:8]}") == []
