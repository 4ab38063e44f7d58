"""Injected faults: the failures and bad records the knobs ask for, in any API's answer.

`enter` runs first in every request of the prices, Resource Graph and SPS APIs: it counts the request, adds the
latency knob and, by the fault-rate and `hang` knobs, answers instead of the API with a 429, 500, timeout (504),
malformed body, cut connection or never-ending body (a fault changes no other state). `with_record_faults` makes
the bad records of the `record_faults` knob in an answer the API did give.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Response

from .knobs import FAULT_KINDS
from .responses import error, rate_limited
from .state import EmulatorState


def enter(state: EmulatorState, endpoint: str) -> Response | None:
    """Count the request, add latency and maybe inject a fault (which then changes no other state)."""
    cfg = state.config
    with state.lock:
        state.requests[endpoint] += 1
        draw = state.rng.random()
    if cfg.latency_ms:
        time.sleep(cfg.latency_ms / 1000)
    kind, acc = ("hang" if endpoint in cfg.hang else None), 0.0
    for k in FAULT_KINDS if kind is None else ():
        acc += getattr(cfg, f"rate_{k}")
        if draw < acc:
            kind = k
            break
    if kind is None:
        return None
    with state.lock:
        state.faults[kind] += 1
    if kind == "hang":
        return hung_response(cfg.hang_trickle_seconds)
    if kind == "429":
        return rate_limited(
            endpoint,
            cfg.retry_after_seconds,
            "The request is throttled (injected fault)",
            header_text=cfg.retry_after_header,
        )
    if kind == "500":
        return error(500, "InternalServerError", "Encountered internal server error (injected fault)")
    if kind == "timeout":
        time.sleep(cfg.timeout_seconds)
        return error(504, "GatewayTimeout", "The gateway did not receive a response in time (injected fault)")
    if kind == "cut":
        return cut_response()
    body = json.dumps({"error": None, "data": [{"truncated": True}] * 3})
    return Response(body[: len(body) // 2], status=200, mimetype="application/json")


def with_record_faults(records: list[Any], fault: dict[str, Any] | None) -> list[Any]:
    """The records of an answer with every Nth one changed as the `record_faults` knob says."""
    if not fault:
        return records
    out = []
    for i, record in enumerate(records):
        if i % fault["every"]:
            out.append(record)
        elif "set" in fault:
            out.append({**record, **fault["set"]})
        elif "replace" in fault:
            out.append(fault["replace"])
    return out


def hung_response(trickle_seconds: float) -> Response:
    """A 200 whose body never ends: a space every `trickle_seconds` (JSON allows leading white space), so the client
    keeps reading and its read timeout never fires. It ends when the client goes away."""

    def body():
        while True:
            yield b" "
            time.sleep(trickle_seconds)

    return Response(body(), status=200, mimetype="application/json")


def cut_response() -> Response:
    """A 200 whose chunked body stops halfway: the server closes the connection mid-body (the client sees a broken
    chunked transfer, as when a proxy or the network drops it)."""

    def body():
        yield b'{"Items": [{"meterId": "cut-'
        raise ConnectionAbortedError("the emulator cuts this answer (injected fault)")

    return Response(body(), status=200, mimetype="application/json")
