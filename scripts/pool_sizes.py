"""How large a held-out pool (lnft/pool.py) each embedded task can give, and what its leakage check finds.

Per task: train-file rows, dev rows, the pool's units (whole sentences or sentence groups), the largest pool
(every unit), the largest pool that still leaves ``--train`` training rows after its overlaps and the
validation split (``--validation-fraction``), and at that size: the rows excluded for overlapping the pool and
the overlaps ``lnft.pool.leaks`` finds (0 expected). Usage: ``python scripts/pool_sizes.py [--train 2000]``.
"""
from __future__ import annotations

import argparse

from lnft import pool as P
from lnft.constants import EMBEDDED, EMBEDDED_TASKS
from lnft.data import load_raw
from lnft.tasks import get_task


def training_rows(pool: P.Pool, fraction: float) -> int:
    left = len(pool.drawable)
    return left - max(1, int(round(fraction * left)))


def largest(first, second, train: int, fraction: float, most: int, units) -> P.Pool:
    """The largest pool (by bisection over sizes; drawable rows shrink as the pool grows) leaving ``train``
    training rows."""
    lo, hi, best = 0, most, P.build(first, second, 0, units)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        pool = P.build(first, second, mid, units)
        if training_rows(pool, fraction) >= train:
            lo, best = mid, pool
        else:
            hi = mid - 1
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=2000, help="training rows the pool must leave (default 2,000)")
    ap.add_argument("--validation-fraction", type=float, default=0.1)
    ap.add_argument("--tasks", nargs="+", default=list(EMBEDDED_TASKS))
    args = ap.parse_args(argv)
    print("| task | train rows | dev | units | largest pool | pool leaving "
          f"{args.train:,} training rows | drawable | excluded (overlap) | leaks found |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.tasks:
        task = get_task(name)
        raw = load_raw(EMBEDDED, task)
        first = raw["train"]["sentence1"][:]
        second = raw["train"]["sentence2"][:] if task.is_pair else None
        units = P.pair_units(first, second) if task.is_pair else P.nested_units(first)
        every = P.build(first, second, len(first), units)
        pool = largest(first, second, args.train, args.validation_fraction, len(every.rows), units)
        take = lambda col, idx: None if col is None else [col[i] for i in idx]  # noqa: E731
        found = P.leaks(take(first, pool.rows), take(second, pool.rows), take(first, pool.drawable),
                        take(second, pool.drawable))
        print(f"| {name} | {len(first):,} | {len(raw['dev']):,} | {every.candidates:,} {every.kind} | "
              f"{len(every.rows):,} | {len(pool.rows):,} | {len(pool.drawable):,} | {len(pool.excluded):,} | "
              f"{len(found)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
