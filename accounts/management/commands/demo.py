from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.demo import DEMO_PASSWORD, build_demo


class Command(BaseCommand):
    help = "Creates the demo book (idempotent, deterministic for a given --as-of and --seed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--as-of",
            type=dt.date.fromisoformat,
            default=None,
            help="The demo's 'today' (YYYY-MM-DD); default: today.",
        )
        parser.add_argument("--seed", type=int, default=20261121)

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "The demo book is not created in production (DJANGO_ENV=production)."
            )
        as_of = options["as_of"] or timezone.localdate()
        try:
            result = build_demo(as_of=as_of, seed=options["seed"], log=self.stdout.write)
        except ValidationError as exc:
            raise CommandError(f"demo data failed validation: {exc.message_dict}") from None
        if result.created:
            counts = ", ".join(f"{v} {k}" for k, v in result.counts.items())
            self.stdout.write(self.style.SUCCESS(f"Demo book created: {counts}."))
        else:
            self.stdout.write("Demo book already present; nothing changed.")
        self.stdout.write(
            "\nLog in at http://127.0.0.1:8000/ with any of these (password for all: "
            f"{DEMO_PASSWORD}):"
        )
        for login in result.logins:
            self.stdout.write(f"  {login.username:<10} {login.description}")
