"""Login throttling with the cache: after ``LOGIN_FAILURE_LIMIT`` failed attempts for one
username, or five times that many from one client address, within ``LOGIN_LOCKOUT_SECONDS``,
every login attempt for it is refused (even with the right password) until the window ends.
A successful login clears the username's count. Used by the login page and the API token
endpoint."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from accounts.models import User
from audit.services import audit_record_atomic

IP_FACTOR = 5


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"login-failures:{kind}:{digest}"


def client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _count(key: str) -> int:
    return int(cache.get(key) or 0)


def is_locked(request: HttpRequest, username: str) -> bool:
    limit = settings.LOGIN_FAILURE_LIMIT
    return (
        _count(_key("user", username)) >= limit
        or _count(_key("ip", client_ip(request))) >= limit * IP_FACTOR
    )


def _incr(key: str) -> int:
    timeout = settings.LOGIN_LOCKOUT_SECONDS
    if cache.add(key, 1, timeout):
        return 1
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout)
        return 1


def register_failure(request: HttpRequest, username: str) -> None:
    """Count a failed attempt; the attempt that reaches the limit is written to the audit log."""
    count = _incr(_key("user", username))
    _incr(_key("ip", client_ip(request)))
    if count == settings.LOGIN_FAILURE_LIMIT:
        user: Any = User.objects.filter(username=username).select_related("firm").first()
        audit_record_atomic(
            actor=None,
            event_type="auth.lockout",
            firm=user.firm if user is not None else None,
            data={
                "username": username[:150],
                "ip": client_ip(request),
                "failures": count,
                "seconds": settings.LOGIN_LOCKOUT_SECONDS,
            },
        )


def register_success(username: str) -> None:
    cache.delete(_key("user", username))


LOCKED_MESSAGE = (
    "Too many failed login attempts. Logins for this account are paused; try again in "
    "{minutes} minutes or ask your administrator."
)


def locked_message() -> str:
    return LOCKED_MESSAGE.format(minutes=max(1, settings.LOGIN_LOCKOUT_SECONDS // 60))
