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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", default="full", choices=("small", "full"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 1], help="price page threads to compare")
    args = parser.parse_args()

    with local_stack_process(args.scale, args.seed) as env:
        os.environ.update(env)
        from resources.settings import load_settings
        from spotlake_assets.defs import azure_resource
        from spotlake_assets.transforms.eviction import clean_eviction
        from spotlake_assets.transforms.price import clean_prices

        settings = load_settings()
        now = datetime.now(UTC)
        print(f"scale={args.scale} seed={args.seed}")
        for concurrency in args.concurrency:
            client = azure_resource(settings, price_page_concurrency=concurrency)
            with PeakRss() as mem:
                start = time.perf_counter()
                fetched = client.prices_client(client.http()).fetch_all()
                fetch_s = time.perf_counter() - start
                table = clean_prices(fetched.items, now)
                total_s = time.perf_counter() - start
            print(
                f"price  concurrency={concurrency}: {len(fetched.items)} items in {fetched.pages} pages, "
                f"{len(table)} rows; fetch {fetch_s:.1f} s, total {total_s:.1f} s; "
                f"peak RSS {mem.peak / 2**20:.0f} MiB (+{(mem.peak - mem.baseline) / 2**20:.0f} MiB)"
            )
            del fetched, table
        with PeakRss() as mem:
            start = time.perf_counter()
            rows = client.graph_client(client.http()).eviction_rates()
            table, _ = clean_eviction(rows.rows)
            total_s = time.perf_counter() - start
        print(
            f"IF: {len(rows.rows)} rows in {rows.pages} pages, {len(table)} rows; total {total_s:.1f} s; "
            f"peak RSS {mem.peak / 2**20:.0f} MiB (+{(mem.peak - mem.baseline) / 2**20:.0f} MiB)"
        )


if __name__ == "__main__":
    main()
