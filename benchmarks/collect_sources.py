"""Benchmark: wall time and peak memory of collecting price and IF from the full-scale emulator.

The emulator and moto run in a child process (`spotlake local-stack --scale full`), so the numbers are the
collector's own. Run with `make bench` or `python -m benchmarks.collect_sources [--concurrency N ...]`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psutil


@contextmanager
def local_stack_process(scale: str, seed: int):
    with tempfile.TemporaryDirectory() as tmp:
        env_file = Path(tmp) / "stack.env"
        proc = subprocess.Popen(
            [sys.executable, "-m", "spotlake_assets.cli", "local-stack", "--scale", scale, "--seed", str(seed),
             "--free-ports", "--env-file", str(env_file)],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while not env_file.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the local stack did not start")
                time.sleep(0.1)
            env = dict(shlex.split(line)[1].split("=", 1) for line in env_file.read_text().splitlines())
            yield env
        finally:
            proc.terminate()
            proc.wait(30)


class PeakRss:
    """Samples this process's RSS every 20 ms; `peak_mib` is the largest seen."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self.baseline = self._proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def measure_one(what: str, concurrency: int) -> None:
    """One measurement in this (fresh) process, against the stack named by the SPOTLAKE_* environment."""
    from resources.settings import load_settings
    from spotlake_assets.core.transforms.eviction import clean_eviction
    from spotlake_assets.core.transforms.price import clean_prices
    from spotlake_assets.defs import azure_resource

    azure = azure_resource(load_settings(), price_page_concurrency=concurrency)
    http = azure.http()
    with PeakRss() as mem:
        start = time.perf_counter()
        if what == "price":
            fetched = azure.prices_client(http).fetch_all()
            rows, source, pages = len(clean_prices(fetched.items, datetime.now(UTC))), fetched.items_seen, fetched.pages
        else:
            fetched = azure.graph_client(http).eviction_rates()
            rows, source, pages = len(clean_eviction(fetched.rows)[0]), len(fetched.rows), fetched.pages
        seconds = time.perf_counter() - start
    label = f"price concurrency={concurrency}" if what == "price" else "IF"
    print(
        f"{label:<22} {source:>7} items {pages:>4} pages {rows:>6} rows  {seconds:6.1f} s  "
        f"peak RSS {mem.peak / 2**20:5.0f} MiB (+{(mem.peak - mem.baseline) / 2**20:.0f} over start)  "
        f"retries {http.retries}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", default="full", choices=("small", "full"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 4, 1], help="price page threads to compare")
    parser.add_argument("--one", choices=("price", "if"), help=argparse.SUPPRESS)  # a child's single measurement
    args = parser.parse_args()
    if args.one:
        measure_one(args.one, args.concurrency[0])
        return

    with local_stack_process(args.scale, args.seed) as env:
        child_env = {**os.environ, **env}
        # warm the emulator's data cache so the first measurement is not charged for data generation
        import requests

        requests.get(env["SPOTLAKE_AZURE_PRICES_URL"], timeout=120)
        print(f"scale={args.scale} seed={args.seed}; each line is a fresh process")
        runs = [("price", c) for c in args.concurrency] + [("if", 1)]
        for what, concurrency in runs:
            subprocess.run(
                [sys.executable, "-m", "benchmarks.collect_sources", "--one", what, "--concurrency", str(concurrency)],
                env=child_env, check=True,
            )


if __name__ == "__main__":
    main()
