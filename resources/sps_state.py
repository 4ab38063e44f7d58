"""The SPS rotation state in S3, changed only by conditional writes so that concurrent runs lose no update.

The state lives in the write bucket; its first version may come from the read bucket (so `test` starts from
production's learned lists), after which the write bucket's copy is the one updated (S3Store.update).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from spotlake_assets.core.layout import ROTATION_STATE_KEY
from spotlake_assets.core.sps.rotation import RotationState

from .s3 import S3Store, Version

T = TypeVar("T")


@dataclass
class SpsStateStore:
    store: S3Store
    key: str = ROTATION_STATE_KEY

    def _parse(self, data: bytes | None) -> RotationState:
        if data is None:
            return RotationState()
        try:
            return RotationState.from_json(json.loads(data))
        except ValueError as exc:
            raise ValueError(
                f"SPS state {self.key} (bucket {self.store.write_bucket} or {self.store.read_bucket}): {exc}"
            ) from exc

    def load(self) -> RotationState:
        return self._parse(self.store.get(self.key))

    def update(self, change: Callable[[RotationState], tuple[RotationState, T]]) -> T:
        """Apply a pure `change` to the stored state and write it back only if nobody wrote in between; on a lost
        race, re-read and re-apply (so no update is lost and no quota is reserved twice)."""

        def apply(current: Version | None) -> tuple[Version, T]:
            new_state, result = change(self._parse(current.body if current else None))
            return Version(new_state.to_bytes()), result

        return self.store.update(self.key, apply, content_type="application/json")
