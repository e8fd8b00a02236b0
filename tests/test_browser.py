"""The smoke reports as a reader sees them: rendered by headless Chromium (Debian's, which `make test`
installs), every figure loaded and every link resolving. No network: requests leaving file:// (the
nbconvert template's CDN scripts) are refused, so nothing the page needs may come from outside."""
import os
import urllib.parse

import pytest

DOCS_SOURCE = os.path.join(os.path.dirname(__file__), "..", "docs")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _open(browser, path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    page.goto(path.as_uri(), wait_until="load")
    return page


def _check_images_and_links(page):
    images = page.eval_on_selector_all("img", "els => els.map(e => [e.getAttribute('src').slice(0, 40), "
                                              "e.complete, e.naturalWidth])")
    assert images and all(done and width > 0 for _, done, width in images), images
    links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    for link in links:
        url = urllib.parse.urlparse(link)
        assert url.scheme == "file", f"a link leaves the reports: {link}"
        target = urllib.parse.unquote(url.path)
        if "/site/" in target:  # the docs site (lnft.reports.DOCS, built by make docs): its source page and anchor
            source = os.path.join(DOCS_SOURCE, target.split("/site/", 1)[1].removesuffix(".html") + ".md")
            assert os.path.isfile(source), f"link {link} names no docs page ({source})"
            with open(source, encoding="utf-8") as fh:
                assert not url.fragment or "{#" + url.fragment + "}" in fh.read(), f"no anchor {link} in {source}"
            continue
        assert os.path.isfile(target), f"broken link {link}"
        if url.fragment:  # as a browser resolves it: the raw fragment, else its percent-decoding
            found = page.evaluate("ids => ids.some(id => document.getElementById(id) !== null)",
                                  [url.fragment, urllib.parse.unquote(url.fragment)])
            assert found, f"no anchor {link}"
    return images, links


def test_index_leads_with_verdicts_and_every_figure_and_link_works(browser, smoke_reports):
    page = _open(browser, smoke_reports / "index.html")
    images, links = _check_images_and_links(page)
    assert len(images) == 4  # one key figure per notebook, and the forest plot of every verdict (lnft.forest)
    assert any(src == "verdicts.png" for src, _, _ in images), images
    for name in ("01_change_analysis", "02_peft_comparison", "03_fisher_subsets"):
        assert any(link.endswith(f"/{name}.html") for link in links), name
    tables = page.locator("table.verdicts")
    assert tables.count() == 3
    words = page.eval_on_selector_all("table.verdicts td span:first-child", "els => els.map(e => e.textContent)")
    assert words and set(words) <= {"better", "worse", "equivalent within ±1 point", "inconclusive",
                                    "largest", "not largest", "needs ≥ 2 seeds"}, words
    headings = page.eval_on_selector_all("h2", "els => els.map(e => e.textContent)")
    assert headings[0] == "Claims and verdicts"  # the answers come first, the run facts after
    assert page.locator("text=git commit").count() == 1


def test_peft_report_renders_its_figures_and_verdict(browser, smoke_reports):
    page = _open(browser, smoke_reports / "02_peft_comparison.html")
    images, _ = _check_images_and_links(page)
    assert len(images) >= 3  # efficiency, learning curves, verdict intervals
    assert page.locator("#Verdict-at-convergence").count() == 1
    assert page.locator("text=checks passed").count() >= 1
