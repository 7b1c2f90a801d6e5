"""The bill page in a real browser: every demo language at phone and desktop width, every demo
bill at phone width, the language switch, the PDF, the page without JavaScript, the neutral
page for a forged link, and what the page loads (CSP, origin, weight). axe-core checks
WCAG 2.1 A/AA on each page."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from babel.dates import format_date
from playwright.sync_api import expect
from pypdf import PdfReader

from app.i18n import FORMAT_LOCALES
from app.money import format_money

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PAGE_WEIGHT_BUDGET = 40 * 1024
LANGUAGE_LINKS = {"en": "English", "nb": "Norsk bokmål", "de": "Deutsch"}


def plain(text: str) -> str:
    """Babel separates with no-break and narrow no-break spaces; compare with plain ones."""
    return re.sub(r"[\u00a0\u202f\s]+", " ", text)


def expected_money(amount: int, currency: str, locale: str) -> str:
    return plain(format_money(amount, currency, FORMAT_LOCALES[locale]))  # the app's: Babel and CLDR's spacing


def expected_date(value, locale: str) -> str:
    return plain(format_date(value, format="long", locale=FORMAT_LOCALES[locale]))


def main_text(page) -> str:
    return plain(page.locator("main").inner_text())


def axe_violations(page) -> list[str]:
    """axe-core's WCAG 2.1 A/AA violations on the page: rule, help, and each element with what to fix."""
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    report = []
    for violation in results.response["violations"]:
        report.append(f"- {violation['id']} ({violation['impact']}): {violation['help']} [{violation['helpUrl']}]")
        for node in violation["nodes"]:
            report.append(f"    {', '.join(map(str, node['target']))}: {node['html'][:160]}")
            report.append(f"      {plain(node.get('failureSummary') or '')}")
    return report


def assert_axe_clean(page, what: str) -> None:
    report = axe_violations(page)
    assert not report, f"axe found WCAG violations on {what}:\n" + "\n".join(report)


def open_bill(page, bill) -> None:
    """Follow the demo link; it must land on the bill page (303 to /b/<public id>)."""
    response = page.goto(bill.url)
    assert response is not None and response.status == 200, f"{bill.url} answered {response and response.status}"
    assert "/b/" in page.url and "/l/" not in page.url


def lines_not_shown(page, lines) -> list[str]:
    table = plain(page.locator("table.lines").inner_text())
    return [line for line in lines if plain(line) not in table]


def assert_shows_bill(page, bill, locale: str) -> str | None:
    """Language, creditor, amount due (in the heading), due date, invoice number and the lines:
    all of them, or (a long bill) the first ones, every fee, and a link to the full list, whose
    URL is returned."""
    expect(page.locator("html")).to_have_attribute("lang", locale)
    text = main_text(page)
    assert bill.creditor_name in text
    assert bill.number in text
    amount = expected_money(bill.balance, bill.currency, locale)
    assert amount in plain(page.get_by_role("heading", level=1).inner_text()), f"amount {amount!r} not in the heading"
    assert expected_date(bill.due_date, locale) in text
    assert not lines_not_shown(page, bill.fee_lines), "every fee is on the bill page"
    missing = lines_not_shown(page, bill.lines)
    full_list = page.locator("main a[href$='/lines']")
    if not missing:
        expect(full_list).to_have_count(0)
        return None
    assert bill.lines[0] not in missing, "a long bill shows its first lines"
    expect(full_list).to_have_count(1)
    assert str(len(missing)) in full_list.inner_text(), f"the link should say {len(missing)} more lines"
    return full_list.get_attribute("href")


def assert_no_sideways_scrolling(page) -> None:
    width = page.viewport_size["width"]
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page scrolls sideways at {width} px (scrollWidth {scroll_width})"


@pytest.mark.parametrize("viewport", ["mobile", "desktop"])
@pytest.mark.parametrize("locale", ["en", "nb", "de"])
def test_demo_bill_page(live_server, open_page, artifacts, locale, viewport):
    bill = live_server.bill_for(locale)
    page, _watch = open_page(viewport, language=locale)
    open_bill(page, bill)

    assert_shows_bill(page, bill, locale)
    assert_no_sideways_scrolling(page)
    page.screenshot(path=artifacts / f"bill-{locale}-{viewport}.png", full_page=True)
    assert_axe_clean(page, f"the {locale} bill at {viewport} width")


def test_every_demo_bill_at_phone_width(demo_pages, artifacts):
    """Every demo bill (fees, part payments, 200 lines...) in its language: complete, no sideways
    scrolling, axe-clean. The violations of all bills are reported together."""
    problems = []
    for loaded in demo_pages:
        bill, page = loaded.bill, loaded.page
        assert loaded.landing_status == 200, f"{bill.name}: {loaded.landing_status}"
        full_list = assert_shows_bill(page, bill, bill.locale)
        assert_no_sideways_scrolling(page)
        page.screenshot(path=artifacts / f"demo-{bill.name}-mobile.png", full_page=True)
        if report := axe_violations(page):
            problems.append(f"{bill.name}:\n" + "\n".join(report))
        if full_list:
            problems += check_full_list(page, full_list, bill, artifacts)
    assert not problems, "axe found WCAG violations:\n" + "\n".join(problems)


def check_full_list(page, href: str, bill, artifacts) -> list[str]:
    """The list of every line of a long bill, in a second tab of the same session; returns axe's report."""
    lines_page = page.context.new_page()
    try:
        response = lines_page.goto(urljoin(page.url, href))
        assert response.status == 200, f"{bill.name} full list: {response.status}"
        expect(lines_page.locator("html")).to_have_attribute("lang", bill.locale)
        missing = lines_not_shown(lines_page, bill.lines)
        assert not missing, f"{bill.name}: {len(missing)} lines missing from the full list, e.g. {missing[:3]}"
        assert_no_sideways_scrolling(lines_page)
        lines_page.screenshot(path=artifacts / f"demo-{bill.name}-all-lines-mobile.png", full_page=True)
        report = axe_violations(lines_page)
        return [f"{bill.name} (all lines):\n" + "\n".join(report)] if report else []
    finally:
        lines_page.close()


def assert_money_style(amount_text: str, locale: str, currency: str) -> None:
    """The conventions a reader of each language expects, independent of Babel's exact output."""
    if locale == "nb":
        assert re.search(r"\d,\d\d", amount_text), amount_text
        if currency == "NOK":
            assert "kr" in amount_text, amount_text
    elif locale == "de":
        assert re.search(r"\d,\d\d", amount_text), amount_text
        if currency == "EUR":
            assert re.search(r"\d,\d\d ?€", amount_text), amount_text
    else:
        assert re.search(r"\d\.\d\d", amount_text), amount_text


@pytest.mark.parametrize("start", ["en", "nb", "de"])
def test_language_switch_keeps_the_bill(live_server, open_page, start):
    bill = live_server.bill_for(start)
    page, _watch = open_page("desktop", language=start)
    open_bill(page, bill)
    bill_path = urlsplit(page.url).path
    others = [code for code in LANGUAGE_LINKS if code != start]
    for locale in [*others, start]:
        page.locator("header nav").get_by_role("link", name=LANGUAGE_LINKS[locale], exact=True).click()
        expect(page.locator("html")).to_have_attribute("lang", locale)
        assert urlsplit(page.url).path == bill_path
        heading = plain(page.get_by_role("heading", level=1).inner_text())
        assert expected_money(bill.balance, bill.currency, locale) in heading
        assert_money_style(heading, locale, bill.currency)
        assert bill.number in main_text(page)
        expect(page.locator("header nav [aria-current]")).to_have_text(LANGUAGE_LINKS[locale])


def test_pdf_download(live_server, open_page, artifacts):
    bill = live_server.bill_for("en")
    page, _watch = open_page("desktop", language="en")
    open_bill(page, bill)
    with page.expect_download() as info:
        page.get_by_role("link", name="Download the invoice (PDF)").click()
    download = info.value
    assert download.failure() is None, download.failure()
    target = artifacts / f"invoice-{bill.name}.pdf"
    download.save_as(target)
    content = target.read_bytes()
    assert content.startswith(b"%PDF"), content[:16]
    assert len(content) > 5 * 1024, f"the PDF is only {len(content)} bytes"
    first_page = plain(PdfReader(target).pages[0].extract_text())
    assert bill.number in first_page and expected_money(bill.balance, bill.currency, "en") in first_page


def test_bill_works_without_javascript(live_server, open_page):
    bill = live_server.bill_for("nb")
    page, _watch = open_page("mobile", javascript=False, language="nb")
    open_bill(page, bill)
    assert_shows_bill(page, bill, "nb")
    assert bill.transfer is not None, "the Norwegian demo creditor has a bank account"
    text = main_text(page)
    assert plain(bill.transfer.account) in text
    assert plain(bill.transfer.reference) in text
    assert page.locator("button.copy").count() == 0  # the copy buttons come from the script


def test_forged_link_shows_the_neutral_page(live_server, open_page, artifacts):
    page, _watch = open_page("mobile")
    response = page.goto(f"{live_server.url}/l/{'A' * 60}")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("This link cannot be used")
    page.screenshot(path=artifacts / "unavailable-mobile.png", full_page=True)
    assert_axe_clean(page, "the neutral page for a forged link")


def test_no_content_security_policy_violations(demo_pages):
    for loaded in demo_pages:
        name = loaded.bill.name
        assert loaded.copy_buttons > 0, f"{name}: portal.js did not run (its nonce was refused?)"
        csp_console = [m for m in loaded.console_errors if "Content Security Policy" in m]
        assert not loaded.csp_violations and not csp_console, f"{name}: {loaded.csp_violations} {csp_console}"
        assert not loaded.page_errors, f"{name}: {loaded.page_errors}"


def test_every_request_stays_on_the_server(demo_pages):
    for loaded in demo_pages:
        elsewhere = [url for url in loaded.request_urls if urlsplit(url).hostname != "127.0.0.1"]
        assert not elsewhere, f"{loaded.bill.name} made requests off the server: {elsewhere}"
        assert len(loaded.request_urls) >= 3  # the link, the bill page, and at least the stylesheet


def test_page_weight_within_budget(demo_pages):
    """HTML + CSS + JS of each demo bill page (images and the logo excluded), uncompressed."""
    figures = {}
    for loaded in demo_pages:
        assert all(loaded.text_bytes.values()), f"{loaded.bill.name}: {loaded.text_bytes}"
        figures[loaded.bill.name] = (len(loaded.bill.lines), sum(loaded.text_bytes.values()))
    report = ", ".join(f"{name} ({lines} lines): {size} B" for name, (lines, size) in figures.items())
    over = {name: size for name, (_lines, size) in figures.items() if size > PAGE_WEIGHT_BUDGET}
    assert not over, f"over the {PAGE_WEIGHT_BUDGET} B budget of HTML+CSS+JS: {report}"
