"""Environments: names of the spec, overrides by environment variable, clear errors."""

import subprocess
import sys
from pathlib import Path

import pytest

from resources.settings import ENV_VARS, SettingsError, load_settings

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
    values = {name: f"value-of-{name}" for name in ENV_VARS} | {"partition_start": "2027-01-01-00:00"}
    environ = {"SPOTLAKE_ENV": "prod", **{ENV_VARS[name]: value for name, value in values.items()}}
    s = load_settings(environ)
    for name, value in values.items():
        assert getattr(s, name) == value


@pytest.mark.parametrize("start", ["2026-11-01", "2026-11-01-00:05", "tomorrow"])
def test_a_partition_start_that_is_not_a_partition_key_is_refused(start):
    with pytest.raises(SettingsError, match=f"SPOTLAKE_PARTITION_START.*{start}"):
        load_settings({"SPOTLAKE_PARTITION_START": start})


def test_unknown_environment_lists_valid_ones():
    with pytest.raises(SettingsError, match=r"'staging'.*prod, test, local"):
        load_settings({"SPOTLAKE_ENV": "staging"})


def test_test_environment_cannot_be_pointed_at_production():
    with pytest.raises(SettingsError, match="SPOTLAKE_WRITE_BUCKET"):
        load_settings({"SPOTLAKE_ENV": "test", "SPOTLAKE_WRITE_BUCKET": "spotlake"})
    with pytest.raises(SettingsError, match="SPOTLAKE_DYNAMODB_TABLE"):
        load_settings({"SPOTLAKE_ENV": "test", "SPOTLAKE_DYNAMODB_TABLE": "azure"})


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
