"""Seeing Ctrl-C while Dagster runs a job in this process, and keeping Dagster quiet about it.

Dagster's in-process execution swaps its own SIGINT handler in for each run: Ctrl-C becomes a
DagsterExecutionInterruptedError inside the running step, the step and the run are logged as failed (a traceback
each), a failed result is returned and the interrupt is forgotten, so the next run would start. The interpreter
writes every signal's number to the wakeup fd whatever Python handler is installed, so reading that fd tells, after
a run and while it logs, whether Ctrl-C came.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
from collections.abc import Iterator


class InterruptWatch:
    """Within `with`: `interrupted` is True once SIGINT has arrived, whoever handled it. Main thread only (the
    wakeup fd is set there)."""

    def __init__(self) -> None:
        self._seen = False
        self._fds: tuple[int, int] | None = None
        self._previous = -1

    def __enter__(self) -> InterruptWatch:
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)  # the interpreter requires it: a signal must never block on a full pipe
        self._fds = (read, write)
        self._previous = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.set_wakeup_fd(self._previous)
        if self._fds:
            for fd in self._fds:
                os.close(fd)
            self._fds = None

    @property
    def interrupted(self) -> bool:
        while not self._seen and self._fds:
            try:
                data = os.read(self._fds[0], 512)
            except BlockingIOError:
                break
            if not data:
                break
            self._seen = signal.SIGINT in data
        return self._seen


class _QuietOnceInterrupted(io.TextIOBase):
    """A text stream that passes writes through until `watch` has seen Ctrl-C, and drops them afterwards."""

    def __init__(self, stream: io.TextIOBase, watch: InterruptWatch) -> None:
        self._stream = stream
        self._watch = watch

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not self._watch.interrupted:
            self._stream.write(text)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


@contextlib.contextmanager
def quiet_stderr_once_interrupted(watch: InterruptWatch) -> Iterator[None]:
    """Dagster's console log (and anything else on stderr) is dropped from the moment Ctrl-C arrives: its step
    and run failures are the interrupt itself, which the command reports in one line."""
    with contextlib.redirect_stderr(_QuietOnceInterrupted(sys.stderr, watch)):  # type: ignore[type-var]
        yield
