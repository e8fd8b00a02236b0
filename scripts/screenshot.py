"""Screenshots of a reports folder as a reader sees it: the index and notebook 2's verdict section.

Why: a report is judged in a browser; these PNGs show what a reader meets (figure sizes, labels, table
widths) without opening one. Headless Debian Chromium through Playwright, no network (requests leaving
file:// are refused).

    python scripts/screenshot.py reports/quick            # -> reports/quick/index.png, 02_verdict.png
    python scripts/screenshot.py /tmp/r/smoke --out /tmp/shots
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def section(page, start: str, end: str | None) -> dict:
    """The page area from the element with id ``start`` to the one with id ``end`` (or the page end)."""
    box = page.evaluate("""([start, end]) => {
        const top = document.getElementById(start).closest('.jp-Cell, section, body').getBoundingClientRect().top;
        const stop = end && document.getElementById(end)
            ? document.getElementById(end).closest('.jp-Cell, section, body').getBoundingClientRect().top
            : document.body.scrollHeight;
        return {x: 0, y: top + window.scrollY, width: document.body.scrollWidth, height: stop - top};
    }""", [start, end])
    return box


def shoot(folder: str, out: str, width: int = 1280) -> list[str]:
    from playwright.sync_api import sync_playwright

    folder, out = pathlib.Path(folder).resolve(), pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    made = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
        page.goto((folder / "index.html").as_uri())
        page.screenshot(path=str(out / "index.png"), full_page=True)
        made.append(str(out / "index.png"))
        report = folder / "02_peft_comparison.html"
        if report.is_file():
            page.goto(report.as_uri())
            page.screenshot(path=str(out / "02_verdict.png"), full_page=True,
                            clip=section(page, "Verdict-at-convergence", "Checks"))
            made.append(str(out / "02_verdict.png"))
        browser.close()
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a reports folder, e.g. reports/quick")
    parser.add_argument("--out", default=None, help="where the PNGs go (default: the folder)")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.folder, "index.html")):
        print(f"screenshot: no index.html in {args.folder!r}; allowed: a folder made by lnft reports", file=sys.stderr)
        return 2
    for path in shoot(args.folder, args.out or args.folder):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
