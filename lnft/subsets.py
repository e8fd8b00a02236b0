"""Which LayerNorm elements to train, from a Fisher (paper section 3), and the experiment built on it.

- masks at a fraction of all LayerNorm elements: global top-k, per-module top-k and random-k, all of
  exactly the same size k (per module: largest-remainder allocation of k over the modules, so the rule
  changes *where* elements are chosen, never *how many*);
- overlaps: Jaccard of masks, its chance level, Spearman rank correlation of two Fishers;
- the label control judged against a resampling null: true- vs relabelled-label masks, next to the
  Jaccards of masks from bootstrap resamples of the same examples with the true labels;
- the experiment: per task × Fisher point × seed, masks from that seed's own Fisher (random masks drawn per
  seed), every rule at every rate of a grid, each rule's rate chosen on the validation split
  (``aggregate.select_lr``), content-addressed mask files, the reference points, the bit-identity check of
  masked runs and the verdict tables.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np
import pandas as pd
import torch

from .aggregate import caveat, join_texts
from .errors import LnftError
from .methods import save_masks

SELECTIONS = ("fisher-global", "fisher-per-module", "random")
REFERENCE = "all LayerNorm"


# ------------------------------------------------------------------ masks
def _flat(values: dict[str, torch.Tensor]) -> tuple[list[str], torch.Tensor]:
    names = sorted(values)
    return names, torch.cat([values[n].reshape(-1).double() for n in names])


def _unflat(names, flat: torch.Tensor, like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out, start = {}, 0
    for n in names:
        size = like[n].numel()
        out[n] = flat[start:start + size].reshape(like[n].shape).clone()
        start += size
    return out


def mask_k(fraction: float, n_elements: int) -> int:
    """How many elements every rule selects at ``fraction`` % of ``n_elements`` (at least one)."""
    if not isinstance(fraction, (int, float)) or not 0 < fraction <= 100:
        raise LnftError(f"invalid fraction {fraction!r}; allowed: a percentage with 0 < x <= 100")
    return max(1, int(round(fraction / 100 * n_elements)))


def _top(flat: torch.Tensor, k: int) -> torch.Tensor:
    chosen = torch.zeros(flat.numel(), dtype=torch.bool)
    chosen[torch.argsort(-flat, stable=True)[:k]] = True  # ties broken by position
    return chosen


def top_k_mask(fisher: dict[str, torch.Tensor], fraction: float) -> dict[str, torch.Tensor]:
    """The global top ``fraction`` % of all LayerNorm elements by Fisher."""
    names, flat = _flat(fisher)
    return _unflat(names, _top(flat, mask_k(fraction, flat.numel())), fisher)


def _module(name: str) -> str:
    return name.rsplit(".", 1)[0]


def largest_remainder(k: int, sizes: dict[str, int]) -> dict[str, int]:
    """Split ``k`` over groups in proportion to their sizes: floors first, then one more to the groups
    with the largest remainders (ties: in name order). The parts sum to exactly ``k``."""
    total = sum(sizes.values())
    exact = {g: k * n / total for g, n in sizes.items()}
    quota = {g: int(np.floor(q)) for g, q in exact.items()}
    left = k - sum(quota.values())
    for g in sorted(exact, key=lambda g: (-(exact[g] - quota[g]), g))[:left]:
        quota[g] += 1
    return quota


def per_module_top_k_mask(fisher: dict[str, torch.Tensor], fraction: float) -> dict[str, torch.Tensor]:
    """The same share inside every LayerNorm module (gain and bias together), the top elements of each;
    exactly as many elements in all as the global mask."""
    modules: dict[str, dict[str, torch.Tensor]] = {}
    for name, values in fisher.items():
        modules.setdefault(_module(name), {})[name] = values
    k = mask_k(fraction, sum(v.numel() for v in fisher.values()))
    quota = largest_remainder(k, {m: sum(v.numel() for v in part.values()) for m, part in modules.items()})
    out = {}
    for module, part in modules.items():
        names, flat = _flat(part)
        out.update(_unflat(names, _top(flat, quota[module]), part))
    return out


def random_mask(like: dict[str, torch.Tensor], fraction: float, seed: int) -> dict[str, torch.Tensor]:
    """A uniformly random subset of the same size as the global top-k mask (seeded)."""
    names, flat = _flat(like)
    k = mask_k(fraction, flat.numel())
    chosen = torch.zeros(flat.numel(), dtype=torch.bool)
    chosen[torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(seed))[:k]] = True
    return _unflat(names, chosen, like)


def masks_at(fisher: dict[str, torch.Tensor], fraction: float, seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """The three rules at one fraction (``seed`` draws the random mask)."""
    return {"fisher-global": top_k_mask(fisher, fraction), "fisher-per-module": per_module_top_k_mask(fisher, fraction),
            "random": random_mask(fisher, fraction, seed=seed)}


def mask_size(mask: dict[str, torch.Tensor]) -> int:
    return int(sum(int(m.sum()) for m in mask.values()))


def union(masks: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {n: torch.stack([m[n] for m in masks]).any(0) for n in masks[0]}


def intersection(masks: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {n: torch.stack([m[n] for m in masks]).all(0) for n in masks[0]}


def mask_digest(mask: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(mask):
        digest.update(name.encode())
        digest.update(mask[name].to(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def store_mask(mask: dict[str, torch.Tensor], directory: str) -> str:
    """Save a mask under a name derived from its content, so equal masks share a file."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"mask-{mask_digest(mask)}.safetensors")
    if not os.path.isfile(path):
        tmp = f"{path}.tmp-{os.getpid()}"
        save_masks(mask, tmp)
        os.replace(tmp, path)
    return path


# ------------------------------------------------------------------ overlaps
def jaccard(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    inter = sum(int((a[n] & b[n]).sum()) for n in a)
    either = sum(int((a[n] | b[n]).sum()) for n in a)
    return inter / either if either else 1.0


def expected_random_jaccard(fraction: float) -> float:
    """Jaccard of two independent random masks of share p: p² / (2p − p²) — the chance level."""
    p = fraction / 100
    return float(p * p / (2 * p - p * p)) if p > 0 else 0.0


def spearman(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Spearman rank correlation of two Fishers over all their elements."""
    from scipy.stats import spearmanr

    return float(spearmanr(_flat(a)[1].numpy(), _flat(b)[1].numpy()).statistic)


def label_control(true: dict[str, torch.Tensor], relabelled: dict[str, torch.Tensor], fractions,
                  **labels) -> pd.DataFrame:
    """True-label vs relabelled Fisher (``lnft.fisher.relabelled``: every example another label) of the same
    head and examples: Jaccard of their top-k masks per fraction, its chance level and the Spearman
    correlation of the two Fishers (the same on every row)."""
    rho = spearman(true, relabelled)
    return pd.DataFrame([{**labels, "fraction": float(f), "jaccard": jaccard(top_k_mask(true, f), top_k_mask(relabelled, f)),
                          "chance": expected_random_jaccard(f), "spearman": rho} for f in fractions if f < 100])


NULL_REPLICATES = 200
NULL_LEVEL = 0.95


def resampling_null(rows, like: dict[str, torch.Tensor], fractions, replicates: int = NULL_REPLICATES,
                    seed: int = 0, **labels) -> pd.DataFrame:
    """The same-examples null of the label control: ``replicates`` pairs of bootstrap resamples of the
    examples behind one Fisher (``rows``: their per-example contributions, [examples, elements] in
    ``lnft.fisher.flat_names`` order, or a list of such blocks, e.g. one per fold; ``like``: that Fisher,
    for the names and shapes), each resample's Fisher with the true labels, and the Jaccard of the two top-k
    masks per fraction: how much the top-k moves when only the sample of examples changes. One row per
    replicate × fraction."""
    if isinstance(rows, (list, tuple)):
        if any(r is None for r in rows):
            raise LnftError("resampling_null needs per-example Fisher rows; allowed: fisher_for_task(per_example=True)")
        rows = torch.cat(list(rows))
    rows = rows.double()
    if rows.shape[1] != sum(v.numel() for v in like.values()):
        raise LnftError(f"per-example rows have {rows.shape[1]} elements, the Fisher {sum(v.numel() for v in like.values())}; "
                        "allowed: rows of the same Fisher")
    n = len(rows)
    names = sorted(like)
    rng = np.random.default_rng(seed)
    out = []
    for b in range(replicates):
        pair = []
        for _ in range(2):
            counts = torch.from_numpy(np.bincount(rng.integers(0, n, n), minlength=n)).double()
            pair.append(_unflat(names, counts @ rows / n, like))
        for f in fractions:
            if f < 100:
                out.append({**labels, "replicate": b, "fraction": float(f),
                            "jaccard": jaccard(top_k_mask(pair[0], f), top_k_mask(pair[1], f))})
    return pd.DataFrame(out)


def label_dependence(control: pd.DataFrame, null: pd.DataFrame, level: float = NULL_LEVEL) -> pd.DataFrame:
    """Per task × Fisher point × fraction: the seed-mean Jaccard of true- vs relabelled-label masks
    (``control``: ``label_control`` rows) against the same-examples null (``null``: ``resampling_null`` rows
    of the same seeds; its replicates averaged over seeds replicate by replicate, so the null is that of a
    seed mean): its mean and central ``level`` interval. *label-dependent* when the label Jaccard falls
    below the interval's lower end (the labels move the top-k more than resampling the examples does);
    otherwise *label-free within resampling noise*."""
    keys = ["task", "point", "fraction"]
    mean_null = null.groupby([*keys, "replicate"])["jaccard"].mean().groupby(keys)
    tail = (1 - level) / 2
    bounds = pd.DataFrame({"null_mean": mean_null.mean(), "null_lo": mean_null.quantile(tail),
                           "null_hi": mean_null.quantile(1 - tail)}).reset_index()
    out = control.groupby(keys, as_index=False, sort=False).agg(
        jaccard=("jaccard", "mean"), jaccard_min=("jaccard", "min"), spearman=("spearman", "mean"),
        chance=("chance", "first"), seeds=("jaccard", "size")).merge(bounds, on=keys, how="left")
    out["label-dependent"] = out["jaccard"] < out["null_lo"]
    out["ranking"] = np.where(out["label-dependent"], "label-dependent", "label-free within resampling noise")
    return out


def label_free(dependence: pd.DataFrame) -> pd.DataFrame:
    """Per task × Fisher point: ``label_dependence`` at the smallest control fraction (the row the verdict
    table reads), with ``label-free`` = not label-dependent there."""
    smallest = dependence[dependence["fraction"] == dependence.groupby(["task", "point"])["fraction"].transform("min")]
    return smallest.assign(**{"label-free": ~smallest["label-dependent"]}).reset_index(drop=True)


PAIRS = ("same data, other head", "other data, same head", "other data, other head")


def stability_frame(folds_by_seed: dict[int, dict[int, dict[str, torch.Tensor]]], fractions, **labels) -> pd.DataFrame:
    """Jaccard between the top-k masks of every two (fold, head seed) Fishers, by kind of pair:
    ``same data, other head`` (head-seed dependence), ``other data, same head`` (what folds sharing one
    head show: one head ranking consistently) and ``other data, other head`` (the honest stability: data
    and head both independent); with the chance level of two random masks."""
    keys = [(fold, seed) for seed, folds in folds_by_seed.items() for fold in folds]
    rows = []
    for f in fractions:
        if f >= 100:
            continue
        masks = {(fold, seed): top_k_mask(folds_by_seed[seed][fold], f) for fold, seed in keys}
        for i, (fa, sa) in enumerate(keys):
            for fb, sb in keys[i + 1:]:
                if (fa == fb) and (sa == sb):
                    continue
                pair = PAIRS[0] if fa == fb else (PAIRS[1] if sa == sb else PAIRS[2])
                rows.append({**labels, "fraction": float(f), "pair": pair, "a": f"fold {fa}, seed {sa}",
                             "b": f"fold {fb}, seed {sb}", "jaccard": jaccard(masks[fa, sa], masks[fb, sb]),
                             "chance": expected_random_jaccard(f)})
    return pd.DataFrame(rows)


def honest_fold_masks(folds_by_seed: dict[int, dict[int, dict[str, torch.Tensor]]], fraction: float):
    """One top-k mask per disjoint fold, fold k's from head seed number k (cycling through the seeds):
    masks that share neither data nor head when there are at least as many seeds as folds."""
    seeds = list(folds_by_seed)
    folds = sorted(next(iter(folds_by_seed.values())))
    return [top_k_mask(folds_by_seed[seeds[k % len(seeds)]][fold], fraction) for k, fold in enumerate(folds)]


def jaccard_table(dependence: pd.DataFrame, stability: pd.DataFrame) -> pd.DataFrame:
    """Label, fold and head-seed Jaccards side by side per task × Fisher point × fraction: true vs
    relabelled labels (seed mean) with the same-examples resampling null (mean and interval), other data
    with the same head (folds), the same data with another head (head seeds), both other, and chance."""
    keys = ["task", "point", "fraction"]
    pairs = stability.pivot_table(index=keys, columns="pair", values="jaccard", aggfunc="mean").reset_index()
    pairs = pairs.rename(columns={PAIRS[1]: "folds (other data, same head)", PAIRS[0]: "head seeds (same data, other head)",
                                  PAIRS[2]: "other data, other head"})
    out = dependence[[*keys, "jaccard", "null_mean", "null_lo", "null_hi", "ranking", "chance"]].rename(
        columns={"jaccard": "labels (true vs relabelled)", "null_mean": "resampling null",
                 "null_lo": "null lo", "null_hi": "null hi"})
    out = out.merge(pairs, on=keys, how="left")
    order = [*keys, "labels (true vs relabelled)", "resampling null", "null lo", "null hi",
             "folds (other data, same head)", "head seeds (same data, other head)", "other data, other head",
             "chance", "ranking"]
    return out[[c for c in order if c in out]]


def union_intersection_plan(folds: dict[tuple[str, str], dict[int, dict[int, dict[str, torch.Tensor]]]],
                            fractions, seeds, make_config, mask_dir: str, lrs=None) -> list[tuple[dict, object]]:
    """(labels, RunConfig): training with the union and with the intersection of the honest fold masks
    (``folds[(task, point)][seed][fold]`` = that fold's Fisher), for every seed and every rate of ``lrs``
    (None: ``make_config``'s own rate); empty masks are skipped."""
    plan = []
    for (task, point), by_seed in folds.items():
        for f in fractions:
            fold_masks = honest_fold_masks(by_seed, f)
            for rule, mask in (("union", union(fold_masks)), ("intersection", intersection(fold_masks))):
                if mask_size(mask) == 0:
                    continue
                path = store_mask(mask, mask_dir)
                for seed in seeds:
                    base = make_config(task=task, method="layernorm-masked", seed=seed, mask_path=path)
                    for lr in _rates(lrs):
                        cfg = dataclasses.replace(base, **lr)
                        plan.append(({"task": task, "point": point, "fraction": float(f), "selection": rule,
                                      "elements": mask_size(mask), "seed": seed, "lr": cfg.lr}, cfg))
    return plan


def _rates(lrs) -> list[dict]:
    """``lr=`` keyword sets for a grid (None: one run at the config's own rate)."""
    if lrs is None:
        return [{}]
    lrs = list(lrs)
    if not lrs or any(not isinstance(x, (int, float)) or not x > 0 for x in lrs):
        raise LnftError(f"invalid learning-rate grid {lrs!r}; allowed: a non-empty list of positive rates")
    return [{"lr": float(x)} for x in lrs]


# ------------------------------------------------------------------ the experiment
def subset_plan(fishers: dict[tuple[str, str, int], dict[str, torch.Tensor]], fractions, make_config,
                mask_dir: str, lrs=None, rules=SELECTIONS) -> list[tuple[dict, object]]:
    """(labels, RunConfig) for every task × Fisher point × seed × fraction × rule (of ``rules``) × rate (of
    ``lrs``; None: ``make_config``'s own rate), with masks from that seed's own Fisher at that point
    (``fishers[(task, point, seed)]``) and a random mask drawn per seed (the same file, hence the same run,
    at every point). At 100 %: plain all-LayerNorm training at ``make_config``'s rate (the reference, the
    run the ``finetuned`` point reads). ``make_config(task=, method=, seed=, mask_path=None, lr=)`` builds
    the RunConfig. Labels carry the run's ``lr``."""
    unknown = [r for r in rules if r not in SELECTIONS]
    if unknown or not rules:
        raise LnftError(f"unknown selection rule(s) {unknown or rules!r}; allowed: {', '.join(SELECTIONS)}")
    grid = _rates(lrs)
    plan = []
    for (task, point, seed), values in fishers.items():
        for fraction in fractions:
            labels = {"task": task, "point": point, "seed": seed}
            if fraction >= 100:
                cfg = make_config(task=task, method="layernorm", seed=seed)
                plan.append(({**labels, "selection": REFERENCE, "fraction": 100.0, "lr": cfg.lr}, cfg))
                continue
            for selection, mask in masks_at(values, fraction, seed).items():
                if selection not in rules:
                    continue
                base = make_config(task=task, method="layernorm-masked", seed=seed, mask_path=store_mask(mask, mask_dir))
                for lr in grid:
                    cfg = dataclasses.replace(base, **lr)
                    plan.append(({**labels, "selection": selection, "fraction": float(fraction), "lr": cfg.lr}, cfg))
    return plan


def scores_frame(plan, results) -> pd.DataFrame:
    """One row per planned run: its labels, dev ``score`` and ``validation`` score (points), the budget
    facts and how it ended (``still_improving``: best = last evaluation; ``last_gain``; ``end``: the
    ``aggregate.end_state``)."""
    from .aggregate import end_state, last_gain

    return pd.DataFrame([{**labels, "score": r.metrics["score"], "validation": r.validation_metrics["score"],
                          "trainable_params": r.trainable_params, "steps": r.steps, "max_steps": r.max_steps,
                          "still_improving": r.still_improving, "last_gain": last_gain(r),
                          "end": end_state(r.still_improving, last_gain(r)), "run_id": r.run_id}
                         for (labels, _), r in zip(plan, results)])


RATE_KEYS = ("task", "point", "fraction", "selection")


def choose_rates(scores: pd.DataFrame, on: str = "validation") -> pd.DataFrame:
    """Each rule's learning rate per task × Fisher point × fraction × rule (``aggregate.select_lr`` on the
    ``on`` split: best seed mean), with ``lr_rates`` and ``lr_at_edge``. ``scores``: ``scores_frame``."""
    from .aggregate import select_lr

    keys = [k for k in RATE_KEYS if k in scores]
    base = scores[[*keys, "seed", "lr"]]
    long = pd.concat([base.assign(split=split, metric="score", value=scores[column].to_numpy())
                      for split, column in (("dev", "score"), ("validation", "validation"))], ignore_index=True)
    return select_lr(long, on=on, keys=keys)


def at_chosen_rates(scores: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """The runs at each rule's chosen rate, with ``lr_rates`` and ``lr_at_edge`` of that choice."""
    keys = [k for k in RATE_KEYS if k in scores]
    return scores.merge(chosen[[*keys, "lr", "lr_rates", "lr_at_edge"]], on=[*keys, "lr"]).reset_index(drop=True)


def with_reference_points(subsets: pd.DataFrame) -> pd.DataFrame:
    """Subset scores with the all-LayerNorm runs repeated as the 100 % point of every selection rule present."""
    reference = subsets[subsets["selection"] == REFERENCE]
    rules = [r for r in SELECTIONS if r in set(subsets["selection"])]
    return pd.concat([subsets[subsets["selection"] != REFERENCE],
                      *[reference.assign(selection=rule) for rule in rules]], ignore_index=True)


def check_masked_runs(plan, results, store, pretrained: dict[str, torch.Tensor]) -> int:
    """Assert that every masked-out LayerNorm element of every masked run is bit-identical to its
    pre-trained value; returns the number of tensors compared."""
    from safetensors.torch import load_file

    from .derived import held as derived_part

    checked = 0
    for (_, cfg), result in zip(plan, results):
        if cfg.method != "layernorm-masked":
            continue
        held = derived_part(result, "masked")  # counted when the run was stored (lnft.derived)
        if held is not None:
            names = set(load_file(cfg.mask_path))
            if set(held) != names:
                raise AssertionError(f"{result.run_id}: its masked-out check covers {sorted(held)[:3]}, "
                                     f"not the mask's tensors {sorted(names)[:3]}")
            for name, counts in held.items():
                if counts["changed"]:
                    raise AssertionError(f"{result.run_id}: {counts['changed']} masked-out elements of {name} changed")
                checked += 1
            continue
        trained = store.tensors(result)
        for name, mask in load_file(cfg.mask_path).items():
            mask = mask.bool()
            after = trained.get(name, pretrained[name])  # a tensor with nothing selected did not train
            if not torch.equal(after[~mask], pretrained[name][~mask]):
                raise AssertionError(f"{result.run_id}: masked-out elements of {name} changed")
            checked += 1
    return checked


def check_equal_sizes(plan) -> int:
    """Assert that at every task × point × seed × fraction all rules train exactly the same number of
    LayerNorm elements; returns the number of groups compared."""
    from safetensors.torch import load_file

    sizes: dict[tuple, set[int]] = {}
    for labels, cfg in plan:
        if cfg.method == "layernorm-masked":
            key = (labels["task"], labels["point"], labels["seed"], labels["fraction"])
            sizes.setdefault(key, set()).add(int(sum(int(m.sum()) for m in load_file(cfg.mask_path).values())))
    unequal = {k: v for k, v in sizes.items() if len(v) != 1}
    if unequal:
        raise AssertionError(f"rules select different numbers of elements: {unequal}")
    return len(sizes)


# ------------------------------------------------------------------ verdicts (lnft.stats: paired bootstrap)
def _side_notes(runs: pd.DataFrame, side: str, fraction) -> tuple[list[str], list[str]]:
    """(† flags, notes) of the runs of one side of a comparison, in ``lnft.aggregate``'s words, prefixed
    with the side and fraction so that every text says whose runs it is about."""
    from .aggregate import budget_flag, end_state, lr_flag

    where = side if fraction is None else f"{side} @ {fraction:g} %"
    flags, notes = [], []
    if "end" in runs:
        states = runs["end"].fillna("")
    elif "still_improving" in runs:
        states = pd.Series([end_state(bool(x), runs["last_gain"].iloc[i] if "last_gain" in runs else float("inf"))
                            for i, x in enumerate(runs["still_improving"])], index=runs.index)
    else:
        states = pd.Series("", index=runs.index)
    for state, into in (("improving", flags), ("annealed", notes)):
        n = int((states == state).sum())
        if n:
            into.append(f"{where}: {budget_flag(state, n, len(runs), 'runs')}")
    if "lr_at_edge" in runs:  # one text per distinct edge rate (an ``average`` row spans tasks)
        edges = runs[runs["lr_at_edge"].fillna(False).astype(bool)]
        for (lr, rates), _ in edges.groupby(["lr", "lr_rates"], sort=True):
            flags.append(f"{where}: {lr_flag(float(lr), True, int(rates))}")
    return flags, notes


def flag_runs(table: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Add ``undertrained`` (bool), ``flags`` (the † reasons) and ``notes`` to a verdict table of
    ``lnft.stats`` (columns task, a, b, and point / fraction when present). † (possibly undertrained): a run
    entering the comparison was still improving at the end of its budget (``aggregate.end_state``
    "improving": best = last evaluation with a last gain above ``aggregate.IMPROVING_GAIN``), or a side's
    chosen rate lies at the edge of its grid (``lr_at_edge``). A note, no †: runs that annealed to the end.
    The runs entering a row: side a and side b, of that task (of every task for the ``average`` row), of
    that Fisher point, at that fraction (at any fraction for all-LayerNorm, whose runs are the 100 % point).
    ``scores``: one row per run (``scores_frame``, at the chosen rates: ``at_chosen_rates``); without an
    ``end`` or ``still_improving`` column no run is flagged. With ``lr`` in ``scores``: columns
    ``a_lr`` / ``b_lr`` (the chosen rates; several joined by "/" on an ``average`` row)."""
    out = table.copy()
    if table.empty:
        out["undertrained"], out["flags"], out["notes"] = False, "", ""
        return out
    marks, texts, notes, rates = [], [], [], {"a": [], "b": []}
    for _, row in table.iterrows():
        runs = scores if row["task"] == "average" else scores[scores["task"] == row["task"]]
        if "point" in row.index and "point" in runs:
            runs = runs[runs["point"] == row["point"]]
        flags, extra = [], []
        for key in ("a", "b"):
            side = row[key]
            part = runs[runs["selection"] == side]
            fraction = None
            if side != REFERENCE and "fraction" in row.index:
                part, fraction = part[part["fraction"] == row["fraction"]], row["fraction"]
            if "lr" in part:
                rates[key].append("/".join(f"{x:g}" for x in dict.fromkeys(part["lr"])))
            f, n = _side_notes(part, side, fraction)
            flags += f
            extra += n
        marks.append(bool(flags))
        texts.append(join_texts(flags))
        notes.append(join_texts(extra))
    out["undertrained"], out["flags"], out["notes"] = marks, texts, notes
    if "lr" in scores:
        out["a_lr"], out["b_lr"] = rates["a"], rates["b"]
    return out


def fisher_vs_random(scores: pd.DataFrame, store=None, rule: str = "fisher-global", control: str = "random",
                     **options) -> pd.DataFrame:
    """Per task × Fisher point × fraction: ``rule`` minus ``control``, each at its own chosen rate when
    ``scores`` holds one rate per rule (``at_chosen_rates``), with a paired bootstrap interval and the verdict
    vocabulary of ``lnft.stats``. One point at a time: a random-k run is shared by the points. Rows are
    flagged by ``flag_runs`` (``undertrained``, ``flags``, ``notes``, ``a_lr``, ``b_lr``)."""
    from . import stats

    _one_rate(scores)
    table = pd.concat([stats.fraction_verdicts(part, rule, control, store=store, by=("task", "fraction"), **options)
                       .assign(point=point) for point, part in scores.groupby("point", sort=False)], ignore_index=True)
    return flag_runs(table, scores)


def versus_all_layernorm(scores: pd.DataFrame, store=None, **options) -> pd.DataFrame:
    """Per task × Fisher point: every rule at every fraction (at its chosen rate) minus all-LayerNorm
    training (the 100 % runs of the same seeds), with ``lnft.stats.reference_verdicts``' paired bootstrap;
    column ``point`` added, and the ``flag_runs`` columns."""
    from . import stats

    _one_rate(scores)
    table = pd.concat([stats.reference_verdicts(part, REFERENCE, SELECTIONS, store=store, **options).assign(point=point)
                       for point, part in scores.groupby("point", sort=False)], ignore_index=True)
    return flag_runs(table, scores)


def _one_rate(scores: pd.DataFrame) -> None:
    """Verdicts compare one run per rule and seed: refuse a frame that still holds several rates."""
    if "lr" not in scores:
        return
    keys = [k for k in (*RATE_KEYS, "seed") if k in scores]
    several = scores.groupby(keys)["lr"].nunique()
    if (several > 1).any():
        raise LnftError(f"scores hold {int(several.max())} rates for {several[several > 1].index[0]}; allowed: one "
                        "rate per rule (pass subsets.at_chosen_rates(scores, subsets.choose_rates(scores)))")


def _join(frame: pd.DataFrame, column: str = "flags") -> str:
    if column not in frame:
        return ""
    return "; ".join(dict.fromkeys(f for part in frame[column] if part for f in part.split("; ")))


def fraction_within(vs_all: pd.DataFrame, rule: str = "fisher-global", margin: float | None = None) -> pd.DataFrame:
    """Per task × Fisher point: the smallest fraction at which ``rule`` is *equivalent within ±1 point* to
    all-LayerNorm training, or *better* (``lnft.stats.smallest_fraction``); None when no fraction is.
    Also the narrowest interval (``narrowest CI (points)``: hi − lo over the rule's fractions) and
    ``resolution``: when even the narrowest interval is wider than 2 × ``margin`` (default
    ``lnft.stats.MARGIN``), no fraction *could* be shown equivalent at this evaluation size — a missing
    smallest fraction then says nothing about a loss. ``undertrained`` / ``flags``: any of the rule's rows
    flagged (a flagged run at any fraction can move the smallest fraction)."""
    from . import stats

    given = margin
    rows = []
    for (task, point), part in vs_all[vs_all["a"] == rule].groupby(["task", "point"], sort=False):
        margin = given if given is not None else (float(part["margin"].iloc[0]) if "margin" in part else stats.MARGIN)
        small = stats.smallest_fraction(part).iloc[0]
        lo, hi = ("eq_lo", "eq_hi") if "eq_lo" in part else ("lo", "hi")  # equivalence: the TOST (90 %) interval
        narrowest = float((part[hi] - part[lo]).min())
        resolution = (f"no interval fits inside ±{margin:g} point: the narrowest is {narrowest:.1f} points wide "
                      f"(> {2 * margin:g}) with {part['examples'].iloc[0]} examples, so equivalence cannot be shown "
                      "at this evaluation size" if narrowest > 2 * margin else "")
        flagged = bool(part["undertrained"].any()) if "undertrained" in part else False
        rows.append({"task": task, "point": point, "rule": rule, "all-LN score": part["b_score"].iloc[0],
                     "smallest % within 1 pt of all-LN": small["smallest fraction"], "summary": small["summary"],
                     "narrowest CI (points)": narrowest, "resolution": resolution,
                     "undertrained": flagged, "flags": _join(part), "notes": _join(part, "notes")})
    return pd.DataFrame(rows)


def verdict_table(label_free_table: pd.DataFrame, within: pd.DataFrame, versus: pd.DataFrame) -> pd.DataFrame:
    """One row per task × Fisher point: the ranking (``label_free``: label-dependent, or label-free within
    resampling noise, at the smallest control fraction) with its Jaccard and the null's interval, the
    smallest Fisher top-k fraction within 1 point of all-LayerNorm training (with ``resolution``: whether
    any interval could fit inside ±1 point), and Fisher top-k − random-k at each fraction with its interval,
    verdict and the rates each side chose (" †" when the row is possibly undertrained).
    ``undertrained`` / ``flags`` / ``notes``: every run behind the row, each text once."""
    rows = []
    for _, lf in label_free_table.iterrows():
        near = within[(within["task"] == lf["task"]) & (within["point"] == lf["point"])]
        gaps = versus[(versus["task"] == lf["task"]) & (versus["point"] == lf["point"])]
        marked = lambda frame: bool(frame["undertrained"].any()) if "undertrained" in frame else False  # noqa: E731
        f = f"{lf['fraction']:g} %"
        null = (f" (null {lf['null_mean']:.3f}, {NULL_LEVEL:.0%} {lf['null_lo']:.3f}–{lf['null_hi']:.3f})"
                if "null_lo" in lf and pd.notna(lf["null_lo"]) else "")
        row = {"task": lf["task"], "point": lf["point"],
               "ranking": "label-dependent" if not lf["label-free"] else "label-free within resampling noise",
               f"Jaccard true vs relabelled @ {f}": f"{lf['jaccard']:.3f}{null}",
               "smallest % within 1 pt of all-LN": near["smallest % within 1 pt of all-LN"].iloc[0]
               if len(near) else None,
               "resolution": near["resolution"].iloc[0] if len(near) and "resolution" in near else ""}
        for _, g in gaps.iterrows():
            row[f"Fisher − random @ {g['fraction']:g} %"] = g["summary"] + (" †" if g.get("undertrained") else "")
            if "a_lr" in g:
                row[f"lr Fisher / random @ {g['fraction']:g} %"] = f"{g['a_lr']} / {g['b_lr']}"
        both = pd.concat([near, gaps], ignore_index=True)
        row.update({"undertrained": marked(near) or marked(gaps), "flags": _join(both), "notes": _join(both, "notes")})
        rows.append(row)
    return pd.DataFrame(rows)


def lines(table: pd.DataFrame) -> list[str]:
    """``lnft.stats.lines`` of a verdict table, with the chosen rates when known, each flagged row ending
    in `` [† possibly undertrained: <flags>]`` and a row with notes in `` (note: <notes>)``."""
    from . import stats

    plain = stats.lines(table.drop(columns=[c for c in ("undertrained", "flags", "notes", "a_lr", "b_lr")
                                            if c in table]))
    out = []
    for line, (_, row) in zip(plain, table.iterrows()):
        if "a_lr" in row:
            line += f"; lr {row['a']} {row['a_lr']}, {row['b']} {row['b_lr']}"
        line += caveat(bool(row.get("undertrained")), row.get("flags", ""))
        if row.get("notes"):
            line += f" (note: {row['notes']})"
        out.append(line)
    return out


def verdict_lines(verdicts: pd.DataFrame) -> list[str]:
    """One printable line per row of ``verdict_table``: the ranking, the smallest fraction within 1 point of
    all-LayerNorm (or why none can be: the evaluation-size limit), the † flags and the notes."""
    out = []
    for _, row in verdicts.iterrows():
        smallest = row["smallest % within 1 pt of all-LN"]
        if pd.notna(smallest):
            near = f"from {smallest:g} %"
        elif row.get("resolution"):
            near = f"not shown at any fraction tried below 100 % — {row['resolution']}"
        else:
            near = "at no fraction tried below 100 %"
        flagged = caveat(bool(row.get("undertrained")), row.get("flags", ""))
        note = f" (note: {row['notes']})" if row.get("notes") else ""
        out.append(f"{row['task']} @ {row['point']}: ranking {row['ranking']}; Fisher top-k within 1 point of "
                   f"all-LayerNorm: {near}{flagged}{note}")
    return out


def start_method(point: str) -> str | None:
    """The method of the run a Fisher point starts from: None at ``pretrained``, ``head`` at ``head-warmup``,
    ``layernorm`` at ``finetuned``."""
    from .fisher import FISHER_AT

    if point not in FISHER_AT:
        raise LnftError(f"unknown Fisher point {point!r}; allowed: {', '.join(FISHER_AT)}")
    return {"pretrained": None, "head-warmup": "head", "finetuned": "layernorm"}[point]


def start_config(point: str, make_config, task: str, seed: int, held_out: int = 0):
    """The run a Fisher point reads its trained head (and LayerNorms) from: None at ``pretrained``, the
    head-only run at ``head-warmup``, the all-LayerNorm run (the 100 % reference of the curves) at
    ``finetuned``; all of the same task and seed, built by ``make_config(task=, method=, seed=)``.
    ``held_out``: the examples the Fisher there needs outside what the run fit
    (``lnft.fisher.held_out_indices``). When the train file leaves fewer (a profile that trains on the whole
    file), the start run is a cross-fitting one: the same run trained with ``max_train_samples`` smaller by
    the shortfall, so that the rows it leaves out are the Fisher's — but on at least half of its rows (a
    small task then gives the Fisher fewer examples per fold than asked: ``fisher_for_task`` says how many)."""
    from .fisher import held_out_indices

    method = start_method(point)
    if method is None:
        return None
    cfg = make_config(task=task, method=method, seed=seed)
    spare = len(held_out_indices(cfg)) if held_out else 0
    if spare >= held_out:
        return cfg
    from .pool import drawable_rows

    n = len(drawable_rows(cfg))  # train-file rows outside a held-out pool (lnft.pool)
    trained = n - max(1, int(round(cfg.validation_fraction * n))) - spare  # rows the run trains on now
    keep = max(trained - (held_out - spare), -(-trained // 2))  # it keeps at least half of them
    if keep >= trained:
        raise LnftError(f"{task!r} has {n} train-file rows: too few to hold out any for the Fisher at "
                        f"{point!r}; allowed: a task with at least 2 training rows")
    return make_config(task=task, method=method, seed=seed, max_train_samples=keep)
