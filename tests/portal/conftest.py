"""Fixtures of the proposal workflow tests: runs and staged proposals on the test book."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.test import Client as HttpClient

from tests.factories import PASSWORD


@pytest.fixture(autouse=True)
def _clear_cache():
    """Login lockout counters and API throttles live in the cache: start every test clean."""
    cache.clear()
    yield
    cache.clear()


def login(user) -> HttpClient:
    client = HttpClient(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=PASSWORD)
    return client


def csrf_token(client: HttpClient) -> str:
    if "csrftoken" not in client.cookies:
        client.get("/login/")
        if "csrftoken" not in client.cookies:
            from django.middleware.csrf import _get_new_csrf_string

            client.cookies["csrftoken"] = _get_new_csrf_string()
    return client.cookies["csrftoken"].value


def post(client: HttpClient, url: str, data: dict | None = None, **extra):
    """POST with a valid CSRF token (the client enforces CSRF like a browser)."""
    return client.post(url, {**(data or {}), "csrfmiddlewaretoken": csrf_token(client)}, **extra)


def make_run(book, scenario: str, capture, **kwargs):
    from optimizer.services import run_request

    with capture(execute=True):
        run = run_request(household=book.household, scenario=scenario, actor=book.owner, **kwargs)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


@pytest.fixture
def moderate_run(priced_book, django_capture_on_commit_callbacks):
    return make_run(priced_book, "moderate", django_capture_on_commit_callbacks)


@pytest.fixture
def aggressive_run(priced_book, django_capture_on_commit_callbacks):
    return make_run(priced_book, "aggressive", django_capture_on_commit_callbacks)


@pytest.fixture
def proposal(priced_book, aggressive_run):
    """A draft proposal of the aggressive run: sell 20 VTI (long-term gain $100) in the
    taxable account and buy BND in the IRA... as the optimizer proposes it."""
    from portal.services import proposal_stage

    return proposal_stage(run=aggressive_run, actor=priced_book.owner)


def add_household(book, name: str = "Lee Household", number: str = "11112222", shares: str = "40"):
    """A second household of the book's firm (same adviser): one taxable account with a VTI
    lot and cash, and an IPS; prices come from the book."""
    from decimal import Decimal

    from django.utils import timezone

    from accounts import services as svc

    today = timezone.localdate()
    household = svc.household_create(
        firm=book.firm, name=name, advisers=[book.owner], actor=book.owner
    )
    client = svc.client_create(
        household=household, first_name="Kim", last_name=name.split()[0], actor=book.owner
    )
    account = svc.account_create(
        household=household,
        owner=client,
        custodian=book.custodian,
        number=number,
        name=f"Kim {name.split()[0]} Individual",
        registration="individual",
        tax_treatment="taxable",
        cash=Decimal("6000.00"),
        actor=book.owner,
    )
    svc.lot_create(
        account=account,
        security=book.vti,
        lot_ref=f"K{number[-2:]}",
        quantity=Decimal(shares),
        cost_basis=Decimal("8000.00"),
        acquired=today - dt.timedelta(days=500),
        actor=book.owner,
    )
    svc.ips_create_version(
        household=household,
        targets=[
            svc.TargetInput(weight=Decimal("0.60"), asset_class=book.equity),
            svc.TargetInput(weight=Decimal("0.35"), asset_class=book.bonds),
            svc.TargetInput(weight=Decimal("0.05"), asset_class=book.cash),
        ],
        effective_date=today - dt.timedelta(days=30),
        actor=book.owner,
    )
    return household
