"""Where moto's server differs from AWS in a way our code depends on, made to behave as AWS does.

S3 checks a conditional PUT (`If-Match`, `If-None-Match: *`) and stores the object as one atomic step: of two
writers holding the same ETag, one wins and the other gets 412. moto checks, then stores, with no lock between, so
under load both can succeed and one update is lost (seen in CI: `tests/test_s3_store.py`, 39 of 40 appends). One
lock around moto's PUT handler gives the local stack S3's guarantee. It imports moto only, so that
`moto_child.py`, which runs as a script without the project's packages, can use it too.
"""

from __future__ import annotations

import threading
from typing import Any

_PUT = threading.Lock()


def atomic_conditional_puts() -> None:
    """Make every PUT of an object in this process's moto servers atomic with its precondition (idempotent)."""
    from moto.s3.responses import S3Response

    original = S3Response.put_object
    if getattr(original, "atomic", False):
        return

    def put_object(self: Any) -> Any:
        with _PUT:
            return original(self)

    put_object.atomic = True  # type: ignore[attr-defined]
    S3Response.put_object = put_object  # type: ignore[method-assign]
