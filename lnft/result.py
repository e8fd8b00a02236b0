"""RunResult: what one fine-tuning run produced, as stored by the run store and read by notebooks."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .config import RunConfig


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
