"""Who is acting, for history records written outside a web request (commands, tasks)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import TYPE_CHECKING

from simple_history.models import HistoricalRecords

if TYPE_CHECKING:
    from accounts.models import User


@contextmanager
def acting_as(actor: User | None) -> Iterator[None]:
    """Record ``actor`` as ``history_user`` on every history row written inside the block.

    Inside a request the HistoryRequestMiddleware does this; a command or a Celery task says
    explicitly on whose behalf it writes. Nesting restores the outer actor.
    """
    context = HistoricalRecords.context
    previous = getattr(context, "request", None)
    had_previous = hasattr(context, "request")
    context.request = SimpleNamespace(user=actor) if actor is not None else None
    try:
        yield
    finally:
        if had_previous:
            context.request = previous
        else:
            del context.request
