"""Benchmark: one SPS partition at full emulator scale (63 regions x ~700 sizes, 50 subscriptions x 50 URL
locations): requests of the packed pool against the baseline, calls, retries, coverage and wall time.

Run: `python -m benchmarks.sps_full [--rate-429 0.2 --rate-500 0.05]`.
"""

from __future__ import annotations

import argparse
import time

from dagster import DagsterInstance, materialize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate-429", type=float, default=0.0)
    parser.add_argument("--rate-500", type=float, default=0.0)
    args = parser.parse_args()
    first, partition = "2026-11-26-00:00", "2026-11-26-10:00"

    from resources.clock import Clock
    from spotlake_assets.core import names
    from spotlake_assets.core.timekeys import data_time
    from spotlake_assets.defs import build_assets, build_resources
    from spotlake_assets.local.stack import start_local_stack, use_stack_environment
    from spotlake_assets.partitions import Partitions

    assets = build_assets(Partitions.starting_at(first))

    with start_local_stack(
        scale="full",
        seed=args.seed,
        subscriptions=50,
        url_locations=50,
        retry_after_seconds=0,
        rate_429=args.rate_429,
        rate_500=args.rate_500,
    ) as stack:
        use_stack_environment(stack)
        resources = build_resources(stack.settings)

        def run(asset, key, at):
            stack.emulator.set_time(at)
            resources["clock"] = Clock(frozen_at=at.isoformat())
            with DagsterInstance.ephemeral() as instance:
                start = time.perf_counter()
                result = materialize(
                    assets,
                    selection=[asset],
                    partition_key=key,
                    resources=resources,
                    instance=instance,
                    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                )
                seconds = time.perf_counter() - start
            [mat] = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
            return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}, seconds

        run(names.PRICE_RAW, first, data_time(first))
        pool, pool_s = run(names.SPS_REQUEST_POOL, first[:10], data_time(first))
        print(
            f"pool: {pool['pairs']} pairs, {pool['requests']} requests packed vs {pool['baseline_requests']} "
            f"baseline ({pool_s:.1f} s)"
        )
        sps, sps_s = run(names.SPS_RAW, partition, data_time(partition))
        keys = (
            "desired_count",
            "requests_planned",
            "calls",
            "retries",
            "throttled",
            "skipped_requests",
            "failed_requests",
            "pairs_used",
            "coverage",
            "rows",
            "unknown_scores",
            "peak_rss_mib",
        )
        print("sps: " + ", ".join(f"{k}={sps[k]}" for k in keys) + f"; wall {sps_s:.1f} s")
        print(
            f"emulator: max calls per pair in any 62 minutes = {stack.emulator.stats()['max_calls_in_any_62_minutes']}"
        )


if __name__ == "__main__":
    main()
