# The image that serves the code location and runs each Dagster run (EcsRunLauncher) in AWS.
# No secrets inside: AWS access comes from the task role, Azure credentials from the AzureAuth table
# or from environment variables injected by ECS from Secrets Manager at run time.
FROM python:3.11-slim

WORKDIR /opt/spotlake
COPY pyproject.toml README.md definitions.py workspace.yaml ./
COPY spotlake_assets ./spotlake_assets
COPY resources ./resources
RUN pip install --no-cache-dir . && useradd --create-home spotlake
USER spotlake

ENV SPOTLAKE_ENV=prod \
    DAGSTER_HOME=/home/spotlake/dagster
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-f", "definitions.py"]
