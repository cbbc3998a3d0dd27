"""The client's PDF rationale: content, pagination, footers, determinism, no network.

Pure rendering (no database). The PDFs are read back with poppler (pdftotext, pdfinfo,
pdffonts, pdftoppm); pages 1 and 2 of the sample are saved as PNG under test-artifacts/pdf/.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from portal.exports import pdf
from portal.exports.documents import ExportRefused, RationaleDocument
from tests.portal.exports.samples import SNAPSHOT, sample_rationale

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts" / "pdf"
SMALL_PAGES = 7  # observed for sample_rationale(): cover, summary, allocation, trades,
# gains and IPS, approval and disclosures, appendix


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} (poppler-utils) is required"
    return path


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def _flat(text: str) -> str:
    """Whitespace collapsed: sentences wrap across lines in the PDF."""
    return " ".join(text.split())


def pdf_text(path: Path, page: int | None = None, *, layout: bool = False) -> str:
    """The text of the PDF (or one page); ``layout`` keeps table rows on one line."""
    args = [_tool("pdftotext"), "-enc", "UTF-8"]
    if layout:
        args.append("-layout")
    if page is not None:
        args += ["-f", str(page), "-l", str(page)]
    return _run(*args, str(path), "-")


def layout_lines(path: Path, page: int | None = None) -> list[str]:
    return [" ".join(line.split()) for line in pdf_text(path, page, layout=True).splitlines()]


def pdf_info(path: Path) -> dict[str, str]:
    out = _run(_tool("pdfinfo"), "-isodates", str(path))
    return {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in out.splitlines())
    }


@pytest.fixture(scope="module")
def small_doc() -> RationaleDocument:
    return sample_rationale()


@pytest.fixture(scope="module")
def small_pdf(small_doc: RationaleDocument, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "small.pdf"
    path.write_bytes(pdf.render_rationale_pdf(small_doc).content)
    return path


# --------------------------------------------------------------------------- formatting


def test_formatting_helpers():
    assert pdf.money(Decimal("12345.674")) == "$12,345.67"
    assert pdf.money(Decimal("-1234")) == "-$1,234.00"
    assert pdf.money(Decimal("-0.004")) == "$0.00"
    assert pdf.money(Decimal("0.005")) == "$0.01"
    assert pdf.shares(Decimal("150.000")) == "150"
    assert pdf.shares(Decimal("12.50")) == "12.5"
    assert pdf.shares(Decimal("0.125")) == "0.125"
    assert pdf.shares(Decimal("12500")) == "12,500"
    assert pdf.pct(Decimal("0.25")) == "25.0%"
    assert pdf.pct(Decimal("0.0342"), 2) == "3.42%"
    assert pdf.pct(Decimal("-0.0004")) == "0.0%"
    assert pdf.pct(None) == "—"


# --------------------------------------------------------------------------- the file


def test_rendered_file(small_doc):
    rendered = pdf.render_rationale_pdf(small_doc)
    assert rendered.kind == "rationale_pdf"
    assert rendered.name == "proposal-41-rationale.pdf"
    assert rendered.content_type == "application/pdf"
    assert rendered.order_count == 0
    assert rendered.total_shares == Decimal(0)
    assert rendered.content.startswith(b"%PDF-")
    assert rendered.content.rstrip().endswith(b"%%EOF")


def test_metadata_and_page_count(small_pdf):
    info = pdf_info(small_pdf)
    assert info["Pages"] == str(SMALL_PAGES)
    assert info["Page size"].startswith("612 x 792 pts")  # US letter, portrait
    assert info["Title"] == "Portfolio proposal 41 · Alvarez Household"
    assert info["Author"] == "Harborview Wealth Partners LLC"
    # the dates are the document's generated_at, never the clock
    assert info["CreationDate"].startswith("2025-03-15T17:00:00")
    assert info["ModDate"].startswith("2025-03-15T17:00:00")


def test_only_the_shipped_fonts_are_embedded(small_pdf):
    out = _run(_tool("pdffonts"), str(small_pdf)).splitlines()[2:]
    names = {line.split()[0].split("+", 1)[1] for line in out if line.strip()}
    assert names
    assert all(name.startswith("Rationale-") for name in names), names
    assert all(line.split()[-5] == "yes" for line in out if line.strip())  # embedded


# --------------------------------------------------------------------------- content


def test_text_content(small_doc, small_pdf):
    text = _flat(pdf_text(small_pdf))
    doc = small_doc
    for expected in (
        doc.firm_name,
        "Portfolio proposal",
        doc.household_name,
        "Maria Alvarez and Daniel Alvarez",
        doc.adviser_name,
        "Moderate transition",
        "March 14, 2025",  # data date
        "March 15, 2025",  # approval date
        "What changes and why",
        "Explanation generated from the optimizer's computed figures",
        "What limited this proposal",
        "version 3",
        "effective November 1, 2024",
        "No tobacco or firearms manufacturers.",
        "Priya Natarajan",
        "Chief Compliance Officer",
        "March 15, 2025, 16:42 UTC",
        "Reviewed with the clients on the phone",
        "Appendix: tax lots sold",
    ):
        assert _flat(expected) in text, expected
    for paragraph in doc.explanation:
        assert _flat(paragraph) in text
    for sentence in doc.constraints:
        assert _flat(sentence) in text
    for disclosure in pdf.DEFAULT_DISCLOSURES:
        assert _flat(disclosure) in text
    assert "deterministic" not in text.lower()


def test_key_figures(small_doc, small_pdf):
    lines = layout_lines(small_pdf, 2)
    r = small_doc.realized
    for expected in (
        "Tracking error before 3.42%",
        "Tracking error after 1.18%",
        "Turnover 13.8%",
        f"Estimated trading cost {pdf.money(small_doc.trading_cost)}",
        f"Number of trades {small_doc.tickets}",
        f"Net realized gains and losses {pdf.money(r.net)}",
        f"Estimated tax {pdf.money(r.estimated_tax)}",
    ):
        assert any(line.startswith(expected + " ") for line in lines), expected


def test_trades_by_account(small_doc, small_pdf):
    text = _flat(pdf_text(small_pdf))
    lines = layout_lines(small_pdf)
    for account in small_doc.accounts:
        assert account.label in text
        assert (
            f"Custodian: {account.custodian_name} Account: {account.account_number_masked} "
            f"Registration: {account.registration} Tax treatment: {account.tax_treatment}"
        ) in lines
        buys = sum(t.side == "buy" for t in account.trades)
        assert f"Total buys ({buys}) {pdf.money(account.buys)}" in lines
        for t in account.trades:
            realized = (
                f"{pdf.money(t.realized_short_term)} {pdf.money(t.realized_long_term)}"
                if t.realized_short_term is not None and t.realized_long_term is not None
                else "— —"
            )
            first_word = t.security_name.split()[0]
            row = [
                line
                for line in lines
                if line.startswith(f"{t.side.title()} {t.symbol} {first_word}")
                and line.endswith(
                    f"{pdf.shares(t.shares)} {pdf.money(t.price)} "
                    f"{pdf.money(t.estimated_value)} {realized}"
                )
            ]
            assert len(row) == 1, (t.symbol, row)
            assert _flat(t.security_name) in text or t.security_name.split()[-1] in text
    assert "Total sells (2) $8,832.64 $156.00 $1,814.68" in lines
    assert "16.125" in text  # a fractional buy keeps its decimals
    assert "Sales in this tax-deferred account are not taxed when made." in text


def test_realized_gains_and_tax(small_doc, small_pdf):
    text = _flat(pdf_text(small_pdf))
    lines = layout_lines(small_pdf)
    r = small_doc.realized
    st_net = r.short_term_gains + r.short_term_losses
    lt_net = r.long_term_gains + r.long_term_losses
    assert (
        f"Short-term (held one year or less) {pdf.money(r.short_term_gains)} "
        f"{pdf.money(r.short_term_losses)} {pdf.money(st_net)}"
    ) in lines
    assert (
        f"Long-term (held more than one year) {pdf.money(r.long_term_gains)} "
        f"{pdf.money(r.long_term_losses)} {pdf.money(lt_net)}"
    ) in lines
    assert (
        f"Total, taxable accounts {pdf.money(r.short_term_gains + r.long_term_gains)} "
        f"{pdf.money(r.short_term_losses + r.long_term_losses)} {pdf.money(r.net)}"
    ) in lines
    assert f"Estimated tax on these gains {pdf.money(r.estimated_tax)}" in lines
    assert r.long_term_losses < 0 and pdf.money(r.long_term_losses).startswith("-$")
    # IRA gains are stated apart, as not taxed now
    assert r.tax_deferred > 0
    assert f"realize a net gain of {pdf.money(r.tax_deferred)}. It is not taxed now" in text


def test_lot_appendix_lists_every_lot(small_doc, small_pdf):
    flat = layout_lines(small_pdf, SMALL_PAGES)
    count = 0
    for account in small_doc.accounts:
        for t in account.trades:
            for lot in t.lots:
                count += 1
                expected = " ".join(
                    [
                        account.account_number_masked,
                        t.symbol,
                        lot.lot_ref,
                        f"{lot.acquired:%m/%d/%Y}",
                        pdf.shares(lot.shares),
                        pdf.money(lot.cost_basis),
                        pdf.money(lot.proceeds),
                        pdf.money(lot.realized_gain),
                        lot.term.title(),
                    ]
                )
                assert expected in flat, expected
    assert count == 8


def test_allocation_table(small_pdf):
    dash = pdf.EN_DASH
    lines = layout_lines(small_pdf, 3)
    assert "Allocation before and after against your target" in lines
    assert f"US equity 45.0% 40.0% {dash} 50.0% 56.3% 47.1% -9.2%" in lines
    assert f"International equity 20.0% 17.0% {dash} 23.0% 11.4% 18.9% +7.5%" in lines
    assert f"Cash 5.0% 2.0% {dash} 8.0% 3.4% 3.7% +0.3%" in lines


def test_cover_lists_the_contents_with_page_numbers(small_pdf):
    lines = layout_lines(small_pdf, 1)
    assert "Contents" in " ".join(lines).title()
    contents = {}
    for line in lines:
        match = re.fullmatch(r"(.+?) ?\.{3,} ?(\d+)", line)
        if match:
            contents[match[1]] = int(match[2])
    assert contents == {
        "What changes and why": 2,
        "What limited this proposal": 2,
        "Allocation before and after against your target": 3,
        "The trades, by account": 4,
        "Realized gains and losses": 5,
        "Your investment policy statement": 5,
        "Approval": 6,
        "Important disclosures": 6,
        "Appendix: tax lots sold": SMALL_PAGES,
    }


def test_every_page_has_the_footer(small_pdf):
    footer = f"Proposal 41 · Snapshot SHA-256 {SNAPSHOT}"
    for page in range(1, SMALL_PAGES + 1):
        text = _flat(pdf_text(small_pdf, page))
        assert footer in text, page
        assert f"Page {page} of {SMALL_PAGES}" in text, page
        if page > 1:  # the running header after the cover
            assert "Harborview Wealth Partners LLC" in text
            assert "Alvarez Household" in text


def test_without_ips_or_approvals_and_with_given_disclosures(tmp_path):
    doc = sample_rationale(
        with_ips=False,
        approvals=0,
        disclosures=("Custom disclosure one.", "Custom disclosure two."),
        explanation_source="model",
    )
    path = tmp_path / "other.pdf"
    path.write_bytes(pdf.render_rationale_pdf(doc).content)
    text = _flat(pdf_text(path))
    assert "No investment policy statement was on file for this household" in text
    assert "No approval is recorded for this proposal." in text
    assert "Not approved" in text
    assert "Custom disclosure one." in text and "Custom disclosure two." in text
    assert _flat(pdf.DEFAULT_DISCLOSURES[0]) not in text
    assert "with the help of a language model" in text
    assert "deterministic" not in text.lower()


def test_a_proposal_without_trades_renders(tmp_path):
    doc = sample_rationale(accounts=0, approvals=1)
    path = tmp_path / "empty.pdf"
    path.write_bytes(pdf.render_rationale_pdf(doc).content)
    text = _flat(pdf_text(path))
    assert "This proposal has no trades." in text
    assert "No tax lots are sold by this proposal." in text
    assert "Estimated tax on these gains $0.00" in text
    assert "No gains or losses are realized inside tax-deferred accounts." in text


def test_lot_listing_fits_long_lot_ids():
    rows = [("****5678", "VTI", "X" * 60, "01/02/2024", "10", "$1.00", "$2.00", "$1.00", "Long")]
    rows.append(
        ("****5678", "BRK.B", "L1", "01/02/2024", "0.125", "$1.00", "$2.00", "-$1.00", "Short")
    )
    listing = pdf._lot_listing([rows])
    assert listing is not None
    size = Decimal(listing["font_size"].removesuffix("pt"))
    assert Decimal(5) <= size < pdf.LOT_FONT_PT
    lines = [listing["header"], *listing["cells"][0].split("\n")]
    assert len(lines) == 3
    # columns line up: each value starts or ends at the same offset on every line
    assert {line.index("Acquired" if i == 0 else "01/02/2024") for i, line in enumerate(lines)} == {
        lines[0].index("Acquired")
    }
    # the right-aligned gains end together, where the term column starts
    assert len({line.rindex(" ") for line in lines}) == 1
    assert len({len(line[: line.rindex(" ")].rstrip()) for line in lines}) == 1
    assert pdf._lot_listing([]) is None


def test_large_transition_paginates(tmp_path):
    """500 trades in two accounts and 2,000 lots: many pages, every page footed, the trade
    table's header repeated on each page it spans."""
    doc = sample_rationale(accounts=2, trades_per_account=250, lots_per_sell=8)
    assert sum(len(t.lots) for a in doc.accounts for t in a.trades) == 2000
    path = tmp_path / "large.pdf"
    path.write_bytes(pdf.render_rationale_pdf(doc).content)
    pages = int(pdf_info(path)["Pages"])
    assert pages > 3 * SMALL_PAGES
    text = pdf_text(path)
    chunks = text.split("\f")[:pages]
    assert len(chunks) == pages
    trade_pages = [c for c in chunks if "Vanguard" in c or "Industries Inc." in c]
    lot_pages = [c for c in chunks if "L0" in c and "Cost basis" in c]
    assert len(trade_pages) > 5 and len(lot_pages) > 5
    assert all("Est. price" in c for c in trade_pages)  # the table header is repeated
    for number, chunk in enumerate(chunks, start=1):
        flat = _flat(chunk)
        assert f"Snapshot SHA-256 {SNAPSHOT}" in flat
        assert f"Page {number} of {pages}" in flat
    assert "QABA" in text  # a made-up ticker near the end of the list


# --------------------------------------------------------------------------- images


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_pages_render_to_png(small_pdf):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    prefix = ARTIFACTS / "rationale-sample"
    for old in ARTIFACTS.glob("rationale-sample-*.png"):
        old.unlink()
    _run(_tool("pdftoppm"), "-f", "1", "-l", "2", "-r", "60", "-png", str(small_pdf), str(prefix))
    pages = sorted(ARTIFACTS.glob("rationale-sample-*.png"))
    assert len(pages) == 2
    for png in pages:
        assert png.stat().st_size > 10_000
        assert _png_size(png) == (510, 660)  # 8.5 x 11 in at 60 dpi

    from PIL import Image  # Pillow is a dependency of WeasyPrint

    for png in pages:
        with Image.open(png) as image:
            gray = image.convert("L")
            dark = sum(gray.histogram()[:128])
            assert dark > 2_000, png  # text and the cover band, not a blank page


# --------------------------------------------------------------------------- determinism


RENDER_SCRIPT = textwrap.dedent(
    """
    import sys
    import django
    django.setup()
    from portal.exports.pdf import render_rationale_pdf
    from tests.portal.exports.samples import sample_rationale
    sys.stdout.buffer.write(render_rationale_pdf(sample_rationale()).content)
    """
)


def test_same_document_same_bytes(small_doc, small_pdf):
    first = small_pdf.read_bytes()
    again = pdf.render_rationale_pdf(sample_rationale()).content
    assert again == first
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "PYTHONHASHSEED": "random"}
    other = subprocess.run(
        [sys.executable, "-c", RENDER_SCRIPT], cwd=ROOT, env=env, capture_output=True, check=True
    ).stdout
    assert other == first
    # a different snapshot gives a different file (and a different PDF identifier)
    changed = pdf.render_rationale_pdf(replace(small_doc, snapshot_sha256="0" * 64)).content
    assert changed != first
    assert pdf.pdf_identifier(small_doc) != pdf.pdf_identifier(
        replace(small_doc, snapshot_sha256="0" * 64)
    )


# --------------------------------------------------------------------------- no network


HOSTILE = '<img src="http://example.com/x.png"> Household'


def test_markup_in_fields_is_escaped_and_nothing_fetched(monkeypatch, tmp_path):
    fetched: list[str] = []
    original = pdf.ExportAssetFetcher.fetch

    def spy(self, url, headers=None):
        fetched.append(url)
        return original(self, url, headers)

    monkeypatch.setattr(pdf.ExportAssetFetcher, "fetch", spy)
    doc = sample_rationale(
        household_name=HOSTILE,
        client_names=('<link rel="stylesheet" href="https://example.com/x.css">',),
    )
    doc = replace(doc, explanation=('<iframe src="http://example.com/"></iframe> Hello.',))
    html = pdf.render_rationale_html(doc)
    assert "&lt;img src=&quot;http://example.com/x.png&quot;&gt;" in html
    assert '<img src="http://example.com' not in html
    assert '<link rel="stylesheet" href="https' not in html
    assert "<iframe" not in html

    path = tmp_path / "escaped.pdf"
    path.write_bytes(pdf.render_rationale_pdf(doc).content)
    assert fetched, "the stylesheet and fonts come through the fetcher"
    root = pdf.ASSETS_DIR.as_uri() + "/"
    assert all(url.startswith(root) for url in fetched), fetched
    assert not any("example.com" in url for url in fetched)
    text = _flat(pdf_text(path))
    assert '<img src="http://example.com/x.png"> Household' in text
    assert "<iframe" in text


def test_fetcher_serves_only_the_export_assets():
    fetcher = pdf.ExportAssetFetcher()
    font = pdf.ASSETS_DIR / "fonts" / "DejaVuSans.ttf"
    response = fetcher.fetch(font.as_uri())
    assert response.read() == font.read_bytes()
    assert response.content_type == "font/ttf"
    css = fetcher.fetch((pdf.ASSETS_DIR / "rationale.css").as_uri())
    assert css.content_type == "text/css"
    assert b"@font-face" in css.read()
    assert fetcher.fetch("data:text/plain;base64,aGk=").read() == b"hi"

    for url in (
        "http://example.com/x.png",
        "https://example.com/x.css",
        "ftp://example.com/x",
        "file:///etc/passwd",
        (pdf.ASSETS_DIR / ".." / ".." / "settings.py").as_uri(),
        "file://example.com" + font.as_uri().removeprefix("file://"),
        (pdf.ASSETS_DIR / "missing.ttf").as_uri(),
    ):
        with pytest.raises(ValueError, match="refused"):
            fetcher.fetch(url)


@pytest.mark.parametrize(
    "markup",
    [
        '<img src="http://example.com/x.png">',
        '<link rel="stylesheet" href="https://example.com/x.css">',
        "<style>@import url(http://example.com/x.css);</style>",
        '<img src="file:///etc/hostname">',
    ],
)
def test_a_reference_outside_the_assets_stops_the_rendering(markup):
    with pytest.raises(ExportRefused) as caught:
        pdf.html_to_pdf(f"<html><body><p>x</p>{markup}</body></html>", identifier=b"t")
    assert "outside the export assets" in str(caught.value)
