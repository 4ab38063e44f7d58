"""Run-failure alerts: a Dagster sensor that posts each failed run to a Slack-compatible webhook.

The legacy collector posted failures to a Slack webhook whose URL sat in SSM parameter
`error_notification_slack_webhook_url`; this keeps that, reads the URL from an environment variable first,
and turns into a logged no-op when neither is set (a laptop has no webhook). The URL is a secret: it is never
logged nor put in an error message, which always say "the Slack webhook" and the status instead.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import boto3
import dagster as dg
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import PrivateAttr

from resources.http import HttpRequestError, RetryingClient, RetryPolicy

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo

log = logging.getLogger(__name__)

ENDPOINT_NAME = "the Slack webhook"  # what logs and errors show instead of the URL
WEBSERVER_URL_ENV = "DAGSTER_WEBSERVER_URL"
RESOURCE_KEY = "slack_webhook"  # the sensor's resource parameter name: bind a SlackWebhook under this key

# Dagster's run tags for a single partition and for a ranged (single-run backfill) partition.
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

MAX_STEPS_SHOWN = 10  # a failed single-run backfill can fail many steps; the UI link has the rest
MAX_ERROR_CHARS = 300


class SlackWebhook(dg.ConfigurableResource):
    """Posts text to a Slack incoming webhook (or anything that speaks its JSON body).

    The URL comes from env var `url_env_var`, else from SSM parameter `ssm_parameter` (SecureString,
    decrypted); it is resolved at the first post, never at definition load, so loading needs no AWS access.
    Worst case a post takes about max_tries * timeout_seconds plus three waits of at most 10 s.
    """

    url_env_var: str = "SPOTLAKE_SLACK_WEBHOOK_URL"
    ssm_parameter: str | None = None
    ssm_endpoint_url: str | None = None
    region_name: str | None = None
    timeout_seconds: float = 10
    max_tries: int = 4
    backoff_base_seconds: float = 1.0

    _url: str | None = PrivateAttr(default=None)

    @property
    def configured(self) -> bool:
        """Whether any source of the URL is set (the value itself may still be unreadable)."""
        return bool(os.environ.get(self.url_env_var)) or bool(self.ssm_parameter)

    def post(self, text: str, blocks: Sequence[Mapping[str, Any]] | None = None) -> bool:
        """Send one message; True when the webhook accepted it.

        Never raises: alerts run when something already failed, and a broken webhook must not hide that
        failure. Transient answers (429, 5xx, timeouts, connection errors) are retried with jittered backoff,
        honouring Retry-After; after the last try one line is logged and False returned.
        """
        if not self.configured:
            _warn_no_webhook_once()
            return False
        url = self._webhook_url()
        if url is None:
            return False
        payload: dict[str, Any] = {"text": text}
        if blocks:
            payload["blocks"] = list(blocks)
        client = RetryingClient(
            policy=RetryPolicy(
                max_tries=self.max_tries,
                timeout_seconds=self.timeout_seconds,
                backoff_base_seconds=self.backoff_base_seconds,
                backoff_max_seconds=8.0,
                max_retry_after_seconds=10.0,
            )
        )
        try:
            # Slack answers a plain-text "ok", so any 2xx is accepted without parsing a body.
            client.request_json(
                "POST", url, endpoint=ENDPOINT_NAME, json=payload, accept=lambda r: 200 <= r.status_code < 300
            )
        except HttpRequestError as exc:  # its message names ENDPOINT_NAME and the status, never the URL
            log.error("failure alert not delivered: %s", exc)
            return False
        except Exception as exc:  # e.g. a malformed URL: its message may contain the URL
            log.error("failure alert not delivered: %s rejected the request (%s)", ENDPOINT_NAME, type(exc).__name__)
            return False
        return True

    def _webhook_url(self) -> str | None:
        """The URL from the env var, else from SSM (cached once read); None, logged, when SSM fails."""
        from_env = os.environ.get(self.url_env_var)
        if from_env:
            return from_env
        if self._url is None:
            self._url = self._read_ssm()
        return self._url

    def _read_ssm(self) -> str | None:
        ssm = boto3.client(
            "ssm",
            endpoint_url=self.ssm_endpoint_url,
            region_name=self.region_name,
            config=Config(connect_timeout=self.timeout_seconds, read_timeout=self.timeout_seconds),
        )
        try:
            answer = ssm.get_parameter(Name=self.ssm_parameter, WithDecryption=True)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown error")
            log.error("failure alert not delivered: cannot read SSM parameter %r (%s)", self.ssm_parameter, code)
            return None
        except BotoCoreError as exc:
            log.error("failure alert not delivered: cannot read SSM parameter %r (%s)", self.ssm_parameter, exc)
            return None
        return answer["Parameter"]["Value"] or None


@functools.cache
def _warn_no_webhook_once() -> None:
    # functools.cache makes this run once per process, however many resources or ticks ask.
    log.warning("no Slack webhook configured; failure alerts are off")


def run_partition(tags: Mapping[str, str]) -> str | None:
    """The run's partition from its tags: one key, or `start...end` for a ranged backfill run."""
    if PARTITION_TAG in tags:
        return tags[PARTITION_TAG]
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return f"{tags[RANGE_START_TAG]}...{tags[RANGE_END_TAG]}"
    return None


def step_error_line(error: SerializableErrorInfo | None) -> str:
    """First line of a step's error, unwrapping Dagster's "Error occurred while executing op" wrapper."""
    if error is None:
        return "(no error recorded)"
    if error.cls_name == "DagsterExecutionStepExecutionError" and error.cause is not None:
        error = error.cause
    return first_line(error.message)


def first_line(message: str | None) -> str:
    line = next((part.strip() for part in (message or "").splitlines() if part.strip()), "")
    return line if len(line) <= MAX_ERROR_CHARS else line[:MAX_ERROR_CHARS] + "..."


def run_url(webserver_url: str | None, run_id: str) -> str | None:
    """Link to the run in the Dagster UI, or None when the UI's address is unknown."""
    return f"{webserver_url.rstrip('/')}/runs/{run_id}" if webserver_url else None


def _escape(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def format_failure(
    run_id: str,
    job_name: str,
    partition: str | None,
    failed_steps: Sequence[tuple[str, str]],
    ui_url: str | None,
    run_error: str | None = None,
    headline: str = "SpotLake run failed",
    items: str = "Failed steps",
) -> str:
    """The Slack text for one failed run.

    `failed_steps` holds (step key, first error line); `run_error` says why the run failed when no step did
    (e.g. the run worker could not start); `ui_url` is the run's page in the Dagster UI.
    """
    lines = [
        f":rotating_light: {headline}: job `{_escape(job_name)}`, "
        f"partition `{_escape(partition) if partition else 'none'}`",
        f"Run id: `{run_id}`",
    ]
    if failed_steps:
        lines.append(f"{items} ({len(failed_steps)}):")
        lines += [f"• `{_escape(key)}`: {_escape(error)}" for key, error in failed_steps[:MAX_STEPS_SHOWN]]
        if len(failed_steps) > MAX_STEPS_SHOWN:
            lines.append(f"... and {len(failed_steps) - MAX_STEPS_SHOWN} more")
    else:
        lines.append(f"No step failed: {_escape(run_error or 'the run failed outside its steps')}")
    if ui_url:
        lines.append(f"<{ui_url}|Open the run in Dagster>")
    return "\n".join(lines)


def _post_alert(
    context: dg.RunStatusSensorContext, slack_webhook: SlackWebhook, failures: Sequence[tuple[str, str]], **fmt: Any
) -> None:
    """Format the run's alert (see format_failure for `fmt`) and post it."""
    run = context.dagster_run
    url = run_url(os.environ.get(WEBSERVER_URL_ENV), run.run_id)
    text = format_failure(run.run_id, run.job_name, run_partition(run.tags), failures, url, **fmt)
    if slack_webhook.post(text):
        context.log.info(f"alert sent for run {run.run_id}")


def build_failure_sensor(
    name: str = "run_failure_alert",
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """A run-failure sensor over every job of the code location; needs a SlackWebhook under RESOURCE_KEY."""

    @dg.run_failure_sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Posts every failed run (job, partition, failing steps, link) to the Slack webhook.",
    )
    def _alert(context: dg.RunFailureSensorContext, slack_webhook: SlackWebhook) -> None:
        steps = [
            (event.step_key or "(unknown step)", step_error_line(event.event_specific_data.error))
            for event in context.get_step_failure_events()
        ]
        _post_alert(
            context, slack_webhook, steps, run_error=None if steps else first_line(context.failure_event.message)
        )

    return _alert


run_failure_alert = build_failure_sensor()


def failed_error_checks(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(asset / check, first line of its error) of every ERROR-severity check that failed in the run."""
    failed = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.dagster_event.event_specific_data
        if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        error = evaluation.metadata.get("error")
        detail = first_line(str(error.value)) if error is not None else "check failed"
        failed.append((f"{evaluation.asset_key.to_user_string()} / {evaluation.check_name}", detail))
    return failed


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="failed_check_alert",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts runs that succeeded with failing ERROR checks (a source that failed: a partial snapshot).",
)
def failed_check_alert(context: dg.RunStatusSensorContext, slack_webhook: SlackWebhook) -> None:
    """A failed Azure source does not fail its run (the partial snapshot is still published); its failing
    `collected` check is what operators must hear about."""
    checks = failed_error_checks(context.instance, context.dagster_run.run_id)
    if not checks:
        return
    _post_alert(
        context, slack_webhook, checks, headline="SpotLake run finished with failing checks", items="Failing checks"
    )
