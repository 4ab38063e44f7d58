"""The production image, checked without Docker: the Dockerfile's instructions, its entry point and health check run
directly as scripts, the lock file against pyproject.toml, and the code location loading for `prod` with the local
stack's packages (moto, flask, trustme) made unimportable, as they are in the image.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib.util
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
IMAGE_ROOT = "/opt/spotlake"  # WORKDIR of the image; its files are this checkout's
LOCAL_STACK_PACKAGES = ("moto", "flask", "trustme")


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docker_{name}", ROOT / "docker" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lockfile = load_script("lockfile")
healthcheck = load_script("healthcheck")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped[:-1] + " " if stripped.endswith("\\") else stripped
        if not stripped.endswith("\\"):
            keyword, _, arguments = pending.partition(" ")
            result.append((keyword.upper(), arguments.strip()))
            pending = ""
    return result


def instruction(keyword: str) -> list[str]:
    return [arguments for name, arguments in instructions() if name == keyword]


def exec_form(keyword: str) -> list[str]:
    (arguments,) = instruction(keyword)
    return json.loads(arguments)


def in_checkout(argv: list[str]) -> list[str]:
    """An image command line with the image's paths mapped onto this checkout."""
    return [arg.replace(IMAGE_ROOT, str(ROOT)) for arg in argv]


def environ_without(*names: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in names}
    env.update(extra)
    return env


# --- Dockerfile ----------------------------------------------------------------------------------------


def test_base_image_is_pinned_by_digest() -> None:
    (base,) = instruction("FROM")
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base), base


def test_image_has_no_environment_default() -> None:
    for arguments in instruction("ENV") + instruction("ARG"):
        assert "SPOTLAKE_ENV" not in arguments, arguments


def test_image_installs_the_lock_with_hashes_and_the_project_without_extras() -> None:
    runs = " ".join(instruction("RUN"))
    assert "pip install --require-hashes --only-binary :all: -r requirements.lock" in runs
    assert "pip install --no-deps --no-build-isolation ." in runs
    assert "pip check" in runs
    assert "[" not in runs, "the image installs no extra (the local stack stays out)"
    assert not re.search(r"pip install(?![^&]*(requirements\.lock|--no-deps))", runs), "an unpinned pip install"


def test_image_runs_as_a_non_root_user_with_a_health_check() -> None:
    (user,) = instruction("USER")
    assert user not in {"root", "0"}
    (check,) = instruction("HEALTHCHECK")
    assert check.startswith("--interval=") and '"/opt/spotlake/docker/healthcheck.py"' in check
    assert exec_form("ENTRYPOINT") == ["/bin/sh", f"{IMAGE_ROOT}/docker/entrypoint.sh"]
    copied = " ".join(instruction("COPY"))
    assert "docker/entrypoint.sh" in copied and "docker/healthcheck.py" in copied


# --- entry point ---------------------------------------------------------------------------------------


def test_image_command_without_spotlake_env_exits_with_a_clear_error() -> None:
    """ENTRYPOINT + CMD exactly as the image runs them, with SPOTLAKE_ENV unset: it must refuse, not serve."""
    argv = in_checkout(exec_form("ENTRYPOINT") + exec_form("CMD"))
    done = subprocess.run(
        argv, cwd=ROOT, env=environ_without("SPOTLAKE_ENV"), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 78, done
    assert "SPOTLAKE_ENV is not set" in done.stderr
    assert "SPOTLAKE_ENV=prod" in done.stderr and "SPOTLAKE_ENV=test" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("value", ["", "local", "production", "prod; echo hi"])
def test_entry_point_refuses_what_is_not_an_environment_of_the_image(value: str) -> None:
    argv = in_checkout(exec_form("ENTRYPOINT")) + ["echo", "started"]
    done = subprocess.run(argv, env=environ_without("SPOTLAKE_ENV", SPOTLAKE_ENV=value), capture_output=True, text=True)
    assert done.returncode == 78, done
    assert "started" not in done.stdout
    assert "SPOTLAKE_ENV=prod" in done.stderr


@pytest.mark.parametrize("env", ["prod", "test"])
def test_entry_point_writes_the_injected_instance_yaml_then_runs_the_command(env: str, tmp_path: Path) -> None:
    home = tmp_path / "dagster"
    yaml = "run_monitoring:\n  enabled: true\n"
    argv = in_checkout(exec_form("ENTRYPOINT")) + ["sh", "-c", 'echo "$SPOTLAKE_ENV" "$1"', "sh", "arg with spaces"]
    environ = environ_without("SPOTLAKE_ENV", SPOTLAKE_ENV=env, DAGSTER_HOME=str(home), DAGSTER_INSTANCE_YAML=yaml)
    done = subprocess.run(argv, env=environ, capture_output=True, text=True)
    assert done.returncode == 0, done
    assert done.stdout == f"{env} arg with spaces\n"
    assert (home / "dagster.yaml").read_text() == yaml + "\n"


def test_entry_point_without_a_command_fails() -> None:
    argv = in_checkout(exec_form("ENTRYPOINT"))
    done = subprocess.run(
        argv, env=environ_without("SPOTLAKE_ENV", SPOTLAKE_ENV="test"), capture_output=True, text=True
    )
    assert done.returncode == 64 and "no command" in done.stderr


# --- the code location without the local stack ---------------------------------------------------------

BLOCK_LOCAL_STACK = """
import sys

class BlockLocalStack:
    # As in the image, where the `local` extra is not installed: importing any of these fails.
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ImportError(f"{{name}} is not installed in the production image")
        return None

sys.meta_path.insert(0, BlockLocalStack())
import definitions
repository = definitions.defs.get_repository_def()
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in {blocked!r})
print(len(repository.get_all_jobs()), loaded)
"""


@pytest.mark.parametrize("env", ["prod", "test"])
def test_definitions_load_without_the_local_stack(env: str) -> None:
    code = BLOCK_LOCAL_STACK.format(blocked=set(LOCAL_STACK_PACKAGES))
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environ_without("SPOTLAKE_ENV", SPOTLAKE_ENV=env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    jobs, loaded = done.stdout.split(" ", 1)
    assert int(jobs) > 0 and loaded.strip() == "[]"


def test_local_stack_is_an_optional_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower() for spec in project["dependencies"]}
    assert not names & set(LOCAL_STACK_PACKAGES)
    local = {
        re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower() for spec in project["optional-dependencies"]["local"]
    }
    assert local == set(LOCAL_STACK_PACKAGES)
    makefile = (ROOT / "Makefile").read_text()
    assert "-e '.[dev,local]'" in makefile


# --- lock file -----------------------------------------------------------------------------------------


def locked() -> dict[str, str]:
    """name -> version pinned in requirements.lock (extras dropped)."""
    pins = re.findall(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^ \\]+)", lockfile.LOCK.read_text(), re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def test_lock_is_in_step_with_pyproject() -> None:
    assert lockfile.check() is None, lockfile.check()


def test_lock_pins_every_dependency_with_hashes_and_no_local_stack() -> None:
    project = tomllib.loads(lockfile.PYPROJECT.read_text())["project"]
    pins = locked()
    for spec in project["dependencies"]:
        name = re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower()
        assert name in pins, f"{name} is not in requirements.lock"
    assert not set(pins) & {*LOCAL_STACK_PACKAGES, "pytest", "ruff", "playwright", "python-hcl2"}
    entries = re.split(r"\n(?=[A-Za-z0-9])", lockfile.LOCK.read_text().split("\n", 1)[1].lstrip("#").strip())
    for entry in entries:
        if "==" in entry:
            assert "--hash=sha256:" in entry, entry.splitlines()[0]


def test_lock_check_notices_a_dependency_change(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    text = lockfile.PYPROJECT.read_text()
    pyproject.write_text(text.replace('"requests>=2.32,<3",', '"requests>=2.32,<3",\n    "rich>=13",', 1))
    assert "out of step" in lockfile.check(lockfile.LOCK, pyproject)
    lock = tmp_path / "requirements.lock"
    lock.write_text(lockfile.LOCK.read_text())
    lockfile.stamp(lock, pyproject)
    assert lockfile.check(lock, pyproject) is None
    assert lock.read_text().count(lockfile.HASH_PREFIX) == 1
    assert "run `make lock`" in lockfile.check(tmp_path / "missing.lock", pyproject)


def test_lock_check_command_line() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "docker" / "lockfile.py"), "check", str(lockfile.LOCK)], capture_output=True
    )
    assert done.returncode == 0, done.stderr


# --- health check --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("dagster code-server start -h 0.0.0.0 -p 4000 -f definitions.py", ("code-server", 4000)),
        ("/usr/local/bin/python /usr/local/bin/dagster api grpc --port=4100", ("code-server", 4100)),
        ("dagster-webserver -h 0.0.0.0 -p 3000 -w workspace.yaml --read-only", ("webserver", 3000)),
        ("timeout 8h dagster-webserver -h 127.0.0.1 -p 3001 -w workspace.yaml", ("webserver", 3001)),
        ("/usr/local/bin/python /usr/local/bin/dagster-daemon run -w workspace.yaml", ("daemon", None)),
        ("dagster api execute_run {}", None),
        ("sleep 10", None),
    ],
)
def test_health_check_recognises_what_the_container_runs(command: str, expected: tuple[str, int] | None) -> None:
    assert healthcheck.role_of(shlex.split(command)) == expected


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def fake_webserver() -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200 if self.path == "/server_info" else 404)
            self.end_headers()
            self.wfile.write(b'{"dagster_webserver_version": "test"}')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_webserver_health_check_asks_server_info(fake_webserver: int) -> None:
    script = str(ROOT / "docker" / "healthcheck.py")
    assert subprocess.run([sys.executable, script, "webserver", str(fake_webserver)]).returncode == 0
    done = subprocess.run([sys.executable, script, "webserver", str(free_port())], capture_output=True, text=True)
    assert done.returncode == 1 and "webserver on port" in done.stderr


def test_code_server_health_check_against_a_real_code_server(tmp_path: Path) -> None:
    """The Dockerfile's default CMD (the code server) and the health check it would get, for real."""
    port = free_port()
    script = str(ROOT / "docker" / "healthcheck.py")
    assert subprocess.run([sys.executable, script, "code-server", str(port)], capture_output=True).returncode == 1
    command = in_checkout(exec_form("ENTRYPOINT")) + [arg if arg != "4000" else str(port) for arg in exec_form("CMD")]
    command[command.index("0.0.0.0")] = "127.0.0.1"
    environ = environ_without("SPOTLAKE_ENV", SPOTLAKE_ENV="prod", DAGSTER_HOME=str(tmp_path))
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"
    server = subprocess.Popen(
        command, cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            check = subprocess.run([sys.executable, script, "code-server", str(port)], env=environ, capture_output=True)
            if check.returncode == 0:
                break
            assert server.poll() is None, server.stderr.read().decode()[-3000:] if server.stderr else ""
            assert time.monotonic() < deadline, "the code server never answered its health check"
            time.sleep(1)
    finally:
        # As ECS stops a task: SIGTERM, then SIGKILL after a stop timeout (dagster's code server may outlive
        # SIGTERM: ECS waits 30 s, this test 5), to the whole group so that its gRPC child goes too.
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, None)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=wait)


# --- what the image and the Lambda zip carry --------------------------------------------------------------------


def docker_context() -> list[str]:
    """The files the image's COPY instructions take from this checkout: the tracked files they name, minus the
    .dockerignore patterns (a directory pattern excludes what is under it; `**/x/` excludes x anywhere)."""
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]  # fmt: skip
    sources = [word for line in DOCKERFILE.read_text().splitlines() if line.startswith("COPY ")
               for word in shlex.split(line)[1:-1]]  # fmt: skip
    tracked = subprocess.run(["git", "ls-files", *sources], cwd=ROOT, capture_output=True, text=True, check=True)

    def excluded(path: str) -> bool:
        for pattern in ignored:
            if pattern.startswith("**/"):
                if f"/{pattern[3:]}" in f"/{path}":
                    return True
            elif path.startswith(pattern.rstrip("/") + "/") or path == pattern:
                return True
        return False

    return [p for p in tracked.stdout.split() if not excluded(p)]


def wheel_of(project: Path, out: Path) -> Path:
    """The wheel pip builds of `project` (build isolation: setuptools as pyproject's build-system asks)."""
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(project)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    [wheel] = out.glob("*.whl")
    return wheel


def test_the_image_and_the_lambda_zip_carry_no_development_stack_module(tmp_path: Path) -> None:
    """The image builds its package from the COPY'd files (no `spotlake_assets/local/`: .dockerignore), and the
    wheel leaves it out too (pyproject's find exclude); the Lambda zip is exactly its import closure."""
    from resources.query_api.package import FILES, build

    context = docker_context()
    assert "spotlake_assets/defs.py" in context and "resources/query_api/handler.py" in context
    assert not [p for p in context if p.startswith("spotlake_assets/local/")]
    # the installed package: the wheel `pip install .` builds in the image, from the same files
    for path in context:
        (tmp_path / "context" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "context" / path).write_bytes((ROOT / path).read_bytes())
    installed = zipfile.ZipFile(wheel_of(tmp_path / "context", tmp_path / "dist")).namelist()
    modules = [name for name in installed if name.endswith(".py")]
    assert "spotlake_assets/core/layout.py" in modules and "resources/query_api/reader.py" in modules
    assert not [name for name in installed if name.startswith("spotlake_assets/local/")]
    # the same with every tracked file of the checkout (a wheel built outside Docker): pyproject excludes the stack
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for path in tracked:
        (tmp_path / "checkout" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "checkout" / path).write_bytes((ROOT / path).read_bytes())
    whole = zipfile.ZipFile(wheel_of(tmp_path / "checkout", tmp_path / "dist-checkout")).namelist()
    assert "spotlake_assets/core/layout.py" in whole
    assert not [name for name in whole if name.startswith("spotlake_assets/local/")]
    # the Lambda zip: its listed files only, none of the development stack, no Dagster asset or resource module
    listed = zipfile.ZipFile(build(tmp_path / "query-api.zip")).namelist()
    assert sorted(listed) == sorted(FILES)
    assert not [n for n in listed if n.startswith(("spotlake_assets/local/", "spotlake_assets/dataset/",
                                                      "spotlake_assets/sources/"))]  # fmt: skip
    assert {n.split("/")[0] for n in listed} == {"resources", "spotlake_assets"}
