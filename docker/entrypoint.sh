#!/bin/sh
# Entry point of the production image (Dockerfile ENTRYPOINT): every container of it starts here, the Dagster
# webserver, daemon, code server and each run (ECS overrides only the command).
#
# 1. Refuses to start unless SPOTLAKE_ENV names an environment of the image: the image has no default, so a container
#    started by hand with admin credentials cannot write production by accident. `local` needs the embedded local
#    stack, which the image does not ship (`make run` in a checkout is the way to run it).
# 2. Writes the Dagster instance configuration that ECS injects as DAGSTER_INSTANCE_YAML to $DAGSTER_HOME/dagster.yaml
#    (the image carries none; see infra/README.md "Dagster on ECS").
# 3. Runs the command.
set -eu

me="spotlake image"
case "${SPOTLAKE_ENV:-}" in
    prod | test) ;;
    "")
        echo "$me: SPOTLAKE_ENV is not set and this image has no default." >&2
        echo "$me: set SPOTLAKE_ENV=prod (writes production: bucket spotlake, table azure) or SPOTLAKE_ENV=test" \
            "(bucket spotlake-test, table azure-test); the ECS task definitions of infra/ set it." >&2
        exit 78
        ;;
    *)
        echo "$me: SPOTLAKE_ENV=$SPOTLAKE_ENV is not an environment of this image: set SPOTLAKE_ENV=prod or" \
            "SPOTLAKE_ENV=test. ('local' runs the embedded local stack, which is not in the image: use \`make run\`.)" >&2
        exit 78
        ;;
esac

if [ -n "${DAGSTER_INSTANCE_YAML:-}" ]; then
    if [ -z "${DAGSTER_HOME:-}" ]; then
        echo "$me: DAGSTER_INSTANCE_YAML is set but DAGSTER_HOME is not: nowhere to write dagster.yaml." >&2
        exit 78
    fi
    mkdir -p "$DAGSTER_HOME"
    printf '%s\n' "$DAGSTER_INSTANCE_YAML" > "$DAGSTER_HOME/dagster.yaml"
fi

if [ "$#" -eq 0 ]; then
    echo "$me: no command given (the image's CMD starts the code server)." >&2
    exit 64
fi
exec "$@"
