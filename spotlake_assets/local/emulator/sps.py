"""The Azure Spot Placement Scores API the emulator serves:
POST /subscriptions/<subscription>/providers/Microsoft.Compute/locations/<location>/placementScores/spot/generate.

Scores of the catalogue for the data epoch, per size, region (and zone when asked), behind a bearer token, for the
seeded subscriptions and supported URL locations, with SPS's limits: at most SPS_MAX_LOCATIONS regions and
SPS_MAX_SIZES sizes per call, one invalid value named per 400, and `sps_calls_per_hour` calls per (subscription,
URL location) in an hour of the emulator clock (then a plain-text 429). On knobs, as Azure documents
(docs/azure-sources.md): subscriptions without the role (403), a subscription-wide hourly limit (429 with
Retry-After), non-public names among the supported locations (400).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from flask import Flask, Response, request

from .. import catalogue as cat
from .. import drift
from .faults import enter, with_record_faults
from .knobs import EmulatorConfig
from .login import authorized
from .responses import error, json_answer
from .state import EmulatorState

SPS_MAX_LOCATIONS = 8
SPS_MAX_SIZES = 5
SPS_WINDOW = timedelta(hours=1)
SPS_ACTION = "Microsoft.Compute/locations/placementScores/generate/action"
SPS_THROTTLE_TEXT = "You have reached the maximum number of requests allowed. Please try again after 3600 seconds."


def add_routes(app: Flask, state: EmulatorState) -> None:
    app.add_url_rule(
        "/subscriptions/<subscription>/providers/Microsoft.Compute/locations/<location>/placementScores/spot/generate",
        "placement_scores",
        view_func=lambda subscription, location: placement_scores(state, subscription, location),
        methods=["POST"],
    )


def placement_scores(state: EmulatorState, subscription: str, location: str) -> Response:
    """The answer to one SPS call, kept (time, subscription, location, status) for stats()."""
    answer = _answer(state, subscription, location)
    with state.lock:
        state.sps_answers.append(
            {
                "time": state.now().isoformat(),
                "subscription": subscription.lower(),
                "location": location.lower(),
                "status": answer.status_code,
            }
        )
    return answer


def _answer(state: EmulatorState, subscription: str, location: str) -> Response:
    if fault := enter(state, "sps"):
        return fault
    if denied := authorized(state):
        return denied
    cfg = state.config
    supported = cat.url_locations(cfg.url_location_count) + list(cfg.sps_extra_locations)
    if location.lower() not in supported:
        return error(
            400,
            "NoRegisteredProviderFound",
            f"No registered resource provider found for location '{location}' and API version "
            f"'{request.args.get('api-version')}' for type 'locations/placementScores'. "
            f"The supported locations are '{', '.join(supported)}'.",
        )
    subscriptions = cat.subscription_ids(cfg.seed, cfg.subscription_count)
    if subscription.lower() not in subscriptions:
        return error(404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")
    if subscription.lower() in subscriptions[len(subscriptions) - cfg.sps_subscriptions_without_role :]:
        # Azure Resource Manager's answer to a principal without the "Compute Recommendations Role"
        client = cat.service_principal(cfg.seed)["client_id"]
        return error(
            403,
            "AuthorizationFailed",
            f"The client '{client}' with object id '{client}' does not have authorization to perform action "
            f"'{SPS_ACTION}' over scope '/subscriptions/{subscription}' or the scope is invalid. "
            "If access was recently granted, please refresh your credentials.",
        )
    if location.lower() in cfg.sps_extra_locations:
        # listed as supported, but not a region a public subscription can use
        return error(
            400,
            "LocationNotAvailableForResourceType",
            f"The provided location '{location}' is not available for resource type "
            "'Microsoft.Compute/locations/placementScores'.",
        )
    pair = (subscription.lower(), location.lower())
    with state.lock:
        now = state.now()
        if limit := cfg.sps_subscription_calls_per_hour:
            recent = [
                t
                for (sub, _), times in state.sps_calls.items()
                if sub == pair[0]
                for t in times
                if t > now - SPS_WINDOW
            ]
            if len(recent) >= limit:
                state.throttled["sps_subscription"] += 1
                return _subscription_throttled(subscription, (min(recent) + SPS_WINDOW - now).total_seconds())
        calls = state.sps_calls.setdefault(pair, [])
        if sum(t > now - SPS_WINDOW for t in calls) >= cfg.sps_calls_per_hour:
            state.throttled["sps"] += 1
            return Response(SPS_THROTTLE_TEXT, status=429, mimetype="text/plain")
        calls.append(now)
    body = request.get_json(silent=True)
    problem = _sps_request_problem(body)
    if problem:
        return error(400, "InvalidParameter", problem)
    locations, sizes = body["desiredLocations"], [s["sku"] for s in body["desiredSizes"]]
    catalogue = cat.load_catalogue(cfg.seed, cfg.scale)
    if message := _first_invalid_value(cfg, catalogue, locations, sizes):
        return error(400, "InvalidParameter", message)
    key, zoned = state.data_key(), body.get("availabilityZones", False) is True
    scores = []
    for size in sizes:
        for code in (region.lower() for region in locations):
            for zone in (_region_zones(catalogue, code) if zoned else ()) or (None,):
                scores.append(
                    {
                        "sku": size,
                        "region": code,
                        **({"availabilityZone": zone} if zone else {}),
                        "score": drift.placement_score(key, body["desiredCount"], code, size, zone),
                        "isQuotaAvailable": cat.quota_available(cfg.seed, code, size),
                    }
                )
    scores = with_record_faults(scores, cfg.record_faults.get("sps"))
    return json_answer({**body, "availabilityZones": zoned, "placementScores": scores})


def _subscription_throttled(subscription: str, wait_seconds: float) -> Response:
    """Azure Resource Manager's 429 for a subscription whose read requests are spent, with its Retry-After."""
    wait = max(1, math.ceil(wait_seconds))
    return error(
        429,
        "SubscriptionRequestsThrottled",
        f"Number of 'read' requests for subscription '{subscription}' exceeded. Please try again after '{wait}' "
        "seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling",
        {"Retry-After": str(wait)},
    )


def _sps_request_problem(body: Any) -> str | None:
    """What is wrong with an SPS request body (the 400 InvalidParameter message), or None."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    count = body.get("desiredCount")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        return f"The value '{count}' provided for the input parameter 'desiredCount' is not valid"
    locations, sizes = body.get("desiredLocations"), body.get("desiredSizes")
    if not isinstance(locations, list) or not locations or not all(isinstance(x, str) for x in locations):
        return "desiredLocations must be a non-empty list of region names."
    if (
        not isinstance(sizes, list)
        or not sizes
        or not all(isinstance(s, dict) and isinstance(s.get("sku"), str) for s in sizes)
    ):
        return 'desiredSizes must be a non-empty list of {"sku": size name}.'
    if len(locations) > SPS_MAX_LOCATIONS:
        return f"desiredLocations has {len(locations)} entries; at most {SPS_MAX_LOCATIONS} are allowed."
    if len(sizes) > SPS_MAX_SIZES:
        return f"desiredSizes has {len(sizes)} entries; at most {SPS_MAX_SIZES} are allowed."
    return None


def _first_invalid_value(
    cfg: EmulatorConfig, catalogue: cat.Catalogue, locations: list[str], sizes: list[str]
) -> str | None:
    """SPS names one invalid value per answer: the first invalid region, else the first invalid size."""
    public, planted = set(cat.public_region_codes()), {r.lower() for r in cfg.invalid_regions}
    for region in locations:
        if region.lower() not in public or region.lower() in planted:
            return f"The value '{region}' provided for the input parameter 'desiredLocations' is not valid"
    planted = {s.lower() for s in cfg.invalid_sizes}
    for size in sizes:
        if size.lower() not in catalogue.sizes_by_lower_name or size.lower() in planted:
            return (
                f"The value '{size}' provided for the input parameter "
                "'SpotPlacementRecommenderInput.desiredSizes' is not valid"
            )
    return None


def _region_zones(catalogue: cat.Catalogue, code: str) -> tuple[str, ...]:
    """Zones of a region; regions outside a small catalogue get a seeded choice."""
    region = catalogue.regions_by_code.get(code)
    if region is not None:
        return region.zones
    return ("1", "2", "3") if cat.unit(catalogue.seed, "zones", code) < 0.5 else ()
