"""The import pages, for every role: owner, colleague, compliance, client, outsider, anonymous.
Uploads go through the URL with CSRF enforced and are checked in the database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client as HttpClient
from django.urls import reverse

from accounts.importing import import_file
from accounts.models import BreakStatus, ImportBatch, ReconciliationBreak, TaxLot
from audit.models import AuditEvent
from tests.factories import PASSWORD
from tests.imports_support import add_fidelity, counts, sample

D = Decimal
ROLES = ["owner", "colleague", "compliance", "client_user", "outsider"]


def login(user) -> HttpClient:
    client = HttpClient(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=PASSWORD)
    return client


def token(client: HttpClient) -> str:
    """The CSRF token (any page with the logout form sets the cookie)."""
    client.get(reverse("household_list"))
    return client.cookies["csrftoken"].value


def upload(client: HttpClient, fmt: str, name: str, *, data: bytes | None = None, **extra: str):
    form = {
        "file_format": fmt,
        "kind": "",
        "tolerance": "0.0001",
        "file": SimpleUploadedFile(name, sample(name) if data is None else data),
        "csrfmiddlewaretoken": token(client),
        **extra,
    }
    return client.post(reverse("import_upload"), form)


def import_breaks(book) -> ImportBatch:
    return import_file(
        firm=book.firm,
        fmt="schwab",
        file_name="schwab_positions_breaks.csv",
        data=sample("schwab_positions_breaks.csv"),
        actor=book.owner,
    ).batch


# --------------------------------------------------------------------------- upload


@pytest.mark.parametrize(
    ("fmt", "name", "created"),
    [
        ("schwab", "schwab_positions.csv", 0),
        ("schwab", "schwab_lots.csv", 3),
        ("schwab", "schwab_transactions.csv", 8),
        ("fidelity", "fidelity_positions.csv", 0),
        ("fidelity", "fidelity_lots.csv", 2),
        ("fidelity", "fidelity_transactions.csv", 7),
        ("generic", "generic_positions.csv", 0),
        ("generic", "generic_lots.csv", 3),
        ("generic", "generic_transactions.csv", 12),
    ],
)
def test_every_sample_imports_through_the_page(book, fmt, name, created):
    add_fidelity(book)
    client = login(book.owner)
    response = upload(client, fmt, name)
    batch = ImportBatch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("import_detail", args=[batch.pk])
    assert (batch.file_format, batch.file_name, batch.actor, batch.rows_created) == (
        fmt,
        name,
        book.owner,
        created,
    )
    page = client.get(response["Location"])
    assert page.status_code == 200
    body = page.content.decode()
    assert f"{name} imported: {batch.rows_read} rows read, {created} created" in body
    assert batch.sha256 in body


def test_the_same_file_twice_through_the_page(book):
    client = login(book.owner)
    first = upload(client, "schwab", "schwab_lots.csv")
    before = counts()
    again = upload(client, "schwab", "schwab_lots.csv")
    assert again.status_code == 302 and again["Location"] == first["Location"]
    assert counts() == before
    assert "was already imported as batch" in client.get(again["Location"]).content.decode()


def test_a_colleague_adviser_may_import_for_the_firm(book):
    response = upload(login(book.colleague), "generic", "generic_lots.csv")
    assert response.status_code == 302
    assert ImportBatch.objects.get().actor == book.colleague


def test_bad_rows_are_shown_in_a_table_and_nothing_is_written(book):
    client = login(book.owner)
    before = counts()
    response = upload(client, "generic", "generic_transactions_bad.csv")
    assert response.status_code == 400
    body = response.content.decode()
    assert "Nothing was imported: 18 problems" in body
    assert body.count("<td>generic_transactions_bad.csv</td>") == 18
    assert "<td>quantity</td><td>must be positive, got -5</td>" in body
    assert "unknown account &#x27;99999999&#x27;" in body
    assert "short by 500 shares" in body
    assert counts() == before


@pytest.mark.parametrize("role", ["compliance", "client_user"])
def test_compliance_and_clients_may_not_upload(book, role):
    client = login(getattr(book, role))
    assert client.get(reverse("import_upload")).status_code == 403
    before = counts()
    assert upload(client, "schwab", "schwab_lots.csv").status_code == 403
    assert counts() == before


def test_an_outsider_imports_only_into_their_own_firm(book):
    before = counts()
    response = upload(login(book.outsider), "schwab", "schwab_lots.csv")
    assert response.status_code == 400
    body = response.content.decode()
    assert "unknown account &#x27;12345678&#x27;: no such account of this firm" in body
    assert counts() == before
    assert TaxLot.objects.filter(account=book.taxable).count() == 1


def test_anonymous_upload_goes_to_login(db):
    client = HttpClient()
    response = client.post(reverse("import_upload"), {})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert not ImportBatch.objects.exists()


def test_upload_without_csrf_is_refused(book):
    client = login(book.owner)
    response = client.post(
        reverse("import_upload"),
        {
            "file_format": "schwab",
            "tolerance": "0.0001",
            "file": SimpleUploadedFile("schwab_lots.csv", sample("schwab_lots.csv")),
        },
    )
    assert response.status_code == 403
    assert not ImportBatch.objects.exists()


def test_the_upload_form_validates(book):
    response = upload(login(book.owner), "quicken", "schwab_lots.csv", tolerance="-1")
    assert response.status_code == 400
    body = response.content.decode()
    assert "Select a valid choice" in body and "greater than or equal to 0" in body
    assert not ImportBatch.objects.exists()


def test_the_upload_page_renders_for_advisers(book):
    response = login(book.owner).get(reverse("import_upload"))
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in response.content.decode()


# --------------------------------------------------------------------------- reading pages


@pytest.mark.parametrize("role", ROLES)
def test_import_list_by_role(book, role):
    batch = import_breaks(book)
    response = login(getattr(book, role)).get(reverse("import_list"))
    if role == "client_user":
        assert response.status_code == 403
        return
    assert response.status_code == 200
    body = response.content.decode()
    assert (f'href="/imports/{batch.pk}/"' in body) is (role != "outsider")
    assert ("Upload a file" in body) is (role in ("owner", "colleague", "outsider"))


@pytest.mark.parametrize("role", ROLES)
def test_import_detail_by_role(book, role):
    batch = import_breaks(book)
    response = login(getattr(book, role)).get(reverse("import_detail", args=[batch.pk]))
    expected = {"client_user": 403, "outsider": 404}.get(role, 200)
    assert response.status_code == expected
    if expected == 200:
        body = response.content.decode()
        assert "4 read, 4 created, 0 updated, 1 unchanged" in body
        assert "$1,250.00" in body and "-200" in body
        # only the household's adviser gets the resolve form
        assert ("Resolve</button>" in body) is (role == "owner")


@pytest.mark.parametrize("role", ROLES)
def test_break_list_by_role(book, role):
    import_breaks(book)
    response = login(getattr(book, role)).get(reverse("break_list"))
    if role == "client_user":
        assert response.status_code == 403
        return
    assert response.status_code == 200
    body = response.content.decode()
    assert (body.count('<span class="flag warn">open</span>') == 4) is (role != "outsider")
    assert ("Smith Household" in body) is (role != "outsider")


def test_resolved_breaks_are_listed_apart(book):
    batch = import_breaks(book)
    brk = ReconciliationBreak.objects.filter(batch=batch).first()
    brk.status, brk.resolution_note = BreakStatus.RESOLVED, "checked"
    brk.resolved_at = batch.created_at
    brk.save()
    client = login(book.compliance)
    assert client.get(reverse("break_list")).content.decode().count("flag warn") == 3
    resolved = client.get(reverse("break_list") + "?status=resolved").content.decode()
    assert "checked" in resolved and "flag warn" not in resolved


@pytest.mark.parametrize("role", ROLES)
def test_household_reconciliation_by_role(book, role):
    import_breaks(book)
    url = reverse("household_reconciliation", args=[book.household.pk])
    response = login(getattr(book, role)).get(url)
    expected = {"client_user": 403, "outsider": 404}.get(role, 200)
    assert response.status_code == expected
    if expected == 200:
        assert response.content.decode().count("flag warn") == 4


@pytest.mark.parametrize("name", ["import_list", "break_list", "import_upload"])
def test_anonymous_is_sent_to_login(db, name):
    response = HttpClient().get(reverse(name))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_anonymous_object_pages_go_to_login(book):
    batch = import_breaks(book)
    brk = batch.breaks.first()
    client = HttpClient()
    for url in (
        reverse("import_detail", args=[batch.pk]),
        reverse("household_reconciliation", args=[book.household.pk]),
        reverse("break_resolve", args=[brk.pk]),
    ):
        response = client.post(url) if "resolve" in url else client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert ReconciliationBreak.objects.get(pk=brk.pk).status == BreakStatus.OPEN


# --------------------------------------------------------------------------- resolving


def resolve(client: HttpClient, brk: ReconciliationBreak, note: str):
    return client.post(
        reverse("break_resolve", args=[brk.pk]),
        {"note": note, "csrfmiddlewaretoken": token(client)},
    )


def test_the_owner_resolves_a_break(book):
    batch = import_breaks(book)
    brk = batch.breaks.order_by("pk").first()
    client = login(book.owner)
    response = resolve(client, brk, "Custodian booked the trade a day late.")
    assert response.status_code == 302
    assert response["Location"] == reverse("household_reconciliation", args=[book.household.pk])
    brk.refresh_from_db()
    assert (brk.status, brk.resolved_by, brk.resolution_note) == (
        BreakStatus.RESOLVED,
        book.owner,
        "Custodian booked the trade a day late.",
    )
    assert brk.history.latest().history_user == book.owner
    assert AuditEvent.objects.filter(
        event_type="reconciliation_break.resolved", object_id=str(brk.pk), actor=book.owner
    ).exists()
    body = client.get(response["Location"]).content.decode()
    assert "Break marked resolved." in body and "Custodian booked the trade a day late." in body


@pytest.mark.parametrize(
    ("role", "status"),
    [("colleague", 403), ("compliance", 403), ("client_user", 403), ("outsider", 404)],
)
def test_others_may_not_resolve(book, role, status):
    brk = import_breaks(book).breaks.first()
    before = AuditEvent.objects.count()
    assert resolve(login(getattr(book, role)), brk, "no").status_code == status
    assert ReconciliationBreak.objects.get(pk=brk.pk).status == BreakStatus.OPEN
    assert AuditEvent.objects.count() == before


def test_resolving_needs_a_note_and_csrf(book):
    brk = import_breaks(book).breaks.first()
    client = login(book.owner)
    response = resolve(client, brk, "   ")
    assert response.status_code == 400
    assert "Say how the break was resolved." in response.content.decode()
    response = client.post(reverse("break_resolve", args=[brk.pk]), {"note": "ok"})
    assert response.status_code == 403
    assert client.get(reverse("break_resolve", args=[brk.pk])).status_code == 405
    assert ReconciliationBreak.objects.get(pk=brk.pk).status == BreakStatus.OPEN


def test_resolving_twice_is_refused(book):
    brk = import_breaks(book).breaks.first()
    client = login(book.owner)
    assert resolve(client, brk, "first").status_code == 302
    response = resolve(client, brk, "second")
    assert response.status_code == 400
    assert "This break is already resolved." in response.content.decode()
    assert ReconciliationBreak.objects.get(pk=brk.pk).resolution_note == "first"


# --------------------------------------------------------------------------- household page


@pytest.mark.parametrize("role", ["owner", "colleague", "compliance", "client_user"])
def test_household_page_shows_breaks_to_staff_only(book, role):
    import_breaks(book)
    body = (
        login(getattr(book, role))
        .get(reverse("household_detail", args=[book.household.pk]))
        .content.decode()
    )
    staff = role != "client_user"
    assert ("4 open breaks" in body) is staff
    assert (reverse("household_reconciliation", args=[book.household.pk]) in body) is staff
    assert ('href="/imports/"' in body) is staff  # the nav link


def test_household_page_without_breaks(book):
    body = login(book.owner).get(reverse("household_detail", args=[book.household.pk])).content
    assert b"No open reconciliation breaks." in body
