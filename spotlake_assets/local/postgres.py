"""A throwaway PostgreSQL server from Debian's `postgresql` package, for the production rehearsal
(benchmarks/rehearsal.py): a cluster in a temporary directory, on a free loopback port, with TLS (production's
dagster.yaml says `sslmode: require`, as RDS does), restartable like an RDS reboot.

PostgreSQL refuses to run as root: run as root (CI is), the cluster belongs to the `postgres` system user the package
creates, and the server runs as that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .deployment import free_port

USER = "dagster"  # the cluster's superuser; trust authentication on loopback: any password is accepted
DATABASE = "dagster"


class PostgresUnavailable(RuntimeError):
    """Debian's postgresql is not installed (the message says how to install it)."""


def bin_dir() -> Path:
    """The newest installed server's bin directory (/usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise PostgresUnavailable(
            "PostgreSQL is not installed: `sudo apt-get install -y postgresql` (Debian's package; `make bench` and "
            ".ci/run install it where missing)"
        )
    return Path(found[-1]).parent


@dataclass
class Postgres:
    """One cluster; `start()`, `restart()`, `stop()`."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="spotlake-postgres-")))
    port: int = field(default_factory=free_port)
    log: Path | None = None
    _proc: subprocess.Popen | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _owner(self) -> dict:
        """Run as `postgres` when this process is root (PostgreSQL refuses root), else as ourselves."""
        if os.geteuid() != 0:
            return {}
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable("running as root needs the `postgres` user of Debian's postgresql") from None
        return {"user": entry.pw_uid, "group": entry.pw_gid}

    def _chown(self, path: Path) -> None:
        owner = self._owner()
        if owner:
            os.chown(path, owner["user"], owner["group"])

    def init(self) -> None:
        binaries = bin_dir()
        self._chown(self.root)
        self.root.chmod(0o700)
        subprocess.run(
            [binaries / "initdb", "-D", self.data, "-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C"],
            check=True, capture_output=True, **self._owner(),
        )  # fmt: skip
        self._certificate()

    def _certificate(self) -> None:
        """A throwaway certificate (trustme) for the server's TLS: `sslmode: require` encrypts without verifying."""
        import trustme

        ca = trustme.CA()
        server = ca.issue_cert("127.0.0.1", "localhost")
        key, cert = self.data / "server.key", self.data / "server.crt"
        server.private_key_pem.write_to_path(str(key))
        server.cert_chain_pems[0].write_to_path(str(cert))
        for path in (key, cert):
            path.chmod(0o600)
            self._chown(path)

    def start(self, timeout: float = 60.0) -> None:
        command = [
            bin_dir() / "postgres", "-D", self.data, "-p", str(self.port), "-h", "127.0.0.1", "-k", self.root,
            "-c", "ssl=on", "-c", "fsync=off", "-c", "max_connections=200",
        ]  # fmt: skip
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - kept for the process
        self._proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, **self._owner())
        deadline = time.monotonic() + timeout
        ready = [bin_dir() / "pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER]
        while subprocess.run(ready, capture_output=True).returncode != 0:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on port {self.port} did not start (log: {self.log})")
            time.sleep(0.2)

    def create_database(self) -> None:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=USER, dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {DATABASE}")
        connection.close()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60.0) -> None:
        """SIGINT: PostgreSQL's fast shutdown (clients disconnected, as an RDS reboot does)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(sig)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def restart(self, down_seconds: float) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
