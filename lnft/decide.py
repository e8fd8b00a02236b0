"""Decide mode: seeds added in rounds only where a verdict is still open, with the error rate spent across
the looks so that the intervals stay valid however often a comparison is looked at.

Why: a fixed seed count spends seeds evenly — a comparison decided at three seeds gets five anyway, while an
undecided one stops at five. Decide mode judges every comparison at the profile's seeds, then adds one seed at
a time to the runs behind the comparisons that are still *inconclusive* while an answer is within reach
(conditional power at least 10 %).

**The design.** A comparison is judged at looks n = n0, n0 + 1, …, N seeds per side (n0: the profile's
seeds, N: ``max_seeds``). It stops at the first look where

* its verdict is *better*, *worse* or *equivalent within ±m* — **decided** — or *non-inferior within m*
  while *better* is unlikely by the last look (conditional power below ``lnft.sequential.STRONGER``, 50 %);
* it is still open at N — **maximum reached**;
* it is open and the chance that the last look gives it a word (conditional power, assuming the observed
  difference and variance components: ``lnft.sequential.conditional_power``) is below
  ``lnft.sequential.FUTILITY`` (10 %) — **futile**. A comparison with any real chance keeps going.

Its verdict is the one of the look that stopped it: seeds added later for another comparison that shares an
arm (say, LayerNorm's runs) never reopen it. Seeds are one sequence (the profile's seeds, then the next
integers), so both sides of every comparison hold the same seed ids.

**Error control across looks.** Every look uses the same interval level, Pocock's constant boundary for the
looks' information fractions n_k / N, computed exactly (``lnft.sequential.boundary``: recursive numerical
integration with the looks' correlation sqrt(n_j / n_k)), so that the chance of any false *better/worse* over
all looks is α = 5 % when seeds dominate the noise, and less when dev-example noise makes the looks more
alike. 3 → 5 seeds: 97.37 % at every look (the Bonferroni split it replaces: 97.74 %, 98.45 %, 98.82 %). The
look's TOST runs at its two-sided α per side and its one-sided bound at (1 + level) / 2
(``lnft.stats.equivalence_level``). One look (decide mode off, or N = n0) is the plain 95 % rule.
``scripts/verdict_simulation.py --sequential`` measures the false rates with a known truth and the real stop
rule (tests/test_decide.py runs a subset; docs/concepts/statistics.md has the table).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Hashable, Iterable

import pandas as pd

from . import sequential, stats
from .bounds import NONINFERIOR_PREFIX
from .errors import LnftError

DECIDED = "decided"
MAXIMUM = "maximum reached"
CANNOT = f"futile (conditional power < {sequential.FUTILITY:.0%})"
FIXED = "fixed seeds (decide mode off)"
STOPS = (DECIDED, MAXIMUM, CANNOT, FIXED)
_CONTINUE = "continue"
MOST_SEEDS = 20  # the largest max_seeds a profile or the command line may ask for


@dataclasses.dataclass(frozen=True)
class Design:
    """Looks at ``first``…``most`` seeds per side; ``alpha`` over all of them (Pocock's exact constant boundary).
    ``decide=False``: one look at ``first`` seeds, the plain rule."""

    first: int
    most: int
    alpha: float = 1 - stats.LEVEL
    decide: bool = True

    def __post_init__(self):
        if not isinstance(self.first, int) or self.first < 1:
            raise LnftError(f"invalid first look {self.first!r}; allowed: an integer >= 1 (seeds per side)")
        if self.decide and self.first < 2:
            raise LnftError(f"decide mode needs at least 2 seeds at the first look, got {self.first}; allowed: "
                            "a profile or seeds list with 2 or more seeds (one seed cannot estimate training noise)")
        if not isinstance(self.most, int) or not self.first <= self.most <= MOST_SEEDS:
            raise LnftError(f"invalid max_seeds {self.most!r}; allowed: an integer from the seeds at the first "
                            f"look ({self.first}) to {MOST_SEEDS}")
        if not 0 < self.alpha < 0.5:
            raise LnftError(f"invalid alpha {self.alpha!r}; allowed: 0 < alpha < 0.5")

    @property
    def looks(self) -> int:
        return self.most - self.first + 1 if self.decide else 1

    @property
    def every_level(self) -> float:
        """The interval level of every look: Pocock's constant boundary at information fractions n / most."""
        if not self.decide or self.looks == 1:
            return 1 - self.alpha
        return sequential.level(self.first, self.most, self.alpha)

    def level(self, n: int) -> float:
        """The better / worse interval's level at the look at ``n`` seeds (0.95 for a single look)."""
        if not self.first <= n <= (self.most if self.decide else self.first):
            raise LnftError(f"no look at {n} seeds in this design; allowed: {self.first} to {self.most}")
        return self.every_level

    def power(self, row, n: int, target: str = "any") -> float:
        """Conditional power of an open comparison judged at ``n`` seeds per side: the chance of a word at the
        last look if the observed difference and variance components were the truth (``lnft.sequential``)."""
        v_seeds, v_e = row.get("v_seeds"), row.get("v_examples")
        if v_seeds is None or v_e is None or pd.isna(v_seeds) or pd.isna(v_e):
            return float("nan")
        margin = row.get("margin")
        margin = None if margin is None or pd.isna(margin) else float(margin)
        return sequential.conditional_power(float(row["diff"]), float(v_e), float(v_seeds) * n, n, self.most,
                                            margin, self.level(self.most), target)

    def stop(self, row, n: int) -> str:
        """Why a comparison judged at ``n`` seeds stops (``STOPS``), or ``_CONTINUE``: one more seed per side.
        ``row``: a ``lnft.stats`` comparison row (verdict, diff, v_examples, v_seeds, margin). *Non-inferior*
        goes on while *better* is likely by the last look (conditional power >= ``sequential.STRONGER``)."""
        word = row["verdict"]
        if not self.decide:
            return FIXED
        if str(word).startswith(NONINFERIOR_PREFIX) and n < self.most:
            return _CONTINUE if self.power(row, n, "better") >= sequential.STRONGER else DECIDED
        if word not in (stats.INCONCLUSIVE, stats.NEEDS_SEEDS):
            return DECIDED
        if n >= self.most:
            return MAXIMUM
        power = self.power(row, n)
        return CANNOT if power < sequential.FUTILITY else _CONTINUE

    def table(self) -> pd.DataFrame:
        """The looks: seeds per side, information fraction (n / max), the interval level and one-sided level."""
        last = self.most if self.decide else self.first
        return pd.DataFrame([{"seeds per side": n, "information fraction": round(n / last, 4),
                              "interval level": round(self.level(n), 5),
                              "one-sided bound level": round((1 + self.level(n)) / 2, 5)}
                             for n in range(self.first, last + 1)])


def design(seeds, decide: bool, max_seeds: int | None) -> Design:
    """The design of a notebook's parameters: first look at ``len(seeds)``; ``max_seeds`` (None: the seeds)."""
    first = len(seeds)
    return Design(first, max_seeds if decide and max_seeds is not None else first, decide=bool(decide))


def seed_sequence(seeds: Iterable[int], most: int) -> list[int]:
    """The profile's seeds, then the next unused integers up to ``most`` seeds in all (the order they are added)."""
    out = list(seeds)
    nxt = max(out) + 1 if out else 0
    while len(out) < most:
        out.append(nxt)
        nxt += 1
    return out


Arm = Hashable  # e.g. (task, method): the runs one side of a comparison needs for one seed


def until_decided(plan: Design, seeds: Iterable[int], comparisons: dict[Hashable, tuple[Arm, ...]],
                  run: Callable[[dict[Arm, list[int]]], object],
                  judge: Callable[[object, Hashable, list[int], float, float], dict], *,
                  log: Callable[[str], None] | None = print):
    """Run, judge, add seeds, until every comparison has stopped.

    ``comparisons``: key -> the arms it needs (every arm starts with ``seeds``). ``run(seeds_by_arm)`` trains (or
    reads from the store) every arm's runs for its seeds and returns a state (e.g. the results list).
    ``judge(state, key, seeds, level, needed_level)`` returns the comparison's ``lnft.stats`` row using exactly
    those seeds per side at that interval level, its seeds-needed estimate at ``needed_level`` (the last look's:
    the level a seed count reached later would be judged at, so the stop rule is not optimistic). Returns (the last state, a frame with one row per comparison at the look
    that stopped it, plus ``seeds`` (per side), ``stopped`` (``STOPS``) and ``looks`` (how many it had)),
    and the seeds each arm ended with."""
    seeds = list(seeds)
    sequence = seed_sequence(seeds, plan.most if plan.decide else len(seeds))
    have = {arm: plan.first for arms in comparisons.values() for arm in arms}
    stopped, looks = {}, {key: 0 for key in comparisons}
    state = None
    for round_ in range(plan.looks):
        state = run({arm: sequence[:n] for arm, n in have.items()})
        grow = {}
        for key, arms in comparisons.items():
            if key in stopped:
                continue
            n = min(have[a] for a in arms)
            row = judge(state, key, sequence[:n], plan.level(n), plan.level(plan.most if plan.decide else plan.first))
            looks[key] += 1
            why = plan.stop(row, n)
            row = {**row, "conditional_power": plan.power(row, n) if plan.decide and n < plan.most else float("nan")}
            if why == _CONTINUE:
                for a in arms:
                    grow[a] = max(grow.get(a, 0), n + 1)
            else:
                stopped[key] = {**row, "seeds": n, "stopped": why, "looks": looks[key]}
        if not grow:
            break
        for a, n in grow.items():
            have[a] = max(have[a], n)
        if log:
            opened = sum(1 for key in comparisons if key not in stopped)
            log(f"decide: look {round_ + 1} of {plan.looks}: {opened} comparison(s) open, adding a seed to "
                f"{len(grow)} arm(s) (now {', '.join(f'{a}: {have[a]}' for a in sorted(grow, key=str))})")
    missing = [key for key in comparisons if key not in stopped]
    if missing:  # cannot happen: the last look (n = most) always stops
        raise LnftError(f"decide mode left comparisons open: {missing}")
    frame = pd.DataFrame([stopped[key] for key in comparisons])
    return state, frame, {arm: sequence[:n] for arm, n in have.items()}
