"""python manage.py export_proposal ID --to DIR"""

from __future__ import annotations

import hashlib
import json

import pytest
from django.core.management import CommandError, call_command

from portal import services as wf
from portal.models import ExportFile, ProposalExport


def test_the_command_exports_and_writes_every_file(priced_book, approved, tmp_path, capsys):
    call_command("export_proposal", str(approved.pk), "--to", str(tmp_path / "out"))
    export = ProposalExport.objects.get(proposal=approved)
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(export.files.values_list("name", flat=True))
    for f in export.files.all():
        data = (tmp_path / "out" / f.name).read_bytes()
        assert data == bytes(f.content) and hashlib.sha256(data).hexdigest() == f.sha256
    manifest = json.loads((tmp_path / "out" / f"proposal-{approved.pk}-manifest.json").read_text())
    for entry in manifest["files"]:
        data = (tmp_path / "out" / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    out = capsys.readouterr().out
    assert f"proposal {approved.pk}: 2 orders in 2 blocks, exported by owner" in out
    # again, to another directory: the same bytes, still one export
    call_command("export_proposal", str(approved.pk), "--to", str(tmp_path / "again"))
    for f in ExportFile.objects.all():
        assert (tmp_path / "again" / f.name).read_bytes() == bytes(f.content)
    assert ProposalExport.objects.count() == 1


def test_the_command_refuses_clearly(priced_book, aggressive_run, tmp_path):
    draft = wf.proposal_stage(run=aggressive_run, actor=priced_book.owner)
    with pytest.raises(CommandError, match="only an approved proposal is exported"):
        call_command("export_proposal", str(draft.pk), "--to", str(tmp_path))
    with pytest.raises(CommandError, match="no proposal 999"):
        call_command("export_proposal", "999", "--to", str(tmp_path))
    wf.proposal_approve(proposal=draft, actor=priced_book.owner)
    with pytest.raises(CommandError, match="--as: no user 'nobody'"):
        call_command("export_proposal", str(draft.pk), "--to", str(tmp_path), "--as", "nobody")
    with pytest.raises(CommandError, match="Only an adviser assigned"):
        call_command("export_proposal", str(draft.pk), "--to", str(tmp_path), "--as", "compliance")
    assert not ProposalExport.objects.exists() and list(tmp_path.iterdir()) == []
