"""The embedded stack's query endpoint: the production handler (resources/query_api/handler.py) served over real HTTP.

A threaded standard-library HTTP server hands every request to the same `QueryApi.handle` the AWS Lambda function
calls, after decoding the query string and gzipping the answer with the same helpers as the Lambda entry point, so
the web site's exact requests can be tested locally: `http://127.0.0.1:4590/?TableName=azure&InstanceType=D2s_v3
&Region=US+East&InstanceTier=*&AvailabilityZone=*&Start=2026-11-28&End=2026-11-28` under `make dev` (any path is
served, as a function URL does).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from resources.query_api.config import QueryApiConfig, make_client
from resources.query_api.handler import ApiError, QueryApi, encode_body, parse_query

from .aws import LOCAL_AWS_CREDENTIALS

LOCAL_QUERY_API_PORT = 4590  # the fixed port of `make dev` / `spotlake local-stack`
QUERY_API_URL_ENV = "SPOTLAKE_QUERY_API_URL"
LOCAL_READ_TIMEOUT_SECONDS = 30.0  # moto sorts a whole table for every Query: slower than DynamoDB

log = logging.getLogger("spotlake.query_api.local")
_ERROR_NAMES = {400: "BadRequest", 414: "URITooLong", 431: "HeaderFieldsTooLarge", 501: "NotImplemented"}


class _Handler(BaseHTTPRequestHandler):
    server_version = "SpotLakeQueryAPI"
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        if self.command not in ("GET", "HEAD", "OPTIONS"):
            self.close_connection = True  # a body we do not read must not become the next request
        origin = self.headers.get("Origin")
        api = self.server.api
        try:
            params = parse_query(urlsplit(self.path).query)
        except ApiError as exc:
            status, headers, body = api.error(exc, origin)
        else:
            status, headers, body = api.handle(params, origin, self.command)
        headers, data = encode_body(headers, body, self.headers.get("Accept-Encoding"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def __getattr__(self, name: str):
        # every method is the handler's to answer (405 in JSON), as the Lambda behind API Gateway does; without
        # this the base class answers an unknown method with its own HTML 501
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The base class's own errors (414 URI too long, 431 headers too large, 400 bad request line) in the
        handler's JSON, as the Lambda would answer them, instead of its HTML page."""
        error = ApiError(code, _ERROR_NAMES.get(code, "BadRequest"), message or "the request could not be read")
        headers = getattr(self, "headers", None)
        _, out, body = self.server.api.error(error, headers.get("Origin") if headers else None, http_status=True)
        data = body.encode()
        self.close_connection = True
        if getattr(self, "request_version", "") == "HTTP/0.9":  # an unreadable request line: answer with headers
            self.request_version = "HTTP/1.0"
        self.send_response(code, message)
        for name, value in {**out, "Connection": "close", "Content-Length": str(len(data))}.items():
            self.send_header(name, value)
        self.end_headers()
        if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: QueryApi) -> None:
        super().__init__(address, _Handler)
        self.api = api


class QueryApiServer:
    """`QueryApi` on a local port (0: a free one); `url` ends with '/'."""

    def __init__(self, api: QueryApi, host: str = "127.0.0.1", port: int = 0) -> None:
        self.api = api
        self._server = _Server((host, port), api)
        self._thread = threading.Thread(target=self._server.serve_forever, name="query-api", daemon=True)
        self._thread.start()
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host}:{bound_port}/"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_query_api(environ: Mapping[str, str], port: int = 0) -> QueryApiServer:
    """The query endpoint of a stack whose variables are in `environ` (SPOTLAKE_ENV, SPOTLAKE_AWS_ENDPOINT_URL,
    ... and the optional SPOTLAKE_QUERY_API_* and SPOTLAKE_ARCHIVE_BUCKET settings), reading moto with the stack's
    fake credentials."""
    config = QueryApiConfig.from_environ(environ)
    client = make_client(config, read_timeout=LOCAL_READ_TIMEOUT_SECONDS, **LOCAL_AWS_CREDENTIALS)
    # the archive (months past the retention), when the stack names its bucket, read from moto too
    s3 = make_client(config, service="s3", **LOCAL_AWS_CREDENTIALS) if config.archive_bucket else None
    return QueryApiServer(QueryApi(config, client, s3), port=port)
