"""RunResult: what one fine-tuning run produced, as stored by the run store and read by notebooks."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .config import RunConfig


@dataclass
class RunResult:
    run_id: str
    config: RunConfig
    metrics: dict[str, float]  # GLUE dev metrics (fractions) of the selected epoch, plus "score" (points)
    validation_metrics: dict[str, float]  # held-out validation metrics of the selected epoch
    best_epoch: int
    history: list[dict]  # one dict per epoch: epoch, train_loss, validation_*, dev_* metrics, seconds
    trainable_params: int
    total_params: int
    train_seconds: float  # optimisation steps only
    total_seconds: float  # everything in finetune, loading and evaluation included
    train_samples: int
    peak_memory_mb: float
    device: str
    versions: dict[str, str]
    model_name: str = ""
    run_dir: str | None = None  # set when read from / written to the store
    files: dict[str, str] = field(default_factory=dict)  # role -> file name inside run_dir
    fingerprints: dict[str, str] = field(default_factory=dict)  # data, model, code, mask, schema (in the run id)
    checksums: dict[str, dict] = field(default_factory=dict)  # file name -> {"bytes", "sha256"} at write time
    created: str = ""  # when the store wrote it (UTC, ISO 8601)

    @property
    def trainable_percent(self) -> float:
        return 100.0 * self.trainable_params / self.total_params

    @property
    def samples_per_second(self) -> float:
        return self.train_samples * len(self.history) / max(self.train_seconds, 1e-9)

    def summary(self) -> dict:
        """The flat record printed by ``lnft train --json``."""
        cfg = self.config
        return {
            "run_id": self.run_id, "task": cfg.task, "method": cfg.method, "model": self.model_name or cfg.model,
            "seed": cfg.seed, "lr": cfg.lr, "epochs": cfg.epochs, "metrics": self.metrics,
            "validation_metrics": self.validation_metrics, "best_epoch": self.best_epoch,
            "trainable_params": self.trainable_params, "total_params": self.total_params,
            "trainable_percent": self.trainable_percent, "train_seconds": round(self.train_seconds, 3),
            "samples_per_second": round(self.samples_per_second, 2), "peak_memory_mb": round(self.peak_memory_mb, 1),
            "device": self.device, "run_dir": self.run_dir,
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
