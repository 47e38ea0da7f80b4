"""User extensions without editing the package: modules named by the `prism_eval.plugins` entry-point group.

A plugin module registers what it adds when imported (register_metric,
register_engine, register_protocol; benchmark adapters need no registration,
a spec names them as `module:function`). Declare it in your package's metadata:

    [project.entry-points."prism_eval.plugins"]
    my_metrics = "my_package.prism_metrics"

prism-eval imports every plugin once, before it resolves a model spec, a
metric or a protocol for a run, a report or the benchmark catalogue.
"""
from __future__ import annotations

import functools
from importlib import metadata

GROUP = "prism_eval.plugins"


class PluginError(ImportError):
    """A plugin that cannot be imported; names the entry point and the error."""


@functools.cache
def load_plugins() -> tuple[str, ...]:
    """Import every plugin module (once per process); returns the entry-point names loaded."""
    names = []
    for entry in metadata.entry_points(group=GROUP):
        try:
            entry.load()
        except Exception as exc:  # noqa: BLE001 - whatever a plugin raises, say which one
            raise PluginError(f"prism-eval plugin {entry.name!r} ({entry.value}) cannot be imported: "
                              f"{type(exc).__name__}: {exc}") from exc
        names.append(entry.name)
    return tuple(names)
