"""The soak benchmark at 12 partitions: a hostile emulator (429s, 5xx, malformed and cut bodies, latency) and runs
SIGKILLed at the four write stages, each retried as the instance would, leave exactly the archive of the same
partitions run fault-free (benchmarks/soak.py; one day of it is `python -m benchmarks.soak`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_twelve_hostile_partitions_with_four_killed_runs_equal_the_fault_free_ones(tmp_path):
    # its own process: the benchmark points its environment at the stacks it starts
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--partitions", "12", "--latency-ms", "1"],
        cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp_path)}, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["partitions"] == result["partitions_complete"] == 12
    assert result["partitions_partial"] == {} and result["partitions_lost"] == []
    assert [(k["stage"], k["killed"]) for k in result["kills"]] == [
        ("raw snapshot", True), ("merge", True), ("DynamoDB load", True), ("public files", True),
    ]  # fmt: skip
    assert result["retries"]["runs"] == 4 and result["retries"]["http"] > 0
    faults = result["faults_injected"]
    assert faults["429"] > 0 and faults["500"] > 0 and faults["malformed"] > 0
    assert result["dynamodb_items"] > 0
    assert result["equal_to_fault_free"], result["differences"]
