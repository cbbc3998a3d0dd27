"""End to end in a real browser (Debian's Chromium, headless, through Playwright): an adviser
goes from the review queue to an approved, exported proposal; the household's client downloads
the PDF and nothing else; an outsider gets 404 on all of it. Screenshots are
saved under test-artifacts/e2e/."""

from __future__ import annotations

import hashlib
import re

from portal.models import Proposal, ProposalApproval, ProposalStatus
from tests.e2e.conftest import ARTIFACTS, chromium
from tests.factories import PASSWORD


def _login(page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_adviser_approves_a_proposal_and_an_outsider_gets_404(e2e_book, live_server):
    base = live_server.url
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1366, "height": 850})
        page = context.new_page()
        console_errors: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

        _login(page, base, "owner")
        assert page.locator("h1").first.inner_text() == "Review queue"
        page.screenshot(path=str(ARTIFACTS / "01-review-queue.png"), full_page=True)

        page.click("table.queue >> text=Smith Household")
        page.wait_for_load_state("networkidle")
        assert page.locator("h1").first.inner_text() == "Smith Household"
        assert page.is_checked("input[name=scenarios][value=moderate]")
        page.screenshot(path=str(ARTIFACTS / "02-household.png"), full_page=True)

        page.click("text=Run selected scenarios")
        try:
            page.wait_for_selector("button[data-stage=moderate]", timeout=60_000)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "03-scenarios-failed.png"), full_page=True)
            raise AssertionError(page.inner_text("main")) from None
        assert "Scenarios · Smith Household" in page.locator("h1").first.inner_text()
        assert page.locator("section.scenario svg.chart").count() == 1
        page.screenshot(path=str(ARTIFACTS / "03-scenarios.png"), full_page=True)

        page.click("button[data-stage=moderate]")
        page.wait_for_selector("button[name=approve]")
        url = page.url
        match = re.search(r"/proposals/(\d+)/$", url)
        assert match, url
        proposal_id = int(match.group(1))
        assert "Draft" in page.locator("h1").first.inner_text()
        assert page.locator("table.trades").first.is_visible()
        page.screenshot(path=str(ARTIFACTS / "04-proposal.png"), full_page=True)

        page.fill("textarea[name=comment] >> nth=0", "Checked the IRA cash floor sale.")
        page.click("button[name=approve]")
        page.wait_for_selector("ul.messages")
        assert f"Proposal {proposal_id} approved." in page.locator("ul.messages").inner_text()
        assert "Approved" in page.locator("h1").first.inner_text()
        page.screenshot(path=str(ARTIFACTS / "05-approved.png"), full_page=True)

        page.click("text=Export the PDF and trade files")
        page.wait_for_selector("#exports table")
        assert "Exported" in page.locator("ul.messages").inner_text()
        links = page.locator("#exports table a")
        names = [links.nth(i).inner_text() for i in range(links.count())]
        pdf_name = f"proposal-{proposal_id}-rationale.pdf"
        trades_name = f"proposal-{proposal_id}-schwab-trades.csv"
        assert pdf_name in names and trades_name in names
        page.screenshot(path=str(ARTIFACTS / "06-exported.png"), full_page=True)
        pdf = context.request.get(f"{base}/proposals/{proposal_id}/files/{pdf_name}")
        assert pdf.status == 200 and pdf.body().startswith(b"%PDF-")
        assert hashlib.sha256(pdf.body()).hexdigest() == pdf.headers["x-content-sha256"]
        assert console_errors == []  # no script error, no missing asset on the adviser's way

        page.click("button:has-text('Log out')")
        page.wait_for_load_state("networkidle")
        _login(page, base, "client")  # the household's client: their PDF, nothing else
        page.goto(f"{base}/")
        page.wait_for_selector("#reports")
        assert pdf_name in page.locator("#reports").inner_text()
        page.screenshot(path=str(ARTIFACTS / "07-client-reports.png"), full_page=True)
        mine = context.request.get(f"{base}/proposals/{proposal_id}/files/{pdf_name}")
        assert mine.status == 200 and mine.body() == pdf.body()
        other = context.request.get(f"{base}/proposals/{proposal_id}/files/{trades_name}")
        assert other.status == 404

        page.click("button:has-text('Log out')")
        page.wait_for_load_state("networkidle")
        _login(page, base, "outsider")
        response = page.goto(f"{base}/proposals/{proposal_id}/")
        assert response is not None and response.status == 404
        assert context.request.get(f"{base}/proposals/{proposal_id}/files/{pdf_name}").status == 404
        page.screenshot(path=str(ARTIFACTS / "08-outsider-404.png"), full_page=True)
        context.close()

    proposal = Proposal.objects.get(pk=proposal_id)
    assert proposal.status == ProposalStatus.EXPORTED and proposal.scenario == "moderate"
    approval = ProposalApproval.objects.get(proposal=proposal)
    assert approval.approver.username == "owner"
    assert approval.comment == "Checked the IRA cash floor sale."
    for name in (
        "01-review-queue",
        "03-scenarios",
        "04-proposal",
        "05-approved",
        "06-exported",
        "07-client-reports",
        "08-outsider-404",
    ):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 5_000
