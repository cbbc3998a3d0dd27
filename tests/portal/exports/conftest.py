"""Fixtures of the export tests: an approved proposal of the test book (two sells: 2 VTI from
the taxable account's lot L1 and 5 BND from the IRA's lot L2, both at Charles Schwab)."""

from __future__ import annotations

import pytest

from portal import services as wf


@pytest.fixture
def approved(priced_book, aggressive_run):
    proposal = wf.proposal_stage(run=aggressive_run, actor=priced_book.owner)
    return wf.proposal_approve(proposal=proposal, actor=priced_book.owner, comment="Go ahead.")


def pdf_text(data: bytes, *, layout: bool = False) -> str:
    """The text of a PDF (poppler's pdftotext, installed by the project's scripts)."""
    import shutil
    import subprocess

    tool = shutil.which("pdftotext")
    assert tool, "pdftotext (poppler-utils) is not installed: run .ci/system-deps.sh"
    args = [tool, *(["-layout"] if layout else []), "-", "-"]
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout.decode()


def change(model, pk: int, **values) -> None:
    """Change a record as an import or an admin edit would (saved, so history records it)."""
    record = model.objects.get(pk=pk)
    for name, value in values.items():
        setattr(record, name, value)
    record.save()
