"""Settings come from the environment; bad values fail loudly; production passes check --deploy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"DATABASE_URL": "mysql://u:p@localhost/db"},
            "DATABASE_URL must be sqlite:// or postgres://",
        ),
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG='maybe' is not a boolean"),
        ({"DJANGO_ENV": "staging"}, "DJANGO_ENV='staging' must be one of"),
        ({"DJANGO_ENV": "production"}, "DJANGO_SECRET_KEY must be set"),
        ({"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": "short"}, "at least 50 characters"),
        ({"CELERY_TASK_TIME_LIMIT": "soon"}, "CELERY_TASK_TIME_LIMIT='soon' is not an integer"),
    ],
)
def test_bad_settings_fail_loudly_naming_the_variable(env, message):
    result = _run(["check"], **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_settings_pass_check_deploy_without_warnings():
    result = _run(
        ["check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY="k" * 20 + "-Qm7#pX2vL9!rT4wZ8sN1bH6yJ3cF5gD0aE",
        DJANGO_ALLOWED_HOSTS="portal.example.com",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_demo_is_refused_in_production():
    result = _run(
        ["demo"],
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY="k" * 20 + "-Qm7#pX2vL9!rT4wZ8sN1bH6yJ3cF5gD0aE",
        DJANGO_ALLOWED_HOSTS="portal.example.com",
        DATABASE_URL="sqlite:///:memory:",
    )
    assert result.returncode != 0
    assert "not created in production" in result.stderr
