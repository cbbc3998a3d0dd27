from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from optimizer.management.commands._common import actor_for
from optimizer.replay import ReplayNotPossible, run_replay


class Command(BaseCommand):
    help = (
        "Re-runs the optimizer on a run's stored input snapshot and confirms a byte-identical "
        "result, or reports exactly what differs (exit status 1). The replay is recorded as an "
        "audit event."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id", type=int, help="OptimizationRun id.")
        parser.add_argument("--as", dest="actor", help="Username the replay is recorded for.")
        parser.add_argument("--json", action="store_true", help="Print the full report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_for(options["actor"])
        try:
            report = run_replay(run_id=options["run_id"], actor=actor)
        except ReplayNotPossible as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, sort_keys=True))
        run = report.run_id
        if report.identical:
            if report.outcome_now == "succeeded":
                self.stdout.write(
                    self.style.SUCCESS(
                        f"run {run}: replay byte-identical, result sha256 "
                        f"{report.result_sha256_replayed}"
                    )
                )
            else:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"run {run}: replay identical, {report.outcome_now} again: {report.error_now}"
                    )
                )
            for change in report.version_changes:
                self.stdout.write(f"  library {change.path}: {change.then} then, {change.now} now")
            return
        for line in report.lines():
            self.stdout.write(f"  {line}")
        raise CommandError(
            f"run {run}: replay differs from the recorded result "
            f"({report.result_sha256_recorded or report.outcome_then} then, "
            f"{report.result_sha256_replayed or report.outcome_now} now)"
        )
