"""The one backoff policy of every retry loop: HTTP calls to Azure and the webhook (http.py), DynamoDB's
unprocessed batch items (history_table.py) and lost conditional S3 writes (s3.py)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter ("AWS Architecture Blog: Exponential Backoff and Jitter"), so that
    writers that collided spread out; a wait the server asked for (Retry-After) is honoured, capped."""

    base_seconds: float = 1.0
    max_seconds: float = 60.0
    max_server_wait_seconds: float = 120.0  # never trust a server to park us longer than this in one wait

    def delay(self, attempt: int, server_wait: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `attempt + 1` (attempt counts from 0). A server wait that is not
        a finite, non-negative number (a malformed header) is ignored."""
        rng = rng or random
        if server_wait is not None and math.isfinite(server_wait) and server_wait >= 0:
            return min(server_wait, self.max_server_wait_seconds) + rng.uniform(0, self.base_seconds)
        return rng.uniform(0, min(self.max_seconds, self.base_seconds * 2**attempt))
