"""A held-out evaluation pool per task: train-file rows that no seed's training draw or validation split can
ever contain, scored beside dev so that a verdict can rest on more unseen examples than dev alone holds.

Why: 408 (MRPC), 872 (SST-2) and 1,500 (STS-B) dev examples leave a 1-point question undecidable by seeds alone
(the example noise of a fixed dev set), while thousands of labelled train-file rows are never touched.

**The rule** (``RULE``, which enters every pooled run's id as ``fingerprints["pool"]``). Texts are compared
token-normalised (``normalise``: lower case, whitespace-split tokens). The file's rows are cut into *units*:

* single-text tasks (SST-2, CoLA, a one-text task spec) — *nested rows*: a unit is a **whole sentence**, a row
  whose tokens are not a contiguous sub-sequence of a longer row (SST-2's train file holds treebank phrases nested
  in their parent sentences: a phrase is never a unit). Repeated sentences form one unit (one pool row);
* pair tasks (MRPC, STS-B, RTE, a two-text task spec) — *sentence groups*: a unit is a connected component of the
  graph whose nodes are sentences and whose edges are the file's pairs, so a sentence that appears in several
  pairs puts all of them in one unit.

The units are ordered once by a permutation from the fixed ``RULE_SEED`` (not ``data_seed``: the pool is the same
for every seed and data seed) and taken in that order while they fit into ``pool_size`` rows (a unit that does not
fit is skipped): a smaller pool is a prefix of a larger one. Then everything that overlaps the pool leaves the
drawable rows: for nested rows, every row whose tokens are a contiguous sub-sequence of a pool sentence (its own
phrases, and phrases it shares with other sentences); for sentence groups, the pool's components whole. Training
subsets and the validation split are drawn (``lnft.data.make_splits``, seeded by ``data_seed``) from the drawable
rows only. ``leaks`` checks the result independently of how it was built (a pool sentence inside a drawable row,
a drawable row inside a pool sentence, a sentence shared by a pool pair and a drawable pair); ``hold_out`` refuses
a pool that fails it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import LnftError

RULE = "pool-1: nested rows (single text) / sentence groups (pairs); order by RULE_SEED 34; overlaps excluded"
RULE_SEED = 34
SPLIT = "pool"


def normalise(text) -> str:
    """Token-normalised text: lower case, tokens split on whitespace and joined by one space."""
    return " ".join(str(text).lower().split())


@dataclass(frozen=True)
class Pool:
    """A task's pool: train-file row indices of the pool (in pool order), of the rows training and validation
    may draw from (ascending), and of the rows excluded for overlapping the pool (neither)."""

    rows: np.ndarray
    drawable: np.ndarray
    excluded: np.ndarray
    units: int  # pool units taken (sentences, or sentence groups)
    candidates: int  # units the file offers
    kind: str  # "nested rows" or "sentence groups"


# ------------------------------------------------------------------ units
def _spans(tokens: list[str], proper: bool = False):
    n = len(tokens)
    for a in range(n):
        for b in range(a + 1, n + 1):
            if not (proper and b - a == n):
                yield " ".join(tokens[a:b])


def nested_units(texts) -> list[list[int]]:
    """Single-text units: per distinct whole sentence (a row not contained, token-wise, in a longer row), the
    indices of its rows, first row first; in file order of first appearance."""
    norm = [normalise(t) for t in texts]
    index: dict[str, list[int]] = {}
    for i, n in enumerate(norm):
        index.setdefault(n, []).append(i)
    contained = set()  # longest first: the spans of a row inside a longer row were marked with that row's
    for n in sorted(index, key=lambda x: -x.count(" ")):
        if n in contained:
            continue
        contained.update(span for span in _spans(n.split(), proper=True) if span in index)
    return [rows for n, rows in index.items() if n not in contained and n]


def pair_units(first, second) -> list[list[int]]:
    """Pair units: the connected components of sentences linked by the file's pairs (union-find), each the
    indices of its pairs in file order; in file order of their first pair."""
    a, b = [normalise(t) for t in first], [normalise(t) for t in second]
    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for x, y in zip(a, b):
        rx, ry = find(x), find(y)
        if rx != ry:
            parent[ry] = rx
    groups: dict[str, list[int]] = {}
    for i, x in enumerate(a):
        groups.setdefault(find(x), []).append(i)
    return list(groups.values())


# ------------------------------------------------------------------ the pool
def build(first, second=None, size: int = 0, units: list[list[int]] | None = None) -> Pool:
    """The pool of ``size`` rows (fewer when the units that fit run out) of a train file's texts (``second``:
    the pair's second texts, or None for a single-text task), and the rows left to draw from (module docstring).
    ``units``: the file's units when already computed (``nested_units`` / ``pair_units``: they do not depend on
    ``size``)."""
    n = len(first)
    pair = second is not None and any(str(t) for t in second)
    if units is None:
        units = pair_units(first, second) if pair else nested_units(first)
    order = np.random.default_rng(RULE_SEED).permutation(len(units))
    taken, rows = [], []
    for u in order:
        if len(rows) >= size:
            break
        members = units[u] if pair else units[u][:1]  # a repeated sentence is one pool row
        if pair:  # a repeated pair (same two sentences) is one pool row too
            members = list({(normalise(first[i]), normalise(second[i])): i for i in reversed(members)}.values())[::-1]
        if len(rows) + len(members) <= size:
            taken.append(u)
            rows += members
    out = np.zeros(n, dtype=bool)
    if pair:
        for u in taken:
            out[units[u]] = True
    else:
        shadow = {s for u in taken for s in _spans(normalise(first[units[u][0]]).split())}
        out[[i for i, t in enumerate(first) if normalise(t) in shadow]] = True
    rows = np.asarray(rows, dtype=np.int64)
    out[rows] = False
    excluded = np.flatnonzero(out)
    out[rows] = True
    return Pool(rows, np.flatnonzero(~out), excluded, len(taken), len(units),
                "sentence groups" if pair else "nested rows")


def leaks(pool_first, pool_second, draw_first, draw_second) -> list[str]:
    """Independent check of a pool against the rows that can be drawn for training: each overlap as text (empty:
    none). Single text: a drawable row whose tokens lie inside a pool sentence, or a pool sentence inside a drawable
    row. Pairs: a sentence of a pool pair that is also a sentence of a drawable pair."""
    problems = []
    if pool_second is not None and any(str(t) for t in pool_second):
        pooled = {normalise(t) for t in (*pool_first, *pool_second)}
        for i, (x, y) in enumerate(zip(draw_first, draw_second)):
            for s in (normalise(x), normalise(y)):
                if s in pooled:
                    problems.append(f"drawable pair {i} shares the sentence {s[:80]!r} with a pool pair")
        return problems
    sentences = {normalise(t) for t in pool_first}
    inside = {s for t in sentences for s in _spans(t.split())}
    lengths = {len(t.split()) for t in sentences}
    shortest = min(lengths, default=0)
    for i, t in enumerate(draw_first):
        row = normalise(t)
        if row in inside:
            problems.append(f"drawable row {i} {row[:80]!r} lies inside a pool sentence")
            continue
        tokens = row.split()
        if len(tokens) <= shortest:
            continue
        for length in lengths:
            if length < len(tokens) and any(" ".join(tokens[a:a + length]) in sentences
                                            for a in range(len(tokens) - length + 1)):
                problems.append(f"drawable row {i} {row[:80]!r} contains a pool sentence")
                break
    return problems


_POOLS: dict[tuple, Pool] = {}


def _checked(first: list, second: list | None, size: int) -> Pool:
    pool = build(first, second, size)
    take = lambda col, idx: [col[i] for i in idx] if col is not None else None  # noqa: E731
    problems = leaks(take(first, pool.rows), take(second, pool.rows), take(first, pool.drawable),
                     take(second, pool.drawable))
    if problems:  # the construction above excludes every overlap: this is a bug, never bad input
        raise LnftError(f"pool of {size} rows leaks into the training rows ({len(problems)} overlaps, e.g. "
                        f"{problems[0]}); allowed: none — report this")
    return pool


def task_pool(raw, task, size: int, fingerprint: str = "") -> Pool:
    """The pool of ``size`` rows of a task's loaded data (``raw["train"]``), checked by ``leaks``; once per
    process per (data fingerprint, size)."""
    key = (fingerprint, task.name, int(size))
    if not fingerprint or key not in _POOLS:
        train = raw["train"]
        second = train["sentence2"][:] if task.is_pair else None
        pool = _checked(train["sentence1"][:], second, int(size))
        if not fingerprint:
            return pool
        _POOLS[key] = pool
    return _POOLS[key]


def check(size, task, raw, fingerprint: str = "", *, validation_fraction: float = 0.1,
          max_train_samples: int | None = None) -> Pool | None:
    """A config's ``pool_size`` against its task and data, before any work: an integer >= 0; a task with one dev
    set; as many pool rows as asked; and as many drawable rows as the run's training draw needs."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise LnftError(f"invalid pool_size {size!r}; allowed: an integer >= 0 (0: dev only)")
    if not size:
        return None
    if len(task.dev_split_names) != 1:
        raise LnftError(f"pool_size {size} for task {task.name!r}, which has {len(task.dev_split_names)} dev sets; "
                        "allowed: 0 (a pool joins a task's one dev set)")
    pool = task_pool(raw, task, size, fingerprint)
    if len(pool.rows) < size:
        raise LnftError(f"pool_size {size} for task {task.name!r}: its train file offers {pool.candidates} "
                        f"{pool.kind} units, which give at most {len(pool.rows)} pool rows; allowed: at most "
                        f"{len(pool.rows)}")
    labels = np.asarray(raw["train"]["label"][:])[np.asarray(pool.rows, dtype=np.int64)]
    why = task.undefined_metrics(labels)  # the pool is scored once: every metric must be defined on it
    if why:
        raise LnftError(f"pool_size {size} for task {task.name!r} cannot be scored ({len(labels)} row(s)): {why}; "
                        "allowed: a larger pool_size (pool rows whose labels vary)")
    left = len(pool.drawable)
    train_rows = left - max(1, int(round(validation_fraction * left)))
    if left < 2 or (max_train_samples and train_rows < max_train_samples):
        raise LnftError(f"pool_size {size} for task {task.name!r} leaves {left} drawable rows ({train_rows} for "
                        f"training after validation), fewer than max_train_samples {max_train_samples or 1}; "
                        "allowed: a smaller pool_size")
    return pool


def drawable_rows(cfg) -> np.ndarray:
    """Train-file row indices a run of ``cfg`` draws its training subset and validation split from: all rows
    without a pool, else the pool's drawable rows (``lnft.fisher.held_out_indices`` reads its held-out rows here)."""
    from .sources import data_source
    from .tasks import get_task

    task = get_task(cfg.task)
    raw = data_source(cfg.data, task).load()  # = lnft.data.load_raw, without importing the module above this one
    if not getattr(cfg, "pool_size", 0):
        return np.arange(len(raw["train"]))
    return task_pool(raw, task, cfg.pool_size, data_source(cfg.data, task).fingerprint()).drawable


def hold_out(raw, task, size: int, fingerprint: str = ""):
    """(raw with ``train`` cut to the drawable rows, the pool split as a ``datasets.Dataset``); ``raw`` unchanged
    when ``size`` is 0 (pool None)."""
    from datasets import DatasetDict

    if not size:
        return raw, None
    pool = task_pool(raw, task, size, fingerprint)
    rest = DatasetDict({**raw, "train": raw["train"].select(pool.drawable)})
    return rest, raw["train"].select(pool.rows)
