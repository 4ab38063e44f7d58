"""The retry loop's pure parts: which header says how long to wait, and how long backoff waits."""

import random

import pytest

from resources.http import parse_retry_after
from resources.retry import Backoff


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"x-ms-ratelimit-retailprices-retry-after": "60"}, 60.0),
        ({"x-ms-user-quota-resets-after": "00:00:05"}, 5.0),
        ({"x-ms-user-quota-resets-after": "01:02:03"}, 3723.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "inf"}, None),
        ({"x-ms-user-quota-resets-after": "00:-1:00"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers, seconds):
    lowered = {k.lower(): v for k, v in headers.items()}
    assert parse_retry_after(lowered) == seconds


def test_backoff_is_jittered_and_capped():
    policy = Backoff(base_seconds=1.0, max_seconds=8.0, max_server_wait_seconds=30.0)
    rng = random.Random(1)
    waits = [policy.delay(attempt, None, rng) for attempt in range(10) for _ in range(20)]
    assert all(0 <= w <= 8.0 for w in waits)
    assert len({round(w, 6) for w in waits}) > 100  # jitter: not the same wait twice
    # a server's wait is honoured, plus at most one base of jitter, and capped
    assert 30.0 <= policy.delay(0, 60.0, rng) <= 31.0
    assert 5.0 <= policy.delay(3, 5.0, rng) <= 6.0


def test_pacer_spaces_calls_across_threads():
    import threading
    import time

    from resources.http import Pacer

    pacer = Pacer(rate_per_second=50)
    stamps: list[float] = []
    lock = threading.Lock()

    def call():
        for _ in range(5):
            pacer.wait()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=call) for _ in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 20 calls at 50/s take at least 19 intervals of 20 ms
    assert time.monotonic() - start >= 19 * 0.02 * 0.95
    stamps.sort()
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert sum(gaps) / len(gaps) >= 0.018


@pytest.mark.parametrize("server_wait", [float("nan"), float("inf"), -5.0])
def test_a_server_wait_that_is_not_a_usable_number_falls_back_to_backoff(server_wait):
    policy = Backoff(base_seconds=1.0, max_seconds=8.0)
    waits = [policy.delay(2, server_wait, random.Random(i)) for i in range(50)]
    assert all(0 <= w <= 4.0 for w in waits)  # the third try's backoff window, never the header's value
