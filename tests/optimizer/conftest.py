from __future__ import annotations

import datetime as dt

import pytest


@pytest.fixture
def priced_book(book, today):
    """The base book with half a year of daily prices (enough for the risk model)."""
    from tests.factories import add_price_history

    add_price_history([book.vti, book.bnd], today - dt.timedelta(days=1))
    return book
