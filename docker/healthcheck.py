"""Health check of the image's processes, with nothing but Python (the slim image has no curl).

    python /opt/spotlake/docker/healthcheck.py webserver [PORT]   GET http://127.0.0.1:PORT/server_info (default 3000)
    python /opt/spotlake/docker/healthcheck.py daemon             `dagster-daemon liveness-check` (heartbeats)
    python /opt/spotlake/docker/healthcheck.py code-server [PORT] `dagster api grpc-health-check -p PORT` (4000)
    python /opt/spotlake/docker/healthcheck.py                    the check of what PID 1 runs (Dockerfile HEALTHCHECK)

The ECS task definitions (infra/modules/collector/ecs.tf) name their check; the Dockerfile's HEALTHCHECK has no
argument, so it looks at PID 1's command line: the image serves the code server by default but ECS also runs the
webserver, the daemon and the runs from it. A run (`dagster api execute_run`) or any other command has no endpoint:
it is healthy while it runs. Exit 0 healthy, 1 unhealthy (Docker's and ECS's convention).
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

DEFAULT_PORTS = {"webserver": 3000, "code-server": 4000}
TIMEOUT_S = 40


def check_webserver(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=TIMEOUT_S) as answer:
            return answer.status == 200
    except OSError as exc:  # URLError, HTTPError, connection refused, timeout
        print(f"webserver on port {port}: {exc}", file=sys.stderr)
        return False


def run_check(command: list[str]) -> bool:
    try:
        return subprocess.run(command, timeout=TIMEOUT_S, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"{' '.join(command)}: {exc}", file=sys.stderr)
        return False


def port_of(argv: list[str], default: int) -> int:
    """The value of -p/--port in a command line, else the default."""
    for position, arg in enumerate(argv):
        if arg in {"-p", "--port"} and position + 1 < len(argv) and argv[position + 1].isdigit():
            return int(argv[position + 1])
        if arg.startswith("--port=") and arg[len("--port=") :].isdigit():
            return int(arg[len("--port=") :])
    return default


def role_of(argv: list[str]) -> tuple[str, int | None] | None:
    """(role, port) of a command line of the image's processes, None for a run or anything else."""
    names = [Path(arg).name for arg in argv]
    if "dagster-webserver" in names:
        return "webserver", port_of(argv, DEFAULT_PORTS["webserver"])
    if "dagster-daemon" in names and "run" in names:
        return "daemon", None
    if "dagster" in names and ("code-server" in names or "grpc" in names):
        return "code-server", port_of(argv, DEFAULT_PORTS["code-server"])
    return None


def pid1_argv() -> list[str]:
    return [part for part in Path("/proc/1/cmdline").read_bytes().decode(errors="replace").split("\0") if part]


def healthy(role: str, port: int | None) -> bool:
    if role == "webserver":
        return check_webserver(port or DEFAULT_PORTS["webserver"])
    if role == "daemon":
        return run_check(["dagster-daemon", "liveness-check"])
    if role == "code-server":
        return run_check(["dagster", "api", "grpc-health-check", "-p", str(port or DEFAULT_PORTS["code-server"])])
    raise ValueError(f"unknown role {role!r}: webserver, daemon or code-server")


def main(argv: list[str]) -> int:
    if argv:
        role = argv[0]
        port = int(argv[1]) if len(argv) > 1 else DEFAULT_PORTS.get(role)
        if role not in {"webserver", "daemon", "code-server"}:
            print(
                f"usage: healthcheck.py [webserver [PORT] | daemon | code-server [PORT]], not {role!r}", file=sys.stderr
            )
            return 2
    else:
        found = role_of(pid1_argv())
        if found is None:
            return 0  # a run or a one-off command: alive is healthy
        role, port = found
    return 0 if healthy(role, port) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
