"""``manage.py import_custodian --format NAME --firm SLUG [--kind KIND] FILE...``

Imports custodian files into a firm's book through ``accounts.importing.import_file`` (the same
service as the upload page). Files are imported in the order given, each in its own
transaction; the first refused file stops the run (later files often build on it) and the
command exits non-zero after printing every problem of that file as ``file:line: field:
reason``. A file imported before is reported as such and changes nothing.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.importers import FORMATS, ImportFileError, Kind
from accounts.importing import DEFAULT_TOLERANCE, import_file
from accounts.models import Firm, ImportBatch, Role, User
from optimizer.core.taxlots import FIFO, HIFO, MINIMUM_TAX


def describe(batch: ImportBatch) -> str:
    """``read 8, created 8, updated 0, unchanged 0`` plus breaks for a positions file."""
    text = (
        f"read {batch.rows_read}, created {batch.rows_created}, updated {batch.rows_updated},"
        f" unchanged {batch.rows_unchanged}"
    )
    if batch.kind == Kind.POSITIONS:
        text += f"; {batch.rows_created} reconciliation break(s)"
    return text


class Command(BaseCommand):
    help = "Import custodian files (positions, open lots, transactions); see docs/imports.md."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument("--format", required=True, choices=sorted(FORMATS), dest="fmt")
        parser.add_argument("--firm", required=True, help="the firm's slug")
        parser.add_argument(
            "--kind",
            choices=[kind.value for kind in Kind],
            help="positions, lots or transactions (default: told by the file's header)",
        )
        parser.add_argument(
            "--user",
            help="username of the adviser on whose behalf the files are imported"
            " (default: the system)",
        )
        parser.add_argument(
            "--tolerance",
            default=str(DEFAULT_TOLERANCE),
            help=f"positions: shares within this are not a break (default {DEFAULT_TOLERANCE})",
        )
        parser.add_argument(
            "--method",
            choices=[FIFO, HIFO, MINIMUM_TAX],
            default=FIFO,
            help="transactions: lot relief of sells that name no lot (default fifo)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        firm = Firm.objects.filter(slug=options["firm"]).first()
        if firm is None:
            raise CommandError(f"no firm with the slug {options['firm']!r}")
        actor = self._actor(options["user"], firm)
        try:
            tolerance = Decimal(options["tolerance"])
        except InvalidOperation:
            raise CommandError(f"--tolerance: {options['tolerance']!r} is not a number") from None
        if not tolerance.is_finite() or tolerance < 0:
            raise CommandError("--tolerance must be a number of shares >= 0")
        for name in options["files"]:
            path = Path(name)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise CommandError(f"{name}: {exc.strerror or exc}") from None
            try:
                outcome = import_file(
                    firm=firm,
                    fmt=options["fmt"],
                    kind=options["kind"],
                    file_name=path.name,
                    data=data,
                    actor=actor,
                    tolerance=tolerance,
                    method=options["method"],
                )
            except ImportFileError as exc:
                for problem in exc.problems:
                    self.stderr.write(str(problem))
                count = len(exc.problems)
                raise CommandError(
                    f"{name}: {count} problem{'s' if count != 1 else ''}; nothing was imported"
                    + (" (later files were not tried)" if name != options["files"][-1] else "")
                ) from None
            batch = outcome.batch
            if outcome.created:
                self.stdout.write(
                    f"{name}: imported as batch #{batch.pk} ({batch.kind}): {describe(batch)}"
                )
            else:
                self.stdout.write(
                    f"{name}: already imported as batch #{batch.pk} on"
                    f" {batch.created_at:%Y-%m-%d %H:%M} UTC; nothing changed"
                )

    @staticmethod
    def _actor(username: str | None, firm: Firm) -> User | None:
        if not username:
            return None
        user = User.objects.filter(username=username).first()
        if user is None or user.firm_id != firm.pk or user.role != Role.ADVISER:
            raise CommandError(f"--user: {username!r} is not an adviser of {firm.name}")
        return user
