"""Exports in the audit tools: the run's reconstruction page and the exam package."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile

from django.urls import reverse
from django.utils import timezone

from audit.export import exam_package_build, verify_package
from portal.exports.services import export_proposal
from tests.portal.conftest import login


def test_the_reconstruction_page_lists_the_exported_files_and_memoranda(priced_book, approved):
    export = export_proposal(proposal=approved, actor=priced_book.owner)
    page = login(priced_book.compliance).get(reverse("run_reconstruction", args=[approved.run_id]))
    body = page.content.decode()
    assert page.status_code == 200
    assert f"Exports (manifest SHA-256 {export.manifest_sha256})" in body
    for f in export.files.all():
        assert f.name in body and f.sha256 in body
    for m in export.memoranda.all():
        assert m.order_id in body
    assert "export.created" in body


def test_the_exam_package_carries_the_exports_and_memoranda_and_verifies(priced_book, approved):
    export = export_proposal(proposal=approved, actor=priced_book.owner)
    day = timezone.localdate()
    package = exam_package_build(firm=priced_book.firm, date_from=day, date_to=day)
    archive = zipfile.ZipFile(io.BytesIO(package.data))
    names = archive.namelist()
    for f in export.files.all():
        path = next(n for n in names if n.endswith(f"exports/proposal-{approved.pk}/{f.name}"))
        data = archive.read(path)
        assert data == bytes(f.content) and hashlib.sha256(data).hexdigest() == f.sha256
    memo_csv = archive.read(next(n for n in names if n.endswith("records/order_memoranda.csv")))
    rows = list(csv.DictReader(io.StringIO(memo_csv.decode())))
    assert sorted(r["order_id"] for r in rows) == sorted(
        export.memoranda.values_list("order_id", flat=True)
    )
    assert {r["placed_by_id"] for r in rows} == {str(priced_book.owner.pk)}
    listed = archive.read(next(n for n in names if n.endswith("exports/files.csv"))).decode()
    assert export.manifest_sha256 in listed
    report = verify_package(package.data)
    assert report.ok, report.problems


def test_the_proposal_page_links_its_reconstruction_for_those_who_may_audit(priced_book, approved):
    url = reverse("run_reconstruction", args=[approved.run_id])
    page = reverse("proposal_detail", args=[approved.pk])
    for who, shown in (("owner", True), ("compliance", True), ("colleague", False)):
        body = login(getattr(priced_book, who)).get(page).content.decode()
        assert (url in body) is shown, who
