"""The Entra ID login the emulator serves over HTTPS: OpenID discovery, client-credentials tokens, and the check
of the bearer tokens it issued.

HTTPS with a throwaway trustme CA (its PEM in a temporary directory, `AzureEmulator.ca_file`) so that the real
azure-identity/MSAL client, which insists on TLS, logs in against it. Only the seeded service principal
(`catalogue.service_principal`) gets a token; tokens live TOKEN_LIFETIME_SECONDS of real time, and the
Resource Graph and SPS APIs accept a request only with one of them (`authorized`).
"""

from __future__ import annotations

import secrets
import ssl
import time

import trustme
from flask import Flask, Response, request

from .. import catalogue as cat
from .responses import error, json_answer
from .state import EmulatorState

TOKEN_LIFETIME_SECONDS = 3600


def tls_context(host: str, directory: str) -> tuple[ssl.SSLContext, str]:
    """A server TLS context with a certificate for `host` (and 127.0.0.1, localhost) from a new CA, and the path of
    that CA's PEM, written in `directory`, which clients must trust."""
    ca = trustme.CA(organization_name="SpotLake local Azure emulator")
    ca_file = f"{directory}/ca.pem"
    ca.cert_pem.write_to_path(ca_file)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host, "127.0.0.1", "localhost").configure_cert(tls)
    return tls, ca_file


def login_app(state: EmulatorState) -> Flask:
    """The HTTPS app: /<tenant>/v2.0/.well-known/openid-configuration and /<tenant>/oauth2/v2.0/token."""
    app = Flask("azure_emulator_login")
    app.add_url_rule(
        "/<tenant>/v2.0/.well-known/openid-configuration",
        "openid",
        view_func=lambda tenant: _openid(state, tenant),
        methods=["GET"],
    )
    app.add_url_rule(
        "/<tenant>/oauth2/v2.0/token", "token", view_func=lambda tenant: _token(state, tenant), methods=["POST"]
    )
    return app


def authorized(state: EmulatorState) -> Response | None:
    """None when the request carries a live bearer token this login issued, else Azure's 401."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
    with state.lock:
        expiry = state.tokens.get(header.removeprefix("Bearer ").strip())
    if expiry is None:
        return error(401, "InvalidAuthenticationToken", "The access token is invalid.")
    if expiry <= time.time():
        return error(401, "ExpiredAuthenticationToken", "The access token has expired.")
    return None


def _known_tenant(state: EmulatorState, tenant: str) -> bool:
    return tenant.lower() == cat.service_principal(state.config.seed)["tenant_id"]


def _unknown_tenant(tenant: str, error: str) -> Response:
    """Entra ID's answer for a tenant it does not know (its discovery and token endpoints name the error apart)."""
    return json_answer({"error": error, "error_description": f"AADSTS90002: Tenant '{tenant}' not found."}, 400)


def _openid(state: EmulatorState, tenant: str) -> Response:
    with state.lock:
        state.requests["openid_configuration"] += 1
    if not _known_tenant(state, tenant):
        return _unknown_tenant(tenant, "invalid_tenant")
    base = f"https://{request.host}/{tenant}"
    return json_answer(
        {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "tenant_region_scope": None,
        }
    )


def _token(state: EmulatorState, tenant: str) -> Response:
    with state.lock:
        state.requests["token"] += 1
    if not _known_tenant(state, tenant):
        return _unknown_tenant(tenant, "invalid_request")
    form = request.form
    if form.get("grant_type") != "client_credentials":
        return json_answer(
            {
                "error": "unsupported_grant_type",
                "error_description": "The emulator supports only grant_type=client_credentials.",
            },
            400,
        )
    auth = request.authorization
    client_id = form.get("client_id") or (auth.username if auth else None)
    secret = form.get("client_secret") or (auth.password if auth else None)
    principal = cat.service_principal(state.config.seed)
    if client_id != principal["client_id"] or not secrets.compare_digest(str(secret), principal["client_secret"]):
        return json_answer(
            {
                "error": "invalid_client",
                "error_description": f"AADSTS7000215: Invalid secret or unknown client '{client_id}'.",
                "error_codes": [7000215],
            },
            401,
        )
    token = "emu." + secrets.token_urlsafe(32)
    with state.lock:
        now = time.time()
        state.tokens = {t: exp for t, exp in state.tokens.items() if exp > now}
        state.tokens[token] = now + TOKEN_LIFETIME_SECONDS
    return json_answer(
        {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS - 1,
            "ext_expires_in": TOKEN_LIFETIME_SECONDS - 1,
            "access_token": token,
        }
    )
