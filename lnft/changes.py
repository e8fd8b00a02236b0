"""Change analysis (paper section 1): how far did each component move during fine-tuning?

Measures, per component (and per tensor kind: weight, bias, or both together):
- ``mean_abs``: D = mean |θ_ft − θ_pre| over the component's elements — **the paper's measure**;
- ``relative_abs``: Σ|θ_ft − θ_pre| / Σ|θ_pre| = mean |Δθ| / mean |θ_pre|, the paper's measure made scale-free
  (issue 33: under AdamW every element moves about lr per step whatever its scale, so mean |Δθ| alone mostly
  shows the optimiser; a LayerNorm gain near 1 and a weight near 0.02 are not comparable in absolute terms);
- ``relative_l2``: ‖θ_ft − θ_pre‖₂ / ‖θ_pre‖₂, scale-free too.
The task head is new, not pre-trained, and is left out.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .components import COMPONENT_ORDER
# the sums of a run's change, its effective weights and the pre-trained state: computed when a run is stored
# (lnft.derived, core), so a run in the results ledger needs no weights
from .derived import (GROUP_ORDER, effective_weights, encoder_naming, pretrained_state, run_sums,  # noqa: F401
                      tensor_sums)

MEASURES = ("mean_abs", "relative_abs", "relative_l2")
PAPER_MEASURE = "mean_abs"


def change_frame(pretrained: dict[str, torch.Tensor], finetuned: dict[str, torch.Tensor], *,
                 base_prefix: str | None = None, family=None, **labels) -> pd.DataFrame:
    """Tidy frame: one row per (layer, component, kind, measure); ``labels`` (task, seed...) become columns.

    ``finetuned`` may hold only the parameters that trained: every other parameter counts as unchanged.
    ``base_prefix``/``family`` (``lnft.components``): the encoder's; guessed from the names when not given.
    """
    return frame_from_sums(tensor_sums(pretrained, finetuned, base_prefix=base_prefix, family=family), **labels)


def frame_from_sums(sums: list[dict], **labels) -> pd.DataFrame:
    """``change_frame`` from ``tensor_sums`` (computed now, or read from a run's derived data)."""
    per_tensor = pd.DataFrame(sums)
    per_tensor["layer"] = per_tensor["layer"].astype("Int64")
    keys = ["group", "layer", "component"]
    both = per_tensor.groupby(keys, dropna=False, sort=False).sum(numeric_only=True).reset_index()
    both["kind"] = "all"
    parts = pd.concat([per_tensor, both], ignore_index=True)
    parts = parts.groupby([*keys, "kind"], dropna=False, sort=False).sum(numeric_only=True).reset_index()
    parts["mean_abs"] = parts["abs_sum"] / parts["n_elements"]
    parts["relative_abs"] = parts["abs_sum"] / parts["ref_abs_sum"].clip(lower=1e-30)
    parts["relative_l2"] = np.sqrt(parts["sq_sum"]) / np.sqrt(parts["ref_sq_sum"]).clip(lower=1e-30)
    frame = parts.melt(id_vars=[*keys, "kind", "n_elements"], value_vars=list(MEASURES),
                       var_name="measure", value_name="value")
    for column, value in reversed(list(labels.items())):
        frame.insert(0, column, value)
    frame["component"] = pd.Categorical(frame["component"], categories=_categories(frame), ordered=True)
    return frame.sort_values([*labels, "measure", "group", "layer", "component", "kind"]).reset_index(drop=True)


def _categories(frame) -> list[str]:
    known = [c for c in COMPONENT_ORDER if c in set(frame["component"])]
    return known + sorted(set(frame["component"]) - set(known))


def run_changes(result, store=None) -> pd.DataFrame:
    """Change frame of one run against the pre-trained weights of its model: from the sums its derived data
    holds (``lnft.derived``; a ledger run has no weights), else from its trained tensors in ``store``."""
    cfg = result.config
    labels = dict(task=cfg.task, method=cfg.method, seed=cfg.seed, run_id=result.run_id)
    from .derived import held

    sums = held(result, "changes")
    if sums:
        return frame_from_sums(sums, **labels)
    if store is None or not result.run_dir:
        from .errors import LnftError

        raise LnftError(f"run {result.run_id} has no change sums derived by this code (lnft.derived) and no "
                        "weights here; allowed: a run store holding its trained tensors (retrain it there)")
    return frame_from_sums(run_sums(cfg, store.tensors(result)), **labels)


def model_components(model: str, pooling: str = "auto") -> set[str]:
    """The component labels of a model's encoder (its family's map): what a change frame of a full
    fine-tuning run of it must show (13 for BERT; DistilBERT has no token types and no pooler; a model whose
    head reads the mean over tokens has no pooler either: ``lnft.pooling``)."""
    from .components import describe_model
    from .models import _load_pretrained, auto_pooling

    found = {i.component for i in describe_model(_load_pretrained(model, 2)).values() if i.group != "head"}
    if (auto_pooling(model) if pooling == "auto" else pooling) == "mean":
        found.discard("pooler")  # removed from the model the runs train (lnft.pooling)
    return found


def layer_average(frame: pd.DataFrame) -> pd.DataFrame:
    """Each component's value averaged over layers (embedding and pooler parts have one 'layer')."""
    keys = [c for c in frame.columns if c not in ("layer", "value", "n_elements")]
    return frame.groupby(keys, observed=True, sort=False)["value"].mean().reset_index()


def verdict(frame: pd.DataFrame, kind: str = "all", component: str = "output LN") -> pd.DataFrame:
    """Per task and measure: the component that changed most (layer-averaged, seed-averaged) and the
    rank of ``component`` (1 = largest change), among all components and among those inside the layers
    (embeddings and pooler sit outside the layer stack; the pooler of a sentence-embedding checkpoint is
    not trained by its pre-training objective and often moves most)."""
    part = frame[frame["kind"] == kind]
    avg = layer_average(part)
    avg = avg.groupby(["task", "measure", "group", "component"], observed=True)["value"].mean().reset_index()
    rows = []
    for (task, measure), chunk in avg.groupby(["task", "measure"], sort=True):
        ranked = chunk.sort_values("value", ascending=False).reset_index(drop=True)
        layers = ranked[ranked["group"] == "layer"].reset_index(drop=True)
        rank = lambda table: int(table.index[table["component"] == component][0]) + 1 \
            if (table["component"] == component).any() else None  # noqa: E731
        rows.append({"task": task, "measure": measure + (" (paper)" if measure == PAPER_MEASURE else ""),
                     "largest change": str(ranked.loc[0, "component"]),
                     f"{component} rank": rank(ranked), "components": len(ranked),
                     "largest in layers": str(layers.loc[0, "component"]) if len(layers) else None,
                     f"{component} rank in layers": rank(layers), "layer components": len(layers)})
    return pd.DataFrame(rows)


def ranks_by_seed(frame: pd.DataFrame, kind: str = "all", component: str = "output LN") -> pd.DataFrame:
    """``verdict`` for every seed on its own: the rank of ``component`` per task × measure × seed, so a
    notebook can say in how many seeds it ranks first (``lnft.stats.change_lead`` gives the interval)."""
    parts = [verdict(part, kind, component).assign(seed=s) for s, part in frame.groupby("seed", sort=True)]
    out = pd.concat(parts, ignore_index=True)
    return out[["task", "measure", "seed", *[c for c in out.columns if c not in ("task", "measure", "seed")]]]
