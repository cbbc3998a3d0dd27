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


@pytest.fixture
def priced_book(book: Book, today: dt.date) -> Book:
    """The base book with half a year of daily prices (enough for the risk model)."""
    from tests.factories import add_price_history

    add_price_history([book.vti, book.bnd], today - dt.timedelta(days=1))
    return book
