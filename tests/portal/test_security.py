"""Security: login lockout, and a walk over EVERY URL pattern (pages, API, admin) as an
outsider and as a client of another household, asserting that nothing of theirs is shown or
changed."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.test import Client as HttpClient
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token

from accounts.importing import import_file
from accounts.models import ImportBatch, InvestmentPolicy, ReconciliationBreak
from audit.models import AuditEvent
from optimizer.models import OptimizationRun
from portal import services as wf
from portal.exports.services import export_proposal
from portal.models import (
    ExportFile,
    Proposal,
    ProposalApproval,
    ProposalEdit,
    ProposalExport,
    ProposalTrade,
)
from tests.factories import PASSWORD
from tests.portal.conftest import add_household, csrf_token, login, make_run

D = Decimal

# --------------------------------------------------------------------------- lockout


def _login_post(client: HttpClient, username: str, password: str):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_repeated_failures_lock_the_login_even_with_the_right_password(book):
    client = HttpClient()
    for _ in range(5):
        assert _login_post(client, "owner", "wrong").status_code == 200
    locked = _login_post(client, "owner", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed login attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    event = AuditEvent.objects.get(event_type="auth.lockout")
    assert event.firm == book.firm and '"username":"owner"' in event.payload
    assert not AuditEvent.objects.filter(event_type="auth.login").exists()
    other = _login_post(HttpClient(), "colleague", PASSWORD)  # another account is unaffected
    assert other.status_code == 302


def test_a_success_clears_the_failures(book):
    client = HttpClient()
    for _ in range(4):
        _login_post(client, "owner", "wrong")
    assert _login_post(client, "owner", PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        assert _login_post(HttpClient(), "owner", "wrong").status_code == 200
    assert _login_post(HttpClient(), "owner", PASSWORD).status_code == 302


def test_one_address_guessing_many_usernames_is_locked_out(book):
    client = HttpClient()
    for i in range(25):
        _login_post(client, f"nobody{i}", "wrong")
    assert _login_post(client, "owner", PASSWORD).status_code == 429


# --------------------------------------------------------------------------- the walk

MARKERS_ALPHA = (
    "Smith Household",
    "Pat Individual",
    "Sam IRA",
    "12345678",
    "87654321",
    "Alpha Advisers",
)
MARKERS_LEE = ("Lee Household", "Kim Lee", "11112222")
SKIP_POST = {"logout", "login"}  # the walker's own session


def _patterns(resolvers, prefix: str = "") -> Iterator[tuple[str, str]]:
    for p in resolvers:
        if isinstance(p, URLResolver):
            yield from _patterns(p.url_patterns, prefix + _route(p))
        elif isinstance(p, URLPattern):
            yield prefix + _route(p), p.name or ""


def _route(p) -> str:
    text = str(p.pattern)
    if hasattr(p.pattern, "regex") and text.startswith("^"):
        text = text[1:]
    return text.removesuffix("$").removesuffix("\\Z")


def _fill(route: str, values: list[str]) -> list[str]:
    """Every concrete URL for ``route`` with each converter / named group set to each value."""
    slots = re.findall(r"<(?:\w+:)?\w+>|\(\?P<\w+>(?:[^()]|\([^()]*\))*\)", route)
    if not slots:
        return ["/" + route.replace("\\", "")]
    urls = []
    for combo in itertools.product(values, repeat=len(slots)):
        url = route
        for slot, value in zip(slots, combo, strict=True):
            url = url.replace(slot, value, 1)
        urls.append("/" + url.replace("\\", ""))
    return urls


@pytest.fixture
def full_book(priced_book, django_capture_on_commit_callbacks, today):
    """Something of every kind in the firm: runs, proposals (one approved, one edited), an
    approval, an import batch with a reconciliation break, a second household."""
    book = priced_book
    run = make_run(book, "aggressive", django_capture_on_commit_callbacks)
    approved = wf.proposal_stage(run=run, actor=book.owner)
    approved = wf.proposal_approve(proposal=approved, actor=book.owner)
    export_proposal(proposal=approved, actor=book.owner)  # files, memoranda, manifest
    run2 = make_run(book, "moderate", django_capture_on_commit_callbacks)
    draft = wf.proposal_stage(run=run2, actor=book.owner)
    trade = draft.trades.get()
    wf.proposal_edit(
        proposal=draft,
        actor=book.owner,
        changes=[wf.TradeChange(trade_id=trade.pk, shares=D("6"))],
    )
    data = (
        "as_of,account,custodian,symbol,quantity,price,market_value\n"
        f"{today.isoformat()},12345678,schwab,VTI,90,250.00,22500.00\n"
    ).encode()
    import_file(firm=book.firm, fmt="generic", file_name="pos.csv", data=data, actor=book.owner)
    assert ReconciliationBreak.objects.exists()
    Token.objects.create(user=book.owner)
    return book


def _state() -> dict[str, object]:
    return {
        "proposals": sorted(Proposal.objects.values_list("pk", "status", "version")),
        "trades": sorted(ProposalTrade.objects.values_list("pk", "shares", "dropped")),
        "approvals": ProposalApproval.objects.count(),
        "edits": ProposalEdit.objects.count(),
        "runs": OptimizationRun.objects.count(),
        "ips": InvestmentPolicy.objects.count(),
        "batches": ImportBatch.objects.count(),
        "breaks": sorted(ReconciliationBreak.objects.values_list("pk", "status")),
        "alpha_events": AuditEvent.objects.filter(chain="alpha").count(),
        "exports": ProposalExport.objects.count(),
        "files": ExportFile.objects.count(),
    }


def _walk(client: HttpClient, ids: list[int], markers: tuple[str, ...], extra: list[str]):
    values = [str(i) for i in ids] + extra
    token = csrf_token(client)
    seen = 0
    problems: list[str] = []
    for route, name in _patterns(get_resolver().url_patterns):
        for url in _fill(route, values):
            seen += 1
            response = client.get(url)
            if response.status_code not in (200, 301, 302, 400, 403, 404, 405):
                problems.append(f"GET {url} ({name}): {response.status_code}")
            body = response.content.decode(errors="replace") if response.status_code == 200 else ""
            for marker in markers:
                if marker in body:
                    problems.append(f"GET {url} ({name}) shows {marker!r}")
            if name in SKIP_POST:
                continue
            posted = client.post(url, {"csrfmiddlewaretoken": token, "version": "1"})
            if posted.status_code not in (200, 301, 302, 400, 403, 404, 405, 409):
                problems.append(f"POST {url} ({name}): {posted.status_code}")
            posted_body = (
                posted.content.decode(errors="replace") if posted.status_code == 200 else ""
            )
            for marker in markers:
                if marker in posted_body:
                    problems.append(f"POST {url} ({name}) shows {marker!r}")
    return seen, problems


def test_an_outsider_reaches_nothing_of_another_firm_through_any_url(full_book):
    book = full_book
    ids = sorted(
        {
            book.household.pk,
            book.taxable.pk,
            book.ira.pk,
            book.lot_vti.pk,
            book.lot_bnd.pk,
            book.ips.pk,
            *OptimizationRun.objects.values_list("pk", flat=True),
            *Proposal.objects.values_list("pk", flat=True),
            *ProposalApproval.objects.values_list("pk", flat=True),
            *ImportBatch.objects.values_list("pk", flat=True),
            *ReconciliationBreak.objects.values_list("pk", flat=True),
        }
    )
    before = _state()
    client = login(book.outsider)
    files = list(ExportFile.objects.values_list("name", flat=True))
    assert files
    seen, problems = _walk(client, ids, MARKERS_ALPHA, ["alpha", "accounts", "portal", *files])
    assert problems == []
    assert seen > 100  # every page, API endpoint and admin pattern was tried
    assert _state() == before
    # and through the API with the outsider's token
    token = Token.objects.create(user=book.outsider)
    api = HttpClient(HTTP_AUTHORIZATION=f"Token {token.key}")
    for path in (
        "households",
        "accounts",
        "lots",
        "ips",
        "runs",
        "proposals",
        "approvals",
        "export-files",
        "order-memoranda",
    ):
        listing = api.get(f"/api/{path}/")
        assert listing.status_code == 200
        assert not any(m in listing.content.decode() for m in MARKERS_ALPHA), path
        for pk in ids:
            detail = api.get(f"/api/{path}/{pk}/")
            if detail.status_code == 200:
                assert not any(m in detail.content.decode() for m in MARKERS_ALPHA), (path, pk)
            else:
                assert detail.status_code == 404, (path, pk)


def test_a_client_reaches_nothing_of_another_household(
    full_book, django_capture_on_commit_callbacks
):
    book = full_book
    lee = add_household(book)
    run = OptimizationRun.objects.get(
        pk=make_run_for(lee, book, django_capture_on_commit_callbacks).pk
    )
    lee_p = wf.proposal_stage(run=run, actor=book.owner)
    lee_p = wf.proposal_approve(proposal=lee_p, actor=book.owner)
    lee_export = export_proposal(proposal=lee_p, actor=book.owner)
    ids = sorted(
        {
            lee.pk,
            *lee.accounts.values_list("pk", flat=True),
            *lee.policies.values_list("pk", flat=True),
            run.pk,
            lee_p.pk,
            *ProposalApproval.objects.filter(proposal=lee_p).values_list("pk", flat=True),
        }
    )
    before = _state()
    client = login(book.client_user)
    names = list(lee_export.files.values_list("name", flat=True))
    seen, problems = _walk(client, ids, MARKERS_LEE, names)
    assert problems == [] and seen > 100
    assert _state() == before


def make_run_for(household, book, capture):
    from optimizer.services import run_request

    with capture(execute=True):
        run = run_request(household=household, scenario="moderate", actor=book.owner)
    run.refresh_from_db()
    assert run.status == "succeeded"
    return run


def test_every_post_form_carries_a_csrf_token(full_book):
    client = login(full_book.owner)
    proposal = Proposal.objects.filter(status="draft").first()
    pages = [
        reverse("home"),
        reverse("household_detail", args=[full_book.household.pk]),
        reverse("scenario_compare", args=[full_book.household.pk]),
        reverse("proposal_detail", args=[proposal.pk]),
    ]
    for url in pages:
        body = client.get(url).content.decode()
        forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", body, flags=re.S)
        assert forms, url
        for form in forms:
            assert "csrfmiddlewaretoken" in form, url


def test_session_cookies_are_hardened(settings):
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.X_FRAME_OPTIONS == "DENY"
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE
    assert dt.timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS) >= dt.timedelta(minutes=1)


PUBLIC = {"login", "api-schema", "api-docs"}
MINE = ("proposal", "run_", "scenario", "bulk_approve", "api-")


def test_anonymous_reaches_no_page_and_no_api_object(full_book):
    ids = sorted(
        {
            full_book.household.pk,
            *Proposal.objects.values_list("pk", flat=True),
            *OptimizationRun.objects.values_list("pk", flat=True),
        }
    )
    client = HttpClient()
    problems = []
    for route, name in _patterns(get_resolver().url_patterns):
        for url in _fill(route, [str(i) for i in ids]):
            response = client.get(url)
            body = response.content.decode(errors="replace")
            if response.status_code == 200 and any(m in body for m in MARKERS_ALPHA):
                problems.append(f"GET {url} ({name}) shows the firm's data")
            if name.startswith(MINE) and name not in PUBLIC and response.status_code == 200:
                problems.append(f"GET {url} ({name}) answered 200 to an anonymous visitor")
            if name.startswith("api-") and name not in PUBLIC | {"api-token"}:
                assert response.status_code in (401, 403), (url, response.status_code)
    assert problems == []
