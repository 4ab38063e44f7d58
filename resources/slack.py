"""The Slack-compatible webhook that failure alerts are posted to.

The legacy collector posted failures to a Slack webhook whose URL sat in SSM parameter
`error_notification_slack_webhook_url`; this keeps that, reads the URL from an environment variable first,
and turns into a logged no-op when neither is set (a laptop has no webhook). The URL is a secret: it is never
logged nor put in an error message, which always say "the Slack webhook" and the status instead, and while it is
read from SSM or posted to, botocore's and urllib3's DEBUG records are dropped (resources/log_guard.py).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import PrivateAttr

from .http import HttpRequestError, RetryingClient, RetryPolicy
from .lockdown import EnvironmentBound
from .log_guard import secret_in_flight
from .retry import Backoff
from .settings import Settings

log = logging.getLogger(__name__)

ENDPOINT_NAME = "the Slack webhook"  # what logs and errors show instead of the URL
URL_ENV_VAR = "SPOTLAKE_SLACK_WEBHOOK_URL"
# the legacy collector's parameter (SecureString), read outside `local` when URL_ENV_VAR is not set
SSM_PARAMETER = "error_notification_slack_webhook_url"


class SlackWebhook(EnvironmentBound):
    """Posts text to a Slack incoming webhook (or anything that speaks its JSON body).

    The URL comes from env var `url_env_var`, else from SSM parameter `ssm_parameter` (SecureString,
    decrypted); it is resolved at the first post, never at definition load, so loading needs no AWS access.
    Worst case a post takes about max_tries * timeout_seconds plus three waits of at most 10 s. Where the URL is
    read from comes from the environment only (resources/lockdown.py).
    """

    PROTECTED = {
        "url_env_var": f"fixed: {URL_ENV_VAR}",
        "ssm_parameter": f"fixed: {SSM_PARAMETER} outside local",
        "ssm_endpoint_url": "SPOTLAKE_AWS_ENDPOINT_URL",
        "region_name": "SPOTLAKE_AWS_REGION",
    }

    url_env_var: str = URL_ENV_VAR
    ssm_parameter: str | None = None
    ssm_endpoint_url: str | None = None
    region_name: str | None = None
    timeout_seconds: float = 10
    max_tries: int = 4
    backoff_base_seconds: float = 1.0

    _url: str | None = PrivateAttr(default=None)

    @classmethod
    def settings_values(cls, settings: Settings) -> dict[str, Any]:
        return dict(
            url_env_var=URL_ENV_VAR,
            ssm_parameter=None if settings.env == "local" else SSM_PARAMETER,
            ssm_endpoint_url=settings.aws_endpoint_url,
            region_name=settings.aws_region,
        )

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
        with secret_in_flight():
            return self._post(text, blocks)

    def _post(self, text: str, blocks: Sequence[Mapping[str, Any]] | None) -> bool:
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
                backoff=Backoff(
                    base_seconds=self.backoff_base_seconds, max_seconds=8.0, max_server_wait_seconds=10.0
                ),
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
