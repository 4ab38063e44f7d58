"""What a failure may say once it leaves the process (logs, run metadata, check results, the webhook).

An Azure error body names subscription ids, client ids, object ids and request ids; an AWS AccessDenied message names
the account and the role. Those stay in the process: outgoing error text says where (the endpoint), how (the HTTP
status) and what Azure called it (its error code), and no more. The SPS collector still reads whole bodies, inside
the process, to learn invalid regions and sizes and the supported locations (resources/azure_sps.py).
"""

from __future__ import annotations

import json
import re

# An error code as Azure and Entra ID write them: `AuthorizationFailed`, `SubscriptionRequestsThrottled`,
# `InvalidParameter`, `invalid_client`, `AADSTS7000215`. Anything else is not shown.
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,79}")
_AADSTS = re.compile(r"\bAADSTS\d{4,8}\b")
_OAUTH_ERRORS = re.compile(
    r"\b(invalid_client|invalid_request|invalid_grant|invalid_scope|unauthorized_client|unsupported_grant_type|"
    r"access_denied|temporarily_unavailable|interaction_required)\b"
)
# GUIDs (subscription, tenant, client, object and request ids) and 12-digit AWS account ids.
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ACCOUNT = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")


def _code(value: object) -> str | None:
    return value if isinstance(value, str) and _CODE.fullmatch(value) else None


def error_code(body: str) -> str:
    """A short, id-free name for an error answer's body: Azure's `{"error": {"code": ...}}` code (or an OAuth
    `{"error": "invalid_client"}`), else a fixed description of the body's kind. Never any of the body's text."""
    text = body.strip()
    if not text:
        return "empty body"
    try:
        data = json.loads(text)
    except ValueError:
        return "HTML body" if text.startswith("<") else "text body"
    if isinstance(data, dict):
        error = data.get("error")
        found = _code(error.get("code")) if isinstance(error, dict) else _code(error)
        found = found or _code(data.get("code"))
        if found:
            return found
        if error is not None or "code" in data:
            return "unrecognized error code"
    return "JSON body without an error code"


def login_error_code(message: str) -> str | None:
    """The Entra ID error code (`AADSTS7000215`) or OAuth error (`invalid_client`) in an azure-identity message."""
    if found := _AADSTS.search(message):
        return found.group(0)
    if found := _OAUTH_ERRORS.search(message):
        return found.group(0)
    return None


def redact(text: str) -> str:
    """`text` with every GUID and AWS account id replaced: the last guard before an alert or run metadata, for
    messages of libraries that put ids in their errors."""
    return _ACCOUNT.sub("<account>", _GUID.sub("<id>", text))
