"""Does choosing each arm's rate on the first seed pick the rate the full grid picks? (issue 37.3; lnft.rate_check)

Trains every seed of a profile's first look at every rate of every notebook 2 arm and notebook 3 rule (the
report's own runs are read back from the run store), then prints one row per arm: the rate the tuning seeds
chose, the rate the full grid chose, whether they agree, and the dev cost of the cheap choice. The extra runs go
to the run store only, never to the results ledger (they are not a report's runs).

    python scripts/rate_selection_check.py --profile quick     # ~12 extra runs on top of a quick report's
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pandas as pd  # noqa: E402

from lnft import profiles, rate_check  # noqa: E402
from lnft.errors import LnftError  # noqa: E402
from lnft.store import RunStore  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--runs", default=os.environ.get("LNFT_RUNS") or os.path.join(ROOT, "runs"))
    args = ap.parse_args(argv)
    try:
        P2 = profiles.resolve("02_peft_comparison", args.profile)
        P3 = profiles.resolve("03_fisher_subsets", args.profile)
        for P in (P2, P3):
            if not P.values.get("tune_seeds"):
                raise LnftError(f"profile {args.profile!r} runs every seed at every rate in {P.notebook} "
                                f"(tune_seeds None); allowed: a profile that tunes on fewer seeds")
        store = RunStore(args.runs, ledger=False)
        table = pd.concat([rate_check.check_methods(P2, store), rate_check.check_subsets(P3, store)],
                          ignore_index=True)
    except LnftError as e:
        print(f"rate_selection_check: error: {e}", file=sys.stderr)
        return 2
    cols = ["notebook", "task", "method", "point", "fraction", "selection", "seeds", "tuned lr", "full-grid lr",
            "same", "dev at tuned lr", "dev at full-grid lr", "dev cost"]
    with pd.option_context("display.width", 200, "display.float_format", "{:.4g}".format):
        print(table[[c for c in cols if c in table]].astype(object).fillna("").to_string(index=False))
    print()
    print(f"profile {args.profile}: {rate_check.summary(table)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
