from __future__ import annotations

import pytest


@pytest.fixture
def finished_run(priced_book, django_capture_on_commit_callbacks):
    """A succeeded run of the owner's household, requested with a sentence and an override."""
    from optimizer.models import RunStatus
    from optimizer.services import run_request

    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(
            household=priced_book.household,
            scenario="moderate",
            actor=priced_book.owner,
            request_text="rebalance, keep taxes low",
            overrides={"budgets": {"max_net_realized_gain": "20000"}},
        )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run
