"""The documentation site is checked like code: `scripts/build_docs.py` builds it with `mkdocs build --strict`
(a broken link or anchor, a page missing from the nav or a docstring reference that no longer resolves
fails it), the generated CLI reference names every subcommand of the real parser, and headless Chromium
opens the home page and notebook 2's chapter (no console error, nothing loaded from outside, the verdict
table visible). The site is built once per session from the committed `reports/quick`."""
import argparse
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports" / "quick"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PAGES = ["index.html", "getting-started.html", "about.html", "benchmarks.html", "concepts/experiments.html",
         "concepts/methods.html", "concepts/training.html", "concepts/run-store.html", "concepts/statistics.html",
         "howto/own-model.html", "howto/own-task.html", "howto/gpu.html", "howto/cluster.html", "howto/extend.html",
         "reports/index.html", "reports/01_change_analysis.html", "reports/02_peft_comparison.html",
         "reports/03_fisher_subsets.html", "reports/standalone/index.html",
         "reference/cli.html", "reference/profiles.html", "reference/api.html", "reference/api/stats.html", "reference/api/cli.html"]


def _script():
    spec = importlib.util.spec_from_file_location("build_docs", ROOT / "scripts" / "build_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(*args, cwd=ROOT):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "build_docs.py"), *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The site built once: from a copy of the committed reports/quick whose index.html is rewritten by
    today's `lnft.reports.write_index` (it links the site's statistics page), so the copied index is checked
    against today's site."""
    import json

    from lnft import reports

    base = tmp_path_factory.mktemp("docs")
    folder = base / "reports" / "quick"
    shutil.copytree(REPORTS, folder)
    facts = json.loads((folder / "reports.json").read_text(encoding="utf-8")).get("facts", {})
    reports.write_index(str(folder), "quick", reports._read_reports(str(folder)), facts)
    out, stage = base / "site", base / "stage"
    done = _build("--reports", folder, "--out", out, "--keep-stage", stage)
    assert done.returncode == 0, done.stdout + done.stderr
    return out, stage


def test_strict_build_has_every_page(site):
    out, _ = site
    missing = [p for p in PAGES if not (out / p).is_file()]
    assert not missing, missing
    modules = _script().public_modules()
    assert len(modules) > 20 and "stats" in modules and "__main__" not in modules
    for name in modules:  # one API page per public module, each with text from its docstrings
        page = (out / "reference" / "api" / f"{name}.html").read_text(encoding="utf-8")
        assert 'class="doc doc-' in page, name
    from lnft.profiles import PROFILES

    profiles = (out / "reference" / "profiles.html").read_text(encoding="utf-8")
    assert all(f'id="{name}"' in profiles for name in PROFILES), list(PROFILES)
    statistics = (out / "concepts" / "statistics.html").read_text(encoding="utf-8")
    for anchor in ("verdict-words", "flags", "decide-mode", "seeds-needed"):  # the reports index links here
        assert f'id="{anchor}"' in statistics, anchor


def test_a_broken_link_fails_the_strict_build(tmp_path):
    """The same docs with one link to a missing page and one to a missing anchor: the build must fail."""
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    page = docs / "concepts" / "methods.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nSee [the missing page](no-such-page.md) and "
                    "[a missing anchor](statistics.md#no-such-anchor).\n", encoding="utf-8")
    done = _build("--reports", REPORTS, "--out", tmp_path / "site", "--docs", docs)
    assert done.returncode != 0
    log = done.stdout + done.stderr
    assert "no-such-page.md" in log and "no-such-anchor" in log and "strict mode" in log, log[-2000:]


def test_a_missing_reports_folder_fails_in_one_line(tmp_path):
    done = _build("--reports", tmp_path / "standard", "--out", tmp_path / "site")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0], done.stderr
    assert not (tmp_path / "site").exists()


def _subcommands(parser, prefix="lnft"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from _subcommands(sub, f"{prefix} {name}")


def test_cli_reference_names_every_subcommand_and_option(site):
    from lnft.cli import build_parser

    _, stage = site
    page = (stage / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    commands = list(_subcommands(build_parser()))
    names = {c for c, _ in commands}
    assert {"lnft train", "lnft reports", "lnft runs", "lnft runs verify", "lnft plan", "lnft methods"} <= names
    for command, sub in commands:
        assert f"## `{command}`" in page, command
        for action in sub._actions:
            for flag in action.option_strings:
                if flag in ("-h", "--help"):
                    continue
                assert f"`{flag}`" in page, (command, flag)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _open(browser, path):
    """The page as a reader opens it from disk; every console error and every request leaving file:// kept."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, outside = [], []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def route(r):
        if r.request.url.startswith("file:"):
            return r.continue_()
        outside.append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_timeout(300)
    return page, errors, outside


def test_home_page_in_a_browser(browser, site):
    out, _ = site
    page, errors, outside = _open(browser, out / "index.html")
    assert not errors and not outside, (errors, outside)
    assert page.locator("h1").first.is_visible()
    links = page.eval_on_selector_all("nav a[href]", "els => els.map(e => e.href)")
    for want in ("concepts/statistics.html", "reports/02_peft_comparison.html", "reference/cli.html"):
        assert any(link.endswith(want) for link in links), want
    for link in links:  # every navigation link points to a file of the site
        assert link.startswith("file:") and pathlib.Path(link[len("file://"):].split("#")[0]).is_file(), link


def test_report_chapter_shows_the_verdict_table(browser, site):
    out, _ = site
    page, errors, outside = _open(browser, out / "reports" / "02_peft_comparison.html")
    assert not errors and not outside, (errors, outside)
    table = page.locator("table:has(th:text-is('seeds_needed'))").first  # notebook 2's verdict table
    assert table.is_visible()
    assert table.locator("td:text-is('inconclusive'), td:text-is('better'), td:text-is('worse')").count() > 0
    images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
    assert images and all(done and width > 0 for done, width in images), images


def test_the_copied_reports_index_links_into_the_site(browser, site):
    """The reports index links the site as seen from reports/<profile>/ ("../../site/..."); in the site its
    copy lies at reports/standalone/ and is relinked: every link opens a file, every anchor exists."""
    out, _ = site
    page, errors, outside = _open(browser, out / "reports" / "standalone" / "index.html")
    links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    into_site = [link for link in links if "/concepts/statistics.html" in link]
    assert into_site, links  # the index explains its terms on the site (verdict words, flags)
    for link in links:
        url = urllib.parse.urlparse(link)
        assert url.scheme == "file", link
        target = pathlib.Path(urllib.parse.unquote(url.path))
        assert target.is_file(), f"broken link {link}"
        if url.fragment:
            other = browser.new_page()
            other.goto(target.as_uri(), wait_until="load")
            assert other.locator(f"[id='{url.fragment}']").count() == 1, f"no anchor {link}"
            other.close()
