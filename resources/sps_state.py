"""The SPS rotation state in S3, changed only by conditional writes so that concurrent runs lose no update.

The state lives in the write bucket; its first version may come from the read bucket (so `test` starts from
production's learned lists), after which the write bucket's copy is the one updated.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from spotlake_assets.core.sps.rotation import RotationState

from .s3 import PreconditionFailed, S3Store

STATE_KEY = "sps-collector/azure/saved_variable/availability-zones-true/rotation_state.json"
T = TypeVar("T")


class StateConflictError(RuntimeError):
    pass


@dataclass
class SpsStateStore:
    store: S3Store
    key: str = STATE_KEY
    max_attempts: int = 30
    sleep: Callable[[float], None] = time.sleep
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def _read(self) -> tuple[RotationState, str | None]:
        data, etag = self.store.get_for_update(self.key)
        if data is None:
            return RotationState(), None
        try:
            return RotationState.from_json(json.loads(data)), etag
        except ValueError as exc:
            raise ValueError(
                f"SPS state {self.key} (bucket {self.store.write_bucket} or {self.store.read_bucket}): {exc}"
            ) from exc

    def load(self) -> RotationState:
        return self._read()[0]

    def update(self, change: Callable[[RotationState], tuple[RotationState, T]]) -> T:
        """Apply a pure `change` to the stored state and write it back only if nobody wrote in between;
        on a lost race, re-read and re-apply (so no update is lost and no quota is reserved twice)."""
        for attempt in range(self.max_attempts):
            state, etag = self._read()
            new_state, result = change(state)
            try:
                if etag is None:
                    self.store.put(self.key, new_state.to_bytes(), content_type="application/json", if_none_match=True)
                else:
                    self.store.put(self.key, new_state.to_bytes(), content_type="application/json", if_match=etag)
                return result
            except PreconditionFailed:
                self.sleep(self._rng.uniform(0, min(1.0, 0.02 * 2**attempt)))
        raise StateConflictError(
            f"SPS state {self.key} in bucket {self.store.write_bucket!r}: still conflicting after "
            f"{self.max_attempts} attempts"
        )
