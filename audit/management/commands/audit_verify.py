from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.verify import verify_chains


class Command(BaseCommand):
    help = "Walks the hash-chained audit log; exits non-zero naming the first broken event."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chain", action="append", help="Only this chain (a firm slug).")

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_chains(options["chain"])
        for chain in report.chains:
            status = "ok" if chain.ok else "BROKEN"
            self.stdout.write(f"{chain.chain}: {chain.events} events verified, {status}")
            if chain.ok:
                self.stdout.write(f"  head {chain.head_hash}")
        broken = [chain for chain in report.chains if not chain.ok]
        if broken:
            raise CommandError("; ".join(chain.problem or "" for chain in broken))
        self.stdout.write(self.style.SUCCESS(f"audit chain intact: {report.events} events"))
