"""Which verdicts changed between two reports (lnft.verdict_diff): the rows a report's text must give a reason for.

    python scripts/verdict_changes.py f33e26d:reports/standard reports/standard   # the committed one vs this one
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pandas as pd  # noqa: E402

from lnft import verdict_diff  # noqa: E402
from lnft.errors import LnftError  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", help="a reports folder, or REV:folder of this git checkout")
    ap.add_argument("new", help="a reports folder, or REV:folder of this git checkout")
    ap.add_argument("--all", action="store_true", help="also the rows whose word stayed the same")
    args = ap.parse_args(argv)
    try:
        table = verdict_diff.changes(verdict_diff.load(args.old), verdict_diff.load(args.new))
    except LnftError as e:
        print(f"verdict_changes: error: {e}", file=sys.stderr)
        return 2
    shown = table if args.all else table[table["status"] != "same"]
    cols = ["status", "notebook", "task", "comparison", "verdict before", "verdict now", "estimate before",
            "estimate now", "seeds before", "seeds now"]
    with pd.option_context("display.width", 250, "display.max_colwidth", 90, "display.float_format", "{:.2f}".format):
        print(shown[cols].astype(object).fillna("").to_string(index=False))
    print("\n" + ", ".join(f"{n} {s}" for s, n in table["status"].value_counts().items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
