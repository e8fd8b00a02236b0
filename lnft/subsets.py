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


def overlap_frame(masks_by: dict, **labels) -> pd.DataFrame:
    """Pairwise Jaccard overlap between masks keyed by anything (fold, seed, (fold, seed))."""
    keys = list(masks_by)
    return pd.DataFrame([{**labels, "a": str(a), "b": str(b), "jaccard": jaccard(masks_by[a], masks_by[b])}
                         for i, a in enumerate(keys) for b in keys[i + 1:]])


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


# ------------------------------------------------------------------ verdicts (mean ± std over seeds)
def smallest_fraction_within(curve: pd.DataFrame, tolerance: float = 1.0) -> pd.DataFrame:
    """Per task × point × rule: the smallest fraction whose seed-mean score is within ``tolerance`` points
    of all-LayerNorm training (the 100 % point of the same seeds), and the seed noise next to it."""
    rows = []
    for (task, point, selection), part in curve.groupby(["task", "point", "selection"]):
        stats = part.groupby("fraction")["score"].agg(["mean", "std"]).sort_index()
        ref = stats.loc[100.0] if 100.0 in stats.index else None
        if ref is None:
            continue
        within = stats.index[(ref["mean"] - stats["mean"] <= tolerance).to_numpy()]
        rows.append({"task": task, "point": point, "selection": selection, "all-LN score": ref["mean"],
                     "all-LN std": ref["std"], f"smallest % within {tolerance:g} pt": float(within.min())})
    return pd.DataFrame(rows)


def versus_random(subsets: pd.DataFrame, rule: str = "fisher-global", control: str = "random",
                  tolerance: float = 1.0) -> pd.DataFrame:
    """Per task × point × fraction: rule minus random-k, paired by seed, mean ± std of the paired
    differences. Verdict: "better"/"worse" only when the mean is beyond twice the std of the paired
    differences and beyond ``tolerance``; "equivalent within ±1 point" when mean ± 2 std lies inside
    ±tolerance; otherwise (or with one seed) "inconclusive"."""
    scores = subsets[subsets["selection"].isin([rule, control])]
    wide = scores.pivot_table(index=["task", "point", "fraction", "seed"], columns="selection", values="score")
    diff = (wide[rule] - wide[control]).rename("difference").reset_index()
    out = diff.groupby(["task", "point", "fraction"], as_index=False).agg(
        difference=("difference", "mean"), std=("difference", "std"), seeds=("difference", "size"))
    out[rule] = wide[rule].groupby(["task", "point", "fraction"]).mean().to_numpy()
    out[control] = wide[control].groupby(["task", "point", "fraction"]).mean().to_numpy()
    out["verdict"] = [_verdict(m, s, n, tolerance) for m, s, n in zip(out["difference"], out["std"], out["seeds"])]
    return out


def _verdict(mean: float, std: float, seeds: int, tolerance: float) -> str:
    if seeds < 2 or not np.isfinite(std):
        return "inconclusive"
    low, high = mean - 2 * std, mean + 2 * std
    if low > 0 and mean > tolerance:
        return "better"
    if high < 0 and mean < -tolerance:
        return "worse"
    if -tolerance <= low and high <= tolerance:
        return "equivalent within ±1 point"
    return "inconclusive"


def start_config(point: str, make_config, task: str, seed: int):
    """The run a Fisher point reads its trained head (and LayerNorms) from: None at ``pretrained``, the
    head-only run at ``head-warmup``, the all-LayerNorm run (the 100 % reference of the curves) at
    ``finetuned``; all of the same task and seed, built by ``make_config(task=, method=, seed=)``."""
    from .fisher import FISHER_AT

    if point not in FISHER_AT:
        raise LnftError(f"unknown Fisher point {point!r}; allowed: {', '.join(FISHER_AT)}")
    method = {"pretrained": None, "head-warmup": "head", "finetuned": "layernorm"}[point]
    return None if method is None else make_config(task=task, method=method, seed=seed)
