"""The CloudWatch alarms' messenger: a Lambda function subscribed to the alarm topic that posts each alarm to the
failure channel, the same Slack-compatible webhook the Dagster alert sensors post to (resources/slack.py).

It must work when Dagster does not (docs/operations.md "Who is told"): it runs on AWS's own path (CloudWatch ->
SNS -> Lambda) and depends on nothing of this project. Standard library and boto3 only (the Lambda runtime provides
boto3); infra/modules/collector/alarms.tf packages this one file.

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


def handler(event: dict[str, Any], context: Any = None) -> dict[str, int]:
    """SNS -> this: post every alarm notification of the event."""
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
        if url is None:
            log.error("alarm not delivered: SSM parameter %s holds no webhook URL: %s", parameter, text)
            continue
        post(url, text)
        posted += 1
    return {"posted": posted}
