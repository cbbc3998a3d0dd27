from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Household
from optimizer.core.scenarios import PRESET_NAMES
from optimizer.management.commands._common import actor_for, wait_for
from optimizer.services import run_request, run_result


class Command(BaseCommand):
    help = "Runs the optimizer for one household and prints the result (a run is recorded)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--household", type=int, required=True, help="Household id.")
        parser.add_argument(
            "--scenario",
            default="moderate",
            choices=[*PRESET_NAMES, "all"],
            help="Preset, or all four.",
        )
        parser.add_argument("--json", action="store_true", help="Print the result JSON.")
        parser.add_argument("--as", dest="actor", help="Username the run is requested by.")
        parser.add_argument("--solver", default="CLARABEL", choices=["CLARABEL", "SCS"])
        parser.add_argument("--timeout", type=float, default=600.0)

    def handle(self, *args: Any, **options: Any) -> None:
        household = Household.objects.filter(pk=options["household"]).first()
        if household is None:
            raise CommandError(f"no household {options['household']}")
        actor = actor_for(options["actor"])
        names = list(PRESET_NAMES) if options["scenario"] == "all" else [options["scenario"]]
        runs = [
            run_request(household=household, scenario=name, actor=actor, solver=options["solver"])
            for name in names
        ]
        runs = wait_for([r.pk for r in runs], options["timeout"])
        if options["json"]:
            out = {
                r.scenario: {
                    "run": r.pk,
                    "status": r.status,
                    "snapshot_sha256": r.snapshot_sha256,
                    "error": r.error,
                    "result": run_result(r),
                }
                for r in runs
            }
            self.stdout.write(
                json.dumps(
                    out if len(runs) > 1 else out[runs[0].scenario], indent=2, sort_keys=True
                )
            )
        else:
            for r in runs:
                s = r.summary
                line = f"run {r.pk} {household} · {r.scenario}: {r.get_status_display()}"
                if r.status == "succeeded":
                    line += (
                        f" · {s['trades']} trades, net realized ${s['realized_net']}, tax ${s['estimated_tax']},"
                        f" TE {s['tracking_error_before']:.4f} -> {s['tracking_error_after']:.4f},"
                        f" {r.timings.get('total_s', 0):.2f}s"
                    )
                else:
                    line += f" · {r.error}"
                self.stdout.write(line)
        if any(r.status == "failed" for r in runs):
            raise CommandError(
                "a run failed: " + "; ".join(r.error for r in runs if r.status == "failed")
            )
