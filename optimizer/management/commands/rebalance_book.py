from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Firm
from optimizer.core.scenarios import PRESET_NAMES
from optimizer.management.commands._common import actor_for, wait_for
from optimizer.services import batch_request


class Command(BaseCommand):
    help = "Runs one scenario for every active household of a firm (one Celery task each)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--firm", required=True, help="Firm slug.")
        parser.add_argument("--scenario", default="moderate", choices=list(PRESET_NAMES))
        parser.add_argument("--as", dest="actor", help="Username the batch is requested by.")
        parser.add_argument("--key", help="Idempotency key (the same key never runs twice).")
        parser.add_argument("--timeout", type=float, default=1800.0)

    def handle(self, *args: Any, **options: Any) -> None:
        firm = Firm.objects.filter(slug=options["firm"]).first()
        if firm is None:
            raise CommandError(f"no firm {options['firm']!r}")
        started = time.perf_counter()
        batch = batch_request(
            firm=firm,
            scenario=options["scenario"],
            actor=actor_for(options["actor"]),
            idempotency_key=options["key"],
        )
        runs = wait_for(list(batch.runs.values_list("pk", flat=True)), options["timeout"])
        elapsed = time.perf_counter() - started
        counts = Counter(r.status for r in runs)
        for r in runs:
            detail = (
                f"{r.summary.get('trades', 0)} trades" if r.status == "succeeded" else r.error[:120]
            )
            self.stdout.write(f"  run {r.pk:>5} {r.household.name:<28} {r.status:<10} {detail}")
        solver = [r.timings.get("solver_s", 0.0) for r in runs if r.status == "succeeded"]
        self.stdout.write(
            f"batch {batch.pk}: {len(runs)} runs in {elapsed:.1f}s · "
            + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            + (f" · median solver {statistics.median(solver):.3f}s" if solver else "")
        )
