"""The CloudWatch alarms' messenger: a Lambda function subscribed to the alarm topic that posts each alarm to the
failure channel, the same Slack-compatible webhook the Dagster alert sensors post to (resources/slack.py).

It must work when Dagster does not (docs/operations.md "Who is told"): it runs on AWS's own path (CloudWatch ->
SNS -> Lambda) and depends on nothing of this project. Standard library and boto3 only (the Lambda runtime provides
boto3); infra/modules/collector/alarms.tf packages this one file.

When the heartbeat alarm fires (the collector has stopped committing), it also switches DynamoDB's TTL off on the
history table (TTL_TABLE_ENV): the collector's guard (resources/archive_expiry.py) lets items expire only while it
runs and every month they may come from is archived and verified; with the collector stopped nothing would switch TTL
off before an unarchived month's items expire. The guard switches it on again once partitions commit.

The webhook URL is a secret: it is read from the SSM parameter named by WEBHOOK_PARAMETER (SecureString) when a
message comes, never stored in the function's environment nor in Terraform state, never logged. A post that fails
raises, so Lambda's asynchronous retries (two) try again; an alarm with no webhook configured is logged.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from typing import Any

import boto3

log = logging.getLogger()
log.setLevel(logging.INFO)

PARAMETER_ENV = "WEBHOOK_PARAMETER"
TIMEOUT_SECONDS = 10
TRIES = 3
# The history table whose TTL the heartbeat alarm switches off, and that alarm's name (both unset: nothing is switched).
TTL_TABLE_ENV = "TTL_GUARD_TABLE"
TTL_ALARM_ENV = "TTL_GUARD_ALARM"
TTL_ATTRIBUTE = "expires_at"  # spotlake_assets/core/archive_keys.py EXPIRY_ATTRIBUTE (this file stands alone)
STATE_ICONS = {"ALARM": ":rotating_light:", "OK": ":white_check_mark:", "INSUFFICIENT_DATA": ":grey_question:"}


class WebhookError(RuntimeError):
    """The webhook did not accept the alarm (the message names the status, never the URL)."""


def _escape(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def alarm_text(message: dict[str, Any]) -> str:
    """The channel's text for one CloudWatch alarm notification (the JSON CloudWatch publishes to SNS)."""
    state = str(message.get("NewStateValue", "UNKNOWN"))
    name = str(message.get("AlarmName", "an alarm"))
    lines = [f"{STATE_ICONS.get(state, ':grey_question:')} SpotLake alarm `{_escape(name)}` is {_escape(state)}"]
    if description := message.get("AlarmDescription"):
        lines.append(_escape(str(description)))
    if reason := message.get("NewStateReason"):
        lines.append(f"Why: {_escape(str(reason))}")
    since = message.get("StateChangeTime")
    region = message.get("Region")
    if since or region:
        lines.append(f"Since {_escape(str(since or '?'))} ({_escape(str(region or 'unknown region'))})")
    return "\n".join(lines)


def webhook_url(parameter: str) -> str | None:
    """The webhook URL from SSM (decrypted); None when the parameter is missing or empty."""
    ssm = boto3.client("ssm")
    try:
        value = ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    return value or None


def post(url: str, text: str, sleep=time.sleep) -> None:
    """POST {"text": text}; 429 and 5xx answers and network errors are tried again, TRIES times in all."""
    body = json.dumps({"text": text}).encode()
    last = "no answer"
    for attempt in range(TRIES):
        if attempt:
            sleep(2**attempt)
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310 - https in AWS
                if 200 <= answer.status < 300:
                    return
                last = f"HTTP {answer.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code != 429 and exc.code < 500:
                break
        except (urllib.error.URLError, OSError) as exc:
            last = type(getattr(exc, "reason", exc)).__name__
    raise WebhookError(f"the Slack webhook did not accept the alarm: {last}")


def switch_off_expiry(table: str) -> str:
    """Switch TTL off on `table` if it is on; returns the line the alarm's message adds. Never raises: the alarm is
    posted whatever happens here, saying what did."""
    dynamodb = boto3.client("dynamodb")
    try:
        status = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"].get("TimeToLiveStatus")
        if status not in ("ENABLED", "ENABLING"):
            return f"TTL on table {table} is already off ({status}): no history item can expire."
        spec = {"Enabled": False, "AttributeName": TTL_ATTRIBUTE}
        dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification=spec)
    except Exception as exc:  # noqa: BLE001 - any failure here must still let the alarm be posted
        log.error("could not switch TTL off on table %s: %s", table, exc)
        return (f"TTL on table {table} could NOT be switched off ({type(exc).__name__}): switch it off by hand "
                "(docs/operations.md \"Hot and cold\") until the collector commits again.")  # fmt: skip
    log.info("TTL switched off on table %s", table)
    return (f"TTL on table {table} switched off: no history item expires until the collector commits again and "
            "its guard finds every due month archived and verified.")  # fmt: skip


def handler(event: dict[str, Any], context: Any = None) -> dict[str, int]:
    """SNS -> this: post every alarm notification of the event (the heartbeat alarm's ALARM first switches TTL
    off on the history table)."""
    parameter = os.environ[PARAMETER_ENV]
    records = [r for r in event.get("Records", []) if "Sns" in r]
    url = webhook_url(parameter) if records else None
    posted = 0
    for record in records:
        try:
            message = json.loads(record["Sns"]["Message"])
        except (TypeError, ValueError):
            message = {"AlarmName": record["Sns"].get("Subject") or "unknown", "NewStateReason": "unreadable message"}
        text = alarm_text(message)
        table, guarded = os.environ.get(TTL_TABLE_ENV), os.environ.get(TTL_ALARM_ENV)
        if table and guarded and message.get("AlarmName") == guarded and message.get("NewStateValue") == "ALARM":
            text += "\n" + switch_off_expiry(table)
        if url is None:
            log.error("alarm not delivered: SSM parameter %s holds no webhook URL: %s", parameter, text)
            continue
        post(url, text)
        posted += 1
    return {"posted": posted}
