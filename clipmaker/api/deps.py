"""FastAPI dependencies: the services this replica connected to at start-up.

Serve pickles the FastAPI app into each replica by value, so state set on the ``api`` object
by the deployment's constructor would land on a different copy. A module-level holder is
shared by everything in the replica process (our modules are imported, not copied).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from clipmaker.services import Services

_services: Services | None = None


def install_services(services: Services) -> None:
    global _services
    _services = services


def get_services() -> Services:
    if _services is None:
        raise RuntimeError("the API's services were not installed (see clipmaker.app.Ingress)")
    return _services


def installed_services() -> Services | None:
    """The services if installed (error handlers run even when start-up went wrong)."""
    return _services


ServicesDep = Annotated[Services, Depends(get_services)]
