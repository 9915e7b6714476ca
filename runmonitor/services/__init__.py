"""The service registry.

Every module or subpackage in this package that defines ``SERVICE`` (a :class:`Service`
subclass) is a service; ``base``, ``http``, ``auth`` and ``validators`` are the shared
infrastructure. Adding a sixth service means adding ``services/<key>.py`` (or a
``services/<key>/`` package) and ``simulator/<key>.py``; tabs, forms, the poller and
the contract tests pick it up from here.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from runmonitor.services.base import Service

_INFRASTRUCTURE = frozenset({"base", "http", "auth", "validators"})

AnyService = type[Service]  # type: ignore[type-arg]


@cache
def registry() -> dict[str, AnyService]:
    """Service key → Service class, in display order (each service's ``order``, then key)."""
    found: dict[str, AnyService] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name in _INFRASTRUCTURE:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        service = getattr(module, "SERVICE", None)
        if service is None:
            continue
        if service.key != info.name:
            raise RuntimeError(f"service module {info.name} declares key {service.key!r}")
        found[service.key] = service

    return {key: found[key] for key in sorted(found, key=lambda key: (found[key].order, key))}


def get(key: str) -> AnyService:
    try:
        return registry()[key]
    except KeyError:
        known = ", ".join(registry())
        raise KeyError(f"unknown service {key!r}; known services: {known}") from None


def keys() -> list[str]:
    return list(registry())
