# The image of the SpotLake Azure collector in AWS: the code server (default command), the Dagster webserver and
# daemon (ECS services) and every run (EcsRunLauncher tasks). No secrets inside: AWS access comes from the task role,
# Azure credentials from the AzureAuth table or from environment variables injected by ECS at run time. No default
# environment: the entry point refuses to start without SPOTLAKE_ENV=prod|test. No local stack (the `local` extra).
#
# Base: python:3.11-slim-bookworm (Python 3.11.16, Debian 12) pinned to the digest of its linux/amd64 image, as
# published by Docker Official Images (docker-library/repo-info, repos/python/remote/3.11-slim-bookworm.md, section
# "linux; amd64", image of 2026-08-25). requirements.lock is compiled for exactly this: CPython 3.11, x86_64, glibc
# 2.36 (docker/lockfile.py). To move the base: `docker buildx imagetools inspect python:3.11-slim-bookworm`, take the
# linux/amd64 manifest digest, and run `make lock` if the Python minor version or the glibc changes.
FROM python:3.11-slim-bookworm@sha256:2fc9207f64226cb05ac317cee0bab6fa55a9ea311ce5a086baddd4b4a83c2d3c

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /opt/spotlake

# Dependencies first (this layer is reused while the lock is unchanged): exactly the pinned versions, each file
# checked against its hash, wheels only (nothing is compiled in the image).
COPY requirements.lock ./
RUN pip install --require-hashes --only-binary :all: -r requirements.lock

# The project itself, without dependencies and without extras, built by the base image's setuptools (part of the
# pinned base) instead of one fetched unpinned into an isolated build environment; `pip check` then proves the lock
# covers every dependency pyproject.toml declares.
COPY pyproject.toml README.md definitions.py workspace.yaml ./
COPY spotlake_assets ./spotlake_assets
COPY resources ./resources
COPY docker/entrypoint.sh docker/healthcheck.py ./docker/
RUN pip install --no-deps --no-build-isolation . \
    && pip check \
    && rm -rf build ./*.egg-info \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin spotlake

USER spotlake
ENV DAGSTER_HOME=/home/spotlake/dagster
EXPOSE 4000

# Checks what PID 1 runs: the code server by default, the webserver or the daemon when ECS runs them (their task
# definitions also name their check); a run is healthy while it runs. Python only: the slim image has no curl.
HEALTHCHECK --interval=60s --timeout=45s --start-period=120s --retries=3 \
    CMD ["python", "/opt/spotlake/docker/healthcheck.py"]

ENTRYPOINT ["/bin/sh", "/opt/spotlake/docker/entrypoint.sh"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-f", "definitions.py"]
