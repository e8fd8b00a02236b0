"""Floors for claim 2: what a task scores without fine-tuning anything, per task and training draw.

- **majority**: the most frequent training label for every dev example (the training mean for regression,
  which has no correlation: its Pearson and Spearman count 0);
- **linear probe**: scikit-learn ``LogisticRegression`` (classification) or ``Ridge`` (regression) on the
  frozen pre-trained model's pooled features (the same pooling the runs' heads read: ``RunConfig.pooling``),
  standardised on the training split; its regularisation chosen on the held-out validation split, like every
  rate of the trained arms; scored on GLUE dev.

Each floor is computed on the data a run of ``cfg`` sees (``data_seed``: the same training draw as the seed's
runs), so its per-example dev predictions pair with theirs (``predictions``: run id -> {split: Predictions},
the form ``lnft.stats.compare`` takes). The frozen features are cached beside the run store (``.floors/``,
content-keyed by the run id a head-only run on the same data would have, so new code, data or model make
new features). Head-only fine-tuning trains the same linear map by AdamW and should reach the probe within noise.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import RunConfig
from .result import Predictions, examples_digest

FLOORS_DIR = ".floors"
KINDS = ("majority", "linear probe")
PROBE_C = (1e-3, 1e-2, 1e-1, 1.0, 10.0)  # inverse L2 strengths of the logistic probe (features standardised)
PROBE_ALPHA = (1.0, 10.0, 100.0, 1e3, 1e4)  # ridge strengths of the regression probe


@dataclass(frozen=True)
class Floor:
    """One floor on one task and training draw: its dev and validation metrics, the regularisation the
    validation split chose (NaN for majority) and its per-example predictions (validation and dev)."""

    task: str
    kind: str
    seed: int  # the seed of the runs it stands beside (their data_seed is the floor's)
    data_seed: int
    metrics: dict  # dev metrics (fractions) + "score" (points)
    validation_metrics: dict
    regularisation: float
    predictions: dict  # split -> Predictions
    run_id: str  # a name for lnft.stats (never a run directory)


def feature_key(cfg: RunConfig) -> str:
    """The features' cache key: the id of a head-only run on the same data, model and pooling (one seed: the
    data seed, since the features do not depend on the head), and this module's source."""
    probe = dataclasses.replace(cfg, method="head", seed=cfg.data_seed, lr=1.0, head_lr=None, epochs=1, patience=0,
                                eval_every=None, mask_path=None, mask_digest=None, lora_targets=(), ia3_targets=(),
                                ia3_feedforward=(), precision="fp32")
    with open(__file__, "rb") as fh:
        source = hashlib.sha256(fh.read()).hexdigest()
    return hashlib.sha256(f"{probe.run_id()}:{source}".encode()).hexdigest()[:20]


def features(cfg: RunConfig, store=None, *, progress: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The frozen model's pooled features and the labels of every split of ``cfg``'s data (train, validation,
    dev), fp32, cached under ``<store>/.floors``: split -> (features, labels)."""
    import torch

    from .data import Collator, iterate, length_grouped_batches, load_task_data, tokenize
    from .models import accepts, load_model, load_tokenizer, resolve_device
    from .pooling import mean_pool
    from .tasks import get_task

    cfg = cfg.validate()
    path = os.path.join(store.root, FLOORS_DIR, f"{feature_key(cfg)}.npz") if store is not None else None
    if path and os.path.isfile(path):
        with np.load(path, allow_pickle=False) as data:
            return {s: (data[f"{s}.x"], data[f"{s}.y"]) for s in sorted({k.rsplit(".", 1)[0] for k in data.files})}
    task = get_task(cfg.task)
    device = resolve_device(cfg.device)
    tokenizer = load_tokenizer(cfg.model)
    raw = load_task_data(cfg, task)
    splits = tokenize(raw, tokenizer, task, cfg.max_seq_length)
    collate = Collator(tokenizer, task.is_regression, 0.0, 1.0)
    torch.manual_seed(0)  # the head is not used; seeded all the same
    model = load_model(cfg.model, task.num_labels, cfg.pooling).to(device).eval()
    encoder = getattr(model, model.base_model_prefix)
    out = {}
    with torch.inference_mode():
        for name, split in splits.items():
            batches = length_grouped_batches(split["length"], cfg.eval_batch_size, generator=None)
            x = np.empty((len(split), model.config.hidden_size), dtype=np.float32)
            for idx, batch in zip(batches, iterate(split, batches, collate)):
                batch.pop("labels")
                batch = {k: v.to(device) for k, v in batch.items() if accepts(encoder, k)}
                hidden = encoder(**batch)
                if cfg.pooling == "mean":
                    pooled = mean_pool(hidden.last_hidden_state, batch["attention_mask"])
                else:  # the model class's path: the encoder's pooler where it has one, else [CLS]
                    pooled = getattr(hidden, "pooler_output", None)
                    pooled = hidden.last_hidden_state[:, 0] if pooled is None else pooled
                x[idx] = pooled.float().cpu().numpy()
            out[name] = (x, np.asarray(split["label"][:]))
    if path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp.npz"
        np.savez_compressed(tmp, **{f"{s}.{k}": v for s, (x, y) in out.items() for k, v in (("x", x), ("y", y))})
        os.replace(tmp, path)  # atomic: a reader sees the whole file or none
    return out


def _score(task, labels, preds, split=None) -> dict:
    metrics = task.compute_metrics(labels, preds, split)
    return metrics


def _validation_score(metrics: dict) -> float:
    return 100.0 * float(np.mean(list(metrics.values())))


def floors_for(cfg: RunConfig, store=None) -> list[Floor]:
    """The majority floor and the linear probe on the data a run of ``cfg`` sees (its task, data seed, sizes)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import StandardScaler

    from .data import load_task_data
    from .tasks import get_task

    cfg = cfg.validate()
    task = get_task(cfg.task)
    raw = load_task_data(cfg, task)
    digests = {s: examples_digest(raw[s]) for s in raw if s != "train"}
    feats = features(cfg, store)
    x_train, y_train = feats["train"]
    scaler = StandardScaler().fit(x_train)
    evals = {s: (scaler.transform(x), y) for s, (x, y) in feats.items() if s != "train"}
    dev_splits = task.dev_split_names
    tag = f"d{cfg.data_seed}-{feature_key(cfg)[:8]}"

    def floor(kind, predict, reg):
        preds = {s: predict(x) for s, (x, _) in evals.items()}
        validation = _score(task, evals["validation"][1], preds["validation"])
        dev = {}
        for s in dev_splits:
            dev.update(_score(task, evals[s][1], preds[s], s))
        dev["score"] = task.score(dev)
        validation = {**validation, "score": _validation_score(validation)}
        kept = {s: Predictions(np.asarray(p, dtype=np.float32 if task.is_regression else np.int64),
                               np.asarray(evals[s][1]), digests[s]) for s, p in preds.items()}
        return Floor(task.name, kind, cfg.seed, cfg.data_seed, dev, validation, reg, kept,
                     f"{task.name}-floor-{kind.replace(' ', '-')}-{tag}")

    if task.is_regression:
        mean = float(np.mean(y_train))
        out = [floor("majority", lambda x: np.full(len(x), mean), float("nan"))]
        fits = [(a, Ridge(alpha=a).fit(scaler.transform(x_train), y_train)) for a in PROBE_ALPHA]
    else:
        values, counts = np.unique(y_train, return_counts=True)
        top = int(values[np.argmax(counts)])
        out = [floor("majority", lambda x: np.full(len(x), top), float("nan"))]
        fits = [(c, LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x_train), y_train)) for c in PROBE_C]
    x_val, y_val = evals["validation"]
    scored = [(_validation_score(_score(task, y_val, m.predict(x_val))), -i, reg, m) for i, (reg, m) in enumerate(fits)]
    _, _, reg, best = max(scored, key=lambda t: (t[0], t[1]))  # ties: the first (strongest) regularisation
    return out + [floor("linear probe", best.predict, float(reg))]


def floors(configs, store=None) -> list[Floor]:
    """Every floor of the distinct (task, data) draws of ``configs`` (e.g. one config per task × seed)."""
    seen, out = set(), []
    for cfg in configs:
        cfg = cfg.validate()
        key = (cfg.task, cfg.seed, feature_key(cfg))
        if key not in seen:
            seen.add(key)
            out += floors_for(cfg, store)
    return out


def floors_frame(found: list[Floor]) -> pd.DataFrame:
    """Long: one row per floor × split (dev, validation) × metric, with the columns of ``sweep.results_frame``
    that apply (task, method = the floor's kind, seed, run_id, split, metric, value) and the regularisation."""
    rows = []
    for f in found:
        base = {"task": f.task, "method": f.kind, "seed": f.seed, "data_seed": f.data_seed,
                "regularisation": f.regularisation, "trainable_params": 0, "run_id": f.run_id}
        for split, metrics in (("dev", f.metrics), ("validation", f.validation_metrics)):
            rows += [{**base, "split": split, "metric": m, "value": v} for m, v in metrics.items()]
    return pd.DataFrame(rows)


def floors_summary(found: list[Floor]) -> pd.DataFrame:
    """Per task × floor: the dev score mean ± std over the training draws (seeds) and the regularisations chosen."""
    frame = floors_frame(found)
    dev = frame[(frame["split"] == "dev") & (frame["metric"] == "score")]
    return (dev.groupby(["task", "method"], as_index=False, sort=False)
            .agg(score_mean=("value", "mean"), score_std=("value", "std"), seeds=("seed", "nunique"),
                 regularisation=("regularisation", lambda v: "/".join(f"{x:g}" for x in dict.fromkeys(v)
                                                                       if np.isfinite(x)) or "—"))
            .rename(columns={"method": "floor"}))


def predictions(found: list[Floor]) -> dict[str, dict[str, Predictions]]:
    """run id -> {split: Predictions}: what ``lnft.stats.compare(..., predictions=)`` reads for floors."""
    return {f.run_id: f.predictions for f in found}


def versus_floors(summary: pd.DataFrame, found: list[Floor]) -> pd.DataFrame:
    """Claim 2's table beside its floors: per task, each method's dev mean (``aggregate.summarize``) with the
    majority and linear-probe means and the method's lead over each (points)."""
    table = floors_summary(found).pivot(index="task", columns="floor", values="score_mean")
    out = summary[["task", "method", "score_mean"]].merge(table, left_on="task", right_index=True, how="left")
    for kind in KINDS:
        if kind in out:
            out[f"over {kind}"] = out["score_mean"] - out[kind]
    return out.reset_index(drop=True)


def floor_configs(P, seeds_by_arm: dict | None = None, method: str = "head") -> list[RunConfig]:
    """One config per task × seed whose data the floors are computed on: the seeds ``method`` ran with
    (``seeds_by_arm``: (task, method) -> seeds, as ``experiments.decide_methods`` returns them; default: the
    profile's seeds), each with its own training draw."""
    seeds = lambda t: (seeds_by_arm or {}).get((t, method), P.seeds)  # noqa: E731
    return [P.run_config(task=t, method=method, seed=s) for t in P.tasks for s in seeds(t)]


def head_versus_probe(results, chosen: pd.DataFrame, found: list[Floor], store=None, **options) -> pd.DataFrame:
    """Head-only fine-tuning (each seed at its chosen rate) minus the linear probe on the same training draws,
    per task: ``lnft.stats.compare`` on per-example dev predictions (the probe's from ``found``). Head-only
    should reach the probe within noise: an interval below 0 says its training fell short."""
    from . import stats

    heads = [r for r in results if r.config.method == "head"]
    rate = {(t, m): lr for t, m, lr in zip(chosen["task"], chosen["method"], chosen["lr"])}
    rows = [{"run_id": r.run_id, "seed": r.config.seed, "method": "head", "task": r.config.task} for r in heads
            if rate.get((r.config.task, "head")) == r.config.lr]
    rows += [{"run_id": f.run_id, "seed": f.seed, "method": f.kind, "task": f.task} for f in found
             if f.kind == "linear probe"]
    frame = pd.DataFrame(rows, columns=["run_id", "seed", "method", "task"])
    return stats.compare(frame, "head", "linear probe", store=store, predictions=predictions(found), average=False,
                         **options)
