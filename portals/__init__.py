"""Portal adapters. Each lives in portals/<key>/ and registers itself with portals.base.register."""

from __future__ import annotations

import importlib

ADAPTER_MODULES = (
    "portals.clearinghouse.adapter",
    "portals.commercial.adapter",
    "portals.medicaid.adapter",
)


def load_adapters() -> dict[str, type]:
    """Import every adapter module (registration happens on import) and return the registry."""
    from portals.base import registry

    for mod in ADAPTER_MODULES:
        importlib.import_module(mod)
    return registry()
