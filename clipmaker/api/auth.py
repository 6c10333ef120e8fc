"""Who is calling: ``Authorization: Bearer <key>`` to a tenant, and the key's request rate.

Every route that touches a tenant's work depends on ``CallerDep``; FastAPI resolves it once per
request, so a router-wide dependency and a route parameter share one lookup. Refusals:
``401 unauthorized`` (no key, or one that is unknown or revoked) and ``429 rate_limited``.
With auth off the caller is the default tenant with an admin's view: the service behaves as it
did before keys existed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from clipmaker.api.deps import ServicesDep
from clipmaker.errors import RATE_LIMITED, UNAUTHORIZED, ClipError
from clipmaker.jobs.models import DEFAULT_TENANT
from clipmaker.services import Services
from clipmaker.settings import Settings
from clipmaker.tenants.keys import KeyRepository
from clipmaker.tenants.limits import RateDecision

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An API key from `clipmaker keys create`, as `Authorization: Bearer <key>`.",
)


@dataclass(frozen=True)
class Caller:
    """The tenant a request acts for, and the key's limits (``None``: no limit)."""

    tenant: str
    admin: bool = False
    key_id: str | None = None
    requests_per_minute: int | None = None
    max_running: int | None = None

    @property
    def scope(self) -> str | None:
        """The tenant whose rows this caller may see; ``None`` for every tenant (admin)."""
        return None if self.admin else self.tenant


ANONYMOUS = Caller(tenant=DEFAULT_TENANT, admin=True)
"""The caller while auth is off: one tenant, nothing hidden (as before keys existed)."""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def auth_required(settings: Settings, keys: KeyRepository) -> bool:
    """``auto``: required once any key exists, or whenever strangers can reach the port."""
    if settings.auth == "off":
        return False
    if settings.auth == "required":
        return True
    return not _loopback(settings.http_host) or keys.any_active()


def _unauthorized(message: str, *, invalid: bool) -> ClipError:
    challenge = 'Bearer error="invalid_token"' if invalid else "Bearer"
    return ClipError(
        UNAUTHORIZED, message, status_code=401, headers={"WWW-Authenticate": challenge}
    )


def identify(services: Services, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    """The caller behind a request's credentials, or a 401 when auth is in force."""
    if not auth_required(services.settings, services.keys):
        return ANONYMOUS
    if credentials is None or not credentials.credentials:
        raise _unauthorized(
            "this API needs a key: send 'Authorization: Bearer <key>'", invalid=False
        )
    key = services.keys.authenticate(credentials.credentials)
    if key is None:
        raise _unauthorized("the API key is not valid (unknown or revoked)", invalid=True)
    return Caller(
        tenant=key.tenant,
        admin=key.admin,
        key_id=key.id,
        requests_per_minute=key.requests_per_minute,
        max_running=key.max_running,
    )


def charge(services: Services, caller: Caller, weight: int = 1) -> RateDecision | None:
    """Spend ``weight`` of the caller's requests per minute; 429 when it has not got them."""
    if caller.key_id is None or caller.requests_per_minute is None or weight <= 0:
        return None
    decision = services.limits.take(caller.key_id, caller.requests_per_minute, weight)
    if not decision.allowed:
        raise ClipError(
            RATE_LIMITED,
            f"this key may make {caller.requests_per_minute} requests per minute; "
            f"retry in {decision.headers()['Retry-After']} s",
            status_code=429,
            headers=decision.headers(),
        )
    return decision


def authenticate(
    request: Request,
    response: Response,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    """Identify the caller and count the request against its key's rate."""
    caller = identify(services, credentials)
    decision = charge(services, caller)
    if decision is not None:
        response.headers.update(decision.headers())
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(authenticate)]
