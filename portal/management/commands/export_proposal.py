from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from portal import services as wf
from portal.exports.services import ExportRefused, export_proposal
from portal.models import ExportFile, Proposal


class Command(BaseCommand):
    help = (
        "Exports an approved proposal (client PDF, custodian trade files with lot instructions, "
        "block orders, order memorandum, manifest) and writes its files to a directory. An "
        "exported proposal is not exported twice: its stored files are written again, byte for "
        "byte."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("proposal", type=int, help="Proposal id.")
        parser.add_argument("--to", required=True, type=Path, help="Directory to write into.")
        parser.add_argument(
            "--as",
            dest="actor",
            help="Username of the adviser who enters the orders (default: the preparer).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        proposal = (
            Proposal.objects.select_related("household", "prepared_by")
            .filter(pk=options["proposal"])
            .first()
        )
        if proposal is None:
            raise CommandError(f"no proposal {options['proposal']}")
        if options["actor"]:
            actor = User.objects.filter(username=options["actor"]).first()
            if actor is None:
                raise CommandError(f"--as: no user {options['actor']!r}")
        else:
            actor = proposal.prepared_by
        try:
            export = export_proposal(proposal=proposal, actor=actor)
        except ExportRefused as exc:
            raise CommandError(str(exc)) from exc
        except (wf.WorkflowError, PermissionDenied) as exc:
            raise CommandError(getattr(exc, "message", None) or str(exc)) from exc
        out: Path = options["to"]
        out.mkdir(parents=True, exist_ok=True)
        for f in ExportFile.objects.filter(export=export).order_by("position"):
            data = bytes(f.content)
            if hashlib.sha256(data).hexdigest() != f.sha256:
                raise CommandError(f"{f.name}: stored bytes do not match the recorded SHA-256")
            (out / f.name).write_bytes(data)
            totals = (
                f" · {f.order_count} orders, {f.total_shares.normalize():f} shares"
                if f.order_count
                else ""
            )
            self.stdout.write(f"{f.name}  {f.sha256}{totals}")
        self.stdout.write(
            f"proposal {proposal.pk}: {export.order_count} orders in {export.block_count} blocks, "
            f"exported by {export.exported_by.username} at {export.entered_at.isoformat()}; "
            f"manifest {export.manifest_sha256}"
        )
