"""Every page, for every role: owner, colleague, compliance, client, outsider, anonymous."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client as HttpClient
from django.urls import reverse

from accounts.models import InvestmentPolicy
from audit.models import AuditEvent
from tests.factories import PASSWORD

D = Decimal


def login(user) -> HttpClient:
    client = HttpClient(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_login_page_and_login_writes_an_audit_event(book):
    client = HttpClient()
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "owner", "password": PASSWORD})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(event_type="auth.login", actor=book.owner).count() == 1


def test_wrong_password_is_refused(book):
    client = HttpClient()
    response = client.post(reverse("login"), {"username": "owner", "password": "nope"})
    assert response.status_code == 200
    assert b"did not match" in response.content


def test_logout_requires_post_with_csrf(book):
    client = login(book.owner)
    assert client.post(reverse("logout")).status_code == 403  # no CSRF token
    page = client.get(reverse("household_list"))
    token = (
        page.cookies["csrftoken"].value
        if "csrftoken" in page.cookies
        else client.cookies["csrftoken"].value
    )
    response = client.post(reverse("logout"), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(event_type="auth.logout", actor=book.owner).exists()


@pytest.mark.parametrize("name", ["household_list", "home"])
def test_anonymous_is_sent_to_login(db, name):
    response = HttpClient().get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_anonymous_household_detail_redirects_to_login(book):
    response = HttpClient().get(reverse("household_detail", args=[book.household.pk]))
    assert response.status_code == 302


@pytest.mark.parametrize("role", ["owner", "colleague", "compliance"])
def test_firm_staff_see_the_firm_households_only(book, role):
    response = login(getattr(book, role)).get(reverse("household_list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Smith Household" in body
    assert "Jones Household" not in body
    assert "$40,500" in body


def test_outsider_sees_only_their_own_firm(book):
    body = login(book.outsider).get(reverse("household_list")).content.decode()
    assert "Jones Household" in body and "Smith Household" not in body


def test_client_home_goes_to_their_household(book):
    response = login(book.client_user).get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == reverse("household_detail", args=[book.household.pk])


@pytest.mark.parametrize("role", ["owner", "colleague", "compliance", "client_user"])
def test_household_detail_renders_for_insiders(book, role):
    response = login(getattr(book, role)).get(reverse("household_detail", args=[book.household.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Pat Individual" in body and "Sam IRA" in body
    assert "Charles Schwab" in body
    assert "$20,000.00" in body  # VTI lot basis
    assert "-$1,500.00" in body  # BND lot loss
    assert "60.0%" in body  # equity target


def test_household_detail_is_404_for_an_outsider(book):
    response = login(book.outsider).get(reverse("household_detail", args=[book.household.pk]))
    assert response.status_code == 404


def test_client_cannot_see_another_household(book):
    from accounts import services as svc

    other = svc.household_create(
        firm=book.firm, name="Other", advisers=[book.owner], actor=book.owner
    )
    response = login(book.client_user).get(reverse("household_detail", args=[other.pk]))
    assert response.status_code == 404


@pytest.mark.parametrize("role", ["owner", "colleague", "compliance", "client_user"])
def test_ips_page_shows_version_history(book, role):
    response = login(getattr(book, role)).get(reverse("ips_page", args=[book.household.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "version 1" in body and "v1 (in force)" in body
    assert "$25,000" in body
    assert ("Save new version" in body) is (role == "owner")


def test_ips_page_is_404_for_an_outsider(book):
    client = login(book.outsider)
    assert client.get(reverse("ips_page", args=[book.household.pk])).status_code == 404
    assert client.post(reverse("ips_page", args=[book.household.pk]), {}).status_code in (403, 404)


def _ips_form(**overrides: str) -> dict[str, str]:
    data = {
        "effective_date": "2020-01-01",
        "cash_floor_pct": "2",
        "default_band_pct": "4",
        "st_rate_pct": "37",
        "lt_rate_pct": "20",
        "annual_gain_budget": "30000",
        "objectives": "Review",
        "target_us_large": "65",
        "target_us_bond": "30",
        "target_cash": "5",
    }
    data.update(overrides)
    return data


def _post(client: HttpClient, url: str, data: dict[str, str]):
    page = client.get(url)
    token = (
        client.cookies["csrftoken"].value
        if "csrftoken" in client.cookies
        else page.context["csrf_token"]
    )
    return client.post(url, {**data, "csrfmiddlewaretoken": token})


def test_owner_saves_a_new_ips_version(book, today):
    client = login(book.owner)
    url = reverse("ips_page", args=[book.household.pk])
    response = _post(client, url, _ips_form(effective_date=today.isoformat()))
    assert response.status_code == 302
    v2 = InvestmentPolicy.objects.get(household=book.household, version=2)
    assert v2.cash_floor == D("0.020000") and v2.annual_gain_budget == D("30000.00")
    assert {t.asset_class.code: t.weight for t in v2.targets.all()} == {
        "us_large": D("0.650000"),
        "us_bond": D("0.300000"),
        "cash": D("0.050000"),
    }
    assert v2.history.earliest().history_user == book.owner
    assert AuditEvent.objects.filter(
        event_type="ips.version_created", object_id=str(v2.pk)
    ).exists()


def test_ips_targets_not_summing_to_100_are_refused_and_nothing_saved(book, today):
    client = login(book.owner)
    url = reverse("ips_page", args=[book.household.pk])
    response = _post(client, url, _ips_form(effective_date=today.isoformat(), target_cash="0"))
    assert response.status_code == 400
    assert "sum to 95" in response.content.decode()
    assert InvestmentPolicy.objects.filter(household=book.household).count() == 1


def test_ips_version_before_the_current_one_is_refused(book):
    client = login(book.owner)
    url = reverse("ips_page", args=[book.household.pk])
    response = _post(client, url, _ips_form(effective_date="2020-01-01"))
    assert response.status_code == 400
    assert "effective_date" in response.content.decode()


@pytest.mark.parametrize("role", ["colleague", "compliance", "client_user"])
def test_only_the_assigned_adviser_may_change_the_ips(book, role, today):
    client = login(getattr(book, role))
    url = reverse("ips_page", args=[book.household.pk])
    response = _post(client, url, _ips_form(effective_date=today.isoformat()))
    assert response.status_code == 403
    assert InvestmentPolicy.objects.filter(household=book.household).count() == 1


def test_ips_post_without_csrf_is_refused(book, today):
    client = login(book.owner)
    response = client.post(reverse("ips_page", args=[book.household.pk]), _ips_form())
    assert response.status_code == 403
    assert InvestmentPolicy.objects.filter(household=book.household).count() == 1
