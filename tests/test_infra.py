"""infra/ without Terraform: every .tf parses (python-hcl2), and the IAM policies each environment would get are
evaluated from the module's literal policy structures plus the environment's module inputs, then checked for
least privilege (test never writes production's bucket or table, a run touches only Azure's keys of the shared
buckets, no wildcards beyond what AWS requires). The shared buckets are owned elsewhere: the module manages none of
their settings, and the bucket policy statements it hands their owner only name Azure's keys. The webhook URL never
enters Terraform state; the services have health checks; the production UI is read-only.

The evaluator knows just what the module uses in its policies and the query API's settings: `var.*`, `local.*`,
`[for k in X : "..."]`, `concat(...)`, `join("sep", X)`, literal lists of strings and the caller's account id. Any
other expression (a resource attribute such as a role ARN) becomes an opaque `<expr>` string: one specific resource,
never a wildcard. A policy that needs an input nobody gives fails the test.

The web site's query API (query_api.tf) is checked the same way: a REST API whose stage has a cache keyed on the
site's parameters and Origin, a WAF web ACL with a per-IP rate rule, and sizes from variables.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
from dagster_aws.ecs import EcsRunLauncher
from hcl2 import SerializationOptions

from resources import alarm_webhook, heartbeat
from resources.run_launcher import LockedEcsRunLauncher
from spotlake_assets.core import layout, names
from spotlake_assets.core.timekeys import DEFAULT_PARTITION_START
from spotlake_assets.jobs import SERIAL_TAG, build_jobs
from spotlake_assets.local.deployment import render_instance_template
from spotlake_assets.partitions import Partitions

INFRA = Path(__file__).resolve().parent.parent / "infra"
ROOT = Path(__file__).resolve().parents[1]
MODULE = INFRA / "modules" / "collector"
ENVS = ("prod", "test")
ACCOUNT_ID = "123456789012"
KNOWN_REFS = {"data.aws_caller_identity.current.account_id": ACCOUNT_ID}
PARSE = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)

PROD_BUCKET = "spotlake"
PROD_TABLE_ARN = f"arn:aws:dynamodb:us-west-2:{ACCOUNT_ID}:table/azure"
AUTH_TABLE_ARN = f"arn:aws:dynamodb:us-west-2:{ACCOUNT_ID}:table/AzureAuth"
# Keys of every kind the monthly archive of the history holds (archive.tf): all published public-read.
ARCHIVE_KEYS = (
    "archive/azure/history/changes/month=2026-11/part-00.parquet",
    "archive/azure/history/checkpoints/month=2026-11/part-03.parquet",
    "archive/azure/history/lookup/2026-11/Standard%7CD2s_v3%7Ceastus.json.gz",
    "archive/azure/history/manifests/2026-11.json",
    "archive/azure/history/manifests/2026-11.verified.json",
    "archive/azure/history/verified-months.json",
)
# Keys of every kind the collector writes (docs/contract.md "Stored objects").
SAMPLE_KEYS = (
    "latest_data/latest_azure.json",
    "rawdata/azure/2026/11/28/10-20-00.csv.gz",
    "query-selector/azure/query_selector.json",
    "query-selector/associated/association_azure.json",
    "rawdata/azure/spot_price/2026/11/28/10-20_spot_price.parquet",
    "rawdata/azure/sps/2026/11/28/10-20_sps_5.parquet",
    "rawdata/azure/monitoring/executionTime/2026/11/28/10-20.json",
    "latest_data/azure/latest_azure_time.json",
    "sps-collector/azure/saved_variable/availability-zones-true/rotation_state.json",
    "dagster/azure/azure_spot_state/2026-11-28-10-10.parquet",
    "dagster/azure/azure_dynamodb_history/2026-11-28-10:10.json",
    *ARCHIVE_KEYS,
)
PUBLIC_KEYS = (*SAMPLE_KEYS[:4], *ARCHIVE_KEYS)
# Keys of the other SpotLake collectors in the same buckets: an Azure run may neither write nor read them, and the
# statements handed to the bucket's owner must not touch them.
OTHER_COLLECTOR_KEYS = (
    "latest_data/latest_aws.json",
    "latest_data/latest_gcp.json",
    "latest_data/aws/latest_aws_time.json",
    "rawdata/aws/2026/11/28/10-20-00.csv.gz",
    "rawdata/gcp/spot_price/2026/11/28/10-20_spot_price.pkl.gz",
    "rawdata/azurefake/2026/11/28/10-20-00.csv.gz",
    "query-selector/aws/query_selector.json",
    "query-selector/associated/association_aws.json",
    "sps-collector/aws/saved_variable/rotation_state.json",
    "dagster/aws/state/2026-11-28-10-10.parquet",
    "archive/aws/history/changes/month=2026-11/part-00.parquet",
    "archive/aws/history/verified-months.json",
    "index.html",
)
# Actions that AWS only grants on Resource "*".
SESSION_CHANNEL_ACTIONS = {
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
}
STAR_RESOURCE_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "ecs:DescribeTaskDefinition",
    "cloudwatch:PutMetricData",
} | SESSION_CHANNEL_ACTIONS
ACL_GRANT_HEADERS = (
    "s3:x-amz-grant-read",
    "s3:x-amz-grant-read-acp",
    "s3:x-amz-grant-write-acp",
    "s3:x-amz-grant-full-control",
)
DYNAMODB_READS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:DescribeTable",
    "dynamodb:DescribeTimeToLive",
}
S3_WRITE = re.compile(r"^s3:(Put|Delete|Restore|Replicate|Abort|Create|Update|Bypass)", re.IGNORECASE)
INTERPOLATION = re.compile(r"\$\{([^{}]*)\}")
FOR_EXPRESSION = re.compile(r'\[for (\w+) in ([\w.]+) : "(.*)"\]', re.DOTALL)
JOIN = re.compile(r'join\("([^"]*)", ([\w.]+)\)')


def top_level_split(text: str) -> list[str]:
    """The comma-separated arguments of a function call, commas inside brackets or strings left alone."""
    parts, depth, quoted, start = [], 0, False, 0
    for position, char in enumerate(text):
        if char == '"' and text[position - 1 : position] != "\\":
            quoted = not quoted
        elif not quoted and char in "([{":
            depth += 1
        elif not quoted and char in ")]}":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            parts.append(text[start:position])
            start = position + 1
    return [*parts, text[start:]]


def load_hcl(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=PARSE)


def tf_files() -> list[Path]:
    return sorted(INFRA.rglob("*.tf"))


@dataclass
class Module:
    """The parts of a Terraform directory the tests read: variables, locals, resources."""

    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, directory: Path) -> Module:
        module = cls()
        for path in sorted(directory.glob("*.tf")):
            parsed = load_hcl(path)
            for block in parsed.get("variable", []):
                module.variables.update(block)
            for block in parsed.get("locals", []):
                module.locals.update(block)
            for block in parsed.get("resource", []):
                for kind, named in block.items():
                    module.resources.setdefault(kind, {}).update(named)
            for block in parsed.get("data", []):
                for kind, named in block.items():
                    module.data.setdefault(kind, {}).update(named)
            for block in parsed.get("module", []):
                module.modules.update(block)
            module.terraform.extend(parsed.get("terraform", []))
        return module


def whole_expression(text: str) -> str | None:
    """The expression of a string that is exactly one `${...}`, else None."""
    if not (text.startswith("${") and text.endswith("}")):
        return None
    depth = 0
    for position, char in enumerate(text[1:], start=1):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return text[2:-1] if position == len(text) - 1 else None
    return None


@dataclass
class Scope:
    """Evaluates module values for one set of inputs (the module call of an environment)."""

    module: Module
    inputs: Mapping[str, Any]
    bindings: Mapping[str, Any] = field(default_factory=dict)
    strict: bool = True  # a variable with no value fails; not strict: it stays opaque (a -var of the operator)

    def evaluate(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self.evaluate(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.evaluate(item) for item in value]
        if not isinstance(value, str):
            return value
        expression = whole_expression(value)
        if expression is not None:
            return self.expression(expression)
        return INTERPOLATION.sub(lambda match: str(self.expression(match.group(1))), value)

    def expression(self, text: str) -> Any:
        text = text.strip()
        if text in self.bindings:
            return self.bindings[text]
        if text in KNOWN_REFS:
            return KNOWN_REFS[text]
        kind, _, name = text.partition(".")
        if kind == "var" and name.isidentifier():
            return self.variable(name)
        if kind == "local" and name.isidentifier():
            return self.evaluate(self.module.locals[name])
        loop = FOR_EXPRESSION.fullmatch(text)
        if loop:
            variable, source, template = loop.groups()
            return [
                Scope(self.module, self.inputs, {**self.bindings, variable: item}, self.strict).evaluate(template)
                for item in self.expression(source)
            ]
        joined = JOIN.fullmatch(text)
        if joined:
            return joined.group(1).join(self.expression(joined.group(2)))
        if text.startswith("concat(") and text.endswith(")"):
            return [
                item for argument in top_level_split(text[len("concat(") : -1]) for item in self.expression(argument)
            ]
        if text.startswith("[") and "${" not in text:
            try:
                return json.loads(text)  # a literal list of strings
            except ValueError:
                pass
        return f"<{text}>"  # a resource attribute or function: one specific, unknown value

    def variable(self, name: str) -> Any:
        if name in self.inputs:
            return self.inputs[name]
        declared = self.module.variables[name]
        if "default" not in declared and not self.strict:
            return f"<var.{name}>"
        if "default" not in declared:
            raise KeyError(f"var.{name} has no default and the environment does not set it")
        return self.evaluate(declared["default"])


@dataclass(frozen=True)
class Grant:
    role: str
    effect: str
    action: str
    resource: str
    statement: Mapping[str, Any]


def module_scope(env: str) -> Scope:
    env_module = Module.load(INFRA / "envs" / env)
    call = env_module.modules["collector"]
    env_scope = Scope(env_module, {}, strict=False)
    inputs = {key: env_scope.evaluate(value) for key, value in call.items() if key != "source"}
    return Scope(Module.load(MODULE), inputs)


def role_policies(scope: Scope) -> Iterator[tuple[str, dict[str, Any]]]:
    """(role, evaluated policy document) for every aws_iam_role_policy of the module, and (name, document) for every
    managed aws_iam_policy (attached outside Terraform, e.g. `operator`)."""
    for name, body in scope.module.resources["aws_iam_role_policy"].items():
        role = re.fullmatch(r"\$\{aws_iam_role\.(\w+)\.id\}", body["role"])
        policy = re.fullmatch(r"\$\{jsonencode\(local\.(\w+)\)\}", body["policy"])
        assert role and policy, f"aws_iam_role_policy.{name}: role/policy must be aws_iam_role.X.id/jsonencode(local.Y)"
        yield role.group(1), scope.expression(f"local.{policy.group(1)}")
    for name, body in scope.module.resources.get("aws_iam_policy", {}).items():
        policy = re.fullmatch(r"\$\{jsonencode\(local\.(\w+)\)\}", body["policy"])
        assert policy, f"aws_iam_policy.{name}: policy must be jsonencode(local.Y)"
        yield name, scope.expression(f"local.{policy.group(1)}")


def block(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The one nested block `name` of a resource body (python-hcl2 gives every block as a list)."""
    (only,) = body[name]
    return only


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(env: str) -> list[Grant]:
    """Every (role, action, resource) the environment's policies allow."""
    result = []
    for role, document in role_policies(module_scope(env)):
        for statement in document["Statement"]:
            assert not {"NotAction", "NotResource", "NotPrincipal"} & set(statement), statement
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    result.append(Grant(role, statement["Effect"], action, resource, statement))
    return result


def resource_scoped_grants(env: str) -> list[Grant]:
    """The grants except the Resource "*" ones of actions without resource-level permissions (checked apart)."""
    return [g for g in grants(env) if not (g.resource == "*" and g.action in STAR_RESOURCE_ACTIONS)]


def covers(pattern: str, arn: str) -> bool:
    """Whether an IAM resource pattern (`*` any run of characters, `?` one) matches an ARN."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None


def s3_arns(bucket: str) -> list[str]:
    return [f"arn:aws:s3:::{bucket}"] + [f"arn:aws:s3:::{bucket}/{key}" for key in SAMPLE_KEYS]


def is_write(action: str) -> bool:
    service = action.split(":")[0]
    return bool(S3_WRITE.match(action)) if service == "s3" else service == "dynamodb" and action not in DYNAMODB_READS


# --- parsing -----------------------------------------------------------------------------------------


def test_infra_has_module_and_both_environments() -> None:
    assert {p.relative_to(INFRA).as_posix() for p in tf_files()} >= {
        "envs/prod/main.tf",
        "envs/test/main.tf",
        "modules/collector/variables.tf",
        "modules/collector/iam.tf",
    }


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_tf_file_parses(path: Path) -> None:
    assert load_hcl(path), f"{path} is empty"


# --- environments ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "write", "table"), [("prod", "spotlake", "azure"), ("test", "spotlake-test", "azure-test")]
)
def test_environment_calls_module_with_its_names(env: str, write: str, table: str) -> None:
    scope = module_scope(env)
    assert scope.inputs["environment"] == env
    assert (scope.inputs["write_bucket"], scope.inputs["read_bucket"]) == (write, "spotlake")
    assert scope.inputs["dynamodb_table"] == table
    assert scope.module.resources["aws_dynamodb_table"]["history"]["name"] == "${var.dynamodb_table}"
    assert scope.module.data["aws_s3_bucket"]["write"]["bucket"] == "${var.write_bucket}"


@pytest.mark.parametrize("env", ENVS)
def test_backend_is_a_partial_s3_config(env: str) -> None:
    backends = [b["backend"] for b in Module.load(INFRA / "envs" / env).terraform if "backend" in b]
    assert backends == [[{"s3": {}}]]


# --- IAM ---------------------------------------------------------------------------------------------


def test_test_environment_cannot_write_production() -> None:
    forbidden = [
        grant
        for grant in grants("test")
        if is_write(grant.action)
        and any(covers(grant.resource, arn) for arn in [*s3_arns(PROD_BUCKET), PROD_TABLE_ARN])
    ]
    assert forbidden == []


def test_test_environment_reads_production_data() -> None:
    reads = [g for g in grants("test") if g.role == "run"]
    for key in SAMPLE_KEYS:
        assert any(g.action == "s3:GetObject" and covers(g.resource, f"arn:aws:s3:::spotlake/{key}") for g in reads), (
            key
        )
    assert ("s3:ListBucket", "arn:aws:s3:::spotlake") in {(g.action, g.resource) for g in reads}


@pytest.mark.parametrize(
    ("env", "bucket", "table"), [("prod", "spotlake", "azure"), ("test", "spotlake-test", "azure-test")]
)
def test_each_environment_writes_only_its_bucket_and_table(env: str, bucket: str, table: str) -> None:
    writes = [g for g in grants(env) if is_write(g.action)]
    table_arn = f"arn:aws:dynamodb:us-west-2:{ACCOUNT_ID}:table/{table}"
    # the alarm's messenger writes nothing but the table's TTL switch (switching it off, resources/alarm_webhook.py)
    assert {(g.action, g.resource) for g in writes if g.role == "alarm_webhook"} == {("dynamodb:UpdateTimeToLive",
                                                                                     table_arn)}  # fmt: skip
    writes = [g for g in writes if g.role != "alarm_webhook"]
    assert {g.role for g in writes} == {"run"}
    for grant in writes:
        assert grant.resource.startswith(f"arn:aws:s3:::{bucket}/") or grant.resource == table_arn, grant
    written = {(g.action, g.resource) for g in writes}
    assert ("dynamodb:BatchWriteItem", table_arn) in written
    for key in SAMPLE_KEYS:
        arn = f"arn:aws:s3:::{bucket}/{key}"
        assert any(g.action == "s3:PutObject" and covers(g.resource, arn) for g in writes), key


@pytest.mark.parametrize("env", ENVS)
def test_a_run_touches_only_azure_keys_of_the_shared_buckets(env: str) -> None:
    """The buckets are shared with the other collectors: no object grant of any role reaches their keys."""
    scope = module_scope(env)
    buckets = {scope.inputs["write_bucket"], scope.inputs["read_bucket"]}
    for grant in grants(env):
        if not grant.action.startswith("s3:"):
            continue
        for bucket in buckets:
            for key in OTHER_COLLECTOR_KEYS:
                assert not covers(grant.resource, f"arn:aws:s3:::{bucket}/{key}"), (grant, key)


@pytest.mark.parametrize("env", ENVS)
def test_list_bucket_is_conditioned_on_azure_prefixes_only(env: str) -> None:
    """Listing a shared bucket shows every collector's keys: each ListBucket grant carries an s3:prefix condition
    naming only Azure's prefixes, and still allows what the code lists: its prefixes, and each key it reads (a 403
    for a missing key is told from a refusal by listing the key itself, resources/s3.py)."""
    scope = module_scope(env)
    lists = [g for g in grants(env) if g.action == "s3:ListBucket"]
    buckets = {scope.inputs["write_bucket"], scope.inputs["read_bucket"]}
    assert {g.resource for g in lists} == {f"arn:aws:s3:::{bucket}" for bucket in buckets}
    assert {g.role for g in lists} == {"run", "query_api"}  # the query API: the archive's lookup files only
    listed_by_code = [
        *SAMPLE_KEYS,
        layout.asset_prefix(names.STATE) + "2026-11",  # resources/continuity.py
        layout.raw_stems_any_count("2026-11-28-10:10"),  # resources/io_manager.py
    ]
    for grant in lists:
        condition = grant.statement.get("Condition")
        assert condition and set(condition) == {"StringLike"} and set(condition["StringLike"]) == {"s3:prefix"}, grant
        prefixes = as_list(condition["StringLike"]["s3:prefix"])
        if grant.role == "query_api":
            assert prefixes == ["archive/azure/history/lookup/*"]
            continue
        for prefix in listed_by_code:
            assert any(covers(pattern, prefix) for pattern in prefixes), prefix
        for prefix in [*OTHER_COLLECTOR_KEYS, "", "rawdata/", "latest_data/", "dagster/", "rawdata/azurefake/"]:
            assert not any(covers(pattern, prefix) for pattern in prefixes), prefix


@pytest.mark.parametrize("env", ENVS)
def test_public_read_acl_only_on_the_public_outputs_and_the_archive(env: str) -> None:
    acl_patterns = [g.resource for g in grants(env) if g.action == "s3:PutObjectAcl"]
    bucket = module_scope(env).inputs["write_bucket"]
    for key in SAMPLE_KEYS:
        public = any(covers(pattern, f"arn:aws:s3:::{bucket}/{key}") for pattern in acl_patterns)
        assert public == (key in PUBLIC_KEYS), key


@pytest.mark.parametrize("env", ENVS)
def test_azure_auth_is_read_with_get_item_only(env: str) -> None:
    on_auth = {g.action for g in resource_scoped_grants(env) if covers(g.resource, AUTH_TABLE_ARN)}
    assert on_auth == {"dynamodb:GetItem"}


@pytest.mark.parametrize("env", ENVS)
def test_webhook_parameter_is_read_by_the_daemon_and_the_alarm_messenger_only(env: str) -> None:
    parameter = f"arn:aws:ssm:us-west-2:{ACCOUNT_ID}:parameter/error_notification_slack_webhook_url"
    readers = {(g.role, g.action) for g in resource_scoped_grants(env) if covers(g.resource, parameter)}
    assert readers == {("daemon", "ssm:GetParameter"), ("alarm_webhook", "ssm:GetParameter")}


@pytest.mark.parametrize("env", ENVS)
def test_only_runs_put_metrics_and_only_the_heartbeats_namespace(env: str) -> None:
    puts = [g for g in grants(env) if g.action.startswith("cloudwatch:")]
    assert {(g.role, g.action) for g in puts} == {("run", "cloudwatch:PutMetricData")}
    for grant in puts:
        assert grant.statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": heartbeat.NAMESPACE}}


@pytest.mark.parametrize("env", ENVS)
def test_no_wildcards_beyond_what_aws_requires(env: str) -> None:
    allowed_partial = re.compile(
        # Azure's objects
        r"arn:aws:s3:::[a-z0-9.-]+/(rawdata|latest_data|query-selector|sps-collector|dagster|archive/azure/history)/.+"
        r"|arn:aws:logs:[\w-]+:\d+:log-group:/ecs/spotlake-azure-\w+:log-stream:\*"
        r"|arn:aws:logs:[\w-]+:\d+:log-group:/aws/lambda/spotlake-azure-\w+-(query-api|alarm-webhook):log-stream:\*"
        r"|arn:aws:ecs:[\w-]+:\d+:task/spotlake-azure-\w+/\*"
        r"|arn:aws:ecs:[\w-]+:\d+:task-definition/spotlake-azure-\w+-(run|admin):\*"
    )
    for grant in grants(env):
        assert grant.effect == "Allow"
        assert "*" not in grant.action, grant
        if grant.resource == "*":
            assert grant.action in STAR_RESOURCE_ACTIONS, grant
        elif "*" in grant.resource or "?" in grant.resource:
            assert allowed_partial.fullmatch(grant.resource), grant


# --- storage, table, parameters -----------------------------------------------------------------------


def test_the_shared_buckets_settings_are_not_managed_here() -> None:
    """Versioning, lifecycle, public access block, ownership, encryption, logging and policy are one setting per
    bucket: managing any of them would replace the other collectors'. The module only reads that the buckets exist."""
    module = Module.load(MODULE)
    assert [kind for kind in module.resources if kind.startswith("aws_s3_")] == []
    assert set(module.data["aws_s3_bucket"]) == {"write", "read"}


def owner_statements(env: str) -> tuple[str, list[dict[str, Any]]]:
    scope = module_scope(env)
    return scope.inputs["write_bucket"], scope.expression("local.azure_bucket_policy_statements")


def statements_covering(statements: list[dict[str, Any]], action: str, arn: str) -> list[dict[str, Any]]:
    return [
        s
        for s in statements
        if action in as_list(s["Action"]) + (["s3:PutObject", "s3:PutObjectAcl"] if s["Action"] == "s3:*" else [])
        and any(covers(pattern, arn) for pattern in as_list(s["Resource"]))
    ]


@pytest.mark.parametrize("env", ENVS)
def test_owner_statements_deny_only_and_name_only_azure_keys(env: str) -> None:
    bucket, statements = owner_statements(env)
    assert statements
    assert {s["Effect"] for s in statements} == {"Deny"}
    assert all(s["Principal"] == "*" and s["Sid"].startswith("SpotLakeAzure") for s in statements)
    assert len({s["Sid"] for s in statements}) == len(statements)
    for statement in statements:
        for pattern in as_list(statement["Resource"]):
            assert pattern.startswith(f"arn:aws:s3:::{bucket}/"), pattern
            for key in OTHER_COLLECTOR_KEYS:
                assert not covers(pattern, f"arn:aws:s3:::{bucket}/{key}"), (statement["Sid"], key)


@pytest.mark.parametrize("env", ENVS)
def test_owner_statements_refuse_public_acls_on_private_keys(env: str) -> None:
    bucket, statements = owner_statements(env)
    for key in SAMPLE_KEYS:
        arn = f"arn:aws:s3:::{bucket}/{key}"
        canned = [
            s
            for s in statements_covering(statements, "s3:PutObject", arn)
            if set(s.get("Condition", {}).get("StringEquals", {}).get("s3:x-amz-acl", [])) >= {"public-read"}
        ]
        any_acl = [s for s in statements_covering(statements, "s3:PutObjectAcl", arn) if "Condition" not in s]
        assert bool(canned) == bool(any_acl) == (key not in PUBLIC_KEYS), key


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("header", ACL_GRANT_HEADERS)
def test_owner_statements_refuse_acl_grant_headers_on_every_azure_key(env: str, header: str) -> None:
    """x-amz-grant-* headers make an object public as surely as x-amz-acl: refused on every Azure key."""
    bucket, statements = owner_statements(env)
    for key in SAMPLE_KEYS:
        arn = f"arn:aws:s3:::{bucket}/{key}"
        for action in ("s3:PutObject", "s3:PutObjectAcl"):
            denied = [
                s
                for s in statements_covering(statements, action, arn)
                if s.get("Condition") == {"Null": {header: "false"}}
            ]
            assert denied, (header, action, key)


@pytest.mark.parametrize("env", ENVS)
def test_owner_statements_refuse_plain_http_on_azure_keys(env: str) -> None:
    bucket, statements = owner_statements(env)
    tls = [s for s in statements if s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}]
    assert len(tls) == 1 and tls[0]["Action"] == "s3:*"
    assert all(any(covers(p, f"arn:aws:s3:::{bucket}/{key}") for p in tls[0]["Resource"]) for key in SAMPLE_KEYS)


def test_owner_requirements_keep_the_public_outputs_working() -> None:
    requirements = module_scope("prod").expression("local.bucket_owner_requirements")
    assert requirements["public_access_block"] == {"block_public_acls": False, "ignore_public_acls": False}
    assert "BucketOwnerEnforced" not in requirements["object_ownership"]
    assert requirements["default_encryption"] == "AES256"


def test_security_doc_carries_the_owner_statements_of_production() -> None:
    """docs/security.md gives the owner of `spotlake` the exact statements: they must be the module's."""
    doc = (INFRA.parent / "docs" / "security.md").read_text()
    block = re.search(r"<!-- bucket-policy-statements:prod -->\s*```json\n(.*?)```", doc, re.DOTALL)
    assert block, "docs/security.md lost its bucket-policy-statements:prod block"
    assert json.loads(block.group(1)) == owner_statements("prod")[1]


def test_history_table_shape() -> None:
    table = Module.load(MODULE).resources["aws_dynamodb_table"]["history"]
    assert (table["hash_key"], table["range_key"], table["billing_mode"]) == ("pk", "sk", "PAY_PER_REQUEST")
    assert {(a["name"], a["type"]) for a in table["attribute"]} == {("pk", "S"), ("sk", "S")}
    assert block(table, "point_in_time_recovery")["enabled"] is True


def test_history_table_ttl_names_expires_at_and_leaves_the_switch_to_the_collector() -> None:
    """Items expire on `expires_at`, but only once their month is archived and verified: the collector's guard turns
    TTL on and off at run time, so Terraform declares the attribute disabled and never plans a TTL change."""
    table = Module.load(MODULE).resources["aws_dynamodb_table"]["history"]
    assert block(table, "ttl") == {"attribute_name": "expires_at", "enabled": False}
    lifecycle = block(table, "lifecycle")
    assert "ttl" in lifecycle["ignore_changes"]  # an apply neither disables the guard's TTL nor enables it early
    assert lifecycle["prevent_destroy"] is True


TTL_ACTIONS = {"dynamodb:DescribeTimeToLive", "dynamodb:UpdateTimeToLive"}


@pytest.mark.parametrize(("env", "table"), [("prod", "azure"), ("test", "azure-test")])
def test_only_the_run_role_and_the_alarm_messenger_switch_ttl_and_only_on_its_table(env: str, table: str) -> None:
    """The run's guard switches it both ways; the heartbeat alarm's messenger switches it off when runs stop."""
    table_arn = f"arn:aws:dynamodb:us-west-2:{ACCOUNT_ID}:table/{table}"
    ttl = {(g.role, g.action, g.resource) for g in grants(env) if "TimeToLive" in g.action}
    assert ttl == {(role, action, table_arn) for role in ("run", "alarm_webhook") for action in TTL_ACTIONS}


@pytest.mark.parametrize("env", ENVS)
def test_the_archive_is_published_public_read_and_the_private_prefixes_stay_refused(env: str) -> None:
    """Every archive object is written with ACL public-read: the run may Put it with its ACL, and no statement the
    bucket owner adds refuses that; Azure's private prefixes still refuse public ACLs; under the archive's prefix,
    a key outside its layout gets no ACL."""
    bucket, statements = owner_statements(env)
    run = [g for g in grants(env) if g.role == "run"]

    def granted(action: str, key: str) -> bool:
        return any(g.action == action and covers(g.resource, f"arn:aws:s3:::{bucket}/{key}") for g in run)

    def refuses_public_read(key: str) -> bool:
        arn = f"arn:aws:s3:::{bucket}/{key}"
        canned = [
            s
            for s in statements_covering(statements, "s3:PutObject", arn)
            if "public-read" in s.get("Condition", {}).get("StringEquals", {}).get("s3:x-amz-acl", [])
        ]
        return bool(
            canned or [s for s in statements_covering(statements, "s3:PutObjectAcl", arn) if "Condition" not in s]
        )

    for key in ARCHIVE_KEYS:
        assert granted("s3:PutObject", key) and granted("s3:PutObjectAcl", key) and granted("s3:GetObject", key), key
        assert not refuses_public_read(key), key
    private = [key for key in SAMPLE_KEYS if key not in PUBLIC_KEYS]
    assert private
    for key in private:
        assert refuses_public_read(key) and not granted("s3:PutObjectAcl", key), key
    for key in (
        "archive/azure/history/changes/month=2026-11/part-00.csv",
        "archive/azure/history/changes/2026-11/part-00.parquet",
        "archive/azure/history/staging/2026-11.json",
        "archive/azure/history/manifests/2026-11.json.tmp",
        "archive/azure/history/lookup/2026-11/x.json",
    ):
        assert granted("s3:PutObject", key) and not granted("s3:PutObjectAcl", key), key
    # the run lists the archive's prefix (the monthly job finds its parts and manifests)
    lists = [g for g in run if g.action == "s3:ListBucket" and g.resource == f"arn:aws:s3:::{bucket}"]
    prefixes = [p for g in lists for p in as_list(g.statement["Condition"]["StringLike"]["s3:prefix"])]
    for prefix in ("archive/azure/history/", "archive/azure/history/changes/month=2026-11/"):
        assert any(covers(pattern, prefix) for pattern in prefixes), prefix


# The Parquet schema the collector writes (column order); `checkpoints` has AsOf first. Glue keeps names in lower case.
ARCHIVE_CHANGE_COLUMNS = [
    ("InstanceTier", "string"),
    ("InstanceType", "string"),
    ("Region", "string"),
    ("AvailabilityZone", "string"),
    ("OndemandPrice", "double"),
    ("SpotPrice", "double"),
    ("Savings", "double"),
    ("IF", "double"),
    ("Score", "bigint"),
    ("DesiredCount", "bigint"),
    ("T2", "bigint"),
    ("T3", "bigint"),
    ("Time", "string"),
]
ARCHIVE_COLUMNS = {"changes": ARCHIVE_CHANGE_COLUMNS, "checkpoints": [("AsOf", "string"), *ARCHIVE_CHANGE_COLUMNS]}


def evaluate_template(scope: Scope, text: str) -> str:
    """A string with Terraform's `$${` escape (a literal `${`, e.g. Athena's own placeholders) evaluated."""
    return "${".join(str(scope.evaluate(part)) for part in text.split("$${"))


def glue_tables(env: str) -> dict[str, dict[str, Any]]:
    """The archive's Glue tables as Terraform creates them for the environment (its for_each expanded)."""
    scope = module_scope(env)
    table = scope.module.resources["aws_glue_catalog_table"]["archive"]
    assert table["for_each"] == "${local.archive_tables}"
    expanded = {}
    for key, columns in scope.expression("local.archive_tables").items():
        each = Scope(scope.module, scope.inputs, {"each.key": key, "each.value": columns})
        storage = block(table, "storage_descriptor")
        (dynamic,) = storage["dynamic"]
        assert dynamic["columns"]["for_each"] == "${each.value}"
        (content,) = dynamic["columns"]["content"]
        rendered = [
            Scope(scope.module, scope.inputs, {f"columns.value.{k}": v for k, v in column.items()}).evaluate(content)
            for column in each.expression("each.value")
        ]
        expanded[each.evaluate(table["name"])] = {
            "database_name": table["database_name"],
            "table_type": table["table_type"],
            "parameters": {name: evaluate_template(each, value) for name, value in table["parameters"].items()},
            "partition_keys": table["partition_keys"],
            "location": each.evaluate(storage["location"]),
            "input_format": storage["input_format"],
            "output_format": storage["output_format"],
            "serde": block(storage, "ser_de_info")["serialization_library"],
            "columns": [(column["name"], column["type"]) for column in rendered],
        }
    return expanded


@pytest.mark.parametrize(("env", "bucket"), [("prod", "spotlake"), ("test", "spotlake-test")])
def test_archive_glue_tables_are_parquet_over_the_archive_prefixes_of_the_write_bucket(env: str, bucket: str) -> None:
    scope = module_scope(env)
    database = scope.module.resources["aws_glue_catalog_database"]["archive"]
    name = scope.evaluate(database["name"])
    assert name == f"spotlake_azure_{env}" and re.fullmatch(r"[a-z0-9_]+", name)  # Glue/Athena: no hyphens
    tables = glue_tables(env)
    assert set(tables) == {"changes", "checkpoints"}
    for table, body in tables.items():
        assert body["database_name"] == "${aws_glue_catalog_database.archive.name}"
        assert body["table_type"] == "EXTERNAL_TABLE" and body["parameters"]["EXTERNAL"] == "TRUE"
        assert body["location"] == f"s3://{bucket}/archive/azure/history/{table}/"
        assert body["input_format"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
        assert body["output_format"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
        assert body["serde"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        # the Parquet files' columns in their order (Glue stores names in lower case; Athena matches by name)
        assert body["columns"] == [(column.lower(), kind) for column, kind in ARCHIVE_COLUMNS[table]], table
        assert body["partition_keys"] == [{"name": "month", "type": "string"}]
        # everything Athena reads is what the collector publishes
        part = f"archive/azure/history/{table}/month=2026-11/part-00.parquet"
        assert part in ARCHIVE_KEYS or any(covers(p, part) for p in scope.expression("local.public_object_keys"))


@pytest.mark.parametrize(("env", "bucket"), [("prod", "spotlake"), ("test", "spotlake-test")])
def test_archive_partitions_are_projected_from_the_month_layout(env: str, bucket: str) -> None:
    """Partition projection: Athena computes each month's location from the template, so a new month is queryable
    as soon as its objects exist (no crawler, no MSCK REPAIR TABLE, no ADD PARTITION)."""
    for table, body in glue_tables(env).items():
        parameters = body["parameters"]
        assert {
            key: parameters[key]
            for key in parameters
            if key.startswith("projection.") and key != "projection.month.range"
        } == {
            "projection.enabled": "true",
            "projection.month.type": "date",
            "projection.month.format": "yyyy-MM",
            "projection.month.interval": "1",
            "projection.month.interval.unit": "MONTHS",
        }
        first, last = parameters["projection.month.range"].split(",")
        assert re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", first) and last == "NOW"
        assert first <= "2026-11"  # the collector's first partition month (and imported legacy months before it)
        template = parameters["storage.location.template"]
        assert template == f"s3://{bucket}/archive/azure/history/{table}/month=${{month}}/"
        # a month rendered by the template (yyyy-MM) is the prefix of the parts the collector writes
        key = f"archive/azure/history/{table}/month=2026-11/part-00.parquet"
        assert f"s3://{bucket}/{key}".startswith(template.replace("${month}", "2026-11"))
        assert template.startswith(body["location"])


def test_webhook_value_never_enters_terraform_state() -> None:
    """A managed parameter (even a placeholder with ignore_changes) or a data source would copy the decrypted URL
    into the state on refresh: the module must have neither, only the parameter's name for the daemon's IAM."""
    for directory in [MODULE, INFRA / "envs" / "prod", INFRA / "envs" / "test"]:
        module = Module.load(directory)
        assert "aws_ssm_parameter" not in module.data, directory
        for name, body in module.resources.get("aws_ssm_parameter", {}).items():
            assert body.get("type") != "SecureString", name
            assert "webhook" not in name and "webhook" not in str(body.get("name", "")), name
        assert not {"aws_secretsmanager_secret_version"} & set(module.resources), directory
    module = Module.load(MODULE)
    assert "manage_webhook_parameter" not in module.variables
    assert module.variables["webhook_parameter_name"]["default"] == "error_notification_slack_webhook_url"


# --- ECS -----------------------------------------------------------------------------------------------


def container_definitions(scope: Scope, task: str) -> list[dict[str, Any]]:
    """The evaluated container_definitions of a task definition (`jsonencode([...])` parsed as HCL)."""
    text = scope.module.resources["aws_ecs_task_definition"][task]["container_definitions"]
    assert text.startswith("${jsonencode(") and text.endswith(")}"), task
    return scope.evaluate(hcl2.loads("x = " + text[len("${jsonencode(") : -2], serialization_options=PARSE)["x"])


@pytest.mark.parametrize("task", ["webserver", "daemon", "admin"])
def test_long_running_containers_have_health_checks(task: str) -> None:
    (container,) = container_definitions(module_scope("prod"), task)
    check = container["healthCheck"]
    command = check["command"]
    assert command[:3] == ["CMD", "python", "/opt/spotlake/docker/healthcheck.py"], command
    assert command[3] == ("daemon" if task == "daemon" else "webserver")
    assert 5 <= check["interval"] <= 300 and 2 <= check["timeout"] <= 60 and check["timeout"] < check["interval"]
    assert 1 <= check["retries"] <= 10 and 0 <= check["startPeriod"] <= 300


def test_production_webserver_is_read_only_and_the_admin_ui_is_loopback_only() -> None:
    scope = module_scope("prod")
    (webserver,) = container_definitions(scope, "webserver")
    assert webserver["command"][0] == "dagster-webserver" and "--read-only" in webserver["command"]
    (admin,) = container_definitions(scope, "admin")
    command = admin["command"]
    assert command[:2] == ["timeout", "8h"] and "--read-only" not in command
    assert command[command.index("-h") + 1] == "127.0.0.1"  # reached only through SSM port forwarding
    assert "portMappings" not in admin
    services = scope.module.resources["aws_ecs_service"]
    assert "admin" not in services  # started on demand, never always on


def test_containers_start_through_the_image_entry_point() -> None:
    """No `sh -c` wrapper: the image's entry point checks SPOTLAKE_ENV and writes dagster.yaml for every command."""
    scope = module_scope("test")
    for task in scope.module.resources["aws_ecs_task_definition"]:
        for container in container_definitions(scope, task):
            assert container.get("command", ["dagster"])[0] in {
                "dagster",
                "dagster-webserver",
                "dagster-daemon",
                "timeout",
            }
            assert {"name": "SPOTLAKE_ENV", "value": "test"} in scope.expression("local.collector_environment")


@pytest.mark.parametrize("env", ENVS)
def test_operators_reach_only_the_admin_task(env: str) -> None:
    operator = [g for g in grants(env) if g.role == "operator"]
    run_task = [g for g in operator if g.action == "ecs:RunTask"]
    assert [g.resource.rsplit("/", 1)[1] for g in run_task] == [f"spotlake-azure-{env}-admin:*"]
    exec_into = [g for g in operator if g.action == "ecs:ExecuteCommand"]
    assert exec_into and all(
        g.statement["Condition"] == {"StringEquals": {"ecs:container-name": "admin"}} for g in exec_into
    )
    assert not [g for g in operator if g.action.startswith(("s3:", "dynamodb:", "ssm:GetParameter"))]
    assert {g.role for g in grants(env) if g.action in SESSION_CHANNEL_ACTIONS} == {"admin"}


def rendered_instance_yaml(tmp_path: Path) -> Path:
    """infra's dagster.yaml template with placeholder values (Terraform's templatefile does this in AWS)."""
    values = {
        "db_host": "dagster.example.internal",
        "db_port": "5432",
        "db_name": "dagster",
        "db_username": "dagster",
        "run_task_definition_arn": "arn:aws:ecs:us-west-2:123456789012:task-definition/spotlake-azure-test-run:1",
        "cluster_arn": "arn:aws:ecs:us-west-2:123456789012:cluster/spotlake-azure-test",
        "capacity_provider": "FARGATE_SPOT",
        "jsonencode(subnet_ids)": '["subnet-1", "subnet-2"]',
        "security_group_id": "sg-1",
    }
    (tmp_path / "dagster.yaml").write_text(render_instance_template(values))
    return tmp_path


def assert_runs_are_serial_and_dead_workers_retried(config: dict) -> None:
    """docs/design.md "Continuity": the 10-minute job's runs one at a time, a dead worker's run retried, every run
    bounded and a dead run's SPS pool slot given back."""
    assert config["run_monitoring"]["max_runtime_seconds"] > 0
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {"key": SERIAL_TAG, "limit": 1} in limits
    assert build_jobs(Partitions.starting_at(DEFAULT_PARTITION_START))[0][0].tags[SERIAL_TAG]
    assert config["run_retries"] == {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}
    assert config["run_monitoring"]["enabled"] is True
    assert config["concurrency"]["pools"]["default_limit"] == 1


def test_make_dev_instance_has_the_serial_run_queue_and_retries(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    assert_runs_are_serial_and_dead_workers_retried(config)


def test_instance_yaml_is_valid_dagster_config_with_the_sps_pool_of_one(tmp_path: Path) -> None:
    config, _ = dagster_instance_config(str(rendered_instance_yaml(tmp_path)))
    assert_runs_are_serial_and_dead_workers_retried(config)
    # docs/operations.md "Bounded runs": dead workers and runs past their bound noticed within 30 s, every run
    # bounded, a dead run's pool slot given back
    monitoring = config["run_monitoring"]
    assert monitoring["poll_interval_seconds"] == 30 and monitoring["max_runtime_seconds"] == 7200
    assert monitoring["free_slots_after_run_end_seconds"] == 30
    assert config["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    launcher = config["run_launcher"]
    # dagster-aws's launcher without the run tags that rewrite the task (tests/test_run_launcher.py)
    assert (launcher["module"], launcher["class"]) == ("resources.run_launcher", "LockedEcsRunLauncher")
    assert issubclass(LockedEcsRunLauncher, EcsRunLauncher)
    checked = process_config(LockedEcsRunLauncher.config_type(), launcher["config"])
    assert checked.success, checked.errors
    assert launcher["config"]["run_task_kwargs"]["capacityProviderStrategy"][0]["capacityProvider"] == "FARGATE_SPOT"


# --- secrets -----------------------------------------------------------------------------------------

SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "Slack webhook URL": re.compile(r"hooks\.slack\.com/services/"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "literal credential": re.compile(
        r"""(?i)\b\w*(password|passwd|secret|token|client_secret|api_key)\w*\s*[=:]\s*["'][^"'$<{][^"']*["']"""
    ),
}


def find_secrets(text: str) -> list[str]:
    return [name for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)]


def test_secret_patterns_detect_what_they_should() -> None:
    assert find_secrets('password = "hunter22"') == ["literal credential"]
    assert find_secrets("key = AKIAABCDEFGHIJKLMNOP") == ["AWS access key id"]
    assert find_secrets('url = "https://hooks.slack.com/services/T0/B0/x"') == ["Slack webhook URL"]
    assert find_secrets('password = "${var.db_password}"') == []


@pytest.mark.parametrize(
    "path", sorted(p for p in INFRA.rglob("*") if p.is_file()), ids=lambda p: p.relative_to(INFRA).as_posix()
)
def test_no_literal_secrets(path: Path) -> None:
    assert find_secrets(path.read_text()) == [], path


# --- the web site's query API (query_api.tf) ---------------------------------------------------------------------

QUERY_API_ACTIONS = {"dynamodb:Query", "dynamodb:GetItem", "logs:CreateLogStream", "logs:PutLogEvents"}


@pytest.mark.parametrize(
    ("env", "table", "bucket"), [("prod", "azure", "spotlake"), ("test", "azure-test", "spotlake-test")]
)
def test_query_api_role_only_reads_its_table_the_archive_lookups_and_writes_its_logs(
    env: str, table: str, bucket: str
) -> None:
    query = [g for g in grants(env) if g.role == "query_api"]
    table_arn = f"arn:aws:dynamodb:us-west-2:{ACCOUNT_ID}:table/{table}"
    streams = f"arn:aws:logs:us-west-2:{ACCOUNT_ID}:log-group:/aws/lambda/spotlake-azure-{env}-query-api:log-stream:*"
    archive = f"arn:aws:s3:::{bucket}/archive/azure/history/"
    assert {(g.action, g.resource) for g in query} == {
        ("dynamodb:Query", table_arn),
        ("dynamodb:GetItem", table_arn),
        ("s3:GetObject", archive + "lookup/*"),
        ("s3:GetObject", archive + "verified-months.json"),
        ("s3:ListBucket", f"arn:aws:s3:::{bucket}"),
        ("logs:CreateLogStream", streams),
        ("logs:PutLogEvents", streams),
    }
    assert all(g.effect == "Allow" and not is_write(g.action) for g in query)
    # no other table (AzureAuth, production's from test), no Scan
    assert not any(covers(g.resource, AUTH_TABLE_ARN) for g in query)
    if env == "test":
        assert not any(covers(g.resource, PROD_TABLE_ARN) for g in query)
    # listing: only the lookup files' prefix (a missing file is then a 404 to the reader, not a 403)
    [listing] = [g for g in query if g.action == "s3:ListBucket"]
    assert listing.statement["Condition"] == {"StringLike": {"s3:prefix": ["archive/azure/history/lookup/*"]}}
    # in S3: the lookup files and the verified months' index of its own write bucket, nothing else (no Parquet, no
    # manifest, no other Azure key, nothing of production's bucket from test)
    s3 = [g.resource for g in query if g.resource.startswith("arn:aws:s3")]
    read = [
        "archive/azure/history/lookup/2026-11/Standard%7CD2s_v3%7Ceastus.json.gz",
        "archive/azure/history/verified-months.json",
    ]
    for key in read:
        assert any(covers(pattern, f"arn:aws:s3:::{bucket}/{key}") for pattern in s3), key
    for key in [k for k in SAMPLE_KEYS if k not in read] + list(OTHER_COLLECTOR_KEYS):
        assert not any(covers(pattern, f"arn:aws:s3:::{bucket}/{key}") for pattern in s3), key
    if env == "test":
        assert not any(covers(pattern, f"arn:aws:s3:::{PROD_BUCKET}/{key}") for pattern in s3 for key in read)


def test_query_api_role_is_assumed_by_lambda_of_this_account_only() -> None:
    scope = module_scope("prod")
    role = scope.module.resources["aws_iam_role"]["query_api"]
    assert role["assume_role_policy"] == "${jsonencode(local.lambda_trust)}"
    (statement,) = scope.expression("local.lambda_trust")["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"} and statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}


def test_query_api_function_runs_the_handler_from_the_package_with_bounded_time_and_concurrency() -> None:
    scope = module_scope("test")
    function = scope.module.resources["aws_lambda_function"]["query_api"]
    assert (function["runtime"], function["handler"]) == ("python3.12", "resources.query_api.handler.lambda_handler")
    assert function["role"] == "${aws_iam_role.query_api.arn}"
    assert function["reserved_concurrent_executions"] == "${var.query_api_concurrency}"
    variables = scope.module.variables
    # the query gives up (Status 504) before the function times out, which happens before the REST integration's 29 s
    assert function["timeout"] == "${var.query_api_timeout_seconds + 8}"
    assert variables["query_api_timeout_seconds"]["default"] == 20
    limit = block(variables["query_api_timeout_seconds"], "validation")["condition"]
    assert "var.query_api_timeout_seconds <= 20" in limit
    raw = block(function, "environment")["variables"]
    settings = scope.evaluate(raw)
    assert settings["SPOTLAKE_ENV"] == "test" and settings["SPOTLAKE_DYNAMODB_TABLE"] == "azure-test"
    assert raw["SPOTLAKE_QUERY_API_TIMEOUT_SECONDS"] == "${tostring(var.query_api_timeout_seconds)}"
    assert raw["SPOTLAKE_QUERY_API_ALLOWED_ORIGINS"] == '${join(",", var.query_api_allowed_origins)}'
    # the archive it answers gone months from is its environment's write bucket's
    assert settings["SPOTLAKE_ARCHIVE_BUCKET"] == "spotlake-test"
    assert module_scope("prod").evaluate(raw)["SPOTLAKE_ARCHIVE_BUCKET"] == "spotlake"
    assert variables["query_api_allowed_origins"]["default"] == ["https://spotlake.ddps.cloud"]
    assert "build/spotlake-query-api.zip" in scope.module.locals["query_api_zip"]
    log_group = scope.module.resources["aws_cloudwatch_log_group"]["query_api"]
    assert log_group["retention_in_days"] == "${var.log_retention_days}"
    assert block(function, "logging_config")["log_group"] == "${aws_cloudwatch_log_group.query_api.name}"


# What the site sends (docs/web-site.md): the only query-string names the API caches by and lets through.
SITE_PARAMETERS = ("TableName", "Region", "InstanceType", "InstanceTier", "AvailabilityZone", "Start", "End")
SITE_QUERY = (
    "TableName=azure&Region=US+East&InstanceType=D2s_v3&InstanceTier=*&AvailabilityZone=&"
    "Start=2026-11-28&End=2026-11-28"
)
REST_INTEGRATION_TIMEOUT_SECONDS = 29


def test_query_api_is_a_public_rest_api_whose_every_method_reaches_the_handler() -> None:
    scope = module_scope("prod")
    resources = scope.module.resources
    assert not [kind for kind in resources if kind.startswith("aws_apigatewayv2_")]
    assert "aws_lambda_function_url" not in resources
    api = resources["aws_api_gateway_rest_api"]["query_api"]
    assert block(api, "endpoint_configuration")["types"] == ["REGIONAL"]
    assert int(api["minimum_compression_size"]) <= 1024  # API Gateway gzips; the function sends plain JSON to REST
    assert "body" not in api  # no OpenAPI document that could add methods, authorizers or CORS beside these
    assert resources["aws_api_gateway_resource"]["query_api_proxy"]["path_part"] == "{proxy+}"
    # the root and every path, each with a GET and an ANY (OPTIONS preflight and the refusals), all to the handler
    methods = scope.expression("local.query_api_methods")
    assert sorted((m["resource"], m["http_method"]) for m in methods.values()) == [
        ("proxy", "ANY"), ("proxy", "GET"), ("root", "ANY"), ("root", "GET")
    ]  # fmt: skip
    assert set(scope.module.locals["query_api_resource_ids"].values()) == {
        "${aws_api_gateway_rest_api.query_api.root_resource_id}", "${aws_api_gateway_resource.query_api_proxy.id}"
    }  # fmt: skip
    method = resources["aws_api_gateway_method"]["query_api"]
    assert method["for_each"] == "${local.query_api_methods}" and method["authorization"] == "NONE"
    integration = resources["aws_api_gateway_integration"]["query_api"]
    assert integration["for_each"] == "${aws_api_gateway_method.query_api}"
    assert (integration["type"], integration["integration_http_method"]) == ("AWS_PROXY", "POST")  # payload 1.0
    assert integration["uri"] == "${aws_lambda_function.query_api.invoke_arn}"
    assert integration["timeout_milliseconds"] == REST_INTEGRATION_TIMEOUT_SECONDS * 1000
    permission = resources["aws_lambda_permission"]["query_api"]
    assert (permission["action"], permission["principal"]) == ("lambda:InvokeFunction", "apigateway.amazonaws.com")
    assert permission["source_arn"] == "${aws_api_gateway_rest_api.query_api.execution_arn}/*/*/*"
    deployment = resources["aws_api_gateway_deployment"]["query_api"]
    assert block(deployment, "lifecycle")["create_before_destroy"] is True
    trigger = deployment["triggers"]["redeployment"]
    for part in ("resource.query_api_proxy", "method.query_api", "integration.query_api"):
        assert f"aws_api_gateway_{part}" in trigger
    stage = resources["aws_api_gateway_stage"]["query_api"]
    assert stage["deployment_id"] == "${aws_api_gateway_deployment.query_api.id}"
    log_format = block(stage, "access_log_settings")["format"]
    for variable in ("$context.identity.sourceIp", "$context.status", "$context.wafResponseCode", "$context.error"):
        assert variable in log_format
    # the output keeps its name (docs, the environments and the site's form use it): the stage's invoke URL
    outputs = {name: body for o in load_hcl(MODULE / "query_api.tf")["output"] for name, body in o.items()}
    assert outputs["query_api_url"]["value"] == "${aws_api_gateway_stage.query_api.invoke_url}"


def test_query_api_caches_by_the_sites_seven_parameters_and_origin_only() -> None:
    """A cached answer is keyed on what the handler answers by: the site's parameters (in any order) and Origin (the
    CORS echo). GET has its own method and cache namespace, so only a GET's answer can fill a GET's entry."""
    scope = module_scope("prod")
    resources = scope.module.resources
    keys = scope.expression("local.query_api_cache_keys")
    assert keys["GET"] == [f"method.request.querystring.{name}" for name in SITE_PARAMETERS] + [
        "method.request.header.Origin"
    ]
    assert keys["ANY"] == ["method.request.header.Origin", "method.request.header.Access-Control-Request-Method"]
    assert scope.expression("local.query_api_parameters") == list(SITE_PARAMETERS)
    # the same lists are the methods' declared parameters (none required) and the integrations' cache keys
    method = resources["aws_api_gateway_method"]["query_api"]
    assert method["request_parameters"] == (
        "${{for key in local.query_api_cache_keys[each.value.http_method] : key => false}}"
    )
    integration = resources["aws_api_gateway_integration"]["query_api"]
    assert integration["cache_key_parameters"] == "${local.query_api_cache_keys[each.value.http_method]}"
    assert integration["cache_namespace"] == "query-${lower(each.value.http_method)}"
    stage = resources["aws_api_gateway_stage"]["query_api"]
    assert stage["cache_cluster_enabled"] == "${var.query_api_cache}"
    assert stage["cache_cluster_size"] == '${var.query_api_cache ? "0.5" : null}'
    assert scope.module.variables["query_api_cache"]["default"] is True
    settings = resources["aws_api_gateway_method_settings"]["query_api"]
    assert settings["method_path"] == "*/*"
    cache = block(settings, "settings")
    assert (cache["caching_enabled"], cache["cache_ttl_in_seconds"]) == ("${var.query_api_cache}", 60)
    # an anonymous Cache-Control: max-age=0 cannot flush an entry and make the next request reach the function
    assert cache["require_authorization_for_cache_control"] is True
    assert cache["unauthorized_cache_control_header_strategy"] == "SUCCEED_WITHOUT_RESPONSE_HEADER"


def test_query_api_sizing_one_ip_can_never_take_the_whole_stage_throttle() -> None:
    """docs/security.md "Sizing the query API": concurrency, stage throttle and per-IP limit from variables."""
    scope = module_scope("prod")
    resources = scope.module.resources
    function = resources["aws_lambda_function"]["query_api"]
    assert function["reserved_concurrent_executions"] == "${var.query_api_concurrency}"
    throttle = block(resources["aws_api_gateway_method_settings"]["query_api"], "settings")
    assert (throttle["throttling_rate_limit"], throttle["throttling_burst_limit"]) == (
        "${var.query_api_rate_limit}",
        "${var.query_api_burst_limit}",
    )
    sizes = {name: scope.variable(name) for name in (
        "query_api_concurrency", "query_api_rate_limit", "query_api_burst_limit", "query_api_per_ip_limit"
    )}  # fmt: skip
    assert sizes == {
        "query_api_concurrency": 10,
        "query_api_rate_limit": 5,
        "query_api_burst_limit": 10,
        "query_api_per_ip_limit": 60,
    }
    assert sizes["query_api_per_ip_limit"] / 60 < sizes["query_api_rate_limit"]
    # ... and Terraform refuses any other sizes that break it
    acl = resources["aws_wafv2_web_acl"]["query_api"]
    (precondition,) = block(acl, "lifecycle")["precondition"]
    assert precondition["condition"] == "${var.query_api_per_ip_limit / 60 < var.query_api_rate_limit}"
    # the function (timeout + 8 s) gives up before the REST integration does, even at the largest timeout allowed
    assert function["timeout"] == "${var.query_api_timeout_seconds + 8}"
    largest = 20
    validation = block(scope.module.variables["query_api_timeout_seconds"], "validation")["condition"]
    assert f"var.query_api_timeout_seconds <= {largest}" in validation
    assert scope.variable("query_api_timeout_seconds") <= largest and largest + 8 < REST_INTEGRATION_TIMEOUT_SECONDS


def web_acl_rules(scope: Scope) -> dict[str, dict[str, Any]]:
    acl = scope.module.resources["aws_wafv2_web_acl"]["query_api"]
    rules = {rule["name"]: rule for rule in acl["rule"]}
    for dynamic in acl.get("dynamic", []):
        rules[dynamic["rule"]["content"][0]["name"]] = dynamic["rule"]["content"][0]
    return rules


def test_waf_limits_each_ip_on_the_query_api_stage() -> None:
    scope = module_scope("prod")
    resources = scope.module.resources
    acl = resources["aws_wafv2_web_acl"]["query_api"]
    assert acl["scope"] == "REGIONAL" and "allow" in block(acl, "default_action")
    association = resources["aws_wafv2_web_acl_association"]["query_api"]
    assert association == {
        "resource_arn": "${aws_api_gateway_stage.query_api.arn}",
        "web_acl_arn": "${aws_wafv2_web_acl.query_api.arn}",
    }
    rules = web_acl_rules(scope)
    rate = rules["per-ip-rate"]
    assert rate["priority"] == min(rule["priority"] for rule in rules.values())  # counts every request of an IP
    statement = block(block(rate, "statement"), "rate_based_statement")
    assert statement == {
        "limit": "${var.query_api_per_ip_limit}",
        "evaluation_window_sec": 60,
        "aggregate_key_type": "IP",
    }
    action = block(block(rate, "action"), "block")
    assert block(action, "custom_response")["response_code"] == 429
    # refusals in JSON, as the handler's (the site shows any non-2xx as a network error either way)
    bodies = {body["key"]: body for body in acl["custom_response_body"]}
    assert "Status = 429" in bodies["too-many-requests"]["content"]
    assert {body["content_type"] for body in bodies.values()} == {"APPLICATION_JSON"}


def test_waf_lets_through_only_the_sites_parameters_each_once() -> None:
    """Any other parameter, or one given twice, would share the cache entry of the same query without it: the
    function's refusal (or its answer to the other value) would then be served to every visitor asking that query.
    The web ACL refuses such query strings before the cache. Checked here with Python's re, which reads these
    patterns as AWS WAF's PCRE does."""
    scope = module_scope("prod")
    rule = web_acl_rules(scope)["site-parameters-only"]
    assert block(block(rule, "action"), "block")["custom_response"][0]["response_code"] == 400
    either = block(block(rule, "statement"), "or_statement")["statement"]
    shape = block(block(block(either[0], "not_statement"), "statement"), "regex_match_statement")
    repeated = block(either[1], "regex_pattern_set_reference_statement")
    assert repeated["arn"] == "${aws_wafv2_regex_pattern_set.query_api_repeated_parameter.arn}"
    for match in (shape, repeated):
        assert "query_string" in block(match, "field_to_match")
        assert block(match, "text_transformation") == {"priority": 0, "type": "NONE"}  # the raw query string
    allowed = re.compile(scope.evaluate(shape["regex_string"]))
    pattern_set = scope.module.resources["aws_wafv2_regex_pattern_set"]["query_api_repeated_parameter"]
    dynamic = pattern_set["dynamic"][0]["regular_expression"]
    assert dynamic["for_each"] == "${local.query_api_parameters}"
    template = dynamic["content"][0]["regex_string"]
    twice = [
        re.compile(Scope(scope.module, scope.inputs, {"regular_expression.value": name}).evaluate(template))
        for name in scope.expression(dynamic["for_each"][2:-1])
    ]

    def refused(query: str) -> bool:
        return not allowed.search(query) or any(pattern.search(query) for pattern in twice)

    shuffled = "&".join(reversed(SITE_QUERY.split("&")))
    for query in (SITE_QUERY, shuffled, "", "InstanceType=D2s_v3", "Region=US%20East&End=2026-11-28"):
        assert not refused(query), query
    for query in (
        SITE_QUERY + "&cachebuster=1",
        "x=1&" + SITE_QUERY,
        SITE_QUERY + "&Region=Japan+East",
        SITE_QUERY.replace("Region=", "region="),  # the handler's names are case-sensitive
        SITE_QUERY.replace("Region=", "Reg%69on="),  # an encoded name
        SITE_QUERY.replace("&End=", "&End"),
        "Start=2026-11-28&Start=2026-11-01",
    ):
        assert refused(query), query


def test_query_api_errors_answered_without_the_function_are_json_the_site_can_read() -> None:
    """The stage's throttle, the function's concurrency limit and an integration timeout are answered by API
    Gateway, WAF's refusals by WAF: each in the handler's JSON shape, with the site's origin (else the page sees a
    CORS failure, not the error), and a change to them redeploys the stage."""
    scope = module_scope("prod")
    resources = scope.module.resources
    cors = scope.module.locals["query_api_error_cors"]
    assert cors == {"Access-Control-Allow-Origin": "${var.query_api_allowed_origins[0]}", "Vary": "Origin"}
    assert scope.variable("query_api_allowed_origins") == ["https://spotlake.ddps.cloud"]
    condition = block(scope.module.variables["query_api_allowed_origins"], "validation")["condition"]
    assert "length(var.query_api_allowed_origins) >= 1" in condition  # so the first one always exists
    errors = scope.expression("local.query_api_gateway_errors")
    assert {kind: body["Status"] for kind, body in errors.items()} == {
        "THROTTLED": 429,  # the stage's rate
        "INTEGRATION_FAILURE": 503,  # the function's reserved concurrency (Lambda's 429 reaches API Gateway so)
        "INTEGRATION_TIMEOUT": 504,
    }
    assert all(set(body) == {"Status", "Error", "Message"} for body in errors.values())
    response = resources["aws_api_gateway_gateway_response"]["query_api"]
    assert response["for_each"] == "${local.query_api_gateway_errors}"
    assert response["response_type"] == "${each.key}"
    assert response["status_code"] == "${tostring(each.value.Status)}"
    assert response["response_templates"] == {"application/json": "${jsonencode(each.value)}"}
    assert "gatewayresponse.header.${name}" in response["response_parameters"]
    assert "in local.query_api_error_cors" in response["response_parameters"]
    deployment = resources["aws_api_gateway_deployment"]["query_api"]
    assert "aws_api_gateway_gateway_response.query_api" in deployment["triggers"]["redeployment"]
    for name in ("per-ip-rate", "site-parameters-only"):
        custom = block(block(web_acl_rules(scope)[name], "action"), "block")["custom_response"][0]
        header = custom["dynamic"][0]["response_header"]
        assert header["for_each"] == "${local.query_api_error_cors}", name
        assert header["content"][0] == {"name": "${response_header.key}", "value": "${response_header.value}"}


def test_api_gateway_logging_role_is_the_accounts_setting_and_not_taken_by_default() -> None:
    """A REST stage writes logs with a role set once per account and region: created only on request."""
    scope = module_scope("prod")
    resources = scope.module.resources
    assert scope.variable("manage_api_gateway_logging_role") is False
    counted = [
        resources["aws_iam_role"]["api_gateway_logging"],
        resources["aws_iam_role_policy_attachment"]["api_gateway_logging"],
        resources["aws_api_gateway_account"]["logging"],
    ]
    assert {body["count"] for body in counted} == {"${var.manage_api_gateway_logging_role ? 1 : 0}"}
    (statement,) = scope.expression("local.api_gateway_trust")["Statement"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    # the only managed-policy attachment of the module: the one AWS documents for API Gateway's logging role
    assert [a["policy_arn"] for a in resources["aws_iam_role_policy_attachment"].values()] == [
        "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
    ]
    assert resources["aws_api_gateway_stage"]["query_api"]["depends_on"] == ["${aws_api_gateway_account.logging}"]


CLOSURE = """
import sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pandas", "dagster", "numpy", "pyarrow"):
            raise ImportError(name)
sys.meta_path.insert(0, Blocked())
import resources.query_api.handler
for module in list(sys.modules.values()):
    print(getattr(module, "__file__", None) or "")
"""


def test_query_api_package_is_exactly_the_handlers_import_closure(tmp_path: Path) -> None:
    from resources.query_api.package import DATA_FILES, FILES, HANDLER, build

    root = INFRA.parent
    loaded = subprocess.run(
        [sys.executable, "-c", CLOSURE], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    ours = [Path(f).resolve() for f in loaded if f and "site-packages" not in Path(f).parts]
    closure = {path.relative_to(root).as_posix() for path in ours if path.is_relative_to(root)}
    assert closure | set(DATA_FILES) == set(FILES)
    assert DATA_FILES == ("spotlake_assets/core/azure_regions.csv",)  # read by azure_regions.py, in the closure
    assert Module.load(MODULE).resources["aws_lambda_function"]["query_api"]["handler"] == HANDLER
    first, second = build(tmp_path / "a.zip"), build(tmp_path / "b.zip")
    assert first.read_bytes() == second.read_bytes()  # deterministic: source_code_hash changes with the code only
    with zipfile.ZipFile(first) as archive:
        assert sorted(archive.namelist()) == sorted(FILES)


# --- the alarm that does not need Dagster (alarms.tf) -------------------------------------------------------------


def test_the_alarm_fires_when_no_partition_committed_for_30_minutes_missing_data_breaching() -> None:
    scope = module_scope("prod")
    alarm = scope.module.resources["aws_cloudwatch_metric_alarm"]["no_commit"]
    # the heartbeat the runs put (resources/heartbeat.py), of this environment
    assert (scope.evaluate(alarm["namespace"]), scope.evaluate(alarm["metric_name"])) == (
        heartbeat.NAMESPACE,
        heartbeat.METRIC,
    )
    assert scope.evaluate(alarm["dimensions"]) == {heartbeat.DIMENSION: "prod"}
    assert (alarm["statistic"], alarm["comparison_operator"], alarm["threshold"]) == ("Sum", "LessThanThreshold", 1)
    assert alarm["treat_missing_data"] == "breaching"
    periods = scope.evaluate(alarm["evaluation_periods"])
    assert periods == scope.evaluate(alarm["datapoints_to_alarm"]) == 3
    assert alarm["period"] * periods == 30 * 60
    topic = "${aws_sns_topic.alarms.arn}"
    assert alarm["alarm_actions"] == [topic] and alarm["ok_actions"] == [topic]
    # it notifies in prod, where the schedule runs unattended; test collects on demand and would always be in alarm
    assert scope.evaluate(alarm["actions_enabled"]) is True
    assert module_scope("test").evaluate(alarm["actions_enabled"]) is False


def test_the_alarm_reaches_the_failure_channel_through_sns_and_a_lambda_without_the_webhook_in_state() -> None:
    scope = module_scope("prod")
    resources = scope.module.resources
    [subscription] = resources["aws_sns_topic_subscription"].values()
    assert subscription["protocol"] == "lambda"
    assert subscription["endpoint"] == "${aws_lambda_function.alarm_webhook.arn}"
    assert resources["aws_lambda_permission"]["alarm_webhook"]["principal"] == "sns.amazonaws.com"
    function = resources["aws_lambda_function"]["alarm_webhook"]
    assert function["handler"] == f"{alarm_webhook.__name__.rsplit('.', 1)[1]}.handler"
    # the function's environment holds the parameter's name only: the URL is read from SSM when an alarm comes
    env = scope.evaluate(block(function, "environment")["variables"])
    alarm = resources["aws_cloudwatch_metric_alarm"]["no_commit"]
    assert env == {
        alarm_webhook.PARAMETER_ENV: "error_notification_slack_webhook_url",
        alarm_webhook.TTL_TABLE_ENV: "azure",  # the heartbeat alarm switches the history's TTL off
        alarm_webhook.TTL_ALARM_ENV: scope.evaluate(alarm["alarm_name"]),
    }
    archive = scope.module.data["archive_file"]["alarm_webhook"]
    assert archive["source_file"].endswith("/resources/alarm_webhook.py")
    assert (ROOT / "resources" / "alarm_webhook.py").exists()
    policy = scope.expression("local.alarm_webhook_policy")
    assert {a for s in policy["Statement"] for a in as_list(s["Action"])} == {
        "ssm:GetParameter", "logs:CreateLogStream", "logs:PutLogEvents", "dynamodb:DescribeTimeToLive",
        "dynamodb:UpdateTimeToLive",
    }  # fmt: skip
    ttl = [s for s in policy["Statement"] if "dynamodb:UpdateTimeToLive" in as_list(s["Action"])]
    assert [as_list(s["Resource"]) for s in ttl] == [[f"arn:aws:dynamodb:us-west-2:{ACCOUNT_ID}:table/azure"]]


def test_the_alarm_messenger_is_one_file_of_standard_library_and_boto3() -> None:
    """The Lambda package is that one file: it must import nothing else of this project or outside the runtime."""
    import ast

    tree = ast.parse((ROOT / "resources" / "alarm_webhook.py").read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    } | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree))
    assert imported <= set(sys.stdlib_module_names) | {"boto3", "__future__"}, imported
