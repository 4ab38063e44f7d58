"""The CloudWatch alarms' messenger (resources/alarm_webhook.py), as Lambda runs it: an SNS event in, the webhook URL
read from SSM (moto's server over HTTP), the alarm posted to a local Slack-like receiver."""

from __future__ import annotations

import json
import logging
import uuid

import boto3
import pytest

from resources import alarm_webhook

from .test_alerts import SECRET, Answer, Receiver, receiver  # noqa: F401 - pytest fixture

ALARM = {
    "AlarmName": "spotlake-azure-prod-no-partition-committed",
    "AlarmDescription": "No partition of the SpotLake Azure collector (prod) committed for 30 minutes: <check>",
    "NewStateValue": "ALARM",
    "NewStateReason": "Threshold Crossed: no datapoints were received for 3 periods and 3 missing datapoints were "
    "treated as [Breaching].",
    "StateChangeTime": "2026-12-07T03:40:12.345+0000",
    "Region": "US West (Oregon)",
}


def sns_event(*messages: dict | str) -> dict:
    bodies = [json.dumps(m) if isinstance(m, dict) else m for m in messages]
    return {"Records": [{"EventSource": "aws:sns", "Sns": {"Subject": "ALARM", "Message": b}} for b in bodies]}


@pytest.fixture
def parameter(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The webhook's SSM parameter name (unique per test), the function's environment pointed at moto's SSM."""
    name = f"error_notification_slack_webhook_url_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(alarm_webhook.PARAMETER_ENV, name)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", aws_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    return name


def put_url(name: str, url: str) -> None:
    boto3.client("ssm").put_parameter(Name=name, Value=url, Type="SecureString")


def test_an_alarm_and_its_resolution_are_posted_to_the_failure_webhook(parameter, receiver):  # noqa: F811
    put_url(parameter, receiver.url)
    resolved = {**ALARM, "NewStateValue": "OK", "NewStateReason": "Threshold Crossed: 1 datapoint [1.0]"}
    assert alarm_webhook.handler(sns_event(ALARM, resolved)) == {"posted": 2}
    first, second = (post["json"]["text"] for post in receiver.posts)
    assert first.startswith(":rotating_light: SpotLake alarm `spotlake-azure-prod-no-partition-committed` is ALARM")
    assert "committed for 30 minutes: &lt;check&gt;" in first  # Slack's control characters escaped
    assert "3 missing datapoints were treated as [Breaching]" in first and "US West (Oregon)" in first
    assert second.startswith(":white_check_mark:") and "is OK" in second


def test_a_refusing_webhook_raises_for_lambdas_retry_without_the_url(parameter, receiver, caplog):  # noqa: F811
    put_url(parameter, receiver.url)
    receiver.script.extend([Answer(status=500), Answer(status=503), Answer(status=502)])
    sleeps: list[float] = []
    with pytest.raises(alarm_webhook.WebhookError) as raised:
        alarm_webhook.post(receiver.url, "text", sleep=sleeps.append)
    assert "HTTP 502" in str(raised.value) and SECRET not in str(raised.value)
    assert len(receiver.posts) == 3 and sleeps == [2, 4]
    receiver.script.append(Answer(status=400))
    with pytest.raises(alarm_webhook.WebhookError, match="HTTP 400"):
        alarm_webhook.post(receiver.url, "text", sleep=sleeps.append)
    assert len(receiver.posts) == 4  # a refused payload is not sent again


def test_no_webhook_configured_logs_the_alarm_and_posts_nothing(parameter, receiver, caplog):  # noqa: F811
    with caplog.at_level(logging.ERROR):
        assert alarm_webhook.handler(sns_event(ALARM)) == {"posted": 0}
    assert receiver.posts == []
    assert f"SSM parameter {parameter} holds no webhook URL" in caplog.text and "is ALARM" in caplog.text


def test_an_unreadable_message_is_still_posted(parameter, receiver):  # noqa: F811
    put_url(parameter, receiver.url)
    assert alarm_webhook.handler(sns_event("not json")) == {"posted": 1}
    assert "unreadable message" in receiver.posts[0]["json"]["text"]


@pytest.fixture
def history_table(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """A history table on moto with TTL on `expires_at` enabled, and the messenger's environment naming it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", aws_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    client = boto3.client("dynamodb")
    table = f"azure-ttl-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])  # fmt: skip
    spec = {"Enabled": True, "AttributeName": "expires_at"}
    client.update_time_to_live(TableName=table, TimeToLiveSpecification=spec)
    monkeypatch.setenv(alarm_webhook.TTL_TABLE_ENV, table)
    monkeypatch.setenv(alarm_webhook.TTL_ALARM_ENV, ALARM["AlarmName"])
    return client, table


def ttl_status(client, table: str) -> str:
    return client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]["TimeToLiveStatus"]


def test_the_heartbeat_alarm_switches_the_historys_ttl_off_and_says_so(parameter, receiver, history_table):  # noqa: F811
    client, table = history_table
    put_url(parameter, receiver.url)
    # another alarm, or the heartbeat's return to OK, leaves TTL as it is (the collector's guard switches it on)
    alarm_webhook.handler(sns_event({**ALARM, "AlarmName": "another-alarm"}, {**ALARM, "NewStateValue": "OK"}))
    assert ttl_status(client, table) == "ENABLED"
    assert alarm_webhook.handler(sns_event(ALARM)) == {"posted": 1}
    assert ttl_status(client, table) == "DISABLED"
    text = receiver.posts[-1]["json"]["text"]
    assert f"TTL on table {table} switched off" in text and "no-partition-committed" in text
    # again (the alarm re-notifies): already off, said so, nothing else changes
    alarm_webhook.handler(sns_event(ALARM))
    assert "already off" in receiver.posts[-1]["json"]["text"] and ttl_status(client, table) == "DISABLED"


def test_the_alarm_is_posted_even_when_ttl_cannot_be_switched_off(parameter, receiver, history_table, monkeypatch):  # noqa: F811
    _, table = history_table
    put_url(parameter, receiver.url)
    monkeypatch.setenv(alarm_webhook.TTL_TABLE_ENV, f"{table}-gone")  # DynamoDB answers ResourceNotFound
    assert alarm_webhook.handler(sns_event(ALARM)) == {"posted": 1}
    assert f"TTL on table {table}-gone could NOT be switched off" in receiver.posts[-1]["json"]["text"]
