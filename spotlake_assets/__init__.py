"""SpotLake's Azure collector.

Layers, each importing only those before it (tests/test_layers.py checks):
- `core/`: the pure core: time rules, key layout, pandas transforms, SPS planning (no Dagster, no I/O library);
- `resources/` (top-level package): settings, S3, DynamoDB, Azure clients, the IO managers;
- `sources/`, `dataset/`: the Dagster assets; `jobs.py`, `sensors.py`, `defs.py`: the rest of the definitions;
- `local/`: the embedded local stack (Azure emulator, moto server) and its commands (`local/commands.py`);
- `cli.py`: the `spotlake` entry point and the operator commands (`cli_base.py`: what all commands share).
See docs/design.md.
"""
