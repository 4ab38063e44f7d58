"""Environments: names of the spec, overrides by environment variable, clear errors."""

import subprocess
import sys
from pathlib import Path

import pytest

from resources.settings import ENV_VARS, TEST_SPS_MAX_CALLS_PER_RUN, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("env", "write", "read", "table"),
    [
        ("prod", "spotlake", "spotlake", "azure"),
        ("test", "spotlake-test", "spotlake", "azure-test"),
        ("local", "spotlake-local", "spotlake", "azure-local"),
    ],
)
def test_environment_names(env, write, read, table):
    s = load_settings({"SPOTLAKE_ENV": env})
    assert (s.write_bucket, s.read_bucket, s.dynamodb_table) == (write, read, table)


def test_default_is_local_with_local_endpoints():
    s = load_settings({})
    assert s.env == "local"
    assert s.aws_endpoint_url.startswith("http://127.0.0.1:")
    assert load_settings({"SPOTLAKE_ENV": "prod"}).aws_endpoint_url is None


def test_every_setting_overridable():
    values = {name: f"value-of-{name}" for name in ENV_VARS} | {
        "partition_start": "2027-01-01-00:00",
        "sps_max_calls_per_run": 7,
    }
    # `local` checks no endpoint (a laptop's own servers); prod and test do, below
    environ = {"SPOTLAKE_ENV": "local", **{ENV_VARS[name]: str(value) for name, value in values.items()}}
    s = load_settings(environ)
    for name, value in values.items():
        assert getattr(s, name) == value


def test_production_endpoints_are_microsofts_and_awss():
    s = load_settings({"SPOTLAKE_ENV": "prod"})
    assert s.azure_authority == "login.microsoftonline.com"
    assert (s.azure_management_url, s.azure_prices_url) == (
        "https://management.azure.com",
        "https://prices.azure.com/api/retail/prices",
    )
    assert s.aws_endpoint_url is None
    # the same hosts written out in full are accepted, and AWS's own (e.g. VPC) endpoints
    load_settings(
        {
            "SPOTLAKE_ENV": "prod",
            "SPOTLAKE_AZURE_AUTHORITY": "https://login.microsoftonline.com/",
            "SPOTLAKE_AZURE_MANAGEMENT_URL": "https://management.azure.com/",
            "SPOTLAKE_AWS_ENDPOINT_URL": "https://bucket.vpce-0a1b.s3.us-west-2.vpce.amazonaws.com",
        }
    )


@pytest.mark.parametrize("env", ["prod", "test"])
@pytest.mark.parametrize(
    "authority",
    [
        "attacker.example.com",
        "https://attacker.example.com",
        "login.microsoftonline.com.attacker.example.com",
        "evil-login.microsoftonline.com",
        "login.microsoftonline.com@attacker.example.com",  # user info: the host is attacker.example.com
        "http://login.microsoftonline.com",
        "login.microsoftonline.com:8443",
        "login.microsoftonline.us",  # a sovereign cloud: the collector serves public Azure only
        "localhost:4581",  # a name, not a loopback address: resolution could send it anywhere
    ],
)
def test_deployed_environments_send_credentials_only_to_microsofts_login_host(env, authority):
    with pytest.raises(SettingsError, match="SPOTLAKE_AZURE_AUTHORITY.*login.microsoftonline.com"):
        load_settings({"SPOTLAKE_ENV": env, "SPOTLAKE_AZURE_AUTHORITY": authority})


@pytest.mark.parametrize("env", ["prod", "test"])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SPOTLAKE_AZURE_MANAGEMENT_URL", "https://attacker.example.com"),  # the bearer token goes there
        ("SPOTLAKE_AZURE_MANAGEMENT_URL", "http://management.azure.com"),
        ("SPOTLAKE_AZURE_PRICES_URL", "https://prices.example.com/api/retail/prices"),
        ("SPOTLAKE_AWS_ENDPOINT_URL", "https://attacker.example.com"),  # SigV4-signed requests go there
        ("SPOTLAKE_AWS_ENDPOINT_URL", "http://s3.us-west-2.amazonaws.com"),
    ],
)
def test_deployed_environments_refuse_foreign_endpoints(env, name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings({"SPOTLAKE_ENV": env, name: value})


def test_loopback_endpoints_only_in_test_and_local():
    """The test suite runs `test` against the embedded stack on 127.0.0.1; production never talks to loopback."""
    local = {
        "SPOTLAKE_AZURE_AUTHORITY": "127.0.0.1:4581",
        "SPOTLAKE_AZURE_MANAGEMENT_URL": "http://127.0.0.1:4580",
        "SPOTLAKE_AZURE_PRICES_URL": "http://127.0.0.1:4580/api/retail/prices",
        "SPOTLAKE_AWS_ENDPOINT_URL": "http://[::1]:4566",
    }
    assert load_settings({"SPOTLAKE_ENV": "test", **local}).azure_authority == "127.0.0.1:4581"
    assert load_settings({"SPOTLAKE_ENV": "local", **local}).azure_authority == "127.0.0.1:4581"
    for name, value in local.items():
        with pytest.raises(SettingsError, match=name):
            load_settings({"SPOTLAKE_ENV": "prod", name: value})


@pytest.mark.parametrize(
    "name", ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_CLOUDWATCH"]
)
def test_boto3s_own_endpoint_variables_follow_the_same_rule(name):
    """boto3 uses AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> when the code passes no endpoint: an audit saw
    `prod` sign requests with the task's credentials to a loopback listener named by AWS_ENDPOINT_URL."""
    refused = [
        ("prod", "http://127.0.0.1:4566", "127.0.0.1"),
        ("prod", "https://AKIAEXAMPLE:hunter2@attacker.example.com", "attacker.example.com"),  # user info
        ("prod", "http://s3.us-west-2.amazonaws.com", "s3.us-west-2.amazonaws.com"),  # not https
        ("test", "https://attacker.example.com", "attacker.example.com"),
    ]
    for env, value, host in refused:
        with pytest.raises(SettingsError) as raised:
            load_settings({"SPOTLAKE_ENV": env, name: value})
        message = str(raised.value)
        assert message.startswith(f"{name} (host {host}) is refused in SPOTLAKE_ENV={env}"), message
        assert "hunter2" not in message and "AKIA" not in message and "SPOTLAKE_AWS_ENDPOINT_URL" in message
    # as SPOTLAKE_AWS_ENDPOINT_URL: AWS's own hosts over https, loopback in `test` (the suite's embedded stack),
    # anything in `local` (tests/test_run_launcher.py points boto3 at moto so); an empty value is unset for boto3
    vpc = "https://bucket.vpce-0a1b.s3.us-west-2.vpce.amazonaws.com"
    assert load_settings({"SPOTLAKE_ENV": "prod", name: vpc, "AWS_ENDPOINT_URL_SSM": ""}).env == "prod"
    assert load_settings({"SPOTLAKE_ENV": "test", name: "http://127.0.0.1:4566"}).env == "test"
    assert load_settings({"SPOTLAKE_ENV": "local", name: "http://attacker.example.com"}).env == "local"


def test_the_query_apis_settings_refuse_boto3s_endpoint_variable_in_prod():
    """The query API (a Lambda, resources/query_api/handler.py) builds its DynamoDB client from load_settings' values:
    its settings are refused before the client exists, and its handler answers 500 "misconfigured"."""
    from resources.query_api.config import QueryApiConfig

    with pytest.raises(SettingsError, match=r"^AWS_ENDPOINT_URL_DYNAMODB \(host 127\.0\.0\.1\) is refused"):
        QueryApiConfig.from_environ({"SPOTLAKE_ENV": "prod", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:4566"})


def test_the_shared_config_files_endpoint_url_follows_the_same_rule(tmp_path):
    """boto3 also takes an endpoint from its shared config file: a profile's `endpoint_url`, or one service's under a
    `services` section. Every one in the file is checked, whichever profile is in use."""
    config = tmp_path / "config"
    config.write_text(
        "[default]\nregion = us-west-2\nservices = here\n\n"
        "[services here]\ndynamodb =\n  endpoint_url = http://127.0.0.1:8000\n"
    )
    with pytest.raises(SettingsError, match=rf"^endpoint_url in the AWS shared config file {config}:7 \(host 127"):
        load_settings({"SPOTLAKE_ENV": "prod", "AWS_CONFIG_FILE": str(config)})
    assert load_settings({"SPOTLAKE_ENV": "test", "AWS_CONFIG_FILE": str(config)}).env == "test"
    # the default file, ~/.aws/config
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[profile other]\nendpoint_url = https://attacker.example.com\n")
    with pytest.raises(SettingsError, match=r"\.aws/config:2 \(host attacker\.example\.com\) .* SPOTLAKE_ENV=test"):
        load_settings({"SPOTLAKE_ENV": "test", "HOME": str(tmp_path)})
    assert load_settings({"SPOTLAKE_ENV": "local", "HOME": str(tmp_path)}).env == "local"
    # AWS's own endpoint is accepted, a comment is not a setting
    config.write_text(
        "[default]\n# endpoint_url = http://127.0.0.1:1\nendpoint_url = https://dynamodb.us-west-2.amazonaws.com\n"
    )
    assert load_settings({"SPOTLAKE_ENV": "prod", "AWS_CONFIG_FILE": str(config)}).env == "prod"


def test_sps_call_cap_is_on_in_test_only():
    assert load_settings({"SPOTLAKE_ENV": "test"}).sps_max_calls_per_run == TEST_SPS_MAX_CALLS_PER_RUN == 10
    assert load_settings({"SPOTLAKE_ENV": "prod"}).sps_max_calls_per_run is None
    assert load_settings({"SPOTLAKE_ENV": "local"}).sps_max_calls_per_run is None
    assert load_settings({"SPOTLAKE_ENV": "test", "SPOTLAKE_SPS_MAX_CALLS_PER_RUN": "0"}).sps_max_calls_per_run == 0
    for bad in ("-1", "ten", "2.5"):
        with pytest.raises(SettingsError, match=f"SPOTLAKE_SPS_MAX_CALLS_PER_RUN='{bad}'"):
            load_settings({"SPOTLAKE_ENV": "test", "SPOTLAKE_SPS_MAX_CALLS_PER_RUN": bad})


@pytest.mark.parametrize("start", ["2026-11-01", "2026-11-01-00:05", "tomorrow"])
def test_a_partition_start_that_is_not_a_partition_key_is_refused(start):
    with pytest.raises(SettingsError, match=f"SPOTLAKE_PARTITION_START.*{start}"):
        load_settings({"SPOTLAKE_PARTITION_START": start})


def test_unknown_environment_lists_valid_ones():
    with pytest.raises(SettingsError, match=r"'staging'.*prod, test, local"):
        load_settings({"SPOTLAKE_ENV": "staging"})


@pytest.mark.parametrize("env", ["test", "local"])
def test_only_prod_can_be_pointed_at_production(env):
    with pytest.raises(SettingsError, match="SPOTLAKE_WRITE_BUCKET"):
        load_settings({"SPOTLAKE_ENV": env, "SPOTLAKE_WRITE_BUCKET": "spotlake"})
    with pytest.raises(SettingsError, match="SPOTLAKE_DYNAMODB_TABLE"):
        load_settings({"SPOTLAKE_ENV": env, "SPOTLAKE_DYNAMODB_TABLE": "azure"})


@pytest.mark.parametrize("env", ["prod", "test", "local"])
def test_definitions_validate_without_network_or_credentials(env):
    """`dagster definitions validate` loads every environment: resources resolve lazily."""
    clean_env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(ROOT),
        "SPOTLAKE_ENV": env,
        # an unroutable endpoint: loading must not try to reach anything
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT, env=clean_env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_definitions_fail_for_unknown_environment():
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), "SPOTLAKE_ENV": "staging"},
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "valid ones: prod, test, local" in proc.stdout + proc.stderr
