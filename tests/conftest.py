from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.factories import Book


@pytest.fixture
def today() -> dt.date:
    from django.utils import timezone

    return timezone.localdate()


@pytest.fixture
def book(db: None, today: dt.date) -> Book:
    """A firm with an owner adviser, a colleague, compliance, a client login and an outsider."""
    from tests.factories import make_book

    return make_book(today)
