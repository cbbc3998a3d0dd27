from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.demo import DEMO_FIRM_SLUG
from accounts.models import Firm, User
from optimizer.management.commands._common import wait_for
from optimizer.models import RunStatus
from optimizer.services import run_request
from portal import services as wf
from portal.exports.services import ExportRefused, export_proposal
from portal.models import Proposal


class Command(BaseCommand):
    help = (
        "Puts the demo book's review workflow in motion (idempotent): moderate runs for a few "
        "of alice's households, one proposal exported, one approved and ready to export, one "
        "submitted for review, the rest drafts. Runs after `manage.py demo`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--households", type=int, default=4)
        parser.add_argument("--timeout", type=float, default=600.0)

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("The demo workflow is not created in production.")
        firm = Firm.objects.filter(slug=DEMO_FIRM_SLUG).first()
        if firm is None:
            raise CommandError("no demo book: run `manage.py demo` first")
        if Proposal.objects.filter(household__firm=firm).exists():
            self.stdout.write("Demo proposals already present; nothing changed.")
            return
        alice = User.objects.get(username="alice", firm=firm)
        households = list(
            alice.advised_households.filter(is_active=True).order_by("name")[
                : options["households"]
            ]
        )
        runs = [
            run_request(
                household=h,
                scenario="moderate",
                actor=alice,
                idempotency_key=f"demo-workflow-{h.pk}-moderate",
            )
            for h in households
        ]
        runs = wait_for([r.pk for r in runs], options["timeout"])
        staged = [
            wf.proposal_stage(run=r, actor=alice) for r in runs if r.status == RunStatus.SUCCEEDED
        ]
        lines = []
        for index, proposal in enumerate(staged):
            name = proposal.household.name
            if index == 0:
                approved = wf.proposal_approve(
                    proposal=proposal, actor=alice, comment="Reviewed with the client."
                )
                if approved.status == "approved":
                    try:
                        export = export_proposal(proposal=approved, actor=alice)
                    except ExportRefused as exc:
                        lines.append(f"  proposal {proposal.pk} ({name}): approved; {exc}")
                        continue
                    lines.append(
                        f"  proposal {proposal.pk} ({name}): exported, {export.order_count} orders"
                    )
                else:
                    lines.append(f"  proposal {proposal.pk} ({name}): awaiting four-eyes approval")
            elif index == 1:
                approved = wf.proposal_approve(proposal=proposal, actor=alice)
                state = approved.get_status_display().lower()
                lines.append(f"  proposal {proposal.pk} ({name}): {state}")
            elif index == 2:
                wf.proposal_submit(proposal=proposal, actor=alice)
                lines.append(f"  proposal {proposal.pk} ({name}): pending review")
            else:
                lines.append(f"  proposal {proposal.pk} ({name}): draft")
        self.stdout.write(self.style.SUCCESS(f"Demo workflow: {len(staged)} proposals staged."))
        for line in lines:
            self.stdout.write(line)
