from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.models import VerificationTrigger
from audit.verification import verification_run
from audit.verify import verify_chains


class Command(BaseCommand):
    help = "Walks the hash-chained audit log; exits non-zero naming the first broken event."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chain", action="append", help="Only this chain (a firm slug).")
        parser.add_argument(
            "--record",
            action="store_true",
            help="Also keep the result as a verification run (shown on the compliance page).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["record"]:
            run = verification_run(
                actor=None, trigger=VerificationTrigger.COMMAND, chains=options["chain"]
            )
            chains = [
                (e["chain"], e["events"], e["head_hash"], e["ok"], e["problem"]) for e in run.chains
            ]
        else:
            report = verify_chains(options["chain"])
            chains = [
                (c.chain, c.events, c.head_hash, c.ok, c.problem or "") for c in report.chains
            ]
        for name, events, head_hash, ok, _problem in chains:
            self.stdout.write(f"{name}: {events} events verified, {'ok' if ok else 'BROKEN'}")
            if ok:
                self.stdout.write(f"  head {head_hash}")
        broken = [problem for _n, _e, _h, ok, problem in chains if not ok]
        if broken:
            raise CommandError("; ".join(broken))
        total = sum(events for _n, events, _h, _ok, _p in chains)
        self.stdout.write(self.style.SUCCESS(f"audit chain intact: {total} events"))
