"""Alert sensors: every failed run, and every run that succeeded with failing ERROR checks, is posted to the
Slack webhook (resources/slack.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg

from resources.error_text import redact
from resources.slack import SlackWebhook

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo

WEBSERVER_URL_ENV = "DAGSTER_WEBSERVER_URL"
RESOURCE_KEY = "slack_webhook"  # the sensor's resource parameter name: bind a SlackWebhook under this key

# Dagster's run tags for a single partition and for a ranged (single-run backfill) partition.
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

# How Dagster's run failure begins when steps failed; any other run failure (its bound, a dead worker) is said too.
STEPS_FAILED = "Execution of run for"
MAX_STEPS_SHOWN = 10  # a failed single-run backfill can fail many steps; the UI link has the rest
MAX_ERROR_CHARS = 300


def run_partition(tags: Mapping[str, str]) -> str | None:
    """The run's partition from its tags: one key, or `start...end` for a ranged backfill run."""
    if PARTITION_TAG in tags:
        return tags[PARTITION_TAG]
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return f"{tags[RANGE_START_TAG]}...{tags[RANGE_END_TAG]}"
    return None


# Dagster's wrappers around the user's exception: "Error occurred while executing op", "Error executing
# resource_fn on ResourceDefinition store" (a resource refused to start, e.g. a protected field set by run config).
DAGSTER_WRAPPERS = (
    "DagsterExecutionStepExecutionError",
    "DagsterResourceFunctionError",
    "DagsterUserCodeExecutionError",
)


def step_error_line(error: SerializableErrorInfo | None) -> str:
    """First line of a step's (or a run's) error, unwrapping Dagster's wrappers down to the exception raised."""
    if error is None:
        return "(no error recorded)"
    while error.cls_name in DAGSTER_WRAPPERS and error.cause is not None:
        error = error.cause
    return first_line(error.message)


def first_line(message: str | None) -> str:
    """The first line of an error, at most MAX_ERROR_CHARS, without ids (resources/error_text.py)."""
    line = redact(next((part.strip() for part in (message or "").splitlines() if part.strip()), ""))
    return line if len(line) <= MAX_ERROR_CHARS else line[:MAX_ERROR_CHARS] + "..."


def run_error_line(event: dg.DagsterEvent | None) -> str:
    """Why a run failed when no step did: the run failure's error (e.g. a resource that refused to start, with the
    in-process executor), else its message."""
    if event is None:
        return "the run failed outside its steps"
    error = getattr(event.event_specific_data, "error", None)
    return step_error_line(error) if error is not None else first_line(event.message)


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

    `failed_steps` holds (step key, first error line); `run_error` says why the run failed: when no step did (e.g.
    the run worker could not start), or beside the steps when the run was ended from outside (its bound, a dead
    worker); `ui_url` is the run's page in the Dagster UI.
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
        if run_error:
            lines.append(f"Run: {_escape(run_error)}")
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
        run_error = run_error_line(context.failure_event)
        if steps and run_error.startswith(STEPS_FAILED):
            run_error = None  # Dagster's summary of the failed steps, which the alert lists anyway
        _post_alert(context, slack_webhook, steps, run_error=run_error)

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
        # our checks put the reason in `error`; Dagster's (the freshness checks) in the description
        reason = str(error.value) if error is not None else evaluation.description
        detail = first_line(reason) if reason else "check failed"
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
