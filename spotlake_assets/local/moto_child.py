"""moto's server (S3 and DynamoDB) in a process of its own, for the CLI's local stack: moto keeps every object and
item in memory, and a full-scale run-local writes tens of thousands of items per partition, so the stack's memory
is kept apart from the collector's (aws.start_moto_process starts this file as a script; it imports no project
code).

argv: host, port (0: the OS picks one), the parent's pid. Once listening, it writes the bound port and a newline
on stdout. It ignores SIGINT (Ctrl-C is the parent's to handle; the parent stops it) and exits, with no output,
when its stdin reaches end of file: the parent closed it, or the parent died (on Linux, PR_SET_PDEATHSIG also
kills it then).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # stdin's end of file still stops it
    if os.getppid() != parent:  # it died before the line above
        os._exit(0)


def main() -> None:
    host, port, parent = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)

    import logging

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    # as moto's ThreadedMotoServer, but a failed bind raises here (and the parent sees this process end)
    server = make_server(
        host, port, DomainDispatcherApplication(create_backend_app), True, request_handler=MotoRequestHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdout.write(f"{server.server_address[1]}\n")
    sys.stdout.flush()
    # nobody reads the pipe from now on: anything printed must not fill it and block a request
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.stdin.buffer.read()  # until end of file
    os._exit(0)  # at once: the data goes with the process; nothing to flush or log


if __name__ == "__main__":
    main()
