"""RunResult: what one fine-tuning run produced, as stored by the run store and read by notebooks."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field

import numpy as np

from .config import RunConfig
from .errors import LnftError

PREDICTIONS = "predictions.npz"


@dataclass(frozen=True)
class Predictions:
    """One run's per-example predictions and labels on one evaluation split, in the split's order, and
    a digest of the examples themselves: two runs can be compared example by example only when their
    digests agree (same examples, same order)."""

    preds: np.ndarray  # class ids, or scores on the task's scale (regression)
    labels: np.ndarray
    digest: str

    def __len__(self) -> int:
        return len(self.labels)


def examples_digest(dataset) -> str:
    """sha256 of an evaluation split's texts and labels, in order (not of token ids: another tokenizer
    sees the same examples)."""
    columns = [dataset[c][:] for c in ("sentence1", "sentence2", "label") if c in dataset.column_names]
    return hashlib.sha256(json.dumps(columns, default=str).encode()).hexdigest()


def write_predictions(path: str, predictions: dict[str, Predictions]) -> None:
    arrays = {}
    for split, p in predictions.items():
        arrays.update({f"{split}.preds": p.preds, f"{split}.labels": p.labels, f"{split}.digest": np.array(p.digest)})
    np.savez_compressed(path, **arrays)


def read_predictions(path: str) -> dict[str, Predictions]:
    with np.load(path, allow_pickle=False) as data:
        splits = sorted({k.rsplit(".", 1)[0] for k in data.files})
        return {s: Predictions(data[f"{s}.preds"], data[f"{s}.labels"], str(data[f"{s}.digest"])) for s in splits}


@dataclass
class RunResult:
    run_id: str
    config: RunConfig
    metrics: dict[str, float]  # GLUE dev metrics (fractions) of the best checkpoint, plus "score" (points)
    validation_metrics: dict[str, float]  # held-out validation metrics of the best checkpoint
    best_epoch: int  # the epoch the best checkpoint falls in (1-based)
    history: list[dict]  # one dict per evaluation: step, epoch (fractional), train_loss, validation_*, dev_*, seconds
    trainable_params: int
    total_params: int
    train_seconds: float  # optimisation steps only
    total_seconds: float  # everything in finetune, loading and evaluation included
    train_samples: int
    peak_memory_mb: float
    device: str
    versions: dict[str, str]
    model_name: str = ""
    best_step: int = 0  # optimisation step of the best checkpoint
    steps: int = 0  # optimisation steps taken (fewer than max_steps when early stopping ended the run)
    max_steps: int = 0  # the budget: epochs × steps per epoch
    eval_seconds: float = 0.0  # evaluations during training (selection split)
    run_dir: str | None = None  # set when read from / written to the store
    files: dict[str, str] = field(default_factory=dict)  # role -> file name inside run_dir
    fingerprints: dict[str, str] = field(default_factory=dict)  # data, model, code, mask, schema (in the run id)
    checksums: dict[str, dict] = field(default_factory=dict)  # file name -> {"bytes", "sha256"} at write time
    created: str = ""  # when the store wrote it (UTC, ISO 8601)
    pool_metrics: dict[str, float] = field(default_factory=dict)  # the held-out pool (lnft.pool) at the selected
    pool_seconds: float = 0.0  # checkpoint, plus "score"; empty without a pool. Scoring the pool, once
    derived: dict = field(default_factory=dict)  # small data the analyses read instead of weights (lnft.derived)

    def predictions(self) -> dict[str, Predictions]:
        """Per-example predictions of the selected epoch: split name ("validation", "dev", or MNLI's
        "dev_matched"/"dev_mismatched") -> Predictions. Read from the run's directory in the store, or held
        by a run served from the results ledger."""
        held = self.__dict__.get("_predictions")
        if held is not None:
            return held
        if not self.run_dir or "predictions" not in self.files:
            raise LnftError(f"run {self.run_id} has no stored per-example predictions; re-run it "
                            f"(records from before store schema 2 are re-run automatically)")
        return read_predictions(os.path.join(self.run_dir, self.files["predictions"]))

    @property
    def trainable_percent(self) -> float:
        return 100.0 * self.trainable_params / self.total_params

    @property
    def stopped_early(self) -> bool:
        return self.steps < self.max_steps

    @property
    def still_improving(self) -> bool:
        """Possibly undertrained: the best evaluation is the last one, so the run was still improving when
        its budget ran out (a run with a single evaluation counts: nothing shows it had converged)."""
        return bool(self.history) and self.best_step == self.history[-1].get("step")

    @property
    def samples_per_second(self) -> float:
        steps_per_epoch = -(-self.train_samples // self.config.batch_size)
        epochs = self.steps / steps_per_epoch if self.steps else len(self.history)
        return self.train_samples * epochs / max(self.train_seconds, 1e-9)

    def summary(self) -> dict:
        """The flat record printed by ``lnft train --json``."""
        cfg = self.config
        return {
            "run_id": self.run_id, "task": cfg.task, "method": cfg.method, "model": self.model_name or cfg.model,
            "seed": cfg.seed, "lr": cfg.lr, "epochs": cfg.epochs, "metrics": self.metrics,
            "validation_metrics": self.validation_metrics, "best_epoch": self.best_epoch,
            "best_step": self.best_step, "steps": self.steps, "max_steps": self.max_steps,
            "stopped_early": self.stopped_early, "still_improving": self.still_improving,
            "trainable_params": self.trainable_params, "total_params": self.total_params,
            "trainable_percent": self.trainable_percent, "train_seconds": round(self.train_seconds, 3),
            "samples_per_second": round(self.samples_per_second, 2), "peak_memory_mb": round(self.peak_memory_mb, 1),
            "device": self.device, "precision": cfg.precision, "run_dir": self.run_dir,
            **({"pool_size": cfg.pool_size, "pool_metrics": self.pool_metrics} if self.pool_metrics else {}),
        }

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["config"] = self.config.to_dict()
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "RunResult":
        values = dict(values)
        cfg = dict(values.pop("config"))
        cfg["lora_targets"] = tuple(cfg.get("lora_targets", ()))
        cfg["extra"] = tuple(tuple(kv) for kv in cfg.get("extra", ()))
        return cls(config=RunConfig.from_dict(cfg), **values)


def nonfinite(result: "RunResult | None" = None, trained: dict | None = None,
              predictions: dict[str, Predictions] | None = None) -> str:
    """What is not finite in a run's output (metrics, history, trained tensors, predictions), or "" when
    everything is: a run with a NaN or infinite value anywhere is a failed run, never stored."""
    import math

    import torch

    if result is not None:
        for where, values in (("dev metric", result.metrics), ("validation metric", result.validation_metrics),
                              ("pool metric", result.pool_metrics)):
            for key, value in values.items():
                if not isinstance(value, (int, float)) or not math.isfinite(value):
                    return f"{where} {key} is {value!r}"
        for row in result.history:
            for key, value in row.items():
                if isinstance(value, float) and not math.isfinite(value):
                    return f"{key} is {value!r} at step {row.get('step')}"
    for name, tensor in (trained or {}).items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            return f"trained tensor {name} has {bad} non-finite value(s) of {tensor.numel()}"
    for split, p in (predictions or {}).items():
        for what, values in (("predictions", p.preds), ("labels", p.labels)):
            values = np.asarray(values)
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                return f"{split} {what}: {int((~np.isfinite(values)).sum())} non-finite value(s)"
    return ""


def record_task(result: "RunResult"):
    """The task a stored run was scored with. A GLUE task's, or a spec task's from its spec file when that
    still describes the run's data (its fingerprint is the record's); otherwise, the spec being gone or
    changed (the run is stale or unknown, not broken), a task scored with the metrics its record names."""
    from .tasks import Task, get_task

    cfg = result.config
    if not cfg.task_spec:
        return get_task(cfg.task)
    from .taskspec import load_spec

    try:
        task = load_spec(cfg.task_spec)
        if task.name == cfg.task and task.spec.fingerprint() == result.fingerprints.get("data"):
            return task
    except (LnftError, OSError):
        pass
    names = tuple(k for k in result.metrics if k != "score")
    return Task(cfg.task, "", ("text",), "label", (), names, {"dev": ""}, "", ("text",), {"dev": "dev"})


def recompute_metrics(result: "RunResult", predictions: dict[str, Predictions]) -> dict[str, tuple[float, float]]:
    """Each recorded metric (dev and validation) that its stored predictions do not reproduce:
    ``{"dev score": (recorded, recomputed), ...}`` (empty when all agree, to 1e-9)."""
    task = record_task(result)
    dev = {}
    for split in task.dev_split_names:
        if split not in predictions:
            return {f"dev predictions ({split})": (float("nan"), float("nan"))}
        p = predictions[split]
        dev.update(task.compute_metrics(p.labels, p.preds, split))
    dev["score"] = task.score(dev)
    found = {("dev", k): v for k, v in dev.items()}
    if "validation" in predictions and result.validation_metrics:
        p = predictions["validation"]
        validation = task.compute_metrics(p.labels, p.preds, None)
        validation["score"] = 100.0 * float(np.mean(list(validation.values())))
        found.update({("validation", k): v for k, v in validation.items()})
    if result.pool_metrics or "pool" in predictions:  # the held-out pool (lnft.pool)
        if "pool" not in predictions:
            return {"pool predictions": (float("nan"), float("nan"))}
        p = predictions["pool"]
        pool = task.compute_metrics(p.labels, p.preds, None)
        pool["score"] = task.score(pool)
        found.update({("pool", k): v for k, v in pool.items()})
    recorded_by = {"dev": result.metrics, "validation": result.validation_metrics, "pool": result.pool_metrics}
    differ = {}
    for (where, key), value in found.items():
        recorded = recorded_by[where].get(key)
        if not isinstance(recorded, (int, float)) or not abs(recorded - value) <= 1e-9 * max(1.0, abs(value)):
            differ[f"{where} {key}"] = (recorded, value)
    for where, recorded_metrics in recorded_by.items():
        for key in recorded_metrics:  # a metric added to the record that the predictions do not give
            if (where, key) not in found and (where == "dev" or where in predictions):
                differ[f"{where} {key}"] = (recorded_metrics[key], float("nan"))
    return differ
