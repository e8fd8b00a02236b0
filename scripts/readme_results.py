"""Write (or check) the README's results block from the recorded verdicts of a reports folder.

Why: the README quotes what the notebooks found; copied by hand those numbers drift from the reports.
This script renders a reports folder's ``*.verdicts.json`` (``lnft.record.markdown``) between the markers
``<!-- results:begin -->`` and ``<!-- results:end -->`` of a Markdown file. Two blocks exist (``BLOCKS``): the
reference report ``reports/standard`` in README.md, the quick pipeline check ``reports/quick`` in
docs/concepts/experiments.md (without links to report files: the docs site has the chapters). ``--check`` changes nothing and exits 1 when a block differs from its records, or when a block or
its reports' ``index.html`` does not say in its first line whether the reports are stale: stale reports are
marked, not blocking (``lnft.staleness``: stale since which commit, why, and the command that regenerates
them; a change to serving, storing or the CLI does not count) — checked where git is available. Only the
quick report (``REGENERATE_ON_RUN_IDS``) must be regenerated, not marked, when its run ids changed.
``--mark-stale`` writes the marks into the blocks and the indexes without regenerating anything.
Either mode exits 2 with one line naming the file, before writing anything, when a verdicts file is
unreadable or records a word its own interval contradicts (``lnft.record.read``).

    python scripts/readme_results.py            # rewrite every block
    python scripts/readme_results.py --check    # exit 1 if a block differs or is not marked as it should be
    python scripts/readme_results.py --mark-stale  # only the stale marks (blocks and index pages)
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lnft.errors import LnftError  # noqa: E402
from lnft.record import markdown  # noqa: E402
from lnft import staleness  # noqa: E402
from lnft.reports import stale_reasons  # noqa: E402,F401 — the one check, re-exported for the tests

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
# (reports folder, the Markdown file holding its block), relative to the repository root
BLOCKS = (("reports/standard", "README.md", True), ("reports/quick", "docs/concepts/experiments.md", False))
# Reports that must be regenerated (not only marked) when a run id they used changed: the quick one costs minutes.
REGENERATE_ON_RUN_IDS = ("reports/quick",)


def block(readme_text: str) -> tuple[int, int]:
    """Where the generated text lies between the markers (exactly one pair, in order)."""
    if readme_text.count(BEGIN) != 1 or readme_text.count(END) != 1 or readme_text.index(BEGIN) > readme_text.index(END):
        raise SystemExit(f"readme_results: the README needs exactly one {BEGIN} ... {END} block")
    return readme_text.index(BEGIN) + len(BEGIN), readme_text.index(END)


def render(readme: str, reports: str, links: bool = True, where: str | None = None) -> tuple[str, str]:
    """(current README text, README text with the block regenerated, its first line the stale mark when the
    reports no longer follow from HEAD of ``where``)."""
    with open(readme, encoding="utf-8") as fh:
        text = fh.read()
    start, end = block(text)
    link = os.path.relpath(reports, os.path.dirname(os.path.abspath(readme))).replace(os.sep, "/") if links else ""
    generated = markdown(reports, link)
    if not links:  # name the folder from the repository root, never this machine's absolute path
        generated = generated.replace(os.path.abspath(reports), os.path.relpath(reports, ROOT).replace(os.sep, "/"))
    mark = staleness.markdown_mark(staleness.staleness(reports, where), profile_of(reports))
    return text, text[:start] + "\n" + (mark + "\n\n" if mark else "") + generated + text[end:]


def profile_of(reports: str) -> str:
    """The profile a reports folder was made with (its facts, else its folder's name)."""
    from lnft.record import read_state

    return str(read_state(reports).get("facts", {}).get("profile") or os.path.basename(os.path.normpath(reports)))


def check_marks(readme: str, reports: str, current: str, wanted: str, where: str) -> list[str]:
    """The block must match its records (its mark aside: the reasons it lists may name later files) and carry
    the mark exactly when stale; so must the index page."""
    problems = []
    start, end = block(current)
    have = current[start:end]
    w_start, w_end = block(wanted)
    if staleness.strip_markdown_mark(have) != staleness.strip_markdown_mark(wanted[w_start:w_end]):
        problems.append(f"the results block of {readme} differs from {reports}/*.verdicts.json: "
                        "run python scripts/readme_results.py")
    state, profile = staleness.staleness(reports, where), profile_of(reports)
    problems += staleness.check_markdown(have, state, profile, f"the results block of {readme}")
    problems += staleness.check_index(reports, profile, where)
    relative = os.path.relpath(os.path.abspath(reports), ROOT).replace(os.sep, "/")
    if "run ids" in state.kinds and relative in REGENERATE_ON_RUN_IDS:
        problems.append(f"{relative} used runs whose ids changed ({'; '.join(state.reasons)}): regenerate it with "
                        f"{staleness.command(profile)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", help="one reports folder (with --readme); default: every block of BLOCKS")
    parser.add_argument("--readme", help="the Markdown file holding the block of --reports")
    parser.add_argument("--repo", default=ROOT, help="the git checkout whose HEAD the reports must match")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block differs or a block or "
                        "index is not marked stale exactly when its reports are")
    parser.add_argument("--mark-stale", action="store_true", help="write only the stale marks (or remove them) in the "
                        "blocks and the reports' index pages; regenerates nothing")
    args = parser.parse_args(argv)
    if (args.reports is None) != (args.readme is None):
        parser.error("--reports and --readme go together")
    if args.check and args.mark_stale:
        parser.error("--check and --mark-stale exclude each other")
    pairs = ([(args.reports, args.readme, True)] if args.reports else
             [(os.path.join(ROOT, r), os.path.join(ROOT, m), links) for r, m, links in BLOCKS])
    try:  # every block first: an unreadable or contradicted verdicts file stops the script before any write
        rendered = [(reports, readme, *render(readme, reports, links, args.repo)) for reports, readme, links in pairs]
    except LnftError as exc:
        print(f"readme_results: error: {exc}", file=sys.stderr)
        return 2
    problems = []
    for reports, readme, current, wanted in rendered:
        if args.mark_stale:  # the mark line only: the rest of the block stays as it is
            start, end = block(current)
            w_start, _ = block(wanted)
            mark = staleness.read_markdown_mark(wanted[w_start:]) and wanted[w_start:].lstrip("\n").split("\n", 1)[0]
            body = staleness.strip_markdown_mark(current[start:end]).lstrip("\n")
            wanted = current[:start] + "\n" + (mark + "\n\n" if mark else "") + body + current[end:]
            changed_index = staleness.mark_index(reports, profile_of(reports), args.repo)
            print(f"readme_results: {'marked' if mark else 'not stale'}: {readme}"
                  f"{' and ' + os.path.join(reports, 'index.html') if changed_index else ''}")
        if not args.check:
            if wanted != current:
                with open(readme, "w", encoding="utf-8") as fh:
                    fh.write(wanted)
            if not args.mark_stale:  # the index page's first line follows the same rule
                staleness.mark_index(reports, profile_of(reports), args.repo)
            print(f"readme_results: {'updated' if wanted != current else 'unchanged'}: {readme}")
            continue
        problems += check_marks(readme, reports, current, wanted, args.repo)
    if not args.check:
        return 0
    for p in problems:
        print(f"readme_results: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
