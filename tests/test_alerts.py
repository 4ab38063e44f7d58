"""Run-failure alerts against a real local HTTP receiver, a moto SSM server and a real Dagster instance."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dagster as dg
import pytest
import requests

from resources import slack
from resources.slack import SlackWebhook
from spotlake_assets.local.aws import local_client
from spotlake_assets.sensors import (
    RESOURCE_KEY,
    failed_check_alert,
    format_failure,
    run_failure_alert,
    run_partition,
)

URL_ENV = "SPOTLAKE_TEST_SLACK_WEBHOOK_URL"
SECRET = "T000SECRET/B000SECRET/xoxsecrettoken"  # the part of a webhook URL that must never be logged


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"
    delay_s: float = 0.0


@dataclass
class Receiver:
    """A Slack-like webhook on 127.0.0.1: records every JSON body, answers from a script, then 200 "ok"."""

    url: str
    posts: list[dict[str, Any]]
    script: list[Answer]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    posts: list[dict[str, Any]] = []
    script: list[Answer] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                posts.append({"path": self.path, "json": json.loads(body)})
                answer = script.pop(0) if script else Answer()
            time.sleep(answer.delay_s)
            try:
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(answer.body.encode())
            except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_port}/services/{SECRET}", posts, script)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def webhook(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> SlackWebhook:
    monkeypatch.setenv(URL_ENV, receiver.url)
    return SlackWebhook(url_env_var=URL_ENV, timeout_seconds=0.3, max_tries=4, backoff_base_seconds=0.01)


# --- the pure formatter ----------------------------------------------------------------------------------


def test_format_failure_names_run_job_partition_steps_and_link() -> None:
    text = format_failure(
        "run-123",
        "azure_collect",
        "2026-01-01-10:10",
        [("azure_price_raw", "ValueError: no <items> & nothing"), ("azure_sps_raw", "HTTP 429")],
        "http://dagster.example/runs/run-123",
    )
    assert "run-123" in text and "azure_collect" in text and "2026-01-01-10:10" in text
    # Slack control characters are escaped
    assert "`azure_price_raw`: ValueError: no &lt;items&gt; &amp; nothing" in text
    assert "`azure_sps_raw`: HTTP 429" in text
    assert "<http://dagster.example/runs/run-123|" in text


def test_format_failure_without_steps_or_ui_says_why_and_has_no_link() -> None:
    text = format_failure("run-9", "job", None, [], None, run_error="run worker crashed")
    assert "partition `none`" in text
    assert "No step failed: run worker crashed" in text
    assert "http" not in text


def test_format_failure_caps_the_step_list() -> None:
    steps = [(f"step_{i}", "boom") for i in range(25)]
    text = format_failure("r", "j", None, steps, None)
    assert "Failed steps (25):" in text
    assert "`step_9`" in text and "`step_10`" not in text
    assert "... and 15 more" in text


def test_run_partition_reads_single_and_range_tags() -> None:
    assert run_partition({"dagster/partition": "2026-01-01-10:10"}) == "2026-01-01-10:10"
    ranged = {
        "dagster/asset_partition_range_start": "2026-01-01-00:00",
        "dagster/asset_partition_range_end": "2026-01-01-23:50",
    }
    assert run_partition(ranged) == "2026-01-01-00:00...2026-01-01-23:50"
    assert run_partition({}) is None


# --- the webhook client ----------------------------------------------------------------------------------


def test_post_sends_text_and_blocks(webhook: SlackWebhook, receiver: Receiver) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
    assert webhook.post("hello", blocks=blocks) is True
    assert receiver.posts == [{"path": f"/services/{SECRET}", "json": {"text": "hello", "blocks": blocks}}]


def test_post_retries_server_errors_then_succeeds(webhook: SlackWebhook, receiver: Receiver) -> None:
    receiver.script += [Answer(500), Answer(503)]
    assert webhook.post("hello") is True
    assert len(receiver.posts) == 3


def test_post_honours_retry_after_on_429(webhook: SlackWebhook, receiver: Receiver) -> None:
    receiver.script.append(Answer(429, {"Retry-After": "0"}, "rate_limited"))
    started = time.monotonic()
    assert webhook.post("hello") is True
    assert len(receiver.posts) == 2
    assert time.monotonic() - started < 2


def test_post_retries_a_timeout(webhook: SlackWebhook, receiver: Receiver) -> None:
    receiver.script.append(Answer(delay_s=1.0))  # longer than the 0.3 s timeout
    assert webhook.post("hello") is True
    assert len(receiver.posts) == 2


def test_post_gives_up_after_max_tries_without_raising_or_leaking_the_url(
    webhook: SlackWebhook, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script += [Answer(500, body="boom")] * 10
    with caplog.at_level(logging.INFO, logger=slack.__name__):
        assert webhook.post("hello") is False
    assert len(receiver.posts) == 4
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "the Slack webhook: HTTP 500 after 4 tries" in errors[0]
    assert "SECRET" not in caplog.text


def test_post_does_not_retry_a_rejected_payload(webhook: SlackWebhook, receiver: Receiver) -> None:
    receiver.script.append(Answer(404, body="no_service"))
    assert webhook.post("hello") is False
    assert len(receiver.posts) == 1


def test_post_to_a_closed_port_fails_quietly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(URL_ENV, f"http://127.0.0.1:9/services/{SECRET}")  # discard port: nothing listens
    hook = SlackWebhook(url_env_var=URL_ENV, timeout_seconds=0.3, max_tries=2, backoff_base_seconds=0.01)
    with caplog.at_level(logging.ERROR, logger=slack.__name__):
        assert hook.post("hello") is False
    assert "no response after 2 tries" in caplog.text
    assert "SECRET" not in caplog.text


def test_no_webhook_configured_is_a_noop_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)
    slack._warn_no_webhook_once.cache_clear()  # a fresh "process" for this test
    with caplog.at_level(logging.INFO, logger=slack.__name__):
        assert SlackWebhook(url_env_var=URL_ENV).post("one") is False
        assert SlackWebhook(url_env_var=URL_ENV).post("two") is False
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["no Slack webhook configured; failure alerts are off"]


def test_debug_logging_never_prints_the_webhook_path(
    webhook: SlackWebhook, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """urllib3 logs every request line at DEBUG (`"POST /services/T000/B000/xyz HTTP/1.1" 200`): not the webhook's,
    retries included; the same libraries still log other requests of the process."""
    receiver.script += [Answer(500), Answer(429, {"Retry-After": "0"})]
    with caplog.at_level(logging.DEBUG):
        assert webhook.post("hello") is True
        assert len(receiver.posts) == 3
        assert SECRET not in caplog.text and "T000SECRET" not in caplog.text
        # the same request outside the webhook is logged with its path: the loggers were on
        requests.post(receiver.url.replace(SECRET, "other/path"), json={"text": "x"}, timeout=2)
    assert '"POST /services/other/path HTTP/1.1" 200' in caplog.text


def test_reading_the_url_from_ssm_at_debug_logs_no_url(
    aws_endpoint: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """botocore logs whole response bodies at DEBUG, and the SecureString's is the webhook URL."""
    monkeypatch.setenv(URL_ENV, "")
    ssm = local_client("ssm", aws_endpoint, "us-west-2")
    ssm.put_parameter(
        Name="error_notification_slack_webhook_url", Value=receiver.url, Type="SecureString", Overwrite=True
    )
    hook = SlackWebhook(
        url_env_var=URL_ENV,
        ssm_parameter="error_notification_slack_webhook_url",
        ssm_endpoint_url=aws_endpoint,
        region_name="us-west-2",
    )
    with caplog.at_level(logging.DEBUG):
        assert hook.post("from ssm") is True
        assert SECRET not in caplog.text
        ssm.get_parameter(Name="error_notification_slack_webhook_url", WithDecryption=True)
    assert SECRET in caplog.text  # the same read outside the webhook: botocore did log the body


# --- the URL from SSM (moto server over HTTP) ------------------------------------------------------------


def test_url_is_read_from_ssm_when_the_env_var_is_empty(
    aws_endpoint: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(URL_ENV, "")
    ssm = local_client("ssm", aws_endpoint, "us-west-2")
    ssm.put_parameter(
        Name="error_notification_slack_webhook_url", Value=receiver.url, Type="SecureString", Overwrite=True
    )
    hook = SlackWebhook(
        url_env_var=URL_ENV,
        ssm_parameter="error_notification_slack_webhook_url",
        ssm_endpoint_url=aws_endpoint,
        region_name="us-west-2",
    )
    assert hook.post("from ssm") is True
    assert receiver.posts[0]["json"] == {"text": "from ssm"}


def test_missing_ssm_parameter_is_logged_by_name(
    aws_endpoint: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)
    hook = SlackWebhook(
        url_env_var=URL_ENV,
        ssm_parameter="no_such_parameter",
        ssm_endpoint_url=aws_endpoint,
        region_name="us-west-2",
    )
    with caplog.at_level(logging.ERROR, logger=slack.__name__):
        assert hook.post("hello") is False
    assert "cannot read SSM parameter 'no_such_parameter' (ParameterNotFound)" in caplog.text


# --- end to end: a failed Dagster run, the sensor, the receiver ---------------------------------------------


@dg.op
def collect_price() -> None:
    raise ValueError("price API returned no items\nsecond line is not shown")


@dg.op
def fine() -> int:
    return 1


@dg.job
def failing_collect() -> None:
    collect_price()
    fine()


def test_sensor_posts_one_alert_for_a_failed_run(
    webhook: SlackWebhook, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", "http://dagster.local:3000/")
    with dg.DagsterInstance.ephemeral() as instance:
        result = failing_collect.execute_in_process(
            instance=instance, raise_on_error=False, tags={"dagster/partition": "2026-01-01-10:10"}
        )
        assert not result.success
        context = dg.build_run_status_sensor_context(
            sensor_name=run_failure_alert.name,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
            resources={RESOURCE_KEY: webhook},
        )
        run_failure_alert(context)

    assert len(receiver.posts) == 1
    text = receiver.posts[0]["json"]["text"]
    run_id = result.run_id
    assert run_id in text and "failing_collect" in text and "2026-01-01-10:10" in text
    assert "`collect_price`: ValueError: price API returned no items" in text
    assert "second line" not in text and "`fine`" not in text
    assert f"<http://dagster.local:3000/runs/{run_id}|" in text


def test_failure_sensor_defaults() -> None:
    assert run_failure_alert.minimum_interval_seconds == 30
    assert run_failure_alert.default_status == dg.DefaultSensorStatus.RUNNING
    assert run_failure_alert.required_resource_keys == {RESOURCE_KEY}


# --- a run that succeeded with a failing ERROR check (a failed source, a partial snapshot) ---------------


@dg.asset(check_specs=[dg.AssetCheckSpec("collected", asset="azure_like_source")])
def azure_like_source():
    yield dg.Output(None)
    yield dg.AssetCheckResult(
        check_name="collected", passed=False, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"error": "HttpRequestError: POST .../resources: HTTP 500 after 6 tries"},
    )


def test_check_sensor_posts_failing_error_checks_of_a_successful_run(
    webhook: SlackWebhook, receiver: Receiver
) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([azure_like_source], instance=instance)
        assert result.success
        context = dg.build_run_status_sensor_context(
            sensor_name=failed_check_alert.name,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_success_event(),
            resources={RESOURCE_KEY: webhook},
        )
        failed_check_alert(context)

    [post] = receiver.posts
    text = post["json"]["text"]
    assert "finished with failing checks" in text and result.run_id in text
    assert "`azure_like_source / collected`: HttpRequestError: POST .../resources: HTTP 500 after 6 tries" in text


def test_check_sensor_is_quiet_when_checks_pass(webhook: SlackWebhook, receiver: Receiver) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        result = failing_collect.execute_in_process(instance=instance, raise_on_error=False, op_selection=["fine"])
        assert result.success
        context = dg.build_run_status_sensor_context(
            sensor_name=failed_check_alert.name, dagster_instance=instance, dagster_run=result.dagster_run,
            dagster_event=result.get_run_success_event(), resources={RESOURCE_KEY: webhook},
        )
        failed_check_alert(context)
    assert receiver.posts == []
