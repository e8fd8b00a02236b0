"""Write (or check) the README's results block from the recorded verdicts of a reports folder.

Why: the README quotes what the notebooks found; copied by hand those numbers drift from the reports.
This script renders a reports folder's ``*.verdicts.json`` (``lnft.record.markdown``) between the markers
``<!-- results:begin -->`` and ``<!-- results:end -->`` of a Markdown file. Two blocks exist (``BLOCKS``): the
reference report ``reports/standard`` in README.md, the quick pipeline check ``reports/quick`` in
docs/concepts/experiments.md (without links to report files: the docs site has the chapters). ``--check`` changes nothing and exits 1 when a block differs from its records, or when
the reports do not match the code that made them: a commit with uncommitted changes, or one from which HEAD
differs in what decides a report (``lnft.reports.stale_reasons``, ``REPORT_INPUTS``: the package, the notebooks and the pinned runtime
packages; docs, tests and scripts do not change what a notebook computes) — checked where git is available.
Either mode exits 2 with one line naming the file, before writing anything, when a verdicts file is
unreadable or records a word its own interval contradicts (``lnft.record.read``).

    python scripts/readme_results.py            # rewrite every block
    python scripts/readme_results.py --check    # exit 1 if a block or its reports are stale
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lnft.errors import LnftError  # noqa: E402
from lnft.record import markdown  # noqa: E402
from lnft.reports import stale_reasons  # noqa: E402

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
# (reports folder, the Markdown file holding its block), relative to the repository root
BLOCKS = (("reports/standard", "README.md", True), ("reports/quick", "docs/concepts/experiments.md", False))


def block(readme_text: str) -> tuple[int, int]:
    """Where the generated text lies between the markers (exactly one pair, in order)."""
    if readme_text.count(BEGIN) != 1 or readme_text.count(END) != 1 or readme_text.index(BEGIN) > readme_text.index(END):
        raise SystemExit(f"readme_results: the README needs exactly one {BEGIN} ... {END} block")
    return readme_text.index(BEGIN) + len(BEGIN), readme_text.index(END)


def render(readme: str, reports: str, links: bool = True) -> tuple[str, str]:
    """(current README text, README text with the block regenerated)."""
    with open(readme, encoding="utf-8") as fh:
        text = fh.read()
    start, end = block(text)
    link = os.path.relpath(reports, os.path.dirname(os.path.abspath(readme))).replace(os.sep, "/") if links else ""
    generated = markdown(reports, link)
    if not links:  # name the folder from the repository root, never this machine's absolute path
        generated = generated.replace(os.path.abspath(reports), os.path.relpath(reports, ROOT).replace(os.sep, "/"))
    return text, text[:start] + "\n" + generated + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", help="one reports folder (with --readme); default: every block of BLOCKS")
    parser.add_argument("--readme", help="the Markdown file holding the block of --reports")
    parser.add_argument("--repo", default=ROOT, help="the git checkout whose HEAD the reports must match")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is stale")
    args = parser.parse_args(argv)
    if (args.reports is None) != (args.readme is None):
        parser.error("--reports and --readme go together")
    pairs = ([(args.reports, args.readme, True)] if args.reports else
             [(os.path.join(ROOT, r), os.path.join(ROOT, m), links) for r, m, links in BLOCKS])
    try:  # every block first: an unreadable or contradicted verdicts file stops the script before any write
        rendered = [(reports, readme, *render(readme, reports, links)) for reports, readme, links in pairs]
    except LnftError as exc:
        print(f"readme_results: error: {exc}", file=sys.stderr)
        return 2
    problems = []
    for reports, readme, current, wanted in rendered:
        if not args.check:
            if wanted != current:
                with open(readme, "w", encoding="utf-8") as fh:
                    fh.write(wanted)
            print(f"readme_results: {'updated' if wanted != current else 'unchanged'}: {readme}")
            continue
        if wanted != current:
            problems.append(f"the results block of {readme} differs from {reports}/*.verdicts.json: "
                            "run python scripts/readme_results.py")
        problems += stale_reasons(reports, args.repo)
    if not args.check:
        return 0
    for p in problems:
        print(f"readme_results: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
