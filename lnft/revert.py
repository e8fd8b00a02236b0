"""Claim 1, functional: put one component of a fine-tuned model back to its pre-trained value and measure
the dev score lost.

Why (issue 35): the paper's measure, mean |Δθ|, says which component *moved* most, not which *matters*.
Under AdamW every element moves about lr per step whatever its scale, so a small-scale tensor and a
large-scale one show the same mean |Δθ|. Reverting a component asks the functional question: how much of
the fine-tuned model's dev score does that component's change carry (given the others' changes)?

Inference only, on stored runs. The change frame (``lnft.changes``) holds per-component sums, not the
tensors, so it cannot give a revert its inputs: the fine-tuned tensors are needed **once**. ``predictions``
computes every revert of a run on first use from its stored tensors and keeps the result, small derived
data (per-example dev predictions per reverted unit, a few hundred kB), in the run's directory
(``REVERT_FILE``, written atomically; the record does not list it, so the run stays what it was). From then
on the analysis reads that file only: the weights may go.

A **unit** is one component in every layer at once (``layer`` = ``EVERY_LAYER``), and with ``per_layer`` also
one component of one layer; ``none`` (nothing reverted) is the fine-tuned model evaluated the same way (it
must reproduce the run's stored dev predictions: ``reproduced``). Intervals: ``lnft.stats`` — training noise
over seeds and the paired example bootstrap, each once (``losses``); the lead of one component over every
other (``lead``) by ``lnft.lead``'s rule (intersection–union for *largest*, Holm for *not largest*).
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch

from .errors import LnftError

REVERT_FILE = "revert.npz"
LEDGER_KEY = "revert"  # the reverts in a run's ledger record (lnft.store.ledger: derived data)
NONE = "none"  # the unit with nothing reverted
EVERY_LAYER = -1  # a unit's layer when the component is reverted in every layer (or has one instance)
FORMAT = 1  # of the revert file: bump when what a revert computes changes


def _version(per_layer: bool) -> str:
    """What a stored revert file was made by: ``FORMAT`` and the unit set. The run's id already fingerprints the
    code that trains and evaluates it (``lnft.train.predict``, data, models); bump ``FORMAT`` when what a revert
    computes changes, never for a comment (a store whose weights are gone could not make it again)."""
    return f"{FORMAT}|per_layer={per_layer}"


def units_of(infos: dict, per_layer: bool = False) -> dict[tuple[str, int], list[str]]:
    """(component, layer) -> parameter names: each encoder component in every layer (``EVERY_LAYER``) and,
    with ``per_layer``, each layered component in each layer. The task head is new, not pre-trained: never
    reverted."""
    out: dict[tuple[str, int], list[str]] = {}
    for name, info in infos.items():
        if info.group not in ("embeddings", "layer", "pooler"):
            continue
        out.setdefault((info.component, EVERY_LAYER), []).append(name)
        if per_layer and info.group == "layer":
            out.setdefault((info.component, int(info.layer)), []).append(name)
    return out


def compute(result, store, *, per_layer: bool = False, progress: bool = False) -> dict[str, np.ndarray]:
    """Every revert of one stored run: arrays ``units`` (component), ``layers``, and per dev split
    ``<split>.preds`` (units, n) and ``<split>.labels``; the first unit is ``none``."""
    from .changes import effective_weights, pretrained_state
    from .components import describe_model
    from .data import Collator, load_task_data, target_scale, tokenize
    from .models import load_model, load_tokenizer, resolve_device, resolve_precision
    from .progress import progress_bar
    from .tasks import get_task
    from .train import predict, seed_everything

    cfg = result.config
    task = get_task(cfg.task)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, cfg.device)
    tokenizer = load_tokenizer(cfg.model)
    splits = tokenize(load_task_data(cfg, task), tokenizer, task, cfg.max_seq_length)
    shift, scale = target_scale(splits["train"], task, cfg.standardize_targets)
    collate = Collator(tokenizer, task.is_regression, shift, scale)
    seed_everything(cfg.seed)
    model = load_model(cfg.model, task.num_labels)
    pre = pretrained_state(cfg.model)
    scaling = cfg.lora_alpha / cfg.lora_r if cfg.method == "lora" else None
    fine = effective_weights(store.tensors(result), pre, scaling)
    params = dict(model.named_parameters())
    unknown = sorted(set(fine) - set(params))
    if unknown:
        raise LnftError(f"run {result.run_id} ({cfg.method}) stores tensors the plain model lacks ({unknown[0]}, ...): "
                        "allowed: methods that train the model's own parameters (full, layernorm, bitfit, lora, ...)")
    with torch.no_grad():
        for name, value in fine.items():
            params[name].copy_(value)
    model = model.to(device)
    changed = {n for n in fine if n in pre and not torch.equal(fine[n].to(pre[n].dtype), pre[n])}
    units = [(c, layer, names) for (c, layer), names in units_of(describe_model(model), per_layer).items()
             if changed & set(names)]
    dev = list(task.dev_split_names)
    out = {"units": np.array([NONE] + [u[0] for u in units]), "layers": np.array([EVERY_LAYER] + [u[1] for u in units])}
    preds = {s: [] for s in dev}
    labels = {}
    for component, layer, names in progress_bar([(NONE, EVERY_LAYER, [])] + units, enabled=progress,
                                                desc=f"{cfg.task} reverts"):
        with torch.no_grad():
            for n in names:
                params[n].copy_(pre[n].to(device))
        for split in dev:
            p, y = predict(model, splits[split], task, collate, device, cfg.eval_batch_size, precision)
            preds[split].append(p)
            labels[split] = y
        with torch.no_grad():
            for n in names:
                params[n].copy_(fine[n].to(device))
    for split in dev:
        out[f"{split}.preds"] = np.stack(preds[split])
        out[f"{split}.labels"] = labels[split]
    return out


def predictions(result, store, *, per_layer: bool = False, progress: bool = False) -> pd.DataFrame:
    """Tidy per-example dev predictions of every revert of one run (``compute``), read from the run's
    directory when made there before by this code (else computed once and kept): run_id, task, seed,
    component, layer, split, example, pred, label."""
    arrays = None
    path = os.path.join(result.run_dir, REVERT_FILE) if result.run_dir else None
    version = _version(per_layer)
    if path and os.path.isfile(path):
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["version"]) == version:
                    arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, KeyError):
            arrays = None  # unreadable: made again below
    if arrays is None:
        arrays = _from_ledger(result, version)
    if arrays is None:
        arrays = compute(result, store, per_layer=per_layer, progress=progress)
        if path:
            tmp = f"{path}.tmp-{os.getpid()}.npz"
            np.savez_compressed(tmp, version=np.array(version), **arrays)
            os.replace(tmp, path)
    _to_ledger(result, store, version, arrays)  # computed now or read from the run directory: kept in the ledger
    cfg = result.config
    parts = []
    for key in arrays:
        if not key.endswith(".preds"):
            continue
        split = key.removesuffix(".preds")
        p = arrays[key]
        units, n = p.shape
        parts.append(pd.DataFrame({
            "component": np.repeat(arrays["units"], n), "layer": np.repeat(arrays["layers"], n),
            "split": split, "example": np.tile(np.arange(n), units), "pred": p.ravel(),
            "label": np.tile(arrays[f"{split}.labels"], units)}))
    frame = pd.concat(parts, ignore_index=True)
    for column, value in reversed([("run_id", result.run_id), ("task", cfg.task), ("seed", cfg.seed)]):
        frame.insert(0, column, value)
    return frame


def _from_ledger(result, version: str) -> dict | None:
    """The reverts kept in the run's ledger record (its derived data), when made by this code."""
    from .derived import decode

    kept = (getattr(result, "derived", None) or {}).get(LEDGER_KEY)
    if not isinstance(kept, dict) or kept.get("version") != version:
        return None
    try:
        return {k: decode(v) for k, v in kept["arrays"].items()}
    except (KeyError, TypeError, ValueError):
        return None


def _to_ledger(result, store, version: str, arrays: dict) -> None:
    """Keep the reverts in the run's ledger record, so a re-render from the ledger needs no weights."""
    from .derived import encode

    ledger = getattr(store, "ledger", None)
    if ledger is None or not ledger.has(result.run_id):
        return
    recorded = ledger.load(result.run_id)  # already kept there (e.g. read now from the run directory's file)
    if recorded is not None and _from_ledger(recorded, version) is not None:
        return
    kept = {"version": version, "arrays": {k: encode(v) for k, v in arrays.items()}}
    ledger.add_derived(result.run_id, {LEDGER_KEY: kept})
    result.derived = {**(getattr(result, "derived", None) or {}), LEDGER_KEY: kept}


def revert_frame(results, store, *, per_layer: bool = False, progress: bool = False) -> pd.DataFrame:
    """``predictions`` of every run (say, notebook 1's full fine-tuning runs), one frame."""
    return pd.concat([predictions(r, store, per_layer=per_layer, progress=progress) for r in results],
                     ignore_index=True)


def reproduced(frame: pd.DataFrame, results) -> pd.DataFrame:
    """Per run: the share of dev examples on which the ``none`` unit (the fine-tuned model, re-evaluated here)
    predicts what the run stored, and the largest absolute difference (regression). 1.0 / ~0 on the machine
    that trained it; another CPU's kernels or bf16 can move a borderline example. A regression score counts as the
    same within 1e-3, or 5 × 2⁻⁸ (bf16's rounding of a 0–5 score) for a run in bf16."""
    from .models import resolve_precision

    rows = []
    for r in results:
        stored = r.predictions()
        atol = 5 * 2 ** -8 if resolve_precision(r.config.precision, r.config.device) == "bf16" else 1e-3
        mine = frame[(frame["run_id"] == r.run_id) & (frame["component"] == NONE)]
        for split, part in mine.groupby("split"):
            a, b = part.sort_values("example")["pred"].to_numpy(), np.asarray(stored[split].preds)
            rows.append({"run_id": r.run_id, "task": r.config.task, "seed": r.config.seed, "split": split,
                         "same": float(np.mean(np.isclose(a, b, rtol=0, atol=atol))),
                         "max_abs": float(np.max(np.abs(a.astype(np.float64) - b))) if len(a) else 0.0})
    return pd.DataFrame(rows)


def _arrays(frame: pd.DataFrame, task: str, units: list[tuple[str, int]]):
    """(seeds, labels per split, {unit: {split: (seeds, n) predictions}}) of one task."""
    part = frame[frame["task"] == task]
    seeds = sorted(part["seed"].unique())
    labels, preds = {}, {}
    for split, s in part.groupby("split", sort=True):
        first = s[(s["seed"] == seeds[0]) & (s["component"] == NONE)].sort_values("example")
        labels[split] = first["label"].to_numpy()
        for unit in units:
            rows = s[(s["component"] == unit[0]) & (s["layer"] == unit[1])]
            grid = rows.pivot_table(index="seed", columns="example", values="pred", aggfunc="first").reindex(seeds)
            if grid.isna().any().any() or grid.shape[1] != len(labels[split]):
                raise LnftError(f"revert frame of {task!r}: unit {unit[0]} (layer {unit[1]}) misses a seed or "
                                "examples; every run needs every unit")
            preds.setdefault(f"{unit[0]}|{unit[1]}", {})[split] = grid.to_numpy()
    return seeds, labels, preds


def losses(frame: pd.DataFrame, *, level: float | None = None, replicates: int | None = None) -> pd.DataFrame:
    """Per task × unit: the dev score lost by reverting it (points: fine-tuned − reverted), with the interval
    of ``lnft.stats.difference`` (training noise over seeds + the paired example bootstrap, Welch df; seeds
    treated as unpaired, which is conservative here where both sides come from the same run), and the word
    *better* (= reverting it costs score) / *worse* / *inconclusive*."""
    from . import stats

    level = level or stats.LEVEL
    rows = []
    for task in sorted(frame["task"].unique()):
        units = _units(frame, task)
        seeds, labels, preds = _arrays(frame, task, [(NONE, EVERY_LAYER), *units])
        boot = stats.task_replicates(task, labels, preds, replicates=replicates or stats.REPLICATES, key="revert")
        base = boot[f"{NONE}|{EVERY_LAYER}"]
        for component, layer in units:
            mine = boot[f"{component}|{layer}"]
            d = stats.difference(base[0], mine[0], base[1], mine[1], margin=None, level=level, needed=False)
            rows.append({"task": task, "component": component, "layer": layer, "fine_tuned": float(base[0].mean()),
                         "reverted": float(mine[0].mean()), "lost": d["diff"], "lo": d["lo"], "hi": d["hi"],
                         "se": d["se"], "df": d["df"], "verdict": d["verdict"], "seeds": len(seeds),
                         "level": level})
    return pd.DataFrame(rows)


def _units(frame: pd.DataFrame, task: str) -> list[tuple[str, int]]:
    part = frame[(frame["task"] == task) & (frame["component"] != NONE)][["component", "layer"]].drop_duplicates()
    return [(str(c), int(layer)) for c, layer in part.itertuples(index=False)]


def lead(frame: pd.DataFrame, component: str = "output LN", *, level: float | None = None,
         comparator: str | None = None, replicates: int | None = None) -> pd.DataFrame:
    """Per task: does reverting ``component`` (in every layer) cost more dev score than reverting any other
    component? ``lnft.lead.lead_row`` on the score lost per seed, each pair's interval from
    ``lnft.stats.difference`` (other reverted − ``component`` reverted = loss of ``component`` − loss of the
    other; seeds and examples, shared example resamples). Units: components in every layer only."""
    from . import stats
    from .lead import lead_row

    level = level or stats.LEVEL
    rows = []
    for task in sorted(frame["task"].unique()):
        units = [u for u in _units(frame, task) if u[1] == EVERY_LAYER]
        names = [u[0] for u in units]
        if component not in names:
            raise LnftError(f"component {component!r} was not reverted for task {task!r} (reverted: {', '.join(names)})")
        seeds, labels, preds = _arrays(frame, task, [(NONE, EVERY_LAYER), *units])
        boot = stats.task_replicates(task, labels, preds, replicates=replicates or stats.REPLICATES, key="revert")
        base = boot[f"{NONE}|{EVERY_LAYER}"][0]
        lost = np.stack([base - boot[f"{u}|{EVERY_LAYER}"][0] for u in names], axis=1)  # [seed, unit]
        target = boot[f"{component}|{EVERY_LAYER}"]
        est = []
        for other in names:
            if other == component:
                continue
            theirs = boot[f"{other}|{EVERY_LAYER}"]
            d = stats.difference(theirs[0], target[0], theirs[1], target[1], margin=None, level=level, needed=False)
            est.append({"diff": d["diff"], "se": d["se"] if len(seeds) >= 2 else np.nan, "df": d["df"]})
        row = lead_row(lost, names, component, pd.DataFrame(est), level=level, comparator=comparator)
        beaten = (f"; {row['larger_by_holm']} costs more (Holm p {row['holm_p']:.3g})" if row["larger_by_holm"] else "")
        rows.append({"task": task, "measure": "dev score lost when reverted", **row, "seeds": len(seeds),
                     "summary": (f"{task}: reverting {component} costs {_pts(row['value'])} points, "
                                 f"{_pts(row['diff'])} vs {row['largest_other']} ({_pts(row['other_value'])}; "
                                 f"{level * 100:.0f} % CI {_pts(row['lo'])} to {_pts(row['hi'])}): {row['verdict']} "
                                 f"of {row['others'] + 1}{beaten}")})
    return pd.DataFrame(rows)


def _pts(x: float) -> str:
    """+1.2 / −0.4: a signed number with a true minus sign (names like "attn-out LN" keep their hyphen)."""
    return f"{x:+.1f}".replace("-", "−")
