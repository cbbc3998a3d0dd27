from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Firm, User
from audit.export import exam_package_export, verify_package


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = (
        "Writes a firm's exam package for a date range (records, history, audit events, runs, "
        "manifest with SHA-256s), or with --verify checks a package offline and exits non-zero "
        "naming what is wrong."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="The package (.zip) to write, or to check with --verify.")
        parser.add_argument("--verify", action="store_true", help="Check the package at PATH.")
        parser.add_argument("--firm", help="Firm slug.")
        parser.add_argument("--from", dest="date_from", help="First day, YYYY-MM-DD.")
        parser.add_argument("--to", dest="date_to", help="Last day (inclusive), YYYY-MM-DD.")
        parser.add_argument("--as", dest="actor", help="Username the export is recorded for.")
        parser.add_argument(
            "--manifest-sha256",
            help="With --verify: the manifest SHA-256 recorded at export (detects any change).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["path"])
        if options["verify"]:
            self._verify(path, options["manifest_sha256"])
            return
        missing = [f"--{n}" for n in ("firm", "from", "to") if not options[_dest(n)]]
        if missing:
            raise CommandError(f"missing {', '.join(missing)} (or use --verify PATH)")
        firm = Firm.objects.filter(slug=options["firm"]).first()
        if firm is None:
            raise CommandError(f"no firm with slug {options['firm']!r}")
        actor = None
        if options["actor"]:
            actor = User.objects.filter(username=options["actor"]).first()
            if actor is None:
                raise CommandError(f"--as: no user {options['actor']!r}")
        try:
            package = exam_package_export(
                firm=firm,
                date_from=_date(options["date_from"]),
                date_to=_date(options["date_to"]),
                actor=actor,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        path.write_bytes(package.data)
        chain = package.manifest["chain"]
        self.stdout.write(
            f"wrote {path}: {len(package.manifest['files'])} files, "
            f"{package.manifest['range_events']['count']} events in range\n"
            f"  package sha256  {package.sha256}\n"
            f"  manifest sha256 {package.manifest_sha256}\n"
            f"  chain {chain['name']} head seq {chain['head_seq']} {chain['head_hash']}"
        )

    def _verify(self, path: Path, manifest_sha256: str | None) -> None:
        if not path.exists():
            raise CommandError(f"{path}: no such file")
        report = verify_package(path, expected_manifest_sha256=manifest_sha256)
        if not report.ok:
            for problem in report.problems:
                self.stderr.write(f"  {problem}")
            raise CommandError(
                f"{path}: package does NOT verify ({len(report.problems)} problem(s)): "
                + "; ".join(report.problems)
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"{path}: package verifies: {report.files_checked} files, "
                f"{report.events_checked} chain events, head {report.head_hash}, "
                f"manifest sha256 {report.manifest_sha256}"
            )
        )


def _dest(name: str) -> str:
    return {"firm": "firm", "from": "date_from", "to": "date_to"}[name]
