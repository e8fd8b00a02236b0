"""Which LayerNorm elements to train, from a Fisher (paper section 3), and the experiment built on it.

- masks at a fraction of all LayerNorm elements: global top-k, per-module top-k and random-k, all of
  exactly the same size k (per module: largest-remainder allocation of k over the modules, so the rule
  changes *where* elements are chosen, never *how many*);
- overlaps: Jaccard of masks, its chance level, Spearman rank correlation of two Fishers;
- the experiment: per task × Fisher point × seed, masks from that seed's own Fisher (random masks drawn per
  seed), content-addressed mask files, the reference points, the bit-identity check of masked runs and the
  verdict tables.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import torch

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


def label_control(true: dict[str, torch.Tensor], permuted: dict[str, torch.Tensor], fractions,
                  **labels) -> pd.DataFrame:
    """True-label vs permuted-label Fisher: Jaccard of their top-k masks per fraction and the Spearman
    correlation of the two Fishers (the same on every row)."""
    rho = spearman(true, permuted)
    return pd.DataFrame([{**labels, "fraction": float(f), "jaccard": jaccard(top_k_mask(true, f), top_k_mask(permuted, f)),
                          "chance": expected_random_jaccard(f), "spearman": rho} for f in fractions if f < 100])


def label_free(control: pd.DataFrame, threshold: float = 0.9) -> pd.DataFrame:
    """Per task × Fisher point: the ranking is label-free when the seed-mean Jaccard between the true- and
    the permuted-label masks at the smallest fraction is at least ``threshold``."""
    smallest = control[control["fraction"] == control.groupby(["task", "point"])["fraction"].transform("min")]
    out = smallest.groupby(["task", "point", "fraction"], as_index=False).agg(
        jaccard=("jaccard", "mean"), jaccard_min=("jaccard", "min"), spearman=("spearman", "mean"),
        seeds=("jaccard", "size"))
    out["label-free"] = out["jaccard"] >= threshold
    return out


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


def union_intersection_plan(folds: dict[tuple[str, str], dict[int, dict[int, dict[str, torch.Tensor]]]],
                            fractions, seeds, make_config, mask_dir: str) -> list[tuple[dict, object]]:
    """(labels, RunConfig): training with the union and with the intersection of the honest fold masks
    (``folds[(task, point)][seed][fold]`` = that fold's Fisher), for every seed; empty masks are skipped."""
    plan = []
    for (task, point), by_seed in folds.items():
        for f in fractions:
            fold_masks = honest_fold_masks(by_seed, f)
            for rule, mask in (("union", union(fold_masks)), ("intersection", intersection(fold_masks))):
                if mask_size(mask) == 0:
                    continue
                path = store_mask(mask, mask_dir)
                for seed in seeds:
                    plan.append(({"task": task, "point": point, "fraction": float(f), "mask": rule,
                                  "elements": mask_size(mask), "seed": seed},
                                 make_config(task=task, method="layernorm-masked", seed=seed, mask_path=path)))
    return plan


# ------------------------------------------------------------------ the experiment
def subset_plan(fishers: dict[tuple[str, str, int], dict[str, torch.Tensor]], fractions, make_config,
                mask_dir: str) -> list[tuple[dict, object]]:
    """(labels, RunConfig) for every task × Fisher point × seed × fraction × rule, with masks from that
    seed's own Fisher at that point (``fishers[(task, point, seed)]``) and a random mask drawn per seed
    (the same file, hence the same run, at every point). At 100 %: plain all-LayerNorm training.
    ``make_config(task=, method=, seed=, mask_path=None)`` builds the RunConfig."""
    plan = []
    for (task, point, seed), values in fishers.items():
        for fraction in fractions:
            labels = {"task": task, "point": point, "seed": seed}
            if fraction >= 100:
                plan.append(({**labels, "selection": REFERENCE, "fraction": 100.0},
                             make_config(task=task, method="layernorm", seed=seed)))
                continue
            for selection, mask in masks_at(values, fraction, seed).items():
                plan.append(({**labels, "selection": selection, "fraction": float(fraction)},
                             make_config(task=task, method="layernorm-masked", seed=seed,
                                         mask_path=store_mask(mask, mask_dir))))
    return plan


def with_reference_points(subsets: pd.DataFrame) -> pd.DataFrame:
    """Subset scores with the all-LayerNorm runs repeated as the 100 % point of every selection rule."""
    reference = subsets[subsets["selection"] == REFERENCE]
    return pd.concat([subsets[subsets["selection"] != REFERENCE],
                      *[reference.assign(selection=rule) for rule in SELECTIONS]], ignore_index=True)


def check_masked_runs(plan, results, store, pretrained: dict[str, torch.Tensor]) -> int:
    """Assert that every masked-out LayerNorm element of every masked run is bit-identical to its
    pre-trained value; returns the number of tensors compared."""
    from safetensors.torch import load_file

    checked = 0
    for (_, cfg), result in zip(plan, results):
        if cfg.method != "layernorm-masked":
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
STILL_IMPROVING = "still improving at the end of its budget"


def flag_runs(table: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Add ``undertrained`` (bool) and ``flags`` (text) to a verdict table of ``lnft.stats`` (columns task,
    a, b, and point / fraction when present): a comparison is flagged when any run entering it was still
    improving at the end of its budget (its best evaluation was its last: ``RunResult.still_improving``).
    The runs entering a row: side a and side b, of that task (of every task for the ``average`` row), of
    that Fisher point, at that fraction (at any fraction for all-LayerNorm, whose runs are the 100 % point).
    ``scores``: one row per run with ``task, selection, fraction, still_improving`` (and ``point``); without
    a ``still_improving`` column nothing is flagged."""
    out = table.copy()
    if "still_improving" not in scores or table.empty:
        out["undertrained"], out["flags"] = False, ""
        return out
    marks, texts = [], []
    for _, row in table.iterrows():
        runs = scores if row["task"] == "average" else scores[scores["task"] == row["task"]]
        if "point" in row.index and "point" in runs:
            runs = runs[runs["point"] == row["point"]]
        parts = []
        for side in dict.fromkeys((row["a"], row["b"])):
            part = runs[runs["selection"] == side]
            if side != REFERENCE and "fraction" in row.index:
                part = part[part["fraction"] == row["fraction"]]
            n = int(part["still_improving"].astype(bool).sum())
            if n:
                parts.append(f"{side}: {STILL_IMPROVING} in {n} of {len(part)} runs")
        marks.append(bool(parts))
        texts.append("; ".join(parts))
    out["undertrained"], out["flags"] = marks, texts
    return out


def fisher_vs_random(scores: pd.DataFrame, store=None, rule: str = "fisher-global", control: str = "random",
                     **options) -> pd.DataFrame:
    """Per task × Fisher point × fraction: ``rule`` minus ``control`` with a paired bootstrap interval and
    the verdict vocabulary of ``lnft.stats``. One point at a time: a random-k run is shared by the points.
    With ``still_improving`` in ``scores``, rows are flagged by ``flag_runs`` (``undertrained``, ``flags``)."""
    from . import stats

    table = pd.concat([stats.fraction_verdicts(part, rule, control, store=store, by=("task", "fraction"), **options)
                       .assign(point=point) for point, part in scores.groupby("point", sort=False)], ignore_index=True)
    return flag_runs(table, scores)


def versus_all_layernorm(scores: pd.DataFrame, store=None, **options) -> pd.DataFrame:
    """Per task × Fisher point: every rule at every fraction minus all-LayerNorm training (the 100 % runs of
    the same seeds), with ``lnft.stats.reference_verdicts``' paired bootstrap; column ``point`` added, and
    the ``flag_runs`` flags (``undertrained``, ``flags``)."""
    from . import stats

    table = pd.concat([stats.reference_verdicts(part, REFERENCE, SELECTIONS, store=store, **options).assign(point=point)
                       for point, part in scores.groupby("point", sort=False)], ignore_index=True)
    return flag_runs(table, scores)


def _join_flags(frame: pd.DataFrame) -> str:
    if "flags" not in frame:
        return ""
    return "; ".join(dict.fromkeys(f for part in frame["flags"] if part for f in part.split("; ")))


def fraction_within(vs_all: pd.DataFrame, rule: str = "fisher-global", margin: float | None = None) -> pd.DataFrame:
    """Per task × Fisher point: the smallest fraction at which ``rule`` is *equivalent within ±1 point* to
    all-LayerNorm training, or *better* (``lnft.stats.smallest_fraction``); None when no fraction is.
    Also the narrowest interval (``narrowest CI (points)``: hi − lo over the rule's fractions) and
    ``resolution``: when even the narrowest interval is wider than 2 × ``margin`` (default
    ``lnft.stats.MARGIN``), no fraction *could* be shown equivalent at this evaluation size — a missing
    smallest fraction then says nothing about a loss. ``undertrained`` / ``flags``: any of the rule's rows
    flagged (a flagged run at any fraction can move the smallest fraction)."""
    from . import stats

    margin = stats.MARGIN if margin is None else margin
    rows = []
    for (task, point), part in vs_all[vs_all["a"] == rule].groupby(["task", "point"], sort=False):
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
                     "undertrained": flagged, "flags": _join_flags(part)})
    return pd.DataFrame(rows)


def verdict_table(label_free_table: pd.DataFrame, within: pd.DataFrame, versus: pd.DataFrame) -> pd.DataFrame:
    """One row per task × Fisher point: label-free or not, the smallest Fisher top-k fraction within 1 point
    of all-LayerNorm training (with ``resolution``: whether any interval could fit inside ±1 point), and
    Fisher top-k − random-k at each fraction with its interval and verdict (" †" when a run entering it was
    still improving at the end of its budget). ``undertrained`` / ``flags``: any run behind the row."""
    rows = []
    for _, lf in label_free_table.iterrows():
        near = within[(within["task"] == lf["task"]) & (within["point"] == lf["point"])]
        gaps = versus[(versus["task"] == lf["task"]) & (versus["point"] == lf["point"])]
        marked = lambda frame: bool(frame["undertrained"].any()) if "undertrained" in frame else False  # noqa: E731
        rows.append({"task": lf["task"], "point": lf["point"],
                     "ranking": "label-free" if lf["label-free"] else "label-dependent",
                     f"Jaccard true vs permuted labels @ {lf['fraction']:g} %": lf["jaccard"],
                     "smallest % within 1 pt of all-LN": near["smallest % within 1 pt of all-LN"].iloc[0]
                     if len(near) else None,
                     "resolution": near["resolution"].iloc[0] if len(near) and "resolution" in near else "",
                     **{f"Fisher − random @ {g['fraction']:g} %": g["summary"] + (" †" if g.get("undertrained") else "")
                        for _, g in gaps.iterrows()},
                     "undertrained": marked(near) or marked(gaps),
                     "flags": "; ".join(dict.fromkeys(x for x in (_join_flags(near), _join_flags(gaps)) if x))})
    return pd.DataFrame(rows)


def lines(table: pd.DataFrame) -> list[str]:
    """``lnft.stats.lines`` of a verdict table, each flagged row ending in
    `` [† possibly undertrained: <flags>]``."""
    from . import stats

    plain = stats.lines(table.drop(columns=[c for c in ("undertrained", "flags") if c in table]))
    if "undertrained" not in table:
        return plain
    return [line + (f" [† possibly undertrained: {flags}]" if marked else "")
            for line, marked, flags in zip(plain, table["undertrained"], table["flags"])]


def verdict_lines(verdicts: pd.DataFrame) -> list[str]:
    """One printable line per row of ``verdict_table``: the ranking, the smallest fraction within 1 point of
    all-LayerNorm (or why none can be: the evaluation-size limit), and the † flags."""
    out = []
    for _, row in verdicts.iterrows():
        smallest = row["smallest % within 1 pt of all-LN"]
        if pd.notna(smallest):
            near = f"from {smallest:g} %"
        elif row.get("resolution"):
            near = f"not shown at any fraction tried below 100 % — {row['resolution']}"
        else:
            near = "at no fraction tried below 100 %"
        caveat = f" [† possibly undertrained: {row['flags']}]" if row.get("undertrained") else ""
        out.append(f"{row['task']} @ {row['point']}: ranking {row['ranking']}; Fisher top-k within 1 point of "
                   f"all-LayerNorm: {near}{caveat}")
    return out


def start_config(point: str, make_config, task: str, seed: int):
    """The run a Fisher point reads its trained head (and LayerNorms) from: None at ``pretrained``, the
    head-only run at ``head-warmup``, the all-LayerNorm run (the 100 % reference of the curves) at
    ``finetuned``; all of the same task and seed, built by ``make_config(task=, method=, seed=)``."""
    from .fisher import FISHER_AT

    if point not in FISHER_AT:
        raise LnftError(f"unknown Fisher point {point!r}; allowed: {', '.join(FISHER_AT)}")
    method = {"pretrained": None, "head-warmup": "head", "finetuned": "layernorm"}[point]
    return None if method is None else make_config(task=task, method=method, seed=seed)

