"""Resource settings that decide where data goes or where credentials are sent come from the deployment's
environment only (docs/security.md "Run config cannot move data or credentials").

Dagster lets a run's config override any field of a ConfigurableResource (the launchpad shows every field with the
value the code bound as its default). For the fields listed in a resource's `PROTECTED` that must never work: a
launchpad user could send the Azure secret to another login host, or aim `test` at production's bucket. So every
`EnvironmentBound` resource, when a run (or a sensor) initializes it, before anything is contacted:

1. refuses a run whose config sets *any* protected field of *any* resource (not only its own: every step of a run
   initializes the IO manager's store, so the run's first step fails before it sends a request, whatever step
   would have used the overridden resource); the error names the field;
2. in `prod` and `test`, compares its protected fields with what `load_settings()` gives in this process (the
   deployment's SPOTLAKE_* variables) and refuses any difference, naming the field and its variable;
3. runs the environment's guards again on its own values (resources/settings.py: the production bucket and table
   only in `prod`, Microsoft's and AWS's hosts only in `prod` and `test`).

In `local` step 2 is limited to `env`: tests and the embedded stack build resources on free ports and throwaway
buckets. Nothing here reads a secret; the checks cost no request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import dagster as dg

from .settings import DEPLOYED, Settings, SettingsError, load_settings


class ProtectedSettingError(SettingsError):
    """A run tried to change where data goes or where credentials are sent, or a resource disagrees with the
    deployment's environment."""


class EnvironmentBound(dg.ConfigurableResource):
    """A resource whose `PROTECTED` fields come from the deployment's environment (see the module's docstring).

    `PROTECTED` maps each protected field to where the deployment sets it (an environment variable, or a sentence
    when the code fixes it); `settings_values(settings)` gives every protected field's value for an environment, and
    `from_settings` builds the resource from them."""

    PROTECTED: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def settings_values(cls, settings: Settings) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any):
        """The resource of an environment; `overrides` may set only unprotected fields (retry budgets, timeouts)."""
        protected = sorted(set(overrides) & set(cls.PROTECTED))
        if protected:
            raise ProtectedSettingError(
                f"{cls.__name__}.{protected[0]} comes from the environment ({cls.PROTECTED[protected[0]]})"
            )
        return cls(**cls.settings_values(settings), **overrides)

    def check_guards(self) -> None:
        """The environment's guards on this resource's own values (raise SettingsError)."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        refuse_protected_run_config(context.dagster_run.run_config if context.dagster_run else None)
        check_against_settings(self, load_settings())
        self.check_guards()


def protected_fields() -> dict[str, str]:
    """Every protected field name of every EnvironmentBound resource -> where the deployment sets it. A name means
    the same setting in every resource that has it (`endpoint_url` is SPOTLAKE_AWS_ENDPOINT_URL wherever it is)."""
    found: dict[str, str] = {}
    pending = list(EnvironmentBound.__subclasses__())
    while pending:
        cls = pending.pop()
        found.update(cls.PROTECTED)
        pending.extend(cls.__subclasses__())
    return found


def refuse_protected_run_config(run_config: Mapping[str, Any] | None) -> None:
    """Refuse a run config that sets a protected field of any resource, naming every one, e.g.
    `run config sets protected fields of resources.azure.config (authority, ...)`. (Dagster replaces a resource's
    whole config when a run gives one, so a field left out falls back to its class default: `prod` and `test` catch
    that in check_against_settings.)"""
    resources = (run_config or {}).get("resources") or {}
    protected = protected_fields()
    found: dict[str, list[str]] = {}
    for key in sorted(resources):
        entry = resources[key]
        config = entry.get("config") if isinstance(entry, Mapping) else None
        if isinstance(config, Mapping):
            if names := [name for name in sorted(config) if name in protected]:
                found[f"resources.{key}.config"] = names
    if found:
        where = sorted({protected[name] for names in found.values() for name in names})
        raise ProtectedSettingError(
            "run config sets protected fields of "
            + " and ".join(f"{path} ({', '.join(names)})" for path, names in found.items())
            + ": where data goes and where credentials are sent come from the deployment's environment only ("
            + ", ".join(where)
            + "); leave `resources` out of the run config"
        )


def check_against_settings(resource: EnvironmentBound, settings: Settings) -> None:
    """In `prod` and `test`, every protected field must equal the environment's value; in `local`, `env` must.
    Names every field that differs."""
    expected = type(resource).settings_values(settings)
    names = sorted(expected) if settings.env in DEPLOYED else [n for n in ("env",) if n in expected]
    cls = type(resource)
    differ = [
        f"{cls.__name__}.{name} is {getattr(resource, name)!r} but the environment sets {expected[name]!r} "
        f"({cls.PROTECTED[name]})"
        for name in names
        if getattr(resource, name) != expected[name]
    ]
    if differ:
        raise ProtectedSettingError(
            f"{'; '.join(differ)}: in SPOTLAKE_ENV={settings.env} it cannot be changed for a run"
        )
